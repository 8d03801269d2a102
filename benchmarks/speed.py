"""Speed per embedding runtime (openvino-int8, openvino, onnx-int8, onnx, torch), as ratios against baselines measured in the same run
(medians of repeated runs; the machine is shared, so only the ratios travel):

1. Cold start: `rag ask` in a fresh process on an index of the bundled articles (built by that runtime), from
   process start to the answer printed, against a bare `python -c "import torch"`. Median of --repeats.
2. Query encoding: one question's forward pass (vector + token vectors), p50 / p95, against torch's.
3. Indexing: `rag index` of --paragraphs ARCD paragraphs in a fresh process, wall time including start-up,
   against the raw `SentenceTransformer.encode` of the same chunk texts with the model already loaded.
4. `/ask` throughput of a real `rag serve --runtime R` process at 4 and 16 concurrent clients (distinct ARCD
   questions over the bundled index; benchmarks/api_load.py's client), against torch's server: the median of
   --api-repeats rounds of --requests questions per level, each round new questions.
5. The size of each model file.

    .venv/bin/python benchmarks/speed.py [--runtimes openvino-int8 openvino onnx-int8 onnx torch] [--repeats 5] [--paragraphs 400]
                                         [--requests 64] [--levels 4 16] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api_load import over_http, start_server  # noqa: E402
from rag.chunking import ChunkingConfig, chunk_document  # noqa: E402
from rag.config import BUNDLED_ARTICLES, get_settings  # noqa: E402
from rag.documents import clean, load_paths  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.indexer import embedding_text  # noqa: E402
from rag.runtime import RUNTIMES  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
QUESTION = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_API_KEY": ""}


def wall(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if run.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({run.returncode}): {run.stderr[-1500:]}")
    return seconds


def rag(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag.cli", *args]


def questions(n: int, skip: int = 0) -> list[str]:
    seen, out = set(), []
    for line in (EVAL / "arcd" / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)["question"].strip()
        if q and q not in seen:
            seen.add(q)
            out.append(q)
    return out[skip:skip + n]


def load() -> str:
    """The 1-minute load average now: the machine is shared, so each figure says what it ran beside."""
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--paragraphs", type=int, default=400, help="ARCD paragraphs to index")
    ap.add_argument("--index-repeats", type=int, default=1)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--requests", type=int, default=64, help="/ask requests per concurrency level")
    ap.add_argument("--levels", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--api-repeats", type=int, default=3, help="/ask rounds per level (the median is reported)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["cold", "query", "index", "api"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runtimes = list(dict.fromkeys(["torch", *args.runtimes]))  # torch is every ratio's baseline
    settings = get_settings()
    work = Path(tempfile.mkdtemp(prefix="rag-speed-"))
    report: dict = {"runtimes": runtimes, "repeats": args.repeats}
    embedders = {r: Embedder(settings.model_copy(update={"runtime": r})) for r in runtimes}

    # Indexes of the bundled articles, one per runtime (an index answers only the runtimes that built it).
    for r in runtimes if {"cold", "api"} - set(args.skip) else []:
        wall(rag("index", str(BUNDLED_ARTICLES), "--index-dir", str(work / f"bundled-{r}"), "--runtime", r))

    if "cold" not in args.skip:
        report.setdefault("load", {})["cold_start"] = [load()]  # [before, after] each part
        bare, cold = [], {r: [] for r in runtimes}
        for _ in range(args.repeats):  # interleaved, so every side sees the same machine
            bare.append(wall([sys.executable, "-c", "import torch"]))
            for r in runtimes:
                cold[r].append(wall(rag("ask", QUESTION, "--index-dir", str(work / f"bundled-{r}"), "--runtime", r)))
        b = statistics.median(bare)
        report["cold_start"] = {"import_torch_s": round(b, 2), **{
            r: {"rag_ask_s": round(statistics.median(v), 2), "vs_import_torch": round(statistics.median(v) / b, 3)}
            for r, v in cold.items()}}
        report["load"]["cold_start"].append(load())

    if "query" not in args.skip:
        report.setdefault("load", {})["query_encoding"] = [load()]
        qs = questions(args.queries)
        times = {}
        for r in runtimes:
            e = embedders[r]
            e.encode_queries_with_tokens(qs[:3])  # load and warm up
            ms = []
            for q in qs:
                t0 = time.perf_counter()
                e.encode_queries_with_tokens([q])
                ms.append((time.perf_counter() - t0) * 1000)
            times[r] = ms
        t50 = float(np.percentile(times["torch"], 50))
        report["query_encoding"] = {r: {"p50_ms": round(float(np.percentile(v, 50)), 2),
                                        "p95_ms": round(float(np.percentile(v, 95)), 2),
                                        "p50_speedup_vs_torch": round(t50 / float(np.percentile(v, 50)), 2)}
                                    for r, v in times.items()}
        report["load"]["query_encoding"].append(load())

    if "index" not in args.skip:
        report.setdefault("load", {})["indexing"] = [load()]
        corpus = work / "arcd.jsonl"
        lines = (EVAL / "arcd" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[: args.paragraphs]
        corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        torch_embedder = embedders["torch"]
        docs = {d.id: d for d in load_paths([corpus]).documents}
        cfg = ChunkingConfig(settings.chunk_tokens, settings.chunk_overlap_tokens)
        chunks = [c for d in docs.values() for c in chunk_document(d, clean(d), torch_embedder.count_tokens, cfg,
                                                                   skip_title=settings.embed_title)]
        texts = [embedding_text(docs[c.doc_id], c, settings.embed_title)[0] for c in chunks]
        model = torch_embedder.model
        model.encode(texts[:8], prompt_name="passage")  # warm-up
        base_t, ours_t = [], {r: [] for r in runtimes}
        for i in range(args.index_repeats):
            t0 = time.perf_counter()
            model.encode(texts, prompt_name="passage", batch_size=settings.batch_size, normalize_embeddings=True)
            base_t.append(time.perf_counter() - t0)
            for r in runtimes:
                ours_t[r].append(wall(rag("index", str(corpus), "--index-dir", str(work / f"arcd-{r}-{i}"),
                                          "--runtime", r)))
        base = statistics.median(base_t)
        report["indexing"] = {"paragraphs": args.paragraphs, "chunks": len(chunks),
                              "sentence_transformers_encode_s": round(base, 2), **{
            r: {"rag_index_s": round(statistics.median(v), 2), "chunks_per_s": round(len(chunks) / statistics.median(v), 2),
                "speed_vs_encode": round(base / statistics.median(v), 3)} for r, v in ours_t.items()}}  # fmt: skip
        report["load"]["indexing"].append(load())

    if "api" not in args.skip:
        report.setdefault("load", {})["ask_throughput"] = [load()]
        rounds = len(args.levels) * args.api_repeats
        qs = questions(8 + args.requests * rounds, skip=args.queries)
        warm, sets = qs[:8], [qs[8 + i * args.requests: 8 + (i + 1) * args.requests] for i in range(rounds)]
        api = {}
        for r in runtimes:
            index_dir = work / f"serve-{r}"
            shutil.copytree(work / f"bundled-{r}", index_dir)
            proc, url = start_server(index_dir, work / f"serve-{r}.log", runtime=r)
            try:
                asyncio.run(over_http(url, warm, 4))
                api[r] = {}
                for i, c in enumerate(args.levels):  # the round with the median rate, distinct questions each
                    mine = sets[i * args.api_repeats:(i + 1) * args.api_repeats]
                    runs = [asyncio.run(over_http(url, s, c)) for s in mine]
                    runs.sort(key=lambda v: v["req_per_s"])
                    api[r][c] = {**runs[len(runs) // 2], "rounds_req_per_s": [v["req_per_s"] for v in runs],
                                 "errors": sum(v["errors"] for v in runs)}
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(60)
        report["ask_throughput"] = {r: {str(c): {**v, "vs_torch": round(v["req_per_s"] / api["torch"][c]["req_per_s"], 2)}
                                        for c, v in levels.items()} for r, levels in api.items()}
        report["load"]["ask_throughput"].append(load())

    d = settings.model_dir
    report["model_files_mb"] = {str(p.relative_to(d)): round(p.stat().st_size / 1e6, 1)
                                for p in sorted([*d.glob("*.safetensors"), *d.glob("onnx/*.onnx"), *d.glob("onnx/*.bin")])}
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else _table(report))


def _table(report: dict) -> str:
    lines = []
    if "cold_start" in report:
        c = report["cold_start"]
        lines.append(f"cold `rag ask` (median of {report['repeats']}), bare `python -c 'import torch'` {c['import_torch_s']} s:")
        lines += [f"  {r:13} {v['rag_ask_s']:6.2f} s  = {v['vs_import_torch']:.2f} x import torch"
                  for r, v in c.items() if r != "import_torch_s"]
    if "query_encoding" in report:
        lines.append("query encoding (one question, vector + tokens):")
        lines += [f"  {r:13} p50 {v['p50_ms']:7.2f} ms  p95 {v['p95_ms']:7.2f} ms  p50 {v['p50_speedup_vs_torch']:.2f}x torch's"
                  for r, v in report["query_encoding"].items()]
    if "indexing" in report:
        i = report["indexing"]
        lines.append(f"`rag index` of {i['paragraphs']} ARCD paragraphs ({i['chunks']} chunks), with start-up; "
                     f"SentenceTransformer.encode of the same, model loaded: {i['sentence_transformers_encode_s']} s")
        lines += [f"  {r:13} {v['rag_index_s']:6.2f} s  {v['chunks_per_s']:6.1f} chunks/s  = {v['speed_vs_encode']:.2f}x encode's speed"
                  for r, v in i.items() if isinstance(v, dict)]
    if "ask_throughput" in report:
        lines.append("POST /ask throughput (rag serve, distinct questions):")
        for r, levels in report["ask_throughput"].items():
            lines.append(f"  {r:13} " + "  ".join(f"{c} clients {v['req_per_s']:6.2f} req/s ({v['vs_torch']:.2f}x torch, "
                                                  f"p50 {v['p50_ms']} ms, {v['errors']} errors; rounds "
                                                  f"{' / '.join(str(x) for x in v['rounds_req_per_s'])})"
                                                  for c, v in levels.items()))
    if "load" in report:
        lines.append("load average (1 min) before -> after each part: " + ", ".join(
            f"{k} {v[0]} -> {v[-1]}" for k, v in report["load"].items()))
    lines.append("model files: " + ", ".join(f"{n} {mb} MB" for n, mb in report["model_files_mb"].items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
