"""The million-passage corpus of benchmarks/scale.py: the pooled dev set's real passages plus synthetic distractors,
built once per parameters into ~/.cache/rag-news/scale/<key>/ and opened by memory map.

Rows 0..R-1 are the R real passages of the pooled dev index (every ARCD and MLQA paragraph and the bundled
articles, as `benchmarks/quality.py` indexes them: real text, real model vectors, sentence and token vectors).
Rows R..N-1 are distractors, made without the model:

- text: as many real sentences as a real passage has (its sentence count drawn from the real passages'), each
  drawn uniformly from the pool of the real passages' sentences, so BM25 sees real Arabic words with their real
  frequencies and passage lengths like the real ones (at 1M each real sentence is quoted by about 865
  distractors: the gold paragraph competes with passages holding its answer sentence, so absolute dev recall is
  far below the real index's, for the ANN and the exact search alike);
- passage vector: the token-weighted mean of its sentences' real vectors. That is what the model's own pooling
  gives: a passage vector is the mean of its token states, and each stored sentence vector is the mean of the
  sentence's token states in the same forward pass, so on the real passages the weighted mean of their sentence
  vectors has cosine 1.000 with the passage vector (checked on 400 of them when this was written). Sentences drawn
  from different articles average towards the corpus mean, though: such mixtures had a cosine of 0.805 +- 0.037
  with the dev questions against 0.753 +- 0.025 for real passages, so they would crowd every question's
  neighbourhood more than real passages do. Each mixture's deviation from the real passages' mean vector is
  therefore stretched by `spread` (the ratio of the real passages' mean distance to that mean over the mixtures',
  1.369 at 1M) before it is normalised; scale.py prints the questions' cosines with real and synthetic passages
  side by side (at 1M: 0.753 +- 0.025 and 0.767 +- 0.055: the mean matches, the spread is wider). A first version
  drew the vectors from a Gaussian fitted to the real vectors' mean and covariance: it matches their first two
  moments but fills all 384 dimensions, which real embeddings do not (an IVF at nprobe 32 / 1024 found 0.47 of its
  exact top 50, against 0.89 on the mixtures at 100k);
- what the second stage reads: each sentence's real sentence vector and its real token vectors (from the
  passage the sentence came from), re-based onto the distractor's text, so late interaction and the answerer
  run over real data for every candidate.

The lexical side is the store's own BM25 (rag/store/local/lexical.py, what `rag ask` serves with): one segment's
postings (sorted terms, CSR rows and term frequencies, passage lengths) built here with numpy, since
`Postings.build` wants the million token lists as Python lists, which would take several GB. `check_bm25` compares
its scores with bm25s's own index over the real rows. (A first version served bm25s over a score matrix in bm25s's
layout; corpora built then get their postings added on first open.)
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.arabic import tokenize
from rag.indexer import embedding_text
from rag.store.local.lexical import LexicalIndex, Postings
from rag.store.vectors import build_vector_index, open_vector_index
from rag.types import Chunk, Document, Span

GENERATOR_VERSION = 2  # 2: vectors from the sentences' (1: a fitted Gaussian)
SEED = 20261202
K1, B = 1.5, 0.75


@dataclass
class Material:
    """The real passages and the pool of their sentences (deduplicated across overlapping chunks)."""

    store: object  # the pooled dev IndexStore
    vectors: np.ndarray  # (R, d) real passage vectors
    real_tokens: list[list[str]]  # BM25 tokens of each real passage (title included, as the indexer makes them)
    sentence_texts: list[str]
    sentence_vectors: np.ndarray  # (S, d) float32
    sentence_token_rows: np.ndarray  # (S, 2) rows of `tokens` holding each sentence's tokens
    sentence_token_base: np.ndarray  # (S,) the sentence's start in its document (to re-base token spans)
    sentences_per_passage: np.ndarray  # (R,)
    tokens: np.ndarray  # (T, d) float16: the real passages' token vectors as the index's codec gives them back
    token_spans: np.ndarray  # (T, 2) their spans in their documents


def material(store, embed_title: bool) -> Material:
    texts, vecs, token_rows, bases, per_passage, real_tokens, seen = [], [], [], [], [], [], set()
    blocks, span_blocks, at = [], [], 0
    for row, chunk in store.all_chunks():
        doc = store.document(chunk.doc_id)
        real_tokens.append(tokenize(embedding_text(doc, chunk, embed_title)[0]))
        per_passage.append(len(chunk.sentences))
        codes, spans = store.stored_token_vectors(row)
        decoded = store.codec.decode(codes)  # unit length, as the codec scores them
        decoded /= np.maximum(np.linalg.norm(decoded, axis=1, keepdims=True), 1e-12)
        blocks.append(decoded.astype(np.float16))
        span_blocks.append(np.asarray(spans))
        a = at
        at += len(codes)
        for span, vector in zip(chunk.sentences, store.chunk_sentence_vectors(row)):
            if (chunk.doc_id, span.start) in seen:
                continue
            seen.add((chunk.doc_id, span.start))
            inside = np.flatnonzero((spans[:, 0] >= span.start) & (spans[:, 1] <= span.end))
            texts.append(doc.text[span.start:span.end])
            vecs.append(vector)
            token_rows.append((a + inside[0], a + inside[-1] + 1) if len(inside) else (a, a))
            bases.append(span.start)
    return Material(store, store.vectors(), real_tokens, texts, np.stack(vecs).astype(np.float32),
                    np.asarray(token_rows, np.int64), np.asarray(bases, np.int64), np.asarray(per_passage),
                    np.vstack(blocks), np.vstack(span_blocks).astype(np.int32))


def corpus_key(passages: int, store) -> str:
    return hashlib.sha256(repr((GENERATOR_VERSION, SEED, passages, store.version, len(store),
                                store.manifest.model_id)).encode()).hexdigest()[:16]


def sentence_weights(m: Material) -> np.ndarray:
    """Each pooled sentence's token count: a passage vector is its tokens' mean, so its sentences weigh by it."""
    return np.maximum(np.diff(m.sentence_token_rows, axis=1)[:, 0], 1).astype(np.float32)


def mixture_vectors(m: Material, dist_ptr: np.ndarray, dist_sent: np.ndarray, block: int = 100_000):
    """Each distractor's vector: the token-weighted mean of its sentences' real vectors, its deviation from the
    real passages' mean stretched by `spread` (see the module docstring), normalised; in blocks."""
    weights = sentence_weights(m)
    mean = m.vectors.mean(axis=0)
    spread = None
    for first in range(0, len(dist_ptr) - 1, block):
        last = min(first + block, len(dist_ptr) - 1)
        sids = dist_sent[dist_ptr[first]:dist_ptr[last]]
        x = np.add.reduceat(m.sentence_vectors[sids] * weights[sids, None], dist_ptr[first:last] - dist_ptr[first])
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        if spread is None:  # fixed by the first block: deterministic, and the same for every block
            spread = float(np.linalg.norm(m.vectors - mean, axis=1).mean() / np.linalg.norm(x - mean, axis=1).mean())
        x = mean + spread * (x - mean)
        yield (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), spread


