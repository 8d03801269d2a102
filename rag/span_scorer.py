"""A learned short-answer picker: which run of words in the best sentence answers the question.

The candidates are those of the rule-based picker (rag.short_answer.pick): runs of up to MAX_WORDS words inside
one clause, not starting or ending on a stop word, holding no word the question says, of the type asked for.
Each is scored by a linear model over two kinds of evidence:
- the rules' own evidence (`base_features`): the type asked for found, the distance to the question's words,
  the share of them in the span's clause, following or preceding one of them, length, position, rarity, numbers
  and dates, clause edges; each with one weight shared by every question type and one for its own type;
- what the span's words are, read off the contextual token vectors the index already keeps (no model call):
  two learned directions of the embedding space, one for the span's words on average and one for its first word
  (`SpanScorer.probes`), through the index's own token codec.
The model is a conditional logit (a softmax over one sentence's candidates) fitted on ARCD's questions with
their token F1 against the gold answer as the target (benchmarks/span_scorer.py writes rag/data/span_scorer.npz);
MLQA and the English questions are its held-out sets. It is tied to the embedding model that made the token
vectors it was fitted on (the file records it): over another model's index the rules pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.short_answer import Word, _typed, SpanConfig

MAX_WORDS = 8
KINDS = ("date", "number", "person", "place", "other")
BASE_FEATURES = ("typed", "near", "after", "before", "clause_share", "one_word", "length", "length_sq", "position",
                 "similarity", "similarity_gap", "rarity", "number", "date", "stops_inside", "clause_start",
                 "clause_end")
MODEL_FILE = Path(__file__).parent / "data" / "span_scorer.npz"


@dataclass(frozen=True)
class Candidate:
    first: int  # word indices, inclusive
    last: int
    features: np.ndarray  # BASE_FEATURES


def candidates(words: list[Word], kind: str, similarity: np.ndarray, rarity: np.ndarray,
               config: SpanConfig = SpanConfig()) -> list[Candidate]:
    """Every candidate span with its base features. `similarity`: per word, its tokens' best cosine with a
    question token; `rarity`: per word, its stem's IDF over the IDF of a term no passage holds."""
    asked = [i for i, w in enumerate(words) if w.asked]
    if not asked:
        return []
    per_clause: dict[int, int] = {}
    for i in asked:
        per_clause[words[i].clause] = per_clause.get(words[i].clause, 0) + 1
    n, top = len(words), float(similarity.max()) if len(similarity) else 0.0
    out = []
    for i in range(n):
        if words[i].asked or words[i].stop or not _spoken(words[i]):
            continue
        for j in range(i, min(n, i + MAX_WORDS)):
            w = words[j]
            if w.clause != words[i].clause or w.asked:
                break
            if w.stop or not _spoken(w):
                continue
            span = words[i:j + 1]
            typed = _typed(span, words, i, j, kind, config)
            if typed is None:
                continue
            content = [k for k in range(i, j + 1) if not words[k].stop]
            after = i > 0 and (words[i - 1].asked or (words[i - 1].stop and i > 1 and words[i - 2].asked))
            length = (j - i + 1) / MAX_WORDS
            out.append(Candidate(i, j, np.array([
                typed > 0,
                1 / (1 + min(min(abs(a - i), abs(a - j)) for a in asked)),
                after,
                j + 1 < n and words[j + 1].asked,
                per_clause.get(words[i].clause, 0) / len(asked),
                i == j,
                length,
                length ** 2,
                i / n,
                similarity[i:j + 1].mean(),
                top - similarity[i:j + 1].max(),
                rarity[content].mean(),
                all(x.number for x in span if not x.stop),
                any(x.date for x in span),
                sum(x.stop for x in span) / 4,
                i == 0 or words[i - 1].clause != w.clause,
                j == n - 1 or words[j + 1].clause != w.clause,
            ], dtype=np.float32)))
    return out


def _spoken(word: Word) -> bool:
    """A word with a letter or digit: a span does not start or end on a dash or a stray mark ("المنورة -")."""
    return any(ch.isalnum() for ch in word.key)


def word_rarity(store, words: list[Word]) -> np.ndarray:
    """Per word, its stem's IDF over the IDF of a term no passage holds (one look-up for the sentence)."""
    idf = store.idfs({w.stem for w in words} | {""})
    return np.array([idf.get(w.stem, idf[""]) / max(idf[""], 1e-9) for w in words], np.float32)


def word_means(values: np.ndarray, words: list[Word], token_spans: np.ndarray) -> np.ndarray:
    """Per word, the mean over its tokens of each row of `values` ((r, t) over the passage's tokens): (r, words)."""
    out = np.zeros((values.shape[0], len(words)), np.float32)
    for k, w in enumerate(words):
        inside = (token_spans[:, 1] > w.start) & (token_spans[:, 0] < w.end)
        if inside.any():
            out[:, k] = values[:, inside].mean(axis=1)
    return out


@lru_cache(maxsize=1)
def learned_span_scorer() -> SpanScorer | None:
    """The shipped model (loaded once), or None when the file is absent."""
    return SpanScorer.load()


class SpanScorer:
    """The fitted model: `weights` (len(BASE_FEATURES) x (1 + len(KINDS)): shared, then per type) and `probes`
    (2 x d: the span's words on average, its first word)."""

    def __init__(self, weights: np.ndarray, probes: np.ndarray, model_id: str):
        self.weights, self.probes, self.model_id = weights.astype(np.float32), probes.astype(np.float32), model_id

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> SpanScorer | None:
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as f:
            return cls(f["weights"], f["probes"], str(f["model_id"]))

    def save(self, path: Path = MODEL_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:  # np.savez on a path would add .npz
            np.savez(f, weights=self.weights, probes=self.probes, model_id=np.array(self.model_id))

    def design(self, cands: list[Candidate], kind: str, probe_words: np.ndarray) -> np.ndarray:
        """The candidates' full feature rows: base features twice (shared, own type's block), then the probes'
        values (`probe_words`: (2, words) from `word_means`)."""
        b = len(BASE_FEATURES)
        x = np.zeros((len(cands), b * (1 + len(KINDS)) + 2), np.float32)
        block = b * (1 + KINDS.index(kind))
        for r, c in enumerate(cands):
            x[r, :b] = c.features
            x[r, block:block + b] = c.features
            x[r, -2] = probe_words[0, c.first:c.last + 1].mean()
            x[r, -1] = probe_words[1, c.first]
        return x

    def best(self, cands: list[Candidate], kind: str, probe_words: np.ndarray) -> tuple[Candidate, float] | None:
        """The highest-scoring candidate and its probability among them."""
        if not cands:
            return None
        z = self.design(cands, kind, probe_words) @ np.concatenate([self.weights.ravel(), [1.0, 1.0]])
        p = np.exp(z - z.max())
        p /= p.sum()
        k = int(np.argmax(p))
        return cands[k], float(p[k])
