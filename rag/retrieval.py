"""Retrievers over an IndexStore: dense (its vector indexes), lexical (BM25 over normalised Arabic tokens), their fusion,
and a sentence-level second stage. Each returns ranked `Hit`s; `HybridRetriever` is what the chain uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, TypeVar

import numpy as np

from rag.arabic import STOPWORDS, detect_language, normalize, tokenize
from rag.crosslingual import CrossLingualEncoder
from rag.names import question_name_runs, question_names, sentence_names
from rag.store import IndexStore
from rag.types import Hit

T = TypeVar("T")


class QueryEncoder(Protocol):
    def __call__(self, question: str) -> np.ndarray:
        """The question's (d,) unit vector."""

    def tokens(self, question: str) -> np.ndarray:
        """The question's contextual token vectors (t, d), unit length, from the same forward pass."""


def idf(store: IndexStore, token: str) -> float:
    """BM25's IDF of a lexical token over the index's live passages (corpus-wide, across its segments)."""
    return store.idf(token)


@lru_cache(maxsize=65536)
def sentence_terms(sentence: str) -> frozenset[str]:
    """The lexical tokens of one sentence and the name keys of its Arabic words (rag.names; cached: the second
    stage and the answerer read the same ones)."""
    return frozenset(tokenize(sentence)) | sentence_names(normalize(sentence))


def names_shared(question: str, sentences: list[str]) -> bool:
    """Whether some sentence holds a name of the question (the keys of rag.names): "Who commands Iran's Quds
    Force?" and "... قائد فيلق القدس الإيراني ..." share Quds and Iran."""
    names = question_names(question, STOPWORDS)
    return bool(names) and any(names & sentence_terms(s) for s in sentences)


# A name key of two consonants ("Iran" -> rn) is the key of many plain words too; from three on, a question's name
# that no passage read holds says the corpus may not be about it.
FOUND_NAME_CONSONANTS = 3


def names_found(question: str, sentences: list[str]) -> float:
    """The share of the question's names (runs of capitalised words, rag.names.question_name_runs, by their keys of
    FOUND_NAME_CONSONANTS consonants or more) of which some sentence holds a key; 1 when it names none (an Arabic
    question, or an English one without capitalised words). An abstention feature for questions in another
    language (rag/confidence.py)."""
    runs = question_name_runs(question, STOPWORDS, FOUND_NAME_CONSONANTS)
    if not runs:
        return 1.0
    held = set().union(*(sentence_terms(s) for s in sentences)) if sentences else set()
    return sum(bool(run & held) for run in runs) / len(runs)


def term_weights(store: IndexStore, text: str) -> tuple[dict[str, float], float]:
    """The IDF of each lexical term of `text` (a question or a claim), and their sum (1 when there are none).

    Text in another language than Arabic counts only the terms the index holds (an English word no Arabic
    passage has can never be covered, and would only shrink the share of the others), plus the name keys of its
    capitalised words (rag.names) at the IDF of a rare term: an English question names the people and places
    of an Arabic article that way."""
    terms = set(tokenize(text))
    idfs = store.idfs(terms | {""})  # one look-up for all of them (one round trip to Milvus)
    if text.isascii() or detect_language(text) != "ar":
        names = question_names(text, STOPWORDS)
        rare = idfs[""]  # the IDF of a term no passage holds
        weights = {t: w for t in terms if (w := idfs[t]) < rare} | {k: rare for k in names}
    else:
        weights = {t: idfs[t] for t in terms}
    return weights, sum(weights.values()) or 1.0


