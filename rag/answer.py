"""Extractive answers: the sentences of the retrieved passages that best answer the question, each cited.

A sentence's score mixes its contextual similarity to the question (sentence vectors computed at index time
from the passage's own forward pass, so scoring needs no model call), the IDF-weighted share of the
question's terms it contains, whether it holds the kind of thing the question asks for (a number or date
for متى / كم / when / how many), and the rank of its passage. The assistant abstains when the confidence
that the answer is there (a logistic model over the best sentence and the retrieval evidence, calibrated on
../shared/eval by benchmarks/quality.py) is under a threshold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.arabic import STOPWORDS, detect_language, normalize, tokenize
from rag.confidence import CONFIDENCE_MODELS, probability
from rag.crosslingual import CrossLingualEncoder
from rag.names import KEY_PREFIX, arabic_keys, question_names
from rag.reader import Reader
from rag.selector import CANDIDATES, SentenceSelector, reorder
from rag.retrieval import (coverage, max_sim, names_found, names_shared, sentence_terms, settle_near_tie,
                           term_weights)
from rag.short_answer import (SpanConfig, extend_number, fit_span, mark_asked, pick, question_type, sentence_words,
                              word_matches)
from rag.span_scorer import SpanScorer, candidates, learned_span_scorer, word_means, word_rarity
from rag.store import IndexStore
from rag.types import Answer, Citation, Hit, ShortAnswer, Span

ABSTAIN_MESSAGE = {
    "ar": "لم أجد في المقالات المتاحة ما يجيب عن هذا السؤال.",
    "en": "I could not find an answer to this question in the indexed articles.",
}

# A sentence after the best one is quoted cut to its clauses when it does not fit whole, unless fewer characters
# than this are left: a shorter piece of a clause rarely says anything on its own.
MIN_ROOM = 60

_ASKS_NUMBER = re.compile(
    r"(^|\s)(متى|كم|في أي عام|في اي عام|في أي سنة|في اي سنه|ما تاريخ|when|how many|how much|what year|which year)(\s|$)",
    re.IGNORECASE,
)
_HAS_NUMBER = re.compile(
    r"[0-9٠-٩]|يناير|فبراير|مارس|أبريل|ابريل|مايو|يونيو|يوليو|أغسطس|سبتمبر|أكتوبر|نوفمبر|ديسمبر|"
    r"كانون|شباط|آذار|نيسان|أيار|حزيران|تموز|آب|أيلول|تشرين|"
    r"الأحد|الاثنين|الإثنين|الثلاثاء|الأربعاء|الخميس|الجمعة|السبت"
)



@dataclass(frozen=True)
class AnswerConfig:
    # At most this many sentences, and within max_chars in all (below): a third one lifts containment@400 more
    # than the length it adds (benchmarks/quality.py docstring, tenth round).
    max_sentences: int = 3
    lexical_weight: float = 0.1
    # A question in another language than the articles' shares words with a sentence only by accident (a Latin
    # word in brackets) or through a name key (rag.names), and favouring those sentences chose the wrong one: on
    # the 304 English dev questions, every one answered, containment@400 0.444 with 0.1, 0.490 with 0.02, 0.500
    # with 0 (ARCD's 0.455 -> 0.510, MLQA's 0.423 -> 0.481), 0.418 with -0.05 (benchmarks/quality.py docstring).
    cross_language_lexical_weight: float = 0.0
    # ... but among the sentences within this of the best one's score, which the model's vectors do not tell
    # apart, the one holding the largest share of the question's terms and names goes first (`settle_near_tie`).
    # English dev questions with openvino-int8: c@400 0.4934 either way, negatives refused 0.5658 -> 0.5724
    # (benchmarks/quality.py docstring, eleventh round).
    cross_language_tie_margin: float = 0.005
    # ... + this x its similarity by the model trained across languages (rag/crosslingual.py) unless a sentence read
    # holds a name of the question, which that model does not see (rag.retrieval.names_shared; benchmarks/quality.py
    # docstring, thirteenth round).
    cross_lingual_weight: float = 0.1
    # ... + this x the share of its Arabic wording's terms (rag/translate/) the sentence holds.
    translated_lexical_weight: float = 0.05
    type_weight: float = 0.03
    rank_weight: float = 0.02
    # A second sentence joins only when nearly as good as the best, or, with a wider margin, when it is the best
    # one's neighbour in the article: it usually carries on the same statement (an answer after "وأضاف أن" or a
    # pronoun pointing back), and two adjacent sentences read as one passage. On ../shared/eval this raised
    # containment from 0.749 to 0.764, at 1.58 sentences per answer instead of 1.59 (benchmarks/quality.py).
    second_sentence_margin: float = 0.02
    neighbour_margin: float = 0.08
    # A sentence that repeats one already chosen (the same words in a near-duplicate passage: an updated or
    # syndicated version of an article, or Wikipedia's overlapping paragraphs) is not quoted again. On
    # ../shared/eval 132 of 1,156 two-sentence answers quoted one sentence twice; without that, and with the
    # second-sentence margin 0.015 -> 0.02 to keep the length, containment with every question answered goes
    # 0.780 -> 0.788 (benchmarks/quality.py, rows +late interaction and +distinct).
    distinct_sentences: bool = True
    # Late interaction: + late_weight * max_sim of the question's tokens against the sentence's own tokens (see
    # rag.retrieval.max_sim). It spreads the scores, hence the margins above (0.01 / 0.06 without it).
    late_weight: float = 0.5
    abstain_threshold: float = 0.5  # on the confidence probability; 0 never abstains
    # The whole answer text (quotes and their [n] markers) stays within max_chars: a best sentence longer than that
    # is quoted as its clauses around the one holding most of the question's words (rag.short_answer.fit_span);
    # a later sentence that does not fit whole is quoted as its clauses in the room left (`cut_later`; False:
    # left out). On ../shared/eval, containment@400 pooled 0.680 -> 0.695 with two sentences at most, 0.702 with
    # three (mean answer 253 -> 275 -> 286 characters; benchmarks/quality.py, rows +cut to fit, +third sentence).
    # 0 = no limit.
    max_chars: int = 400
    cut_later: bool = True
    # The short answer (rag.short_answer); a sentence word matches the question by stem, or, when the question is
    # in another language, by a name key (rag.names) or a token cosine within token_margin of the sentence's
    # closest word's. None: no short answer.
    short: SpanConfig | None = SpanConfig()
    # The short answer picked by the learned model (rag.span_scorer) where it can read the index, else the rules.
    learned_short: bool = True
    token_margin: float = 0.05
    # A question in another language than the article's gets its short answer from the extractive reader
    # (rag/reader.py) where one is loaded: the words it marks in the best sentence. On the English dev questions
    # EM / F1 0.026 / 0.094 -> 0.056 / 0.178 (benchmarks/quality.py, rows +short answer, +reader). Arabic questions
    # keep the learned picker: on MLQA the reader's F1 was 0.214 against 0.208, its EM 0.050 against 0.106.
    cross_language_reader: bool = True
    # The sentence selector (rag/selector.py), where one is loaded, picks the sentence quoted first among the
    # best-scored: the highest sentence score + this x its score (a logit; its spread is some ten units, the
    # sentence scores' some hundredths). benchmarks/quality.py docstring, sixteenth round.
    selector_weight: float = 0.01
    # ... and only when that sum leads the first sentence's by this much: a near tie stays with the sentence scores
    # (held out, the best sentence holds the answer: MLQA 0.5725 -> 0.5648, English 0.5428 either way; it keeps
    # "إسماعيل قآني" as the short answer of "من يقود فيلق القدس الإيراني؟", whose two sentences name him).
    selector_lead: float = 0.005
    # ... and the candidate with the next highest sum, when from the pick's article, joins it when within this of
    # the pick's sum: it often answers when the pick does not (held out, every question answered, MLQA c@400 0.683 ->
    # 0.693 for 2 more characters; from any article 0.700, but it then displaced the sentences that answer Trump's
    # position on the Oman talks; benchmarks/quality.py docstring, seventeenth round). None: it does not join.
    selector_join_margin: float | None = 0.05


@dataclass
class ScoredSentence:
    hit: Hit
    span: Span
    score: float
    cos: float
    coverage: float
    late: float = 0.0  # max_sim of the question's tokens against the sentence's (0 without late interaction)


class ExtractiveAnswerer:
    def __init__(self, store: IndexStore, config: AnswerConfig = AnswerConfig(),
                 query_tokens: Callable[[str], np.ndarray] | None = None, reader: Reader | None = None,
                 cross_lingual: CrossLingualEncoder | None = None,
                 translate: Callable[[str], str | None] | None = None, selector: SentenceSelector | None = None):
        """`query_tokens`: question -> its token vectors (QueryEncoder.tokens); without it, or without token
        vectors in the index, sentences are scored without late interaction. `reader`: the extractive reader
        (rag/reader.py), for the short answers of questions in another language; `cross_lingual`: the model whose
        similarity across languages their abstention reads (rag/crosslingual.py); `translate`: their Arabic
        wording (rag/translate/; the retriever's translator, whose cache already holds it); `selector`: the sentence
        selector (rag/selector.py) that picks the sentence quoted first."""
        self.store, self.config, self.query_tokens, self.reader = store, config, query_tokens, reader
        self.cross_lingual, self.translate, self.selector = cross_lingual, translate, selector

    def score_sentences(self, question: str, query_vector: np.ndarray, hits: list[Hit]) -> list[ScoredSentence]:
        weights, total = term_weights(self.store, question)
        same_language = detect_language(question) == "ar"
        lexical_weight = self.config.lexical_weight if same_language else self.config.cross_language_lexical_weight
        wants_number = bool(_ASKS_NUMBER.search(question.strip()))
        late = (self.config.late_weight and self.query_tokens is not None and self.store.has_tokens)
        q_tokens = self.query_tokens(question) if late else None
        seen: set[tuple[str, int, int]] = set()
        out: list[ScoredSentence] = []
        across = self.across(question, hits) if not same_language else {}
        wording = (self.translate(question) if not same_language and self.translate is not None
                   and self.config.translated_lexical_weight else None)
        t_weights, t_total = term_weights(self.store, wording) if wording else ({}, 0.0)
        for hit in hits:
            vectors = self.store.chunk_sentence_vectors(hit.row)
            cosines = vectors @ query_vector.astype(np.float32)
            doc_text = self.store.document(hit.chunk.doc_id).text
            if late:  # one product per passage; each sentence reads its own tokens' columns
                similarities, token_spans = self.store.token_similarities(hit.row, q_tokens)
            for span, cos in zip(hit.chunk.sentences, cosines):
                key = (hit.chunk.doc_id, span.start, span.end)
                if key in seen:
                    continue
                seen.add(key)
                sentence = doc_text[span.start:span.end]
                terms = sentence_terms(sentence)
                cov = coverage(terms, weights, total)
                score = (float(cos) + lexical_weight * cov
                         + self.config.type_weight * (wants_number and bool(_HAS_NUMBER.search(sentence)))
                         + self.config.rank_weight / hit.rank)
                match = 0.0
                if late:
                    inside = (token_spans[:, 1] > span.start) & (token_spans[:, 0] < span.end)
                    match = max_sim(q_tokens, similarities=similarities[:, inside])
                    score += self.config.late_weight * match
                score += self.config.cross_lingual_weight * across.get(key, 0.0)
                if wording:
                    score += self.config.translated_lexical_weight * coverage(terms, t_weights, t_total)
                out.append(ScoredSentence(hit, span, score, float(cos), cov, match))
        out.sort(key=lambda s: -s.score)
        if not same_language and self.config.cross_language_tie_margin > 0:
            out = settle_near_tie(out, lambda s: s.score, lambda s: s.coverage,
                                  self.config.cross_language_tie_margin)
        return self.select(question, out)

    def select(self, question: str, scored: list[ScoredSentence]) -> list[ScoredSentence]:
        """The sentences quoted first, as the sentence selector orders the CANDIDATES best-scored
        (rag.selector.reorder). Unchanged without a selector."""
        if self.selector is None or not self.config.selector_weight or len(scored) < 2:
            return scored
        texts = [self.store.document(s.hit.chunk.doc_id).text[s.span.start:s.span.end] for s in scored[:CANDIDATES]]
        return reorder(scored, self.selector.scores(question, texts), self.config)

    def sentences_read(self, hits: list[Hit]) -> dict[tuple[str, int, int], str]:
        """(document, start, end) -> the text of each sentence of the passages read."""
        return {(h.chunk.doc_id, s.start, s.end): self.store.document(h.chunk.doc_id).text[s.start:s.end]
                for h in hits for s in h.chunk.sentences}

    def similarities(self, question: str, hits: list[Hit]) -> dict[tuple[str, int, int], float]:
        """(document, start, end) -> the sentence's similarity to a question in another language by the model
        trained across languages (rag/crosslingual.py); empty for an Arabic question, or without the model."""
        if self.cross_lingual is None or detect_language(question) == "ar" or not hits:
            return {}
        read = self.sentences_read(hits)
        return dict(zip(read, map(float, self.cross_lingual.similarities(question, list(read.values())))))

    def across(self, question: str, hits: list[Hit]) -> dict[tuple[str, int, int], float]:
        """The similarities the sentence scores add: none when a sentence read holds a name of the question."""
        if not self.config.cross_lingual_weight or self.cross_lingual is None:
            return {}
        return {} if names_shared(question, list(self.sentences_read(hits).values())) else \
            self.similarities(question, hits)

    def features(self, question: str, best: ScoredSentence, hits: list[Hit]) -> dict[str, float]:
        """What the confidence models read (CONFIDENCE_FEATURES, CROSS_LANGUAGE_FEATURES), from the best sentence
        and the passages."""
        weights, total = term_weights(self.store, question)
        text = self.store.document(best.hit.chunk.doc_id).text
        passage_terms = frozenset().union(*(sentence_terms(text[s.start:s.end]) for s in best.hit.chunk.sentences))
        dense = sorted((h.scores.get("dense", 0.0) for h in hits), reverse=True) + [0.0, 0.0]
        bm25 = sorted((h.scores.get("bm25", 0.0) for h in hits), reverse=True) + [0.0, 0.0]
        return {"cos": best.cos, "coverage": best.coverage, "late": best.late,
                "passage_coverage": coverage(passage_terms, weights, total),
                "dense_top": dense[0], "dense_margin": dense[0] - dense[1],
                "bm25_top": bm25[0] / total, "bm25_margin": (bm25[0] - bm25[1]) / bm25[0] if bm25[0] > 0 else 0.0,
                "late_top": self.late_top(question, hits),
                "names_found": names_found(question, list(self.sentences_read(hits).values())),
                "crosslingual_top": max(self.similarities(question, hits).values(), default=0.0)}

    def late_top(self, question: str, hits: list[Hit]) -> float:
        """The best late interaction (rag.retrieval.max_sim) of the question's tokens over the passages read; 0
        without token vectors."""
        if self.query_tokens is None or not self.store.has_tokens or not hits:
            return 0.0
        q = self.query_tokens(question)
        return max(max_sim(q, similarities=self.store.token_similarities(h.row, q)[0]) for h in hits)

    def confidence(self, question: str, best: ScoredSentence, hits: list[Hit], question_language: str) -> float:
        """Probability that the answer is in what was retrieved (see CONFIDENCE_MODELS)."""
        return probability(CONFIDENCE_MODELS[self.confidence_model(question_language)],
                           self.features(question, best, hits))

    def confidence_model(self, question_language: str) -> str:
        if question_language == "ar":
            return "same_language"
        return "cross_language" if self.cross_lingual is not None else "cross_language_e5"

    def adjacent(self, a: ScoredSentence, b: ScoredSentence) -> bool:
        """Whether two sentences follow each other in their article (only whitespace between them)."""
        if a.hit.chunk.doc_id != b.hit.chunk.doc_id:
            return False
        first, second = sorted((a.span, b.span), key=lambda span: span.start)
        if first.end > second.start:
            return False
        return not self.store.document(a.hit.chunk.doc_id).text[first.end:second.start].strip()

    def repeats(self, a: ScoredSentence, b: ScoredSentence) -> bool:
        """Whether two sentences say the same: equal or one inside the other once normalised, or sharing at
        least 90% of their terms (Jaccard), as a sentence does in a lightly edited copy of its paragraph."""
        ta = self.store.document(a.hit.chunk.doc_id).text[a.span.start:a.span.end]
        tb = self.store.document(b.hit.chunk.doc_id).text[b.span.start:b.span.end]
        na, nb = normalize(ta), normalize(tb)
        if na in nb or nb in na:
            return True
        terms_a, terms_b = sentence_terms(ta), sentence_terms(tb)
        return bool(terms_a and terms_b) and len(terms_a & terms_b) / len(terms_a | terms_b) >= 0.9

    def answer(self, question: str, query_vector: np.ndarray, hits: list[Hit]) -> Answer:
        lang = detect_language(question)
        scored = self.score_sentences(question, query_vector, hits)
        if not scored or (self.config.abstain_threshold > 0
                          and self.confidence(question, scored[0], hits, lang) < self.config.abstain_threshold):
            return Answer(question=question, answer=ABSTAIN_MESSAGE[lang], abstained=True)
        best = scored[0]
        chosen = [best]
        widest = max(self.config.second_sentence_margin, self.config.neighbour_margin)
        for s in scored[1:]:
            if len(chosen) >= self.config.max_sentences or s.score < best.score - widest:
                break
            margin = widest if self.adjacent(s, best) else self.config.second_sentence_margin
            if s.score < best.score - margin:
                continue
            if not (self.config.distinct_sentences and any(self.repeats(s, c) for c in chosen)):
                chosen.append(s)
        short = self.short_span(question, lang, best) if self.config.short is not None else None
        spans = self.fit(question, lang, chosen, best, short)
        # Read in the article's order: same document by position, documents by their best rank.
        order = sorted(range(len(chosen)), key=lambda i: (
            chosen[i].hit.rank if chosen[i].hit.chunk.doc_id != best.hit.chunk.doc_id else 0,
            chosen[i].hit.chunk.doc_id, spans[i].start))
        citations, parts, short_answer = [], [], None
        for n, i in enumerate(order, start=1):
            s, span = chosen[i], spans[i]
            doc = self.store.document(s.hit.chunk.doc_id)
            quote = doc.text[span.start:span.end]
            citations.append(Citation(n=n, id=f"{doc.id}:{span.start}-{span.end}", doc_id=doc.id, title=doc.title,
                                      quote=quote, start=span.start, end=span.end, score=round(s.score, 4)))
            parts.append(f"{quote} [{n}]")
            if s is best and short is not None and span.start <= short[0].start and short[0].end <= span.end:
                short_answer = ShortAnswer(text=doc.text[short[0].start:short[0].end], doc_id=doc.id,
                                           id=f"{doc.id}:{short[0].start}-{short[0].end}", start=short[0].start,
                                           end=short[0].end, n=n, kind=short[1])
        return Answer(question=question, answer=" ".join(parts), citations=citations, short_answer=short_answer)

    def sentence_words(self, question: str, lang: str, s: ScoredSentence):
        """The words of a scored sentence, those the question says marked (rag.short_answer.mark_asked)."""
        text = self.store.document(s.hit.chunk.doc_id).text
        words = sentence_words(text, s.span)
        match = None
        if lang != "ar":
            names = question_names(question, STOPWORDS)
            match = np.array([any(KEY_PREFIX + k in names for k in arabic_keys(w.key)) for w in words], dtype=bool)
            if self.query_tokens is not None and self.store.has_tokens:
                similarities, token_spans = self.store.token_similarities(s.hit.row, self.query_tokens(question))
                inside = (token_spans[:, 1] > s.span.start) & (token_spans[:, 0] < s.span.end)
                match |= word_matches(words, similarities[:, inside], token_spans[inside], self.config.token_margin)
        mark_asked(words, set(tokenize(question)), match)
        return words

    def short_span(self, question: str, lang: str, best: ScoredSentence, read: bool = True,
                   words: list | None = None) -> tuple[Span, str, list] | None:
        """The short answer's span in the best sentence, the question type, and the sentence's words (`words`, when
        given: its `sentence_words`); None when no phrase is picked with confidence. `read`: a question in another
        language is read by the reader (else the picker picks, as for the same language)."""
        kind = question_type(question)
        words = words if words is not None else self.sentence_words(question, lang, best)
        if read and lang != "ar" and self.reader is not None and self.config.cross_language_reader:
            return self.read_short(question, best, words, kind)
        scorer = self.span_scorer()
        picked = self.learned_pick(question, kind, words, best, scorer) if scorer else pick(words, kind, self.config.short)
        if picked is None:
            return None
        return Span(words[picked[0]].start, words[picked[1]].end), kind, words

    def read_short(self, question: str, best: ScoredSentence, words: list, kind: str) -> tuple[Span, str, list] | None:
        """The reader's span in the best sentence, widened to whole words; None when it marks no word."""
        text = self.store.document(best.hit.chunk.doc_id).text
        found = self.reader.read(question, [text[best.span.start:best.span.end]])[0]
        if found is None:
            return None
        start, end = best.span.start + found.start, best.span.start + found.end
        inside = [w for w in words if start < w.end and w.start < end]
        return (Span(inside[0].start, inside[-1].end), kind, words) if inside else None

    def span_scorer(self) -> SpanScorer | None:
        """The learned picker (rag.span_scorer) when it can read this index: its token vectors are kept and come
        from the model it was fitted on; otherwise the rules pick."""
        if not self.config.learned_short or self.query_tokens is None or not self.store.has_tokens:
            return None
        scorer = learned_span_scorer()
        return scorer if scorer is not None and scorer.model_id == self.store.manifest.model_id else None

    def learned_pick(self, question: str, kind: str, words: list, best: ScoredSentence,
                     scorer: SpanScorer) -> tuple[int, int] | None:
        """The learned picker's span (first, last word), or None below its confidence floor. One product through
        the token codec gives both the question tokens' cosines and the model's two directions per token."""
        q_tokens = self.query_tokens(question)
        sims, token_spans = self.store.token_similarities(best.hit.row, np.vstack([q_tokens, scorer.probes]))
        per_word = word_means(sims, words, token_spans)
        rarity = word_rarity(self.store, words)
        found = scorer.best(candidates(words, kind, per_word[:len(q_tokens)].max(axis=0), rarity), kind,
                            per_word[len(q_tokens):])
        if found is None or found[1] < self.config.short.min_probability:
            return None
        first, last = found[0].first, found[0].last
        return first, extend_number(words, first, last) if kind == "number" else last

    def fit(self, question: str, lang: str, chosen: list[ScoredSentence], best: ScoredSentence, short) -> list[Span]:
        """The span quoted for each chosen sentence, the whole answer text within max_chars: the best one whole, or
        cut to its clauses when longer than that; each next one whole, or cut to its clauses in the room left
        (`cut_later`), and left out (with those after it) when under MIN_ROOM characters are left. Drops the
        left-out ones from `chosen`."""
        limit = self.config.max_chars
        if not limit:
            return [s.span for s in chosen]
        spans: list[Span] = []
        used = -1  # the spaces between parts
        for n, s in enumerate(chosen, start=1):
            room = limit - used - 1 - len(f" [{n}]")
            if n > 1 and room < MIN_ROOM:
                del chosen[n - 1:]
                break
            span = s.span
            if n > 1 and len(span) > room and not self.config.cut_later:
                del chosen[n - 1:]
                break
            if len(span) > room:
                # The best one around the clause holding most of the question's words, not the short answer:
                # containment@400 0.718 -> 0.723 on ../shared/eval (benchmarks/quality.py docstring); a short answer
                # cut off is dropped. A later one around its own short answer where one is picked (the picker's,
                # no reader pass): cut at words around the question's, it lost the answer ("... الموافق 11 فبراير
                # 2024" of "when do the talks resume?").
                words = short[2] if s is best and short is not None else self.sentence_words(question, lang, s)
                found = self.short_span(question, lang, s, read=False, words=words) if s is not best else None
                keep = found[0] if found is not None and len(found[0]) <= room else None
                span = fit_span(self.store.document(s.hit.chunk.doc_id).text, s.span, room, keep, words)
            spans.append(span)
            used += 1 + len(span) + len(f" [{n}]")
        return spans
