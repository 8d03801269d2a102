"""The Milvus backend against the local index, on the same passages (issue 15's figures).

The pooled dev corpus's cached local index (`rag eval`'s, rag/evaluate.py) is copied into Milvus Lite as it is
(`MilvusBackend.copy_from`: the same passages, vectors and token codes, nothing re-embedded), so what differs is
the store alone: Milvus's dense search and its BM25 function against the local FAISS and postings, and the late
data read back from Milvus's fields. Then, on the same dev questions:

- quality: hybrid recall@1 / @5 and containment of `ask`, local and Milvus side by side (goal: within 0.01);
- latency: `ask` p50 / p95 per store, the questions asked once each on both in alternating order (each assistant
  encodes its questions itself), and the ratio Milvus / local.

    .venv/bin/python benchmarks/milvus.py [--limit 300] [--latency 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.chain import Assistant  # noqa: E402
from rag.config import BUNDLED_ARTICLES, get_settings  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import evaluate_set, load_questions, prepare  # noqa: E402
from rag.store.milvus import MilvusBackend  # noqa: E402

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
SETS = {"arcd": EVAL / "arcd", "mlqa": EVAL / "mlqa_ar_dev"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def late_data_cost(milvus: Assistant, embedder, batches: int = 5) -> dict:
    """The second stage's late-interaction data for 20 candidates: read from Milvus's fields (what the store
    does) against recomputed by a forward pass over the 20 passages (what it would do without them)."""
    from rag.store.milvus.reader import HEAVY

    store = milvus.store
    rows = [r for r, _ in store.all_chunks()][: 20 * batches]
    texts = [c.text for c in store.chunks(rows)]
    fetch, forward = [], []
    for i in range(batches):
        part = slice(20 * i, 20 * (i + 1))
        t0 = time.perf_counter()
        store.client.get(store.names["passages"], ids=rows[part], output_fields=HEAVY)
        fetch.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        embedder.forward_passages(embedder.prepare_passages(texts[part]))
        forward.append((time.perf_counter() - t0) * 1000)
    return {"fetch_ms": round(statistics.median(fetch), 1), "recompute_ms": round(statistics.median(forward), 1),
            "ratio": round(statistics.median(forward) / statistics.median(fetch), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=300, help="dev questions per set for the quality rows")
    ap.add_argument("--latency", type=int, default=200, help="questions timed on each store")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    settings = get_settings()
    embedder = Embedder(settings)
    t0 = time.perf_counter()
    local = prepare([SETS["arcd"] / "corpus.jsonl", SETS["mlqa"] / "corpus.jsonl", BUNDLED_ARTICLES], settings,
                    embedder)
    print(f"local pooled index: {len(local.store)} passages ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    where = Path(tempfile.mkdtemp(prefix="rag-milvus-bench-"))
    backend = MilvusBackend(str(where / "milvus.db"), "bench")
    t0 = time.perf_counter()
    backend.copy_from(local.store, embed_title=settings.embed_title)
    copy_s = time.perf_counter() - t0
    milvus = Assistant(settings.model_copy(update={"store": "milvus", "milvus_uri": str(where / "milvus.db"),
                                                   "milvus_collection": "bench"}), embedder=embedder)
    print(f"copied into Milvus Lite: {len(milvus.store)} passages in {copy_s:.1f} s", file=sys.stderr)

    questions = [q for path in SETS.values() for q in load_questions(path / "questions.jsonl")[: args.limit]]
    rows = {}
    for name, assistant in (("local", local), ("milvus", milvus)):
        t0 = time.perf_counter()
        r = evaluate_set(assistant, "pooled", questions, retrievers=("hybrid", "dense", "bm25"))
        rows[name] = {"R@1": r.retrieval["hybrid"]["recall@1"], "R@5": r.retrieval["hybrid"]["recall@5"],
                      "dense R@5": r.retrieval["dense"]["recall@5"], "bm25 R@5": r.retrieval["bm25"]["recall@5"],
                      "containment": r.answer["containment"], "answered": r.answer["answered"],
                      "seconds": round(time.perf_counter() - t0, 1)}
        print(f"quality {name}: {rows[name]}", file=sys.stderr)

    late = late_data_cost(milvus, embedder)
    print(f"late data for 20 candidates: {late}", file=sys.stderr)

    timed = list(dict.fromkeys(q.question for q in questions))[: args.latency]
    times: dict[str, list[float]] = {"local": [], "milvus": []}
    for i, q in enumerate(timed):
        order = (("local", local), ("milvus", milvus)) if i % 2 == 0 else (("milvus", milvus), ("local", local))
        for name, assistant in order:
            t0 = time.perf_counter()
            assistant.ask(q)
            times[name].append((time.perf_counter() - t0) * 1000)
    latency = {name: {"p50_ms": round(statistics.median(t), 1), "p95_ms": round(percentile(t, 0.95), 1)}
               for name, t in times.items()}
    ratio = {k: round(latency["milvus"][k] / latency["local"][k], 2) for k in ("p50_ms", "p95_ms")}
    result = {"passages": len(local.store), "questions": len(questions), "copy_seconds": round(copy_s, 1),
              "quality": rows, "delta": {k: round(rows["milvus"][k] - rows["local"][k], 4)
                                         for k in ("R@1", "R@5", "containment")},
              "latency": latency, "latency_ratio_milvus_over_local": ratio, "timed_questions": len(timed),
              "late_data_20_candidates": late}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['passages']} passages, {result['questions']} dev questions (ARCD + MLQA, first {args.limit} "
          f"of each)")
    print(f"{'store':8} {'R@1':>6} {'R@5':>6} {'dense@5':>8} {'bm25@5':>7} {'contain':>8} {'answered':>8} "
          f"{'p50 ms':>7} {'p95 ms':>7}")
    for name, r in rows.items():
        print(f"{name:8} {r['R@1']:6.3f} {r['R@5']:6.3f} {r['dense R@5']:8.3f} {r['bm25 R@5']:7.3f} "
              f"{r['containment']:8.3f} {r['answered']:8.3f} {latency[name]['p50_ms']:7.1f} "
              f"{latency[name]['p95_ms']:7.1f}")
    d = result["delta"]
    print(f"milvus - local: R@1 {d['R@1']:+.4f}, R@5 {d['R@5']:+.4f}, containment {d['containment']:+.4f}; "
          f"latency milvus / local: p50 {ratio['p50_ms']}x, p95 {ratio['p95_ms']}x ({len(timed)} questions)")
    print(f"late data for 20 candidates: read from Milvus {late['fetch_ms']} ms, recomputed by a forward pass "
          f"{late['recompute_ms']} ms ({late['ratio']}x)")


if __name__ == "__main__":
    main()
