"""Product-quantised token vectors (Jégou et al.; faiss's `ProductQuantizer`): each unit vector is cut into `m`
sub-vectors, and each sub-vector is stored as the one-byte id of its nearest of 256 centroids learnt for that
slice. At e5-small's 384 dimensions and m = 48 that is 48 bytes a token, an eighth of int8.

Scoring is asymmetric, as in faiss and PLAID: the question's tokens stay exact and meet the passage's tokens'
reconstructions (the centroids their codes name), so only the passage side carries the quantisation error.

The centroids are trained offline and deterministically (faiss's k-means with a fixed seed) from the token vectors
of text the project ships (rag/store/tokens/training.py), saved into the index's `codec/` once at its creation,
with their SHA-256 beside them: every version and segment of one index decodes with the same parameters, and a
file changed on disk is refused instead of scoring with the wrong centroids.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from rag.errors import IndexIncompatible
from rag.store.arrays import load_array

PARAMS = "pq.npy"
META = "pq.json"


class PQCodec:
    name = "pq"
    dtype = np.uint8

    def __init__(self, centroids: np.ndarray):
        self.centroids = np.ascontiguousarray(centroids, np.float32)  # (m, 256, d / m)
        self.m, self.ksub, self.dsub = self.centroids.shape
        self.width = self.m
        self.dimension = self.m * self.dsub
        self._faiss = None  # the faiss ProductQuantizer over these centroids, built on the first encode
        self._flat = self.centroids.reshape(self.m * self.ksub, self.dsub)
        self._offsets = np.arange(self.m, dtype=np.intp) * self.ksub

    @classmethod
    def train(cls, vectors: np.ndarray, m: int = 48, seed: int = 1234, iterations: int = 25) -> "PQCodec":
        import faiss

        x = np.ascontiguousarray(vectors, np.float32)
        if x.shape[1] % m:
            raise ValueError(f"{x.shape[1]} dimensions do not split into {m} sub-vectors")
        pq = faiss.ProductQuantizer(x.shape[1], m, 8)
        pq.cp.seed, pq.cp.niter = seed, iterations
        pq.cp.min_points_per_centroid = 1  # a smaller training text than the shipped one (67 a centroid) still trains
        pq.train(x)
        return cls(faiss.vector_to_array(pq.centroids).reshape(m, pq.ksub, pq.dsub))

    @staticmethod
    def checksum(centroids: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(centroids, np.float32).tobytes()).hexdigest()

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / PARAMS, self.centroids, allow_pickle=False)
        (directory / META).write_text(json.dumps({"codec": self.name, "m": self.m, "ksub": self.ksub,
                                                  "dsub": self.dsub, "sha256": self.checksum(self.centroids)}))

    @classmethod
    def load(cls, directory: Path | None) -> "PQCodec":
        try:
            meta = json.loads((directory / META).read_text())
            centroids = load_array(directory / PARAMS, mmap=False)
        except (OSError, TypeError, ValueError) as e:
            raise IndexIncompatible(f"the index's token codec parameters cannot be read from {directory}: {e}; "
                                    "rebuild it with `rag index --rebuild PATH`") from None
        if meta.get("sha256") != cls.checksum(centroids) or centroids.shape != (meta["m"], meta["ksub"], meta["dsub"]):
            raise IndexIncompatible(f"the index's token codec parameters in {directory} do not match their "
                                    "checksum; rebuild it with `rag index --rebuild PATH`")
        return cls(centroids)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """Each slice's nearest centroid (faiss's own search over the same centroids)."""
        import faiss

        if self._faiss is None:
            self._faiss = faiss.ProductQuantizer(self.dimension, self.m, 8)
            faiss.copy_array_to_vector(self.centroids.ravel(), self._faiss.centroids)
        x = np.ascontiguousarray(vectors, np.float32)
        return self._faiss.compute_codes(x) if len(x) else np.zeros((0, self.m), np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The centroids the codes name, side by side: (t, d) float32. One `take` from the flat (m x 256, d / m)
        table (slice j's ids offset by 256 j) costs half of indexing the 3-d array."""
        ids = np.asarray(codes, np.intp) + self._offsets
        return np.take(self._flat, ids, axis=0).reshape(len(ids), self.dimension)

    def similarities(self, query_tokens: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Cosines with the reconstructions made unit length again, as the vectors coded were: a reconstruction
        is its cell's mean, shorter than the vector (about 0.86 of it at m = 48), so the raw products would
        shrink every late-interaction score by that much, and the answer's weights and the abstention model
        read those scores at the scale of exact cosines."""
        if not len(query_tokens) or not len(codes):
            return np.zeros((len(query_tokens), len(codes)), np.float32)
        decoded = self.decode(codes)
        decoded /= np.maximum(np.linalg.norm(decoded, axis=1, keepdims=True), 1e-9)
        return np.ascontiguousarray(query_tokens, np.float32) @ decoded.T
