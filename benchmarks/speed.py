"""Speed, as ratios against baselines measured in the same run (medians of repeated runs; the machine is shared).

1. Indexing throughput: `rag index` (load, clean, chunk, embed with late-chunked sentence vectors, write the
   index atomically) against plain `SentenceTransformer.encode` of the same chunk texts. Goal >= 0.9.
2. `rag ask` latency in-process (retrieval + fusion + answer + chain) against embedding the query and a bare
   FAISS search alone. Goal <= 1.5 at p50.

    .venv/bin/python benchmarks/speed.py [--repeats 3] [--paragraphs 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.chain import Assistant, build_index  # noqa: E402
from rag.chunking import ChunkingConfig, chunk_document  # noqa: E402
from rag.config import get_settings  # noqa: E402
from rag.documents import clean, load_paths  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.indexer import embedding_text  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--paragraphs", type=int, default=300, help="ARCD paragraphs to index")
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    settings = get_settings()
    embedder = Embedder(settings)
    work = Path(tempfile.mkdtemp(prefix="rag-speed-"))
    corpus = work / "corpus.jsonl"
    lines = (EVAL / "arcd" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[: args.paragraphs]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # The exact texts the indexer embeds, for the baseline.
    docs = {d.id: d for d in load_paths([corpus]).documents}
    cfg = ChunkingConfig(settings.chunk_tokens, settings.chunk_overlap_tokens)
    chunks = [c for d in docs.values()
              for c in chunk_document(d, clean(d), embedder.count_tokens, cfg, skip_title=settings.embed_title)]
    texts = [embedding_text(docs[c.doc_id], c, settings.embed_title)[0] for c in chunks]
    model = embedder.model  # loaded once, shared by both sides
    model.encode(texts[:8], prompt_name="passage")  # warm-up

    base_t, ours_t = [], []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        model.encode(texts, prompt_name="passage", batch_size=settings.batch_size, normalize_embeddings=True)
        base_t.append(time.perf_counter() - t0)
        s = settings.model_copy(update={"index_dir": work / f"index-{i}"})
        t0 = time.perf_counter()
        build_index([corpus], s, embedder)
        ours_t.append(time.perf_counter() - t0)
    base, ours = statistics.median(base_t), statistics.median(ours_t)
    indexing = {"chunks": len(chunks), "baseline_chunks_per_s": round(len(chunks) / base, 2),
                "rag_index_chunks_per_s": round(len(chunks) / ours, 2), "throughput_ratio": round(base / ours, 3)}

    # Query latency on the index just built.
    assistant = Assistant(settings.model_copy(update={"index_dir": work / "index-0"}), embedder=embedder)
    questions = [json.loads(l)["question"] for l in
                 (EVAL / "arcd" / "questions.jsonl").read_text(encoding="utf-8").splitlines()[: args.questions]]
    faiss_index = assistant.store.faiss
    assistant.ask(questions[0])
    base_ms, ours_ms = [], []
    for _ in range(args.repeats):
        for q in questions:
            t0 = time.perf_counter()
            v = embedder.encode_queries([q])
            faiss_index.search(v.astype(np.float32), settings.top_k)
            base_ms.append((time.perf_counter() - t0) * 1000)
            assistant.encode_query._cache.clear()  # no cached vectors: each ask embeds its query
            t0 = time.perf_counter()
            assistant.ask(q)
            ours_ms.append((time.perf_counter() - t0) * 1000)
    p = lambda xs, q: float(np.percentile(xs, q))  # noqa: E731
    latency = {"questions": len(questions), "repeats": args.repeats,
               "baseline_p50_ms": round(p(base_ms, 50), 2), "ask_p50_ms": round(p(ours_ms, 50), 2),
               "baseline_p95_ms": round(p(base_ms, 95), 2), "ask_p95_ms": round(p(ours_ms, 95), 2),
               "p50_ratio": round(p(ours_ms, 50) / p(base_ms, 50), 3)}
    report = {"indexing": indexing, "ask_latency": latency}
    print(json.dumps(report, indent=2) if args.json else
          f"indexing: {indexing}\nask latency: {latency}")


if __name__ == "__main__":
    main()