def token_similarities(query_tokens: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """The cosine of every question token with every passage token, (question tokens, passage tokens)."""
    if not len(query_tokens) or not len(tokens):
        return np.zeros((len(query_tokens), len(tokens)), np.float32)
    # numpy runs on one OpenBLAS thread (rag/__init__.py): threads that keep spinning after a product slowed the
    # next question's forward pass from 27 to 65 ms on 2 cores. (torch is not imported on the question path.)
    q = np.ascontiguousarray(query_tokens, dtype=np.float32)
    t = np.ascontiguousarray(tokens, dtype=np.float32)
    return q @ t.T


def max_sim(query_tokens: np.ndarray, tokens: np.ndarray | None = None, *,
            similarities: np.ndarray | None = None) -> float:
    """Late interaction (ColBERT's MaxSim): the mean over the question's tokens of each one's best cosine with
    `tokens` (or over precomputed `similarities` columns). It matches a question word to its inflected or
    transliterated form in the passage, which a single pooled vector blurs and BM25 misses. 0 when either side
    has no tokens."""
    sims = token_similarities(query_tokens, tokens) if similarities is None else similarities
    return float(sims.max(axis=1).mean()) if sims.size else 0.0


def coverage(terms: frozenset[str], weights: dict[str, float], total: float) -> float:
    """IDF-weighted share of the question's terms that `terms` contains (0 when it has none)."""
    return sum(w for t, w in weights.items() if t in terms) / total


def settle_near_tie(ranked: list[T], score: Callable[[T], float], evidence: Callable[[T], float],
                    margin: float) -> list[T]:
    """`ranked` (best `score` first) with the first place given to the item with the most `evidence` among those
    within `margin` of the best score (the earliest of equals: the order stands on a tie); the rest keep their
    order. For scores whose differences that small are noise, and evidence that is exact."""
    if not ranked:
        return ranked
    near = next((i for i, x in enumerate(ranked) if score(x) < score(ranked[0]) - margin), len(ranked))
    i = max(range(near), key=lambda j: evidence(ranked[j]))
    if evidence(ranked[i]) <= evidence(ranked[0]):
        return ranked
    return [ranked[i]] + ranked[:i] + ranked[i + 1:]


@dataclass
class Ranked:
    """Rows of the index with scores, best first: the currency between retrievers before chunks are read."""

    rows: list[int]
    scores: list[float]


class DenseRetriever:
    name = "dense"

    def __init__(self, store: IndexStore, encode_query: QueryEncoder):
        self.store, self.encode_query = store, encode_query

    def rank(self, question: str, k: int) -> Ranked:
        if len(self.store) == 0:
            return Ranked([], [])
        scores, rows = self.store.dense_search(self.encode_query(question).astype(np.float32), k)
        return Ranked(rows, scores)


class BM25Retriever:
    name = "bm25"

    def __init__(self, store: IndexStore):
        self.store = store

    def rank(self, question: str, k: int) -> Ranked:
        scores, rows = self.store.lexical_search(tokenize(question), k)
        return Ranked(rows, scores)


@lru_cache(maxsize=1)
def _side_pool() -> ThreadPoolExecutor:
    """The threads that run the second retriever beside the first (HybridRetriever.rank_each), one pool per
    process: a server builds a retriever per index version. A few workers, as the server's request threads share
    them and one would queue their BM25s."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="retriever")


class HybridRetriever:
    """Dense + BM25 fused into one ranking.

    `fusion="score"` (default): alpha * min-max-normalised cosine + (1 - alpha) * BM25 / max BM25 over each
    retriever's candidates. `fusion="rrf"`: reciprocal-rank fusion, sum of w / (rrf_k + rank). On the pooled
    ../shared/eval dev set the score fusion ranks the gold paragraph first far more often (recall@1 0.724 vs
    0.671 for RRF k=60; benchmarks/quality.py), because it keeps how much better the best candidate is, which
    ranks throw away.

    Second stage (`rerank_depth` > 0): the top `rerank_depth` fused passages are re-scored with
    fused + rerank_weight * max over the passage's sentences of (sentence cosine + rerank_coverage * the
    sentence's IDF-weighted share of the question's terms). Sentence vectors are stored at index time, so this
    costs no model call. It rewards a passage that holds one sentence matching the question closely, which a
    whole-passage vector dilutes. Its weight is set for score fusion (fused scores within [0, 1]); under RRF,
    whose scores are far smaller, it all but decides the head's order. `late_weight` adds late interaction to
    that second stage: + late_weight * `max_sim` of the question's tokens against the passage's stored token
    vectors (title included, through the index's token codec: `store.token_similarities`), again without a
    model call. `one_per_document` keeps only the best passage of
    each document, so the passages read are distinct documents. `same_language_lexical`: BM25's candidates
    count only when their passage is in the question's language (`same_language`); dense retrieval and late
    interaction match across languages, shared words do not. `tie_margin`: after the second stage, of the
    passages within it of the best one's score, the one BM25 scored highest goes first (`settle_tie_by_bm25`).
    `cross_lingual`: a question in another language than Arabic whose names the passages do not hold gains, in the
    second stage, cross_lingual_weight * its passages' best sentence similarity by a model trained across languages
    (`cross_lingual_best`, rag/crosslingual.py). `translate`: such a question's Arabic wording (rag/translate/),
    which BM25 ranks in its place (against Arabic passages), its contributions to the fusion times
    `translated_lexical_weight` (not where the store fuses the two sides itself: Milvus under RRF).
    """

    name = "hybrid"

    def __init__(self, store: IndexStore, encode_query: QueryEncoder, candidates: int = 50, fusion: str = "score",
                 alpha: float = 0.4, rrf_k: int = 60, rerank_depth: int = 20, rerank_weight: float = 2.0,
                 rerank_coverage: float = 0.25, late_weight: float = 0.0, one_per_document: bool = False,
                 same_language_lexical: bool = True, tie_margin: float = 0.0,
                 cross_lingual: CrossLingualEncoder | None = None, cross_lingual_weight: float = 2.0,
                 translate: Callable[[str], str | None] | None = None, translated_lexical_weight: float = 0.3):
        if candidates < 1:
            raise ValueError("candidates must be at least 1")
        if fusion not in ("score", "rrf"):
            raise ValueError(f"fusion must be 'score' or 'rrf', not {fusion!r}")
        self.store = store
        self.retrievers = [DenseRetriever(store, encode_query), BM25Retriever(store)]
        self.candidates, self.fusion, self.alpha, self.rrf_k = candidates, fusion, alpha, rrf_k
        self.encode_query = encode_query
        self.rerank_depth, self.rerank_weight, self.rerank_coverage = rerank_depth, rerank_weight, rerank_coverage
        self.cross_lingual, self.cross_lingual_weight = cross_lingual, cross_lingual_weight
        self.translate, self.translated_lexical_weight = translate, translated_lexical_weight
        self.late_weight, self.tie_margin = late_weight, tie_margin
        self.one_per_document = one_per_document
        self.same_language_lexical = same_language_lexical
        self._languages: dict[int, str] = {}  # row -> its chunk's language (the store of one version never changes)

    def _contributions(self, name: str, ranked: Ranked, weight: float = 1.0) -> list[float]:
        if self.fusion == "rrf":
            return [weight / (self.rrf_k + rank) for rank in range(1, len(ranked.rows) + 1)]
        scores = np.asarray(ranked.scores, dtype=np.float64)
        if name == "dense":
            span = scores.max() - scores.min()
            return list(weight * self.alpha * ((scores - scores.min()) / span if span > 0 else np.ones_like(scores)))
        return list(weight * (1 - self.alpha) * scores / scores.max())

    def lexical_query(self, question: str, language: str) -> tuple[str, str, float]:
        """What BM25 ranks for `question`: (query, its language, its weight in the fusion). A question in another
        language than Arabic is ranked by its Arabic wording when there is a translator and it gave one."""
        if language != "ar" and self.translate is not None:
            translation = self.translate(question)
            if translation:
                return translation, "ar", self.translated_lexical_weight
        return question, language, 1.0

    @property
    def store_fuses(self) -> bool:
        """Whether the store fuses the dense and BM25 sides itself (Milvus under RRF), with the question's own words."""
        return self.fusion == "rrf" and hasattr(self.store, "hybrid_search")

    def wording(self, question: str) -> str | None:
        """The Arabic wording BM25 ranks for `question` (`lexical_query`), or None: an Arabic question, no
        translator or no wording, or a store that fuses the two sides itself. The translator's cache answers."""
        if self.store_fuses:
            return None
        query, _, _ = self.lexical_query(question, detect_language(question))
        return query if query != question else None

    def rank(self, question: str, k: int) -> tuple[Ranked, dict[int, dict[str, tuple[int, float]]]]:
        fused: dict[int, float] = {}
        evidence: dict[int, dict[str, tuple[int, float]]] = {}
        language = detect_language(question)
        if self.store_fuses:
            scores, rows = self.store.hybrid_search(self.encode_query(question).astype(np.float32), tokenize(question),
                                                    max(k, self.candidates), self.rrf_k,
                                                    language if self.same_language_lexical else None)
            fused.update(zip(rows, scores))
        lexical, lexical_language, lexical_weight = self.lexical_query(question, language) if not fused else (
            question, language, 1.0)
        for retriever, ranked in zip(self.retrievers, self.rank_each(question, max(k, self.candidates), lexical)
                                     if not fused else ()):
            weight = 1.0
            if retriever.name == "bm25":
                weight = lexical_weight
                if ranked.rows and self.same_language_lexical:
                    ranked = self.same_language(ranked, lexical_language)
            if not ranked.rows:
                continue
            for rank, (row, score, part) in enumerate(
                    zip(ranked.rows, ranked.scores, self._contributions(retriever.name, ranked, weight)), start=1):
                fused[row] = fused.get(row, 0.0) + part
                evidence.setdefault(row, {})[retriever.name] = (rank, score)
        order = sorted(fused, key=lambda r: -fused[r])
        if self.rerank_depth > 0 and order:
            head = order[:self.rerank_depth]
            for row, best in zip(head, self.best_sentences(question, head)):
                fused[row] += self.rerank_weight * best
            if self.late_weight and self.store.has_tokens:
                q = self.encode_query.tokens(question)
                for row in head:
                    fused[row] += self.late_weight * max_sim(q, similarities=self.store.token_similarities(row, q)[0])
            if self.cross_lingual is not None and self.cross_lingual_weight and language != "ar":
                for row, best in zip(head, self.cross_lingual_best(question, head)):
                    fused[row] += self.cross_lingual_weight * best
            order = sorted(head, key=lambda r: -fused[r]) + order[self.rerank_depth:]
            if self.tie_margin > 0:
                order = (self.settle_tie_by_bm25(order[:self.rerank_depth], fused, evidence)
                         + order[self.rerank_depth:])
        if self.one_per_document:
            seen: set[str] = set()
            kept = []
            for row, chunk in zip(order, self.store.chunks(order[:max(k, self.rerank_depth) * 4])):
                if chunk.doc_id not in seen:
                    seen.add(chunk.doc_id)
                    kept.append(row)
            order = kept
        order = order[:k]
        return Ranked(order, [fused[r] for r in order]), evidence

    def settle_tie_by_bm25(self, head: list[int], fused: dict[int, float],
                           evidence: dict[int, dict[str, tuple[int, float]]]) -> list[int]:
        """`head` (best first) with the first place given to the passage with the highest BM25 score among those
        within `tie_margin` of the best. Scores that close are below what the model's vectors resolve: the same
        passage's second-stage score moves by 0.016 (median) / 0.040 (p90) between the openvino and openvino-int8
        runtimes on the dev questions, and 78 of 2,209 questions changed their first passage, by a median gap of
        0.02. BM25 counts the question's own words exactly, the same under every runtime. On the pooled dev set
        with openvino-int8, margins 0.03 / 0.05 / 0.08 / 0.1: R@1 0.7474 -> 0.7500 / 0.7505 / 0.7469 / 0.7442
        (benchmarks/quality.py docstring, eleventh round). A question in another language has no BM25 evidence
        (`same_language`) and keeps its order."""
        return settle_near_tie(head, fused.__getitem__, lambda row: evidence.get(row, {}).get("bm25", (0, 0.0))[1],
                               self.tie_margin)

    def rank_each(self, question: str, k: int, lexical: str | None = None) -> list[Ranked]:
        """Each retriever's ranking (BM25's of `lexical` when given, else of the question). Over a store that
        allows it (`parallel_search`), BM25 runs in a second thread while the first encodes the question and
        searches the vectors: ONNX Runtime, faiss and most of BM25's numpy work release the GIL, and one question's
        ANN search is no faster on two threads than on one, so the two sides overlap on two cores (at a million
        passages BM25 took about 20 ms of a 96 ms `ask`, done after the dense side)."""
        queries = [lexical if lexical is not None and r.name == "bm25" else question for r in self.retrievers]
        if not getattr(self.store, "parallel_search", False) or len(self.retrievers) < 2:
            return [r.rank(q, k) for r, q in zip(self.retrievers, queries)]
        later = [_side_pool().submit(r.rank, q, k) for r, q in zip(self.retrievers[1:], queries[1:])]
        first = self.retrievers[0].rank(queries[0], k)
        return [first] + [f.result() for f in later]

    def same_language(self, ranked: Ranked, language: str) -> Ranked:
        """The lexical candidates in the question's language only: an English question shares no words with an
        Arabic article, so what BM25 finds for it there are the few Latin words of other passages (a name in
        brackets, a transliteration), and with BM25's weight in the fusion they pushed the passages the dense
        side found down."""
        self._learn_languages(ranked.rows)
        keep = [i for i, row in enumerate(ranked.rows) if self._languages[row] == language]
        return Ranked([ranked.rows[i] for i in keep], [ranked.scores[i] for i in keep])

    def _learn_languages(self, rows: list[int]) -> None:
        """Each row's language, cached; the rows not seen yet read in one batch (one by one, a million-passage
        index spent ~6 ms of an `ask` here)."""
        unseen = list(dict.fromkeys(r for r in rows if r not in self._languages))
        for row, chunk in zip(unseen, self.store.chunks(unseen) if unseen else []):
            self._languages[row] = detect_language(chunk.text)

    def best_sentences(self, question: str, rows: list[int]) -> list[float]:
        """Per passage: max over its sentences of cosine + rerank_coverage * IDF-weighted term coverage."""
        q = self.encode_query(question).astype(np.float32)
        weights, total = term_weights(self.store, question)
        out = []
        for row, chunk in zip(rows, self.store.chunks(rows)):
            cosines = self.store.chunk_sentence_vectors(row) @ q
            text = self.store.document(chunk.doc_id).text
            best = -math.inf
            for span, cos in zip(chunk.sentences, cosines):
                cov = coverage(sentence_terms(text[span.start:span.end]), weights, total)
                best = max(best, float(cos) + self.rerank_coverage * cov)
            out.append(best if best > -math.inf else 0.0)
        return out

    def cross_lingual_best(self, question: str, rows: list[int]) -> list[float]:
        """Per passage: its sentences' best similarity to the question across languages, or 0 for every passage
        when one of them holds a name of the question. That model sees topics, not names: for "Who commands Iran's
        Quds Force?" it puts "أكدوا مواصلة إيران للتخصيب" (0.50) far before the sentence naming the commander
        (0.19), and the name keys and e5's token match decide such questions. On the 304 English dev questions,
        weight 2: R@1 / R@5 0.497 / 0.809 -> 0.533 / 0.832 (with the answer's term too; applied to every question
        regardless of names 0.563 / 0.839, but the Quds question above goes wrong: benchmarks/quality.py docstring,
        thirteenth round)."""
        chunks = self.store.chunks(rows)
        texts = [[self.store.document(c.doc_id).text[s.start:s.end] for s in c.sentences] for c in chunks]
        flat = [t for ts in texts for t in ts]
        if names_shared(question, flat):
            return [0.0] * len(rows)
        cosines = self.cross_lingual.similarities(question, flat)
        out, i = [], 0
        for ts in texts:
            out.append(float(cosines[i:i + len(ts)].max()) if ts else 0.0)
            i += len(ts)
        return out

    def search(self, question: str, k: int = 5) -> list[Hit]:
        ranked, evidence = self.rank(question, k)
        return to_hits(self.store, ranked, evidence)


def to_hits(store: IndexStore, ranked: Ranked, evidence: dict[int, dict[str, tuple[int, float]]] | None = None) -> list[Hit]:
    chunks = store.chunks(ranked.rows)
    hits = []
    for i, (row, chunk, score) in enumerate(zip(ranked.rows, chunks, ranked.scores), start=1):
        ev = (evidence or {}).get(row, {})
        hits.append(Hit(chunk=chunk, score=score, rank=i, row=row,
                        scores={name: s for name, (_, s) in ev.items()},
                        ranks={name: r for name, (r, _) in ev.items()}))
    return hits


def single_retriever_search(retriever, question: str, k: int) -> list[Hit]:
    """Hits from one retriever alone (for `rag eval` comparisons)."""
    ranked = retriever.rank(question, k)
    return to_hits(retriever.store, ranked, {r: {retriever.name: (i, s)} for i, (r, s) in
                                             enumerate(zip(ranked.rows, ranked.scores), start=1)})
