"""Does the cited passage back the sentence that cites it?

A generated sentence is checked against the sentences of the passages it cites, two ways:
- lexical: the IDF-weighted share of the sentence's content terms (rag.arabic.tokenize: normalised, lightly
  stemmed, spelling variants folded) found in the cited passages. For a sentence in the article's language
  this is the test: it must reach `min_lexical`.
- semantic: the best e5 cosine between the sentence (encoded as a query) and a cited sentence's stored
  vector. A sentence in another language (an English answer from Arabic articles) shares no terms, so it
  is judged by this instead; but e5-small's cross-language cosines are coarse (an English sentence about
  the talks scores 0.85-0.87 against the right passage and against others on the same story alike), so
  the cited passage must also be the best match among the passages the model was given, not only clear
  a threshold.
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

from rag.arabic import detect_language, normalize
from rag.markers import Claim
from rag.retrieval import coverage, sentence_terms, term_weights
from rag.store import IndexStore
from rag.types import ClaimCheck, Hit

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class SupportConfig:
    # A sentence restating its passage scores 0.6-1.0 lexically; against another article of the same
    # news domain mostly under 0.4 (tests/test_generate.py has both kinds).
    min_lexical: float = 0.5
    # Cross-language only. English sentences against unrelated Arabic news sentences score 0.73-0.83.
    min_cosine: float = 0.84
    best_match_margin: float = 0.01  # how far below the best of the given passages the cited one may be


def numbers_in(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(normalize(text))}


class SupportChecker:
    def __init__(self, store: IndexStore, encode: Callable[[list[str]], np.ndarray],
                 config: SupportConfig = SupportConfig()):
        self.store, self.encode, self.config = store, encode, config

    def check(self, claims: Sequence[Claim], cited: dict[int, Hit], given: Sequence[Hit] = ()) -> list[ClaimCheck]:
        """`cited` maps each answer citation number to the passage it names; `given` are all the passages
        the model was given (default: the cited ones)."""
        given = list(given) or list(cited.values())
        to_check = [c for c in claims if any(n in cited for n in c.citations)]
        vectors = self.encode([c.text for c in to_check]) if to_check else None
        row_of = {id(c): i for i, c in enumerate(to_check)}
        checks = []
        for claim in claims:
            hits = [cited[n] for n in claim.citations if n in cited]
            if not hits:
                checks.append(ClaimCheck(text=claim.text, citations=claim.citations, supported=None))
                continue
            checks.append(self._check(claim, hits, given, vectors[row_of[id(claim)]]))
        return checks

    def _check(self, claim: Claim, hits: list[Hit], given: list[Hit], vector: np.ndarray) -> ClaimCheck:
        weights, total = term_weights(self.store, claim.text)
        best_id, best_cos, best_score = "", -1.0, -np.inf
        passage_terms: set[str] = set()
        passage_numbers: set[str] = set()
        article_language = "ar"
        for hit in hits:
            doc = self.store.document(hit.chunk.doc_id)
            text = doc.text[hit.chunk.start:hit.chunk.end]
            passage_numbers |= numbers_in(text)
            article_language = detect_language(text)
            cosines = self.store.chunk_sentence_vectors(hit.row) @ vector.astype(np.float32)
            for span, cos in zip(hit.chunk.sentences, cosines):
                terms = sentence_terms(doc.text[span.start:span.end])
                passage_terms |= terms
                score = float(cos) + 0.25 * coverage(terms, weights, total)
                if score > best_score:
                    best_id, best_cos, best_score = f"{doc.id}:{span.start}-{span.end}", float(cos), score
        lexical = coverage(frozenset(passage_terms), weights, total)
        missing_numbers = sorted(numbers_in(claim.text) - passage_numbers)
        if detect_language(claim.text) == article_language:
            backed = lexical >= self.config.min_lexical
        else:
            best_given = max(float((self.store.chunk_sentence_vectors(h.row) @ vector.astype(np.float32)).max(
                initial=-1.0)) for h in given)
            backed = best_cos >= self.config.min_cosine and best_cos >= best_given - self.config.best_match_margin
        supported = not missing_numbers and backed
        return ClaimCheck(text=claim.text, citations=claim.citations, supported=supported,
                          lexical=round(lexical, 4), semantic=round(best_cos, 4), evidence=best_id,
                          missing_numbers=missing_numbers)
