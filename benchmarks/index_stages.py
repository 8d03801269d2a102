"""Where one `rag index` of N ARCD paragraphs spends its time: wall and CPU per stage, per thread.

Runs the real command in this process (`rag index CORPUS --index-dir TMP --runtime R`, through the CLI's own
entry point) with a timer wrapped around each stage: imports, the model session, reading/cleaning, chunking,
tokenising, forward passes, pooling/sentence/token vectors, the token codec's encode (and its training on a
first index), postings, writing, compaction. Stages nest (tokenising inside chunking's token counts; the codec
inside "stored"), so the table says which are inside which; each row gives calls, wall seconds and the CPU
seconds of the thread that ran it (the producer thread and the main thread share 2 cores: wall > CPU is
waiting or contention). Beside it, the interpreter's own start-up (`python -c pass`) and optionally the
same command in a fresh process (--subprocess), and the main thread's cProfile top (--profile N).

    .venv/bin/python benchmarks/index_stages.py [--runtime onnx-int8] [--paragraphs 400] [--profile 25]
                                                [--subprocess] [--json]
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import functools  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"

# (stage, thread) -> [calls, wall s, thread CPU s]; only the outermost call of a recursive stage counts.
TIMES: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
_active = threading.local()


def _thread() -> str:
    """main (the indexer and its model consumer), producer, or another named thread (the model preload)."""
    t = threading.current_thread()
    return "main" if t is threading.main_thread() else t.name.removeprefix("rag-index-")


def timed(stage: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        depth = getattr(_active, stage, 0)
        setattr(_active, stage, depth + 1)
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            setattr(_active, stage, depth)
            if depth == 0:
                row = TIMES[(stage, _thread())]
                row[0] += 1
                row[1] += time.perf_counter() - w0
                row[2] += time.thread_time() - c0
    return wrapper


def patch(owner, name: str, stage: str, kind: str = "") -> None:
    fn = owner.__dict__[name] if kind in ("classmethod", "staticmethod") else getattr(owner, name)
    if kind == "classmethod":
        setattr(owner, name, classmethod(timed(stage, fn.__func__)))
    elif kind == "staticmethod":
        setattr(owner, name, staticmethod(timed(stage, fn.__func__)))
    else:
        setattr(owner, name, timed(stage, fn))


# Stages, in the order a run meets them, with what they are inside of (for the table).
STAGES = [
    ("index_paths", "", "the whole `rag index` after imports and the CLI's set-up"),
    ("model session", "", "Embedder.runtime: ONNX session + tokenizer (or torch) loaded"),
    ("read+parse files", "index_paths", "load_paths"),
    ("codec training/cache", "write", "trained_codec: PQ centroids (trained once per model/runtime, cached)"),
    ("start index", "write", "start_index"),
    ("write", "index_paths", "LocalBackend.write: embed + commit"),
    ("embed_documents", "write", "chunk, tokenise, forward, vectors, codes"),
    ("clean", "embed_documents", "rag.documents.clean"),
    ("chunking", "embed_documents", "chunk_document (token counts inside)"),
    ("token counts", "chunking / length order", "Embedder.count_tokens"),
    ("length order", "embed_documents", "Embedder.length_order"),
    ("tokenise+pad", "embed_documents", "Embedder.prepare_passages"),
    ("forward", "embed_documents", "Embedder.forward_passages (the model)"),
    ("vectors", "embed_documents", "Embedder.late_vectors: pooling, sentence and token vectors"),
    ("stored", "embed_documents", "_stored: spans to document offsets + codec encode"),
    ("codec encode", "stored", "TokenCodec.encode"),
    ("first batch wait", "embed_documents", "the main thread waiting for the producer's first batch"),
    ("queue wait", "embed_documents", "the main thread waiting for the producer's next batch (after the first)"),
    ("concat", "write", "ChunkEmbeddings.concat"),
    ("segment+postings", "write", "segment_data: lexical tokens + Postings.build"),
    ("lexical tokens", "segment+postings", "rag.arabic.tokenize"),
    ("postings build", "segment+postings", "Postings.build"),
    ("commit", "write", "commit: segment files, FAISS, SQLite, fsync, manifest"),
    ("compaction", "index_paths", "maybe_compact"),
]


def instrument() -> None:
    import queue as queue_mod

    import rag.indexer as ix
    import rag.store.local.backend as local
    from rag.embeddings import Embedder
    from rag.store.local.lexical import Postings
    from rag.store.tokens.int8 import Int8Codec
    from rag.store.tokens.pq import PQCodec

    patch(ix, "index_paths", "index_paths")
    patch(ix, "load_paths", "read+parse files")
    patch(local, "trained_codec", "codec training/cache")
    patch(local, "start_index", "start index")
    patch(local.LocalBackend, "write", "write", "function")
    patch(ix, "embed_documents", "embed_documents")
    patch(ix, "clean", "clean")
    patch(ix, "chunk_document", "chunking")
    patch(ix, "_stored", "stored")
    patch(local, "segment_data", "segment+postings")
    patch(local, "tokenize", "lexical tokens")
    patch(local, "commit", "commit")
    patch(local, "maybe_compact", "compaction")
    patch(ix.ChunkEmbeddings, "concat", "concat", "classmethod")
    patch(Postings, "build", "postings build", "classmethod")
    patch(Embedder, "count_tokens", "token counts")
    patch(Embedder, "length_order", "length order")
    patch(Embedder, "prepare_passages", "tokenise+pad")
    patch(Embedder, "forward_passages", "forward")
    patch(Embedder, "late_vectors", "vectors")
    patch(PQCodec, "encode", "codec encode")
    patch(Int8Codec, "encode", "codec encode")
    runtime_prop = Embedder.__dict__["runtime"]
    Embedder.runtime = property(timed("model session", runtime_prop.fget))
    # the consumer's wait for the next batch: Queue.get on the main thread while embedding
    original_get = queue_mod.Queue.get

    def get(self, *a, **kw):
        if threading.current_thread() is threading.main_thread() and getattr(_active, "embed_documents", 0):
            first = not TIMES[("first batch wait", "main")][0]
            return timed("first batch wait" if first else "queue wait", original_get)(self, *a, **kw)
        return original_get(self, *a, **kw)

    queue_mod.Queue.get = get


def table(report: dict) -> str:
    lines = [f"`rag index` of {report['paragraphs']} ARCD paragraphs, runtime {report['runtime']}, "
             f"load {report['load'][0]} -> {report['load'][1]}",
             f"  interpreter start (python -c pass)      {report['interpreter_s']:7.2f} s",
             f"  imports (rag.cli + typer/rich, in-process) {report['imports_s']:6.2f} s",
             f"  CLI command, in-process                 {report['command_s']:7.2f} s  "
             f"(CPU {report['command_cpu_s']:.2f} s, all threads)",
             f"  total, in-process start-up + command    {report['total_s']:7.2f} s"]
    if "subprocess_s" in report:
        lines.append(f"  same command in a fresh process, wall  {report['subprocess_s']:7.2f} s")
    lines.append(f"  {'stage':22} {'inside':24} {'thread':9} {'calls':>6} {'wall s':>8} {'CPU s':>8}")
    for s in report["stages"]:
        lines.append(f"  {s['stage']:22} {s['inside']:24} {s['thread']:9} {s['calls']:6d} {s['wall_s']:8.2f} "
                     f"{s['cpu_s']:8.2f}")
    if report.get("profile"):
        lines += ["main thread, cProfile (by own time):", report["profile"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default="onnx-int8")
    ap.add_argument("--paragraphs", type=int, default=400)
    ap.add_argument("--profile", type=int, default=0, help="print the main thread's top N functions by own time")
    ap.add_argument("--subprocess", action="store_true", help="also time the same command in a fresh process")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load0 = f"{os.getloadavg()[0]:.1f}"
    work = Path(tempfile.mkdtemp(prefix="rag-stages-"))
    corpus = work / "arcd.jsonl"
    lines = (EVAL / "arcd" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[: args.paragraphs]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cmd = ["index", str(corpus), "--index-dir", str(work / "index"), "--runtime", args.runtime, "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
    interpreter = time.perf_counter() - t0
    report: dict = {"runtime": args.runtime, "paragraphs": args.paragraphs, "interpreter_s": round(interpreter, 3)}
    if args.subprocess:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rag.cli", *cmd[:3], str(work / "index-sub"), *cmd[4:]], check=True,
                       env=env, cwd=ROOT, capture_output=True)
        report["subprocess_s"] = round(time.perf_counter() - t0, 3)

    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    from rag.cli import app

    report["imports_s"] = round(time.perf_counter() - t0, 3)
    instrument()
    profiler = cProfile.Profile() if args.profile else None
    c0, t0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    try:
        app(cmd, standalone_mode=False)
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    finally:
        if profiler:
            profiler.disable()
    report["command_s"] = round(time.perf_counter() - t0, 3)
    report["command_cpu_s"] = round(time.process_time() - c0, 3)
    report["total_s"] = round(report["interpreter_s"] + report["imports_s"] + report["command_s"], 3)
    report["stages"] = [{"stage": s, "inside": inside, "thread": thread, "calls": int(v[0]), "wall_s": round(v[1], 3),
                         "cpu_s": round(v[2], 3), "what": what}
                        for s, inside, what in STAGES for (name, thread), v in sorted(TIMES.items())
                        if name == s]
    if profiler:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(args.profile)
        report["profile"] = "\n".join(buf.getvalue().splitlines()[6:])  # the header's blank lines and totals off
    report["load"] = [load0, f"{os.getloadavg()[0]:.1f}"]
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else table(report))


if __name__ == "__main__":
    main()
