"""Approximate search for large segments: FAISS's inverted file over 8-bit scalar-quantised codes
("IVF{nlist},SQ8", inner product) finds candidates, and they are re-scored exactly against the stored float32
vectors (IndexRefineFlat's idea, with the vectors in a memory-mapped .npy instead of in memory), so the scores
handed to fusion are the same inner products the flat index gives.

Why IVF and not HNSW here: on this 2-core machine HNSW32,SQ8 took 102 s to build over 100k vectors on one
thread (a million: well over the build budget) for a somewhat better recall per millisecond (efSearch 256: 0.977
of the exact top 50 in 4.9 ms, against 0.950 in 4.2 ms for IVF1024 at nprobe 64, same data), and it cannot remove
rows; an IVF trains on a sample and fills by one assignment per vector. Searching one question at a time, the SQ8
lists of `nprobe` cells are sequential reads (benchmarks/scale.py measures recall and time by nprobe). Both files
open by memory map (IO_FLAG_MMAP: the inverted lists stay on disk and in the page cache, shared between
processes).

Building is deterministic: the training sample is drawn with a fixed seed and k-means starts from the same seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from rag.store.arrays import load_array

INDEX_FILE = "ivf.faiss"
VECTORS_FILE = "vectors.npy"
PARAMS_FILE = "ivf.json"
SEED = 1234
# faiss's k-means warns below 39 training points per centroid and subsamples above 256 (max_points_per_centroid).
POINTS_PER_CENTROID = 64
# Cells scanned per question: PROBES_PER_ROOT x sqrt(cells), a larger share of a smaller index's cells (a fixed
# share lost recall as the index shrank: 3/32 of 100,000 passages' 1,024 cells held 0.94-0.97 of the exact top 50).
# benchmarks/scale.py, every pooled dev question, recall of the exact top 50: at a million (4,096 cells) 0.974 at
# 256 (6.7 ms p50), 0.985 at 384 = 6 x 64 (9.4 ms), 0.990 at 512 (11.9 ms); at 100,000 (1,024 cells) 0.973 at 128,
# 0.992 at 256, 192 = 6 x 32 between them.
PROBES_PER_ROOT = 6


def cells_for(n: int) -> int:
    """The number of inverted lists: faiss's guideline of 4-16 x sqrt(n), as a power of two (1M -> 4096)."""
    return max(16, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))


class IVFIndex:
    kind = "ivf-sq8"

    def __init__(self, index, vectors: np.ndarray, nprobe: int, candidates: int):
        self._index, self._vectors = index, vectors
        self.nprobe, self.candidates = nprobe, candidates

    @classmethod
    def build(cls, vectors: np.ndarray, directory: Path, nlist: int | None = None, nprobe: int | None = None,
              candidates: int = 256) -> str:
        """`nprobe`: cells scanned per question, by default PROBES_PER_ROOT x sqrt(nlist); `candidates`: how many
        rows the quantised scan hands to the exact re-scoring (at least 4 x k)."""
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = vectors.shape
        nlist = nlist or cells_for(n)
        nprobe = nprobe or min(nlist, round(PROBES_PER_ROOT * math.sqrt(nlist)))
        if n < nlist:
            raise ValueError(f"an IVF of {nlist} cells needs at least as many vectors (got {n}); use the flat index")
        index = faiss.index_factory(d, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = SEED
        rng = np.random.default_rng(SEED)
        sample = min(n, POINTS_PER_CENTROID * nlist)
        index.train(vectors[np.sort(rng.choice(n, sample, replace=False))] if sample < n else vectors)
        for at in range(0, n, 65536):  # adds in blocks: the codes are the only copy held
            index.add(vectors[at:at + 65536])
        faiss.write_index(index, str(directory / INDEX_FILE))
        np.save(directory / VECTORS_FILE, vectors, allow_pickle=False)
        (directory / PARAMS_FILE).write_text(json.dumps({"nlist": nlist, "nprobe": nprobe, "candidates": candidates,
                                                         "seed": SEED, "training_points": int(sample)}))
        return cls.kind

    @classmethod
    def open(cls, directory: Path) -> "IVFIndex":
        import faiss

        params = json.loads((directory / PARAMS_FILE).read_text())
        index = faiss.read_index(str(directory / INDEX_FILE), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        vectors = load_array(directory / VECTORS_FILE)
        return cls(index, vectors, params["nprobe"], params["candidates"])

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def approximate(self, query: np.ndarray, k: int, nprobe: int | None = None) -> np.ndarray:
        """The rows the quantised scan ranks first (local rows, best first by the SQ8 score)."""
        import faiss

        params = faiss.SearchParametersIVF(nprobe=nprobe or self.nprobe)
        _, rows = self._index.search(np.ascontiguousarray(query, np.float32).reshape(1, -1), k, params=params)
        return rows[0][rows[0] >= 0]

    def search(self, query: np.ndarray, k: int, nprobe: int | None = None,
               candidates: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        rows = np.sort(self.approximate(query, max(k, candidates or self.candidates, 4 * k), nprobe))
        scores = self._vectors[rows] @ np.asarray(query, np.float32)
        best = np.argsort(-scores, kind="stable")[:k]
        return scores[best].astype(np.float32), rows[best].astype(np.int64)

    def vector(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._vectors[np.asarray(rows, np.int64)], dtype=np.float32).reshape(len(rows), -1)
