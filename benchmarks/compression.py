"""What compressing the index's token (and sentence, dense) vectors costs on the pooled dev set (issue 13).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compression.py [--every N] [--variants NAME...] [--json PATH]

The pooled eval index (every ARCD and MLQA paragraph + the bundled articles, built and cached as
benchmarks/quality.py does) already holds every passage's int8 token vectors, so each variant transforms them in
memory (encode, then score through the codec) and re-runs the shipped pipeline, with no re-embedding: rows of the
table are variants, columns the bytes per passage they store, R@1 / R@5 of the gold paragraph, answer containment
(the shipped abstention counted as a miss, as `rag eval` does), the short answer's token F1, and the late
interaction's cost per question (ms: the question's tokens against the top-50 candidates' tokens through the
codec, median of 3 passes over 100 questions). First the bytes per passage the index holds today, by kind.

Trained codecs (PCA, PQ) are trained as the shipped one is: from the token vectors of the bundled articles
(rag/store/tokens/training.py), never the dev corpus; "pq48 (dev-trained)" shows what training on the corpus
itself would give. Reconstructions are scored at unit length (as PQCodec does): the raw products of a shorter
reconstruction shrink every late-interaction score, and the answer's weights and the abstention model read them
at the scale of exact cosines (first runs, raw products: sign384 containment 0.489, pca128 int8 0.633).

Measured (every 3rd answerable dev question, 638; 1,215 passages of 157.4 tokens and 3.53 sentences; shared
2-core machine at load 10-20, so the late ms column is not comparable between runs; benchmarks/compression.json):

    today, bytes per passage: token codes 60,453, sentence vectors 2,711, dense vectors 1,536, SQLite 1,315,
    token spans 1,268, BM25 641; total 67,923

    variant          B/passage  B/token    R@1    R@5  containment  short F1
    int8 (today)        67,923      384  0.754  0.945        0.723     0.262
    pq48 (shipped)      15,027       48  0.751  0.947        0.718     0.258
    pq32                12,508       32  0.745  0.942        0.707     0.253
    pca128 int8         27,621      128  0.743  0.944        0.713     0.255
    sign384             15,027       48  0.726  0.942        0.650     0.241
    --indexed: the eval index as `rag index` writes it with each codec
    int8 as indexed     67,923      384  0.754  0.945        0.723     0.262
    pq as indexed       15,351       48  0.755  0.945        0.715     0.257   (+ codec/, 393 KB once)

pq48 meets the 16 KB goal and R@1 / R@5 within 0.005; containment is 0.005-0.008 lower (3-5 of 638 questions)
and short F1 0.004 lower: the abstention and answer weights were fitted on exact cosines, not refitted here.

The other variants in VARIANTS (PCA 4-bit, PCA+sign, residual, pq24/64/96, pooling, int8 sentences, low-
precision dense vectors, dev-trained PQ) were not run before the deadline.

The figures above were measured on the store before segments. On the segmented store (the study swaps each
segment's arrays; bytes from the live manifest's files), same 638 questions, load 6-8:

    today, bytes per passage: token codes 60,453, sentence vectors 2,711, dense vectors 1,536, SQLite 1,315,
    token spans 1,268, BM25 postings 1,120 (the store's raw counts; bm25s held 641), manifest 1; total 68,403

    variant          B/passage  B/token    R@1    R@5  containment  short F1
    int8 (today)        68,403      384  0.757  0.945        0.723     0.262
    pq48                15,506       48  0.751  0.947        0.715     0.257
    pq as indexed       15,831       48  0.754  0.945        0.716     0.257   (codec parameters included)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import SETS, prime_cached  # noqa: E402

from rag.arabic import answer_contains  # noqa: E402
from rag.config import BUNDLED_ARTICLES, get_settings  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import load_questions, prepare, token_f1  # noqa: E402
from rag.retrieval import max_sim  # noqa: E402
from rag.store import read_manifest  # noqa: E402
from rag.store.tokens.int8 import Int8Codec  # noqa: E402
from rag.store.tokens.pq import PQCodec  # noqa: E402
from rag.store.tokens.training import training_tokens  # noqa: E402


# ---- study codecs: encode / decode / width, the shape of rag/store/tokens' TokenCodec --------------------------
class Decoded:
    """A codec scored by decoding its codes and taking the product with the question's tokens."""

    width = 0

    def similarities(self, query_tokens, codes):  # unit-length reconstructions, as PQCodec scores them
        decoded = self.decode(codes)
        decoded /= np.maximum(np.linalg.norm(decoded, axis=1, keepdims=True), 1e-9)
        return np.ascontiguousarray(query_tokens, np.float32) @ decoded.T