def postings(doc_tokens: list[np.ndarray], sentence_ptr: np.ndarray, sentence_tok: np.ndarray,
             dist_ptr: np.ndarray, dist_sent: np.ndarray, terms: np.ndarray) -> Postings:
    """One segment's postings for the real passages (term id arrays, ids in the sorted order of `terms`) then the
    distractors (each the concatenation of its sentences' tokens): sorting (term, passage) keys gives the CSR."""
    real = len(doc_tokens)
    n = real + len(dist_ptr) - 1
    keys, counts, lengths = [], [], np.zeros(n, np.int64)
    for d, toks in enumerate(doc_tokens):
        lengths[d] = len(toks)
        k, c = np.unique(toks.astype(np.int64) * n + d, return_counts=True)
        keys.append(k), counts.append(c)
    sentence_len = np.diff(sentence_ptr)
    block = 100_000
    for first in range(0, len(dist_ptr) - 1, block):
        last = min(first + block, len(dist_ptr) - 1)
        sids = dist_sent[dist_ptr[first]:dist_ptr[last]]
        owner = np.repeat(np.arange(first, last) + real, np.diff(dist_ptr[first:last + 1]))
        per = sentence_len[sids]
        docs = np.repeat(owner, per)
        starts = np.repeat(sentence_ptr[sids] - np.concatenate([[0], np.cumsum(per)[:-1]]), per)
        toks = sentence_tok[starts + np.arange(len(starts))]
        lengths[real + first:real + last] = np.bincount(owner - real - first, weights=per, minlength=last - first)
        k, c = np.unique(toks.astype(np.int64) * n + docs, return_counts=True)
        keys.append(k), counts.append(c)
    keys, counts = np.concatenate(keys), np.concatenate(counts)
    order = np.argsort(keys, kind="stable")
    keys, tfs = keys[order], counts[order].astype(np.int32)
    del order, counts
    tok, rows = keys // n, (keys % n).astype(np.int32)
    del keys
    indptr = np.zeros(len(terms) + 1, np.int64)
    np.cumsum(np.bincount(tok, minlength=len(terms)), out=indptr[1:])
    return Postings(terms, indptr, rows, tfs, lengths.astype(np.int32))


