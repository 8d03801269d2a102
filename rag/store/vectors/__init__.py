"""Dense search over one segment's passage vectors: one implementation per module, behind `VectorIndex`.

Whatever the structure (an exact scan for small segments, an approximate one for large compacted segments), the
scores returned are the exact inner products of the question with the candidates' stored vectors, so fusion with
BM25 and the second stage sees the same numbers whichever structure found them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class VectorIndex(Protocol):
    kind: str  # recorded in the segment's entry of the manifest

    def __len__(self) -> int: ...

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top `k` rows (local to the segment) for one unit query vector (d,), best first, with exact inner
        products: (scores float32 (k',), rows int64 (k',)), k' <= k."""

    def vector(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of `rows`, float32 (len(rows), d)."""


# Below this many vectors a segment is scanned exactly. One question, one thread, on this machine: the flat scan
# takes 3.2 / 14 / 30 ms at 10k / 50k / 100k vectors, and the IVF 4-9x less from 10k up (benchmarks/scale.py
# --threshold: flat 24 / 46 / 49 / 103 ms against IVF 4.3 / 4.4 / 5.5 / 9.1 ms at 10k / 20k / 50k / 100k, in a
# process whose encoder threads compete). Exact costs a few milliseconds up to here and loses no recall, and from
# here the IVF trains on at least 39 points per cell (faiss's minimum).
ANN_FROM = 20_000


def build_vector_index(vectors: np.ndarray, directory: Path, arrays: dict | None = None) -> str:
    """Write the structure that fits `len(vectors)` into `directory`; returns its kind (for `open_vector_index`):
    an exact scan below `ANN_FROM` vectors, an IVF over 8-bit codes with exact re-scoring above. With `arrays` (a
    segment's arrays.bin, rag/store/local/packed.py), the exact scan's vectors go there instead of a file of their
    own: one file less to write, fsync and open per segment."""
    from rag.store.vectors.flat import ExactIndex, FlatIndex
    from rag.store.vectors.ivf import IVFIndex

    if len(vectors) >= ANN_FROM:
        return IVFIndex.build(vectors, directory)
    if arrays is not None:
        return ExactIndex.build(vectors, arrays)
    return FlatIndex.build(vectors, directory)


def open_vector_index(kind: str, directory: Path, arrays: dict | None = None) -> VectorIndex:
    """The vector index of `kind` in `directory` (or, for the exact scan, in the segment's `arrays`)."""
    from rag.store.vectors.flat import ExactIndex, FlatIndex
    from rag.store.vectors.ivf import IVFIndex

    if kind == ExactIndex.kind:
        return ExactIndex.open(arrays or {})
    kinds = {FlatIndex.kind: FlatIndex, IVFIndex.kind: IVFIndex}
    if kind not in kinds:
        raise ValueError(f"unknown vector index {kind!r} (known: {', '.join(sorted(kinds | {ExactIndex.kind: 0}))})")
    return kinds[kind].open(directory)
