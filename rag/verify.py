"""Does the cited passage back the sentence that cites it?

A generated sentence is checked against the sentences of the passages it cites, two ways:
- lexical: the IDF-weighted share of the sentence's content terms (rag.arabic.tokenize: normalised, lightly
  stemmed, spelling variants folded) found in the cited passages;
- semantic: the best e5 cosine between the sentence (encoded as a query) and a cited sentence's stored
  vector, which is what lets an English sentence be checked against an Arabic article.
A sentence with a number or year the cited text does not hold is unsupported whatever else it shares:
numbers are what a small model most often gets wrong, and what a reader most often relies on.

Each check also names its evidence: the cited sentence that backs the claim best, as a citation id, so the
reader opens the exact sentence rather than the whole passage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.arabic import detect_language, normalize, tokenize
from rag.markers import Claim
from rag.store import IndexStore
from rag.types import ClaimCheck, Hit

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class SupportConfig:
    # Calibrated in benchmarks/generative.py: a sentence quoting its passage scores ~1.0 lexically; one
    # from an unrelated passage of the same news domain rarely passes 0.5.
    min_lexical: float = 0.5
    # e5 query-vs-sentence cosines run high even for unrelated news text (~0.80); the threshold for the
    # same language sits above that, and a sentence in another language than the article gets the
    # cross-language shift measured in benchmarks/crosslingual.py.
    min_cosine: float = 0.86
    cross_language_shift: float = 0.047


def numbers_in(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(normalize(text))}


class SupportChecker:
    def __init__(self, store: IndexStore, encode: Callable[[list[str]], np.ndarray], idf: Callable[[str], float],
                 config: SupportConfig = SupportConfig()):
        self.store, self.encode, self.idf, self.config = store, encode, idf, config

    def check(self, claims: Sequence[Claim], cited: dict[int, Hit]) -> list[ClaimCheck]:
        """`cited` maps each answer citation number to the passage it names."""
        to_check = [c for c in claims if any(n in cited for n in c.citations)]
        vectors = self.encode([c.text for c in to_check]) if to_check else None
        row_of = {id(c): i for i, c in enumerate(to_check)}
        checks = []
        for claim in claims:
            hits = [cited[n] for n in claim.citations if n in cited]
            if not hits:
                checks.append(ClaimCheck(text=claim.text, citations=claim.citations, supported=None))
                continue
            checks.append(self._check(claim, hits, vectors[row_of[id(claim)]]))
        return checks

    def _check(self, claim: Claim, hits: list[Hit], vector: np.ndarray) -> ClaimCheck:
        terms = set(tokenize(claim.text))
        weights = {t: self.idf(t) for t in terms}
        total = sum(weights.values()) or 1.0
        best_id, best_cos, best_score = "", -1.0, -np.inf
        passage_terms: set[str] = set()
        passage_numbers: set[str] = set()
        article_language = "ar"
        for hit in hits:
            doc = self.store.document(hit.chunk.doc_id)
            text = doc.text[hit.chunk.start:hit.chunk.end]
            passage_terms |= set(tokenize(text))
            passage_numbers |= numbers_in(text)
            article_language = detect_language(text)
            cosines = self.store.chunk_sentence_vectors(hit.row) @ vector.astype(np.float32)
            for span, cos in zip(hit.chunk.sentences, cosines):
                shared = terms & set(tokenize(doc.text[span.start:span.end]))
                score = float(cos) + 0.25 * sum(weights[t] for t in shared) / total
                if score > best_score:
                    best_id, best_cos, best_score = f"{doc.id}:{span.start}-{span.end}", float(cos), score
        lexical = sum(weights[t] for t in terms & passage_terms) / total if terms else 0.0
        missing_numbers = sorted(numbers_in(claim.text) - passage_numbers)
        cross = detect_language(claim.text) != article_language
        min_cos = self.config.min_cosine - (self.config.cross_language_shift if cross else 0.0)
        supported = not missing_numbers and (lexical >= self.config.min_lexical or best_cos >= min_cos)
        return ClaimCheck(text=claim.text, citations=claim.citations, supported=supported,
                          lexical=round(lexical, 4), semantic=round(best_cos, 4), evidence=best_id,
                          missing_numbers=missing_numbers)