def lexical_postings(m: Material, dist_ptr: np.ndarray, dist_sent: np.ndarray) -> Postings:
    """The corpus's postings: every real token list and pooled sentence tokenised, term ids in sorted order."""
    sentence_tokens = [tokenize(t) for t in m.sentence_texts]
    terms = np.array(sorted({t for toks in sentence_tokens + m.real_tokens for t in toks}), dtype=str)
    rank = {t: i for i, t in enumerate(terms.tolist())}
    ids = lambda toks: np.asarray([rank[t] for t in toks], np.int32)  # noqa: E731
    sentence_ids = [ids(t) for t in sentence_tokens]
    sentence_ptr = np.concatenate([[0], np.cumsum([len(s) for s in sentence_ids])]).astype(np.int64)
    sentence_tok = np.concatenate(sentence_ids) if sentence_ids else np.zeros(0, np.int32)
    return postings([ids(t) for t in m.real_tokens], sentence_ptr, sentence_tok, dist_ptr, dist_sent, terms)


def check_bm25(m: Material, query_tokens: list[list[str]]) -> float:
    """The largest difference between the store's BM25 over this module's postings and bm25s's own index, over
    the real passages alone, for the given queries (it should be float rounding)."""
    import bm25s

    reference = bm25s.BM25(k1=K1, b=B)
    reference.index(m.real_tokens, show_progress=False)
    ours = LexicalIndex([(lexical_postings(m, np.zeros(1, np.int64), np.zeros(0, np.int32)), None, 0)])
    worst = 0.0
    for toks in query_tokens:
        found = reference.get_tokens_ids(toks)
        if found:
            expected = reference.get_scores_from_ids(found)
            scores, rows = ours.search(toks, len(m.real_tokens))
            got = np.zeros(len(expected), np.float32)
            got[rows] = scores
            worst = max(worst, float(np.abs(expected - got).max()))
    return worst


