"""Exact search: FAISS's flat inner-product index, memory-mapped (opening costs nothing however large it is, and the
page cache is shared between processes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FILE = "vectors.faiss"


class FlatIndex:
    kind = "flat"

    def __init__(self, index):
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray, directory: Path) -> str:
        import faiss

        index = faiss.IndexFlatIP(vectors.shape[1])
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        faiss.write_index(index, str(directory / FILE))
        return cls.kind

    @classmethod
    def open(cls, directory: Path) -> "FlatIndex":
        import faiss

        return cls(faiss.read_index(str(directory / FILE), getattr(faiss, "IO_FLAG_MMAP_IFC", 0)))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores, rows = self._index.search(np.ascontiguousarray(query, np.float32).reshape(1, -1), k)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep].astype(np.int64)

    def vector(self, rows: np.ndarray) -> np.ndarray:
        return np.stack([self._index.reconstruct(int(r)) for r in rows]) if len(rows) else \
            np.zeros((0, self._index.d), np.float32)


class ExactIndex:
    """The same exact scan over vectors kept in the segment's arrays.bin (format 4): a matrix-vector product and a
    partial sort. Scores are the stored vectors' inner products, as FlatIndex's (to float32 rounding)."""

    kind = "exact"
    ARRAY = "vectors"

    def __init__(self, vectors: np.ndarray):
        self._vectors = vectors

    @classmethod
    def build(cls, vectors: np.ndarray, arrays: dict) -> str:
        vectors = np.ascontiguousarray(vectors, np.float32)
        arrays[cls.ARRAY] = (np.float32, vectors.shape, [vectors])
        return cls.kind

    @classmethod
    def open(cls, arrays: dict) -> "ExactIndex":
        if cls.ARRAY not in arrays:
            raise ValueError("an exact vector index without its vectors in the segment's arrays")
        return cls(arrays[cls.ARRAY])

    def __len__(self) -> int:
        return len(self._vectors)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores = self._vectors @ np.ascontiguousarray(query, np.float32).reshape(-1)
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.lexsort((top, -scores[top]))]  # best first, ties by row
        return scores[top].astype(np.float32), top.astype(np.int64)

    def vector(self, rows: np.ndarray) -> np.ndarray:
        return np.array(self._vectors[np.asarray(rows, np.int64)], np.float32).reshape(-1, self._vectors.shape[1])