class PCA(Decoded):
    """Projection on the top `k` principal directions (of the training tokens), each kept at `bits` bits with
    one scale per direction (4 bits: two a byte); the question is projected the same way (the dropped part of a
    question token scores 0)."""

    def __init__(self, train, k, bits=8):
        self.mean = train.mean(axis=0)
        _, _, vt = np.linalg.svd(train - self.mean, full_matrices=False)
        self.basis = vt[:k].astype(np.float32)
        proj = (train - self.mean) @ self.basis.T
        self.levels = 2 ** (bits - 1) - 1
        self.scale = np.percentile(np.abs(proj), 99.9, axis=0) / self.levels
        self.bits = bits
        self.width = k * bits // 8

    def encode(self, x):
        proj = (x - self.mean) @ self.basis.T
        return np.clip(np.rint(proj / self.scale), -self.levels, self.levels).astype(np.int8)

    def decode(self, codes):
        return (codes * self.scale).astype(np.float32) @ self.basis + self.mean


class Sign(Decoded):
    """One bit a dimension (Vespa's binarised ColBERT), optionally after a PCA to `k` dimensions; decoded as
    +-1 / sqrt(k), a unit vector, times each dimension's mean magnitude."""

    def __init__(self, train, k=None):
        self.pca = PCA(train, k) if k else None
        x = self._project(train)
        self.magnitude = np.abs(x).mean(axis=0).astype(np.float32)
        self.width = x.shape[1] // 8

    def _project(self, x):
        return x if self.pca is None else (x - self.pca.mean) @ self.pca.basis.T

    def encode(self, x):
        return np.packbits(self._project(x) > 0, axis=1)

    def decode(self, codes):
        signs = np.unpackbits(codes, axis=1).astype(np.float32) * 2 - 1
        v = signs * self.magnitude
        return v @ self.pca.basis if self.pca is not None else v


class Residual(Decoded):
    """PLAID's codec in small: a token is its nearest of `k` centroids (2 bytes) plus its residual at `bits`
    bits a dimension (after a PCA to `dims` dimensions), the residual's buckets at the training residuals'
    quantiles, as ColBERTv2 sets them."""

    def __init__(self, train, k=1024, dims=128, bits=2):
        import faiss

        self.pca = PCA(train, dims)
        x = self._project(train)
        km = faiss.Kmeans(dims, k, niter=20, seed=1234, min_points_per_centroid=1)
        km.train(np.ascontiguousarray(x))
        self.centroids = km.centroids
        self.index = faiss.IndexFlatL2(dims)
        self.index.add(self.centroids)
        r = x - self.centroids[self._nearest(x)]
        n = 2 ** bits
        self.cuts = np.quantile(r, np.arange(1, n) / n, axis=0).T.copy()  # (dims, n - 1)
        self.values = np.quantile(r, (np.arange(n) + 0.5) / n, axis=0).T.copy()  # (dims, n)
        self.bits, self.width = bits, 2 + dims * bits // 8

    def _project(self, x):
        return np.ascontiguousarray((x - self.pca.mean) @ self.pca.basis.T, np.float32)

    def _nearest(self, x):
        return self.index.search(np.ascontiguousarray(x, np.float32), 1)[1][:, 0]

    def encode(self, x):
        x = self._project(x)
        c = self._nearest(x)
        r = x - self.centroids[c]
        buckets = np.stack([np.searchsorted(self.cuts[j], r[:, j]) for j in range(r.shape[1])], axis=1)
        return c.astype(np.int64) * 256 + buckets  # kept unpacked in memory; `width` counts the packed bytes

    def decode(self, codes):
        c, buckets = codes[:, 0] // 256, codes % 256
        r = self.values[np.arange(codes.shape[1]), buckets]
        return (self.centroids[c] + r) @ self.pca.basis + self.pca.mean


