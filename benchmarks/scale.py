"""Dense search and `ask` at a million passages (issue 13): the pooled dev set's real passages among synthetic
distractors (how they are made: benchmarks/scale_corpus.py), the ANN index the size rule picks
(rag/store/vectors/), the store's own BM25 for the lexical side (rag/store/local/lexical.py), and the real query
encoder (the default runtime, ONNX), fusion, second stage (sentence vectors + late interaction over the top 20) and
extractive answer.

    .venv/bin/python benchmarks/scale.py                        # 1,000,000 passages
    .venv/bin/python benchmarks/scale.py --passages 100000      # quicker
    .venv/bin/python benchmarks/scale.py --passages 10000 100000 1000000 --json
    .venv/bin/python benchmarks/scale.py --threshold            # flat vs IVF per question, by segment size

Prints per size: build time, bytes per passage of the dense index on disk; then, over every pooled dev
question (ARCD + MLQA, answerable): ANN recall of the exact top 50 (and the time per question) at several nprobe,
the dev recall@1 / @5 of the whole pipeline with the ANN and with an exact scan over the same passages (and
A@5: a top-5 passage holds the gold answer, which a distractor quoting the gold sentence also does); then, in
a fresh serving process (memory-mapped index, the encoder loaded, warmed up), `ask` p50 / p95 over questions it
has not seen (encoding included), against the query encoding plus a bare ANN search in the same run (a ratio),
and the process's RSS (now and peak).

Everything runs on <= 2 threads (faiss's and onnxruntime's); built corpora are cached under
~/.cache/rag-news/scale/<key>/ (the 1M build took 22 minutes on the shared machine at a load average of 15-20,
3.7 GB of disk).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from rag import limit_numpy_blas  # noqa: E402

limit_numpy_blas()  # numpy loaded first here: its OpenBLAS threads would fight onnxruntime's and faiss's
from rag.arabic import answer_contains, tokenize  # noqa: E402
from rag.config import BUNDLED_ARTICLES, get_settings  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import load_questions, prepare  # noqa: E402
from scale_corpus import ScaleStore, build, check_bm25, corpus_key, exact_top, material  # noqa: E402

# ../shared/eval beside the checkout, or beside a parent of it (a git worktree lives deeper than the checkout)
EVAL = next((p / "shared" / "eval" for p in ROOT.parents if (p / "shared" / "eval").is_dir()),
            ROOT.parent / "shared" / "eval")
SETS = {"arcd": EVAL / "arcd", "mlqa": EVAL / "mlqa_ar_dev"}
POOLED = [SETS["arcd"] / "corpus.jsonl", SETS["mlqa"] / "corpus.jsonl", BUNDLED_ARTICLES]
NPROBES = (32, 64, 128, 256)


def rss_mb() -> dict[str, float]:
    status = Path("/proc/self/status").read_text()
    field = lambda name: int(status.split(name + ":")[1].split()[0]) / 1024  # noqa: E731
    return {"rss_mb": round(field("VmRSS")), "peak_rss_mb": round(field("VmHWM"))}


def setup(passages: int, log=print):
    """The pooled dev assistant (cached index), the real material and the corpus of `passages` (cached)."""
    import faiss

    faiss.omp_set_num_threads(2)
    settings = get_settings()
    embedder = Embedder(settings)
    pooled = prepare(POOLED, settings, embedder)
    m = material(pooled.store, settings.embed_title)
    directory = settings.cache_dir / "scale" / corpus_key(passages, pooled.store)
    meta = None
    if not (directory / "meta.json").is_file():
        log(f"building {passages:,} passages into {directory} ...")
        meta = build(passages, m, directory, log=log)
    return settings, embedder, pooled, m, directory, meta


def questions() -> list:
    return [q for name in SETS for q in load_questions(SETS[name] / "questions.jsonl") if q.answerable]


def disk_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def measure(passages: int, dev_every: int = 1, nprobes=NPROBES, log=print) -> dict:
    from quality import prime_cached  # the question encodings, cached per machine

    settings, embedder, pooled, m, directory, _ = setup(passages, log)
    store = ScaleStore(directory, m)
    qs = questions()
    texts = [q.question for q in qs]
    pooled.encode_query.size = len(texts) + 10
    prime_cached(pooled, texts, settings.cache_dir / "eval")
    qvec = np.stack([pooled.encode_query(t) for t in texts]).astype(np.float32)
    t0 = time.perf_counter()
    exact_s, exact_r = exact_top(store.exact_vectors, qvec, 50)
    exact_ms = (time.perf_counter() - t0) * 1000 / len(qs)
    out = {"passages": passages, "dense_kind": store.meta["dense_kind"], "build_s": store.meta["seconds"],
           "dense_bytes_per_passage": round(disk_bytes(directory / "dense") / passages),
           "lexical_bytes_per_passage": round(disk_bytes(directory / "lexical") / passages),
           "exact_batch_ms_per_question": round(exact_ms, 2), "questions": len(qs),
           "bm25_vs_bm25s_max_diff": check_bm25(m, [tokenize(t) for t in texts[:200]])}
    # Do the distractors look like real passages to a question? Its cosines with each, side by side.
    real = qvec @ m.vectors.T
    synthetic = qvec @ np.asarray(store.exact_vectors[len(m.vectors):len(m.vectors) + 20000]).T
    out["question_cosines"] = {name: {"mean": round(float(c.mean()), 3), "std": round(float(c.std()), 3),
                                      "p99": round(float(np.percentile(c, 99)), 3)}
                               for name, c in (("real", real), ("synthetic", synthetic))}
    if store.meta["dense_kind"] != "flat":
        out["ann"] = []
        for nprobe in nprobes:
            times, recalls = [], []
            for q, truth in zip(qvec, exact_r):
                t = time.perf_counter()
                _, rows = store.dense.search(q, 50, nprobe=nprobe)
                times.append(time.perf_counter() - t)
                recalls.append(len(set(rows.tolist()) & set(truth.tolist())) / 50)
            out["ann"].append({"nprobe": nprobe, "recall_at_50": round(float(np.mean(recalls)), 4),
                               "min_recall": round(float(np.min(recalls)), 2),
                               "ms_p50": round(float(np.median(times)) * 1000, 2),
                               "ms_p95": round(float(np.percentile(times, 95)) * 1000, 2)})
            log(f"  nprobe {nprobe}: {out['ann'][-1]}")
        out["ann_default_nprobe"] = store.dense.nprobe
    pick = slice(None, None, dev_every)
    out["dev"] = dev_recall(settings, embedder, pooled, store, qs[pick], qvec[pick], exact_s[pick], exact_r[pick],
                            log)
    return out


def dev_recall(settings, embedder, pooled, store, qs, qvec, exact_s, exact_r, log=print) -> dict:
    """R@1 / R@5 of the gold paragraph through the whole retrieval pipeline, dense side by ANN, then exact."""
    from rag.chain import Assistant

    a = Assistant(settings, embedder=embedder, store=store)
    a.encode_query._cache.update(pooled.encode_query._cache)
    a.encode_query.size = len(qs) + 10
    out = {}
    for mode in ("ann", "exact"):
        store.exact = None if mode == "ann" else \
            {v.tobytes(): (s, r) for v, s, r in zip(qvec, exact_s, exact_r)}
        ranks, answered = [], 0
        for q in qs:
            hits = a.hybrid.search(q.question, 5)
            docs = [h.chunk.doc_id for h in hits]
            ranks.append(docs.index(q.context_id) + 1 if q.context_id in docs else None)
            answered += any(answer_contains(h.chunk.text, gold) for h in hits for gold in q.answers)
        log(f"  dev ({mode}): done")
        out[mode] = {"questions": len(ranks), "r1": round(sum(r == 1 for r in ranks) / len(ranks), 4),
                     "r5": round(sum(r is not None for r in ranks) / len(ranks), 4),
                     "a5": round(answered / len(ranks), 4)}
    store.exact = None
    return out


def serve(passages: int, count: int) -> dict:
    """In this process, as a server would: open the corpus, load the encoder, warm up; then `ask` questions it
    has not encoded before, one at a time."""
    from rag.chain import Assistant

    settings, embedder, pooled, m, directory, _ = setup(passages, log=lambda *_: None)
    store = ScaleStore(directory, m)
    a = Assistant(settings, embedder=embedder, store=store)
    qs = questions()
    picked = [qs[i].question for i in np.random.default_rng(7).choice(len(qs), count + 20, replace=False)]
    for q in picked[:20]:  # warm-up: page in what every question touches
        a.ask(q)
    ask, encode, bare = [], [], []
    for q in picked[20:]:
        t = time.perf_counter()
        a.ask(q)
        ask.append(time.perf_counter() - t)
        t = time.perf_counter()
        v = embedder.encode_queries_with_tokens([q])[0][0]  # the embedder itself keeps no cache
        encode.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.dense.search(v, settings.candidates)
        bare.append(time.perf_counter() - t)
    p = lambda xs, n: round(float(np.percentile(xs, n)) * 1000, 1)  # noqa: E731
    base = [e + b for e, b in zip(encode, bare)]
    return {"questions": count, "ask_p50_ms": p(ask, 50), "ask_p95_ms": p(ask, 95),
            "encode_p50_ms": p(encode, 50), "bare_ann_p50_ms": p(bare, 50), "bare_ann_p95_ms": p(bare, 95),
            "encode_plus_ann_p50_ms": p(base, 50), "encode_plus_ann_p95_ms": p(base, 95),
            "ratio_p50": round(float(np.median(ask) / np.median(base)), 2),
            "ratio_p95": round(float(np.percentile(ask, 95) / np.percentile(base, 95)), 2), **rss_mb()}


def threshold(passages: int, sizes=(10_000, 20_000, 50_000, 100_000), repeats: int = 200) -> list[dict]:
    """Per question, one thread: the flat scan against the IVF (default nprobe, exact re-scoring), by size, over
    the first rows of the built corpus of `passages`."""
    import tempfile

    import faiss

    from rag.store.vectors.flat import FlatIndex
    from rag.store.vectors.ivf import IVFIndex

    faiss.omp_set_num_threads(1)
    settings, embedder, pooled, m, directory, _ = setup(passages)
    vectors = np.load(directory / "exact.npy", mmap_mode="r")
    qvec = np.asarray(vectors[:repeats])  # real passage vectors as questions
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            FlatIndex.build(np.asarray(vectors[:n]), Path(tmp))
            IVFIndex.build(np.asarray(vectors[:n]), Path(tmp))
            timed = {}
            for index in (FlatIndex.open(Path(tmp)), IVFIndex.open(Path(tmp))):
                for q in qvec[:20]:
                    index.search(q, 50)
                t = time.perf_counter()
                for q in qvec:
                    index.search(q, 50)
                timed[index.kind] = round((time.perf_counter() - t) * 1000 / len(qvec), 3)
        rows.append({"passages": n, **{f"{k}_ms": v for k, v in timed.items()}})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--latency-questions", type=int, default=200)
    ap.add_argument("--nprobes", type=int, nargs="+", default=list(NPROBES), help="ANN recall at these nprobe")
    ap.add_argument("--dev-every", type=int, default=1, help="dev recall over every n-th question only")
    ap.add_argument("--threshold", action="store_true", help="flat vs IVF search time by segment size")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the serving process of one size
    args = ap.parse_args()
    if args.serve:
        print(json.dumps(serve(args.serve, args.latency_questions)))
        return
    if args.threshold:
        rows = threshold(args.passages[0])
        print(json.dumps(rows) if args.json else "\n".join(map(str, rows)))
        return
    log = (lambda *_: None) if args.json else print
    results = []
    for n in args.passages:
        r = measure(n, args.dev_every, args.nprobes, log)
        child = subprocess.run([sys.executable, __file__, "--serve", str(n), "--latency-questions",
                                str(args.latency_questions)], capture_output=True, text=True, check=True)
        r["serving"] = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(r)
        log(json.dumps(r, indent=1, ensure_ascii=False))
    if args.json:
        print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