def save_postings(p: Postings, directory: Path) -> None:
    """The postings as the store's format-3 files (Postings.open reads them memory-mapped); written to a temporary
    directory renamed into place, so an interrupted build leaves none (two processes adding them at once: the
    first rename wins, the files are the same)."""
    import os
    import shutil

    tmp = directory.with_name(f"{directory.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for name, array in p.arrays().items():
        np.save(tmp / f"{name}.npy", array, allow_pickle=False)
    try:
        tmp.rename(directory)
    except OSError:
        if not directory.is_dir():
            raise
        shutil.rmtree(tmp)


def build(passages: int, m: Material, directory: Path, log=print) -> dict:
    rng = np.random.default_rng(SEED)
    real, d = m.vectors.shape
    extra = passages - real
    if extra < 0:
        raise ValueError(f"--passages must be at least the {real} real passages")
    t0 = time.perf_counter()
    counts = rng.choice(m.sentences_per_passage, extra)
    dist_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    dist_sent = rng.integers(0, len(m.sentence_texts), int(dist_ptr[-1])).astype(np.int32)
    vectors = np.empty((passages, d), np.float32)
    vectors[:real] = m.vectors
    at, spread = real, 1.0
    for block, spread in mixture_vectors(m, dist_ptr, dist_sent):
        vectors[at:at + len(block)] = block
        at += len(block)
    t_vectors = time.perf_counter() - t0

    lexical = lexical_postings(m, dist_ptr, dist_sent)
    t_bm25 = time.perf_counter() - t0 - t_vectors

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dense").mkdir(exist_ok=True)
    kind = build_vector_index(vectors, directory / "dense")
    t_dense = time.perf_counter() - t0 - t_vectors - t_bm25
    np.save(directory / "exact.npy", vectors, allow_pickle=False)  # the exact side of the comparison
    save_postings(lexical, directory / "lexical")
    del lexical
    np.save(directory / "dist_ptr.npy", dist_ptr, allow_pickle=False)
    np.save(directory / "dist_sent.npy", dist_sent, allow_pickle=False)
    meta = {"passages": passages, "real": real, "sentences": len(m.sentence_texts), "dense_kind": kind,
            "spread": round(spread, 3),
            "seconds": {"vectors": round(t_vectors, 1), "bm25": round(t_bm25, 1), "dense_index": round(t_dense, 1),
                        "total": round(time.perf_counter() - t0, 1)}}
    (directory / "meta.json").write_text(json.dumps(meta))
    log(f"built {passages:,} passages in {meta['seconds']['total']} s: {meta['seconds']}")
    return meta


class ScaleStore:
    """The reader's API (rag/store/local/reader.py) over the built corpus, for rag.retrieval and rag.answer: rows
    below R are the real store's, the others are distractors assembled from the real sentences on demand."""

    parallel_search = True  # as the local store's reader

    def __init__(self, directory: Path, m: Material):
        self.material, self.real = m, len(m.vectors)
        self.meta = json.loads((directory / "meta.json").read_text())
        self.manifest = m.store.manifest
        self.dense = open_vector_index(self.meta["dense_kind"], directory / "dense")
        self.exact_vectors = np.load(directory / "exact.npy", mmap_mode="r")
        self.dist_ptr = np.load(directory / "dist_ptr.npy", mmap_mode="r")
        self.dist_sent = np.load(directory / "dist_sent.npy", mmap_mode="r")
        if not (directory / "lexical").is_dir():  # built by the first version (bm25s's score matrix)
            save_postings(lexical_postings(m, np.asarray(self.dist_ptr), np.asarray(self.dist_sent)),
                          directory / "lexical")
        self.lexical = LexicalIndex([(Postings.open(directory / "lexical"), None, 0)])
        self.exact: dict[bytes, tuple[np.ndarray, np.ndarray]] | None = None  # set: dense answers from exact results
        self.has_tokens = True
        self._docs: dict[str, Document] = {}

    def __len__(self) -> int:
        return self.meta["passages"]

    def warm(self) -> None:
        pass  # the score matrix is memory-mapped; the first question reads it

    # -- search ----------------------------------------------------------------------------------------------
    def dense_search(self, query: np.ndarray, k: int) -> tuple[list[float], list[int]]:
        if self.exact is not None:
            scores, rows = self.exact[np.asarray(query, np.float32).reshape(1, -1).tobytes()]
        else:
            scores, rows = self.dense.search(np.asarray(query, np.float32).ravel(), k)
        return np.asarray(scores[:k]).tolist(), np.asarray(rows[:k]).tolist()

    def lexical_search(self, tokens: list[str], k: int) -> tuple[list[float], list[int]]:
        return self.lexical.search(tokens, k)

    def idf(self, token: str) -> float:
        return self.lexical.idf(token)

    def idfs(self, tokens) -> dict[str, float]:
        return self.lexical.idfs(tokens)

    # -- passages --------------------------------------------------------------------------------------------
    def _sentences(self, row: int) -> np.ndarray:
        i = row - self.real
        return np.asarray(self.dist_sent[self.dist_ptr[i]:self.dist_ptr[i + 1]])

    def document(self, doc_id: str) -> Document | None:
        if not doc_id.startswith("synthetic-"):
            return self.material.store.document(doc_id)
        if doc_id not in self._docs:
            text = " ".join(self.material.sentence_texts[s] for s in self._sentences(int(doc_id[10:])))
            self._docs[doc_id] = Document(id=doc_id, title="", text=text)
        return self._docs[doc_id]

    def chunks(self, rows: list[int]) -> list[Chunk]:
        out = []
        for row in rows:
            if row < self.real:
                out.append(self.material.store.chunks([row])[0])
                continue
            doc = self.document(f"synthetic-{row}")
            spans, at = [], 0
            for s in self._sentences(row):
                spans.append(Span(at, at + len(self.material.sentence_texts[s])))
                at = spans[-1].end + 1
            out.append(Chunk(doc_id=doc.id, start=0, end=len(doc.text), text=doc.text, ordinal=0,
                             sentences=tuple(spans)))
        return out

    def chunk_sentence_vectors(self, row: int) -> np.ndarray:
        if row < self.real:
            return self.material.store.chunk_sentence_vectors(row)
        return self.material.sentence_vectors[self._sentences(row)]

    def token_similarities(self, row: int, query_tokens: np.ndarray):
        if row < self.real:
            return self.material.store.token_similarities(row, query_tokens)
        m, vectors, spans = self.material, [], []
        for s, span in zip(self._sentences(row), self.chunks([row])[0].sentences):
            a, b = m.sentence_token_rows[s]
            vectors.append(np.asarray(m.tokens[a:b], np.float32))
            spans.append(np.asarray(m.token_spans[a:b]) - m.sentence_token_base[s] + span.start)
        return (np.ascontiguousarray(query_tokens, np.float32) @ np.concatenate(vectors).T,
                np.concatenate(spans).astype(np.int32))


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int, block: int = 200_000):
    """The exact top `k` of each query over `vectors` (memory-mapped), a block at a time through faiss.knn."""
    import faiss

    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_r = np.zeros((len(queries), 0), np.int64)
    for at in range(0, len(vectors), block):
        s, r = faiss.knn(queries, np.ascontiguousarray(vectors[at:at + block]), k, metric=faiss.METRIC_INNER_PRODUCT)
        s, r = np.hstack([best_s, s]), np.hstack([best_r, r + at])
        top = np.argsort(-s, axis=1, kind="stable")[:, :k]
        best_s, best_r = np.take_along_axis(s, top, 1), np.take_along_axis(r, top, 1)
    return best_s, best_r