# ---- the index in memory ------------------------------------------------------------------------------------
def pool_adjacent(vectors, spans, rows, factor):
    """Token pooling (PyLate's pool_factor) over neighbours: every `factor` consecutive tokens of one passage
    (never mixing the title's tokens with the body's) become their mean, renormalised, with the union of their
    spans, which stays one contiguous run of characters, so sentence membership and answer offsets stay exact."""
    out_v, out_s, out_rows = [], [], [0]
    for a, b in zip(rows[:-1], rows[1:]):
        v, s = vectors[a:b], spans[a:b]
        title = s[:, 0] < 0
        for part_v, part_s in ((v[title], s[title]), (v[~title], s[~title])):
            for i in range(0, len(part_v), factor):
                group = part_v[i:i + factor].mean(axis=0)
                out_v.append(group / max(np.linalg.norm(group), 1e-9))
                out_s.append((part_s[i:i + factor, 0].min(), part_s[i:i + factor, 1].max()))
        out_rows.append(len(out_v))
    return (np.asarray(out_v, np.float32), np.asarray(out_s, np.int32), np.asarray(out_rows, np.int64))


@dataclass
class Variant:
    name: str
    make: object  # (train tokens) -> codec, or None for int8 as stored
    pool: int = 1
    sentences: str = "float16"  # float16 | int8 | tokens (the mean of the sentence's decoded token vectors)
    dense: str = "float32"  # float32 | float16 | int8 (faiss scalar quantizer)
    train: str = "bundled"


VARIANTS = [
    Variant("int8 (today)", None),
    Variant("pca192 int8", lambda t: PCA(t, 192)),
    Variant("pca128 int8", lambda t: PCA(t, 128)),
    Variant("pca64 int8", lambda t: PCA(t, 64)),
    Variant("pca128 4-bit", lambda t: PCA(t, 128, 4)),
    Variant("pca96 4-bit", lambda t: PCA(t, 96, 4)),
    Variant("sign384", lambda t: Sign(t)),
    Variant("pca128 sign", lambda t: Sign(t, 128)),
    Variant("residual 1024 + pca128 2-bit", lambda t: Residual(t)),
    Variant("pq96", lambda t: PQCodec.train(t, 96)),
    Variant("pq64", lambda t: PQCodec.train(t, 64)),
    Variant("pq48", lambda t: PQCodec.train(t, 48)),
    Variant("pq32", lambda t: PQCodec.train(t, 32)),
    Variant("pq24", lambda t: PQCodec.train(t, 24)),
    Variant("pq48 (dev-trained)", lambda t: PQCodec.train(t, 48), train="dev"),
    Variant("pool2 int8", None, pool=2),
    Variant("pool2 pq96", lambda t: PQCodec.train(t, 96), pool=2),
    Variant("pool3 int8", None, pool=3),
    Variant("pq48 + sentences int8", lambda t: PQCodec.train(t, 48), sentences="int8"),
    Variant("pq48 + sentences from tokens", lambda t: PQCodec.train(t, 48), sentences="tokens"),
    Variant("int8 + dense float16", None, dense="float16"),
    Variant("int8 + dense int8", None, dense="int8"),
]


KINDS = {"tokens": "token codes", "token_spans": "token spans", "token_rows": "token spans",
         "sentences": "sentence vectors (float16)", "vectors": "dense vectors (float32)",
         "vectors.faiss": "dense vectors (float32)",
         "ivf.faiss": "dense vectors (float32)", "vectors.npy": "dense vectors (float32)",
         "ivf.json": "dense vectors (float32)", "store.sqlite": "SQLite (text, chunk rows)"}


