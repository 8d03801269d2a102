"""Retrievers over an IndexStore: dense (FAISS), lexical (bm25s over normalised Arabic tokens), and their
reciprocal-rank fusion. Each returns ranked `Hit`s; `HybridRetriever` is what the chain uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.arabic import tokenize
from rag.store import IndexStore
from rag.types import Hit

QueryEncoder = Callable[[str], np.ndarray]  # question -> (d,) unit vector


@dataclass
class Ranked:
    """Rows of the index with scores, best first: the currency between retrievers before chunks are read."""

    rows: list[int]
    scores: list[float]


class DenseRetriever:
    name = "dense"

    def __init__(self, store: IndexStore, encode_query: QueryEncoder):
        self.store, self.encode_query = store, encode_query

    def rank(self, question: str, k: int) -> Ranked:
        if len(self.store) == 0:
            return Ranked([], [])
        q = self.encode_query(question).reshape(1, -1).astype(np.float32)
        scores, rows = self.store.faiss.search(q, min(k, len(self.store)))
        keep = rows[0] >= 0
        return Ranked(rows[0][keep].tolist(), scores[0][keep].tolist())


class BM25Retriever:
    name = "bm25"

    def __init__(self, store: IndexStore):
        self.store = store

    def rank(self, question: str, k: int) -> Ranked:
        bm25 = self.store.bm25
        if bm25 is None:
            return Ranked([], [])
        ids = bm25.get_tokens_ids(tokenize(question))
        if not ids:
            return Ranked([], [])
        scores = bm25.get_scores_from_ids(ids)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return Ranked(top.tolist(), scores[top].astype(float).tolist())


class HybridRetriever:
    """Reciprocal-rank fusion of dense and BM25 rankings: score = sum_r w_r / (rrf_k + rank_r)."""

    name = "hybrid"

    def __init__(self, store: IndexStore, encode_query: QueryEncoder, candidates: int = 50, rrf_k: int = 60,
                 weights: dict[str, float] | None = None):
        if candidates < 1:
            raise ValueError("candidates must be at least 1")
        self.store = store
        self.retrievers = [DenseRetriever(store, encode_query), BM25Retriever(store)]
        self.candidates, self.rrf_k = candidates, rrf_k
        self.weights = weights or {"dense": 1.0, "bm25": 1.0}

    def rank(self, question: str, k: int) -> tuple[Ranked, dict[int, dict[str, tuple[int, float]]]]:
        fused: dict[int, float] = {}
        evidence: dict[int, dict[str, tuple[int, float]]] = {}
        for retriever in self.retrievers:
            ranked = retriever.rank(question, max(k, self.candidates))
            w = self.weights.get(retriever.name, 1.0)
            for rank, (row, score) in enumerate(zip(ranked.rows, ranked.scores), start=1):
                fused[row] = fused.get(row, 0.0) + w / (self.rrf_k + rank)
                evidence.setdefault(row, {})[retriever.name] = (rank, score)
        order = sorted(fused, key=lambda r: -fused[r])[:k]
        return Ranked(order, [fused[r] for r in order]), evidence

    def search(self, question: str, k: int = 5) -> list[Hit]:
        ranked, evidence = self.rank(question, k)
        return to_hits(self.store, ranked, evidence)


def to_hits(store: IndexStore, ranked: Ranked, evidence: dict[int, dict[str, tuple[int, float]]] | None = None) -> list[Hit]:
    chunks = store.chunks(ranked.rows)
    hits = []
    for i, (row, chunk, score) in enumerate(zip(ranked.rows, chunks, ranked.scores), start=1):
        ev = (evidence or {}).get(row, {})
        hits.append(Hit(chunk=chunk, score=score, rank=i, row=row,
                        scores={name: s for name, (_, s) in ev.items()},
                        ranks={name: r for name, (r, _) in ev.items()}))
    return hits


def single_retriever_search(retriever, question: str, k: int) -> list[Hit]:
    """Hits from one retriever alone (for `rag eval` comparisons)."""
    ranked = retriever.rank(question, k)
    return to_hits(retriever.store, ranked, {r: {retriever.name: (i, s)} for i, (r, s) in
                                             enumerate(zip(ranked.rows, ranked.scores), start=1)})
