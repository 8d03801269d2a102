"""Synthetic segments for the store's tests: real files, real FAISS and SQLite, vectors and tokens made with numpy
(the store never looks at what they mean), lexical tokens from a small vocabulary with a Zipf-like skew."""

from __future__ import annotations

import numpy as np

from rag.store import Manifest, SegmentData
from rag.store.local.lexical import Postings
from rag.store.tokens.int8 import Int8Codec
from rag.types import Chunk, Document, Span

DIM = 16
WORDS = [f"w{i}" for i in range(300)]


def settings(model_id: str = "test-model", dim: int = DIM) -> Manifest:
    return Manifest(model_id=model_id, dimension=dim, chunk_tokens=256, chunk_overlap_tokens=48, embed_title=True,
                    tokenizer="arabic-v2", stemmer="stem-v1")


def passage_tokens(rng: np.random.Generator, n: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.3, size=n) - 1, len(WORDS) - 1)
    return [WORDS[r] for r in ranks]


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_docs(ids: list[str], seed: int = 0, passages: int = 2, dim: int = DIM, tokens_per_passage: int = 5,
              version: str = "") -> tuple[SegmentData, list[list[str]]]:
    """Documents `ids`, each `passages` chunks of one sentence; returns the segment and its lexical tokens."""
    rng = np.random.default_rng(abs(hash((tuple(ids), seed, version))) % 2**32)
    documents, chunks, lexical = [], [], []
    for doc_id in ids:
        words = [passage_tokens(rng, 12) for _ in range(passages)]
        pieces = [" ".join(w) + "." for w in words]
        text = " ".join(pieces) + version
        doc = Document(id=doc_id, text=text, title=f"title {doc_id}", content_hash=f"h-{doc_id}-{version}")
        documents.append(doc)
        at = 0
        for ordinal, (piece, w) in enumerate(zip(pieces, words)):
            chunks.append(Chunk(doc_id, at, at + len(piece), piece, ordinal, (Span(at, at + len(piece)),)))
            lexical.append(w)
            at += len(piece) + 1
    n = len(chunks)
    codec = Int8Codec()
    counts = [tokens_per_passage] * n
    tokens = [codec.encode(unit(rng, c, dim)) for c in counts]
    spans = np.zeros((sum(counts), 2), np.int32)
    data = SegmentData(documents=documents, chunks=chunks, vectors=unit(rng, n, dim),
                       sentence_vectors=unit(rng, n, dim).astype(np.float16), postings=Postings.build(lexical),
                       tokens=tokens, token_spans=spans,
                       token_rows=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    return data, lexical


def state(store) -> dict[str, str]:
    """What a reader sees: each live document's content hash."""
    return {d.id: d.content_hash for d in store.documents()}