def index_bytes(index_dir: Path) -> dict[str, int]:
    """The live commit's bytes by kind: every file its manifest lists (a segment's arrays.bin by array; a
    format-3 segment's .npy files by name), and the manifest."""
    from rag.store.local.packed import array_sizes
    from rag.store.local.writer import referenced_files

    out = {"manifest": (index_dir / "manifest.json").stat().st_size}
    for name, info in referenced_files(read_manifest(index_dir)).items():
        base = name.rsplit("/", 1)[-1]
        if base == "arrays.bin":
            parts = array_sizes(index_dir / name)
            parts["arrays.bin header"] = info["size"] - sum(parts.values())  # and alignment
        else:
            parts = {base if base == "vectors.npy" else base.removesuffix(".npy"): info["size"]}
        for part, size in parts.items():
            kind = "codec parameters" if name.startswith("codec-") else "BM25 postings" if \
                part.startswith("lex_") else "tombstones" if part.startswith("del-") else KINDS.get(part, part)
            out[kind] = out.get(kind, 0) + size
    return out


def token_count(store) -> int:
    return sum(len(seg.tokens) for seg in store.segments if seg.tokens is not None)


class SwappedVectors:
    """A segment's dense vectors held by another FAISS index (fp16, int8), with the VectorIndex calls the
    reader makes (search, vector)."""

    def __init__(self, index):
        self.index = index

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, query, k):
        scores, rows = self.index.search(np.ascontiguousarray(query, np.float32).reshape(1, -1), min(k, len(self)))
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep].astype(np.int64)

    def vector(self, rows):
        return np.stack([self.index.reconstruct(int(r)) for r in rows])


