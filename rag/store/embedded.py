"""What embedding gives each chunk, as every store keeps it: the passage vector, its sentences' vectors and its
tokens' codes with their document spans."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ChunkEmbeddings:
    """What one forward pass per chunk gives: the chunk vectors (n, d), their sentences' vectors (in chunk
    order) and their tokens' codes (the index's TokenCodec, in blocks) with document spans (flat, chunk i
    owning rows token_rows[i]:token_rows[i+1])."""

    vectors: np.ndarray
    sentences: np.ndarray
    tokens: list[np.ndarray]
    token_spans: np.ndarray
    token_rows: np.ndarray

    @classmethod
    def one(cls, vector: np.ndarray, sentences: np.ndarray, tokens: np.ndarray, spans: np.ndarray) -> "ChunkEmbeddings":
        """One chunk's; `tokens` as stored (a view of an old index's file stays a view)."""
        return cls(vector.reshape(1, -1), sentences, [tokens], spans, np.array([0, len(tokens)], np.int64))

    @classmethod
    def empty(cls, dim: int) -> "ChunkEmbeddings":
        return cls(np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float16), [],
                   np.zeros((0, 2), np.int32), np.zeros(1, np.int64))

    @classmethod
    def concat(cls, parts: list["ChunkEmbeddings"], dim: int) -> "ChunkEmbeddings":
        parts = [cls.empty(dim)] + parts
        counts = np.concatenate([np.diff(p.token_rows) for p in parts])
        return cls(np.vstack([p.vectors for p in parts]).astype(np.float32),
                   np.vstack([p.sentences for p in parts]).astype(np.float16),
                   [block for p in parts for block in p.tokens],
                   np.vstack([p.token_spans for p in parts]).astype(np.int32),
                   np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
