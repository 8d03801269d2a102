"""BM25 alone on the pooled dev set: the segmented store's postings (rag/store/local/lexical.py), bm25s (what the
index used before segments) and tantivy (PyPI tantivy 0.27.0, fed the project's own normalised, stemmed tokens
through its whitespace tokenizer), on recall@1 / recall@5 of the gold paragraph and on query latency.

Every side gets the same passages' tokens (rag.arabic.tokenize of each passage's embedded text, title included)
and the same question tokens. bm25s and the store use k1 = 1.5, b = 0.75; tantivy's BM25 is fixed at k1 = 1.2,
b = 0.75 and quantises passage lengths (fieldnorms) to a byte. Latency: one question at a time, one thread,
median and p95 over every question, each side's index already open. The pooled index is the eval cache's (the
first `rag eval` on ../shared/eval builds it), copied; one of the format before segments is migrated, not re-embedded).

    .venv/bin/python benchmarks/lexical.py [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.arabic import tokenize  # noqa: E402
from rag.chain import build_index  # noqa: E402
from rag.config import get_settings  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import load_questions  # noqa: E402
from rag.indexer import embedding_text  # noqa: E402
from rag.store import IndexStore  # noqa: E402

from benchmarks.index_changes import EVAL, POOLED, pooled_index  # noqa: E402


def timed(fn, queries) -> tuple[list, list[float]]:
    out, ms = [], []
    for q in queries:
        t0 = time.perf_counter()
        out.append(fn(q))
        ms.append((time.perf_counter() - t0) * 1000)
    return out, ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pooled-index", type=Path, default=None, help="an index of the pooled corpus (copied)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    settings = get_settings()
    embedder = Embedder(settings)
    work = tempfile.TemporaryDirectory()
    index_dir = Path(work.name) / "pooled"
    shutil.copytree(pooled_index(settings, embedder, args.pooled_index), index_dir,
                    ignore=shutil.ignore_patterns(".lock"))
    build_index(POOLED, settings.model_copy(update={"index_dir": index_dir}), embedder)  # migrates a copy
    store = IndexStore.open(index_dir)
    rows = store.live_rows()
    chunks = store.chunks(rows)
    docs = {d.id: d for d in store.documents()}
    passages = [tokenize(embedding_text(docs[c.doc_id], c, store.manifest.embed_title)[0]) for c in chunks]
    doc_of = dict(zip(rows, (c.doc_id for c in chunks)))
    questions = [q for name in ("arcd", "mlqa_ar_dev") for q in load_questions(EVAL / name / "questions.jsonl")]
    queries = [tokenize(q.question) for q in questions]

    import bm25s
    import tantivy

    bm25 = bm25s.BM25()
    bm25.index(passages, show_progress=False)

    def bm25s_top(tokens):
        ids = bm25.get_tokens_ids(tokens)
        if not ids:
            return []
        scores = bm25.get_scores_from_ids(ids)
        top = np.argpartition(-scores, 9)[:10]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [rows[i] for i in top if scores[i] > 0]

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", tokenizer_name="whitespace", index_option="freq")
    builder.add_unsigned_field("row", stored=True)
    schema = builder.build()
    tmp = tempfile.TemporaryDirectory()
    t_index = tantivy.Index(schema, path=tmp.name)
    writer = t_index.writer(heap_size=50_000_000, num_threads=1)
    for row, tokens in zip(rows, passages):
        writer.add_document(tantivy.Document(text=" ".join(tokens), row=row))
    writer.commit()
    writer.wait_merging_threads()
    t_index.reload()
    searcher = t_index.searcher()

    def tantivy_top(tokens):
        if not tokens:
            return []
        query = tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", t))
                                             for t in tokens])
        return [searcher.doc(address)["row"][0] for _, address in searcher.search(query, 10).hits]

    sides = {"store (segments)": lambda t: store.lexical_search(t, 10)[1], "bm25s": bm25s_top, "tantivy": tantivy_top}
    results = {"passages": len(rows), "questions": len(questions)}
    for name, fn in sides.items():
        fn(queries[0])  # warm
        ranked, ms = timed(fn, queries)
        r1 = r5 = 0
        for q, top in zip(questions, ranked):
            seen = list(dict.fromkeys(doc_of[r] for r in top))
            r1 += bool(seen[:1]) and seen[0] == q.context_id
            r5 += q.context_id in seen[:5]
        results[name] = {"recall@1": round(r1 / len(questions), 4), "recall@5": round(r5 / len(questions), 4),
                         "p50_ms": round(statistics.median(ms), 3),
                         "p95_ms": round(float(np.percentile(ms, 95)), 3)}
    print(json.dumps(results, indent=None if not args.json else 2, ensure_ascii=False))


if __name__ == "__main__":
    main()