class Study:
    """The pooled eval index's segments, their token codes, sentence and dense vectors swapped in memory per
    variant (the reader's segments keep `tokens`, `token_spans`, `token_rows`, `sentences` and `vectors`, the
    snapshot its `codec`), so the shipped pipeline reads each variant as if `rag index` had written it."""

    def __init__(self, assistant, questions):
        store = assistant.store
        self.assistant, self.store, self.questions = assistant, store, questions
        if store.manifest.token_codec != "int8":
            sys.exit(f"the study starts from int8 token vectors; {store.path} holds {store.manifest.token_codec}")
        self.original = [(seg.tokens, seg.token_spans, seg.token_rows, seg.sentences, seg.vectors)
                         for seg in store.segments]
        self.original_codec = store.codec
        self.exact = [np.asarray(seg.tokens, np.float32) / 127 for seg in store.segments]
        self.bytes = index_bytes(store.path)
        self.n = len(store)
        self.tokens = sum(len(x) for x in self.exact)
        self.sentences_per_passage = sum(len(seg.sentences) for seg in store.segments) / self.n
        every = np.concatenate(self.exact)
        self.train = {"bundled": training_tokens(assistant.embedder),
                      "dev": every[np.random.default_rng(0).permutation(len(every))[:20000]]}

    def apply(self, v: Variant) -> dict[str, float]:
        store = self.store
        codec = Int8Codec() if v.make is None else v.make(self.train[v.train])
        width = codec.width or store.manifest.dimension
        n_tokens = span_bytes = 0
        for seg, exact, (_, spans, rows, sentences, dense) in zip(store.segments, self.exact, self.original):
            vectors, spans, rows = exact, np.asarray(spans), np.asarray(rows)
            if v.pool > 1:
                vectors, spans, rows = pool_adjacent(vectors, spans, rows, v.pool)
            seg.tokens, seg.token_spans, seg.token_rows = codec.encode(vectors), spans, rows
            seg.vectors = self._dense(v.dense, dense)
            n_tokens += len(vectors)
            span_bytes += spans.nbytes + rows.nbytes
        store.codec = codec
        for seg, (_, _, _, sentences, _) in zip(store.segments, self.original):
            seg.sentences = self._sentences(v, codec, seg, sentences)
        store._chunk_cache.clear()
        b = dict(self.bytes)
        b["token codes"] = int(width * n_tokens)
        b["token spans"] = int(span_bytes)
        n_sentences = sum(len(o[3]) for o in self.original)
        b["sentence vectors (float16)"] = {"float16": b["sentence vectors (float16)"],
                                           "int8": n_sentences * store.manifest.dimension, "tokens": 0}[v.sentences]
        b["dense vectors (float32)"] = int(b["dense vectors (float32)"] * {"float32": 1, "float16": 0.5,
                                                                           "int8": 0.25}[v.dense])
        return {"bytes_per_passage": round(sum(b.values()) / self.n), "token_bytes_per_passage":
                round(b["token codes"] / self.n), "bytes_per_token": width, "tokens_per_passage":
                round(n_tokens / self.n, 1)}

    def restore(self) -> None:
        for seg, (tokens, spans, rows, sentences, dense) in zip(self.store.segments, self.original):
            seg.tokens, seg.token_spans, seg.token_rows = tokens, spans, rows
            seg.sentences, seg.vectors = sentences, dense
        self.store.codec = self.original_codec

    def _sentences(self, v, codec, seg, sentences):
        if v.sentences == "float16":
            return sentences
        if v.sentences == "int8":
            s = np.asarray(sentences, np.float32)
            return (np.clip(np.rint(s * 127), -127, 127) / 127).astype(np.float32)
        # the mean of each sentence's (decoded) tokens, as late chunking makes them from the token states
        out = np.asarray(sentences, np.float32).copy()
        live = np.arange(seg.rows) if seg.live is None else np.flatnonzero(seg.live)
        for row, _, _, _, _, spans_of_sentences, first in seg.chunk_rows(live.tolist()):
            codes, sp = seg.token_slice(row)
            decoded = codec.decode(codes)
            for i, s in enumerate(spans_of_sentences):
                inside = (sp[:, 1] > s.start) & (sp[:, 0] < s.end)
                if inside.any():
                    m = decoded[inside].mean(axis=0)
                    out[first + i] = m / np.linalg.norm(m)
        return out

    def _dense(self, kind, dense):
        import faiss

        if kind == "float32":
            return dense
        x = np.ascontiguousarray(dense.vector(np.arange(len(dense))), np.float32)
        index = faiss.IndexScalarQuantizer(x.shape[1], faiss.ScalarQuantizer.QT_fp16 if kind == "float16"
                                           else faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
        index.add(x)
        return SwappedVectors(index)

    def run(self) -> dict[str, float]:
        return evaluate(self.assistant, self.questions)


def evaluate(a, questions) -> dict[str, float]:
    """R@1, R@5, containment and short-answer F1 of the shipped pipeline over `a`'s index, and late ms."""
    k = a.settings.top_k
    ranks, contained, f1 = [], [], []
    for q in questions:
        hits = a.hybrid.search(q.question, 10)
        ranks.append(next((i for i, h in enumerate(hits, 1) if h.chunk.doc_id == q.context_id), None))
        ans = a.answerer.answer(q.question, a.encode_query(q.question), hits[:k])
        text = " ".join(c.quote for c in ans.citations)
        contained.append(not ans.abstained and any(answer_contains(text, g) for g in q.answers))
        short = "" if ans.abstained or ans.short_answer is None else ans.short_answer.text
        f1.append(token_f1(short, q.answers))
    n = len(questions)
    return {"R@1": round(sum(r == 1 for r in ranks) / n, 4),
            "R@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 4),
            "containment": round(sum(contained) / n, 4), "short_f1": round(sum(f1) / n, 4),
            "late_ms_top50": late_ms(a, questions)}


def late_ms(a, questions, first: int = 100) -> float:
    """Late interaction's cost per question: its tokens against the top-50 dense candidates' through the
    store's codec (median of 3 passes over the first 100 questions)."""
    store, work = a.store, []
    for q in questions[:first]:
        work.append((a.encode_query.tokens(q.question), a.hybrid.retrievers[0].rank(q.question, 50).rows))
    passes = []
    for _ in range(3):
        t0 = time.perf_counter()
        for q_tokens, rows in work:
            for row in rows:
                max_sim(q_tokens, similarities=store.token_similarities(row, q_tokens)[0])
        passes.append((time.perf_counter() - t0) * 1000 / len(work))
    return round(float(np.median(passes)), 2)


def print_row(row: dict) -> None:
    print(f"{row['variant']:34} {row['bytes_per_passage']:9} {row['token_bytes_per_passage']:6} "
          f"{row['bytes_per_token']:5} {row['R@1']:6.3f} {row['R@5']:6.3f} {row['containment']:7.3f} "
          f"{row['short_f1']:6.3f} {row['late_ms_top50']:7.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=1, help="every Nth dev question (1: all)")
    ap.add_argument("--variants", nargs="*", help="only these rows (by name)")
    ap.add_argument("--indexed", nargs="*", default=[], help="also these codecs' eval indexes as written by "
                    "`rag index` (each embedded once, then cached): e.g. --indexed int8 pq")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "compression.json")
    args = ap.parse_args()
    settings = get_settings().model_copy(update={"token_codec": "int8"})  # the study starts from int8 vectors
    embedder = Embedder(settings)
    pooled = [SETS["arcd"] / "corpus.jsonl", SETS["mlqa"] / "corpus.jsonl", BUNDLED_ARTICLES]
    pooled = [p.resolve() for p in pooled]  # the eval cache's key follows the paths' order: ../shared resolved
    assistant = prepare(pooled, settings, embedder)
    questions = [q for path in SETS.values() for q in load_questions(path / "questions.jsonl") if q.answerable]
    questions = questions[::args.every]
    assistant.encode_query.size = 10**6
    prime_cached(assistant, list(dict.fromkeys(q.question for q in questions)), settings.cache_dir / "eval")
    study = Study(assistant, questions)
    print(f"pooled eval index: {study.n} passages, {study.tokens / study.n:.1f} tokens and "
          f"{study.sentences_per_passage:.2f} sentences a passage; {len(questions)} dev questions; "
          f"{len(study.train['bundled'])} training tokens from the bundled articles", flush=True)
    print("bytes per passage today, by kind:")
    for kind, size in sorted(study.bytes.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:30} {size / study.n:9.0f}")
    print(f"  {'total':30} {sum(study.bytes.values()) / study.n:9.0f}")
    rows = []
    print(f"\n{'variant':34} {'B/passage':>9} {'tok B':>6} {'B/tok':>5} {'R@1':>6} {'R@5':>6} {'contain':>7} "
          f"{'F1':>6} {'late ms':>7}")
    for v in VARIANTS:
        if args.variants and v.name not in args.variants:
            continue
        row = {"variant": v.name, **study.apply(v), **study.run()}
        rows.append(row)
        print_row(row)
    study.restore()  # back to the index as stored
    for name in args.indexed:  # the index as `rag index` writes it with that codec (embedded on first use)
        a = prepare(pooled, settings.model_copy(update={"token_codec": name}), embedder)
        a.encode_query.size = 10**6
        a.encode_query._cache.update(assistant.encode_query._cache)
        sizes = index_bytes(a.store.path)
        codec = a.store.codec
        row = {"variant": f"{name} as indexed", "bytes_per_passage": round(sum(sizes.values()) / len(a.store)),
               "token_bytes_per_passage": round(sizes["token codes"] / len(a.store)),
               "bytes_per_token": codec.width or a.store.manifest.dimension,
               "tokens_per_passage": round(token_count(a.store) / len(a.store), 1), **evaluate(a, questions)}
        rows.append(row)
        print_row(row)
    args.json.write_text(json.dumps({"passages": study.n, "questions": len(questions), "every": args.every,
                                     "bytes_today": study.bytes, "rows": rows}, indent=2, ensure_ascii=False))
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
