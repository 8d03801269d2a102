"""The hybrid retriever's second stage and the answerer's confidence features, on the bundled articles with the
real model, FAISS and BM25."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag.answer import AnswerConfig, ExtractiveAnswerer
from rag.confidence import CONFIDENCE_FEATURES, CROSS_LANGUAGE_FEATURES
from rag.arabic import tokenize
from rag.retrieval import HybridRetriever, idf, max_sim

TALKS = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"
TALKS_DOC = "002_f7322d59d6e02373"
ELSEWHERE = "ما هي عاصمة أستراليا؟"


def hybrid(assistant, **kw) -> HybridRetriever:
    s = assistant.settings
    return HybridRetriever(assistant.store, assistant.encode_query, candidates=s.candidates, alpha=s.fusion_alpha, **kw)


def test_second_stage_adds_the_best_sentence_score_to_the_fused_score(assistant):
    first = {h.row: h.score for h in hybrid(assistant, rerank_depth=0).search(TALKS, 50)}
    second = hybrid(assistant, rerank_depth=20, rerank_weight=2.0, rerank_coverage=0.25)
    hits = second.search(TALKS, 5)
    q = assistant.encode_query(TALKS)
    weights = {t: idf(assistant.store, t) for t in set(tokenize(TALKS))}
    total = sum(weights.values())
    for h in hits:
        text = assistant.store.document(h.chunk.doc_id).text
        cosines = assistant.store.chunk_sentence_vectors(h.row) @ q
        best = max(float(c) + 0.25 * sum(w for t, w in weights.items() if t in set(tokenize(text[s.start:s.end])))
                   / total for s, c in zip(h.chunk.sentences, cosines))
        assert h.score == pytest.approx(first[h.row] + 2.0 * best, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].chunk.doc_id == TALKS_DOC


def test_second_stage_off_is_the_plain_fusion(assistant):
    plain = hybrid(assistant, rerank_depth=0).search(TALKS, 5)
    assert max(h.score for h in plain) <= 1.0 + 1e-9  # alpha * 1 + (1 - alpha) * 1 at most


def test_one_passage_per_document_reads_distinct_documents(assistant):
    many = hybrid(assistant, one_per_document=False).search(TALKS, 10)
    assert len({h.chunk.doc_id for h in many}) < len(many)  # the bundled articles have several passages each
    distinct = hybrid(assistant, one_per_document=True).search(TALKS, 10)
    docs = [h.chunk.doc_id for h in distinct]
    assert len(docs) == len(set(docs)) == assistant.store.document_count()
    assert docs[0] == many[0].chunk.doc_id


def test_confidence_features_come_from_the_best_sentence_and_the_passages(assistant):
    answerer = ExtractiveAnswerer(assistant.store, AnswerConfig())
    hits = assistant.hybrid.search(TALKS, 5)
    best = answerer.score_sentences(TALKS, assistant.encode_query(TALKS), hits)[0]
    f = answerer.features(TALKS, best, hits)
    assert tuple(f) == (*CONFIDENCE_FEATURES, "late_top", "names_found", "crosslingual_top")
    assert set(CROSS_LANGUAGE_FEATURES) <= set(f)
    assert f["crosslingual_top"] == 0.0  # an Arabic question is not scored across languages
    assert f["names_found"] == 1.0  # nor does it name anything in Latin letters
    assert f["late_top"] == 0.0  # this answerer has no question token vectors
    late = assistant.extractive.features(TALKS, best, hits)["late_top"]
    q = assistant.encode_query.tokens(TALKS)
    assert late == pytest.approx(max(max_sim(q, similarities=assistant.store.token_similarities(h.row, q)[0])
                                      for h in hits))
    assert 0 < f["coverage"] <= f["passage_coverage"] <= 1
    dense = sorted((h.scores["dense"] for h in hits if "dense" in h.scores), reverse=True)
    assert f["dense_top"] == pytest.approx(dense[0]) and f["dense_margin"] == pytest.approx(dense[0] - dense[1])
    assert 0 <= f["bm25_margin"] <= 1


def test_confidence_separates_an_answerable_question_from_one_the_articles_cannot_answer(assistant):
    answerer = assistant.extractive
    conf = {}
    for q in (TALKS, ELSEWHERE):
        hits = assistant.hybrid.search(q, 5)
        best = answerer.score_sentences(q, assistant.encode_query(q), hits)[0]
        conf[q] = answerer.confidence(q, best, hits, "ar")
        assert 0.0 <= conf[q] <= 1.0 and not math.isnan(conf[q])
    assert conf[TALKS] >= assistant.settings.abstain_threshold > conf[ELSEWHERE]


def test_a_zero_threshold_never_abstains(assistant):
    answerer = ExtractiveAnswerer(assistant.store, AnswerConfig(abstain_threshold=0))
    q = ELSEWHERE
    ans = answerer.answer(q, assistant.encode_query(q), assistant.hybrid.search(q, 5))
    assert not ans.abstained and 1 <= len(ans.citations) <= AnswerConfig().max_sentences
    assert np.isfinite([c.score for c in ans.citations]).all()


def test_adjacent_sentences_follow_each_other_in_the_article(assistant):
    answerer = assistant.extractive
    hits = assistant.hybrid.search(TALKS, 5)
    scored = answerer.score_sentences(TALKS, assistant.encode_query(TALKS), hits)
    by_span = {(s.hit.chunk.doc_id, s.span.start): s for s in scored}
    chunk = next(h.chunk for h in hits if len(h.chunk.sentences) >= 3)
    first, second, third = (by_span[(chunk.doc_id, sp.start)] for sp in chunk.sentences[:3])
    assert answerer.adjacent(first, second) and answerer.adjacent(second, first)
    assert not answerer.adjacent(first, third) and not answerer.adjacent(first, first)
    other = next(s for s in scored if s.hit.chunk.doc_id != chunk.doc_id)
    assert not answerer.adjacent(first, other)


def test_the_second_sentence_is_the_best_ones_neighbour_within_the_wider_margin(assistant):
    q, v = TALKS, assistant.encode_query(TALKS)
    hits = assistant.hybrid.search(q, 5)
    neighbours_only = ExtractiveAnswerer(assistant.store, AnswerConfig(
        max_sentences=2, second_sentence_margin=0.0, neighbour_margin=1.0, abstain_threshold=0, max_chars=0))
    scored = neighbours_only.score_sentences(q, v, hits)
    best = scored[0]
    expected = next(s for s in scored[1:] if neighbours_only.adjacent(s, best))
    ans = neighbours_only.answer(q, v, hits)
    assert {(c.doc_id, c.start) for c in ans.citations} == {(best.hit.chunk.doc_id, best.span.start),
                                                           (expected.hit.chunk.doc_id, expected.span.start)}
    assert ans.citations[0].end <= ans.citations[1].start  # read in the article's order
    anywhere = ExtractiveAnswerer(assistant.store, AnswerConfig(
        max_sentences=2, second_sentence_margin=1.0, neighbour_margin=0.0, abstain_threshold=0, max_chars=0)).answer(q, v, hits)
    assert {(c.doc_id, c.start) for c in anywhere.citations} == {
        (s.hit.chunk.doc_id, s.span.start) for s in scored[:2]}
    alone = ExtractiveAnswerer(assistant.store, AnswerConfig(
        max_sentences=2, second_sentence_margin=0.0, neighbour_margin=0.0, abstain_threshold=0, max_chars=0)).answer(q, v, hits)
    assert len(alone.citations) == 1 or alone.citations[0].score == alone.citations[1].score


def test_late_interaction_adds_max_sim_against_the_stored_tokens(assistant):
    without = {h.row: h.score for h in hybrid(assistant, rerank_weight=3.0, late_weight=0.0).search(TALKS, 20)}
    hits = hybrid(assistant, rerank_weight=3.0, late_weight=5.0).search(TALKS, 5)
    q_tokens = assistant.encode_query.tokens(TALKS)
    late = {h.row: max_sim(q_tokens, similarities=assistant.store.token_similarities(h.row, q_tokens)[0]) for h in hits}
    for h in hits:
        assert h.score == pytest.approx(without[h.row] + 5.0 * late[h.row], abs=1e-5)
    assert hits[0].chunk.doc_id == TALKS_DOC
    # A question about the talks matches the talks' passage token by token better than an unrelated passage.
    other = next(h for h in assistant.hybrid.search(ELSEWHERE, 20) if h.chunk.doc_id != TALKS_DOC)
    assert late[hits[0].row] > max_sim(q_tokens, similarities=assistant.store.token_similarities(other.row, q_tokens)[0])


def test_stored_token_spans_point_into_their_chunk_or_the_title(assistant):
    store = assistant.store
    for row, chunk in store.all_chunks():
        tokens, spans = store.stored_token_vectors(row)
        title = spans[:, 0] < 0
        assert len(tokens) == len(spans) > 0 and (spans[title] == -1).all()
        inside = spans[~title]
        assert (inside[:, 0] >= chunk.start).all() and (inside[:, 1] <= chunk.end).all()
        # Together the tokens cover the chunk's text (the tokenizer may drop a rare character).
        text = store.document(chunk.doc_id).text
        covered = {i for s, e in inside for i in range(s, e)}
        visible = [i for i in range(chunk.start, chunk.end) if not text[i].isspace()]
        assert sum(i not in covered for i in visible) <= 0.01 * len(visible)


def test_answer_sentences_add_late_interaction_over_their_own_tokens(assistant):
    hits = assistant.hybrid.search(TALKS, 5)
    q = assistant.encode_query(TALKS)
    plain = ExtractiveAnswerer(assistant.store, AnswerConfig(late_weight=0.0, abstain_threshold=0),
                               query_tokens=assistant.encode_query.tokens)
    late = ExtractiveAnswerer(assistant.store, AnswerConfig(late_weight=0.5, abstain_threshold=0),
                              query_tokens=assistant.encode_query.tokens)
    no_encoder = ExtractiveAnswerer(assistant.store, AnswerConfig(late_weight=0.5, abstain_threshold=0))
    before = {(s.hit.row, s.span): s.score for s in plain.score_sentences(TALKS, q, hits)}
    assert {(s.hit.row, s.span): s.score for s in no_encoder.score_sentences(TALKS, q, hits)} == before
    q_tokens = assistant.encode_query.tokens(TALKS)
    scored = late.score_sentences(TALKS, q, hits)
    for s in scored:
        sims, spans = assistant.store.token_similarities(s.hit.row, q_tokens)
        own = sims[:, (spans[:, 1] > s.span.start) & (spans[:, 0] < s.span.end)]  # never the title's (-1, -1)
        assert s.score == pytest.approx(before[(s.hit.row, s.span)] + 0.5 * max_sim(q_tokens, similarities=own),
                                        abs=1e-5)
    assert "الأحد" in assistant.store.document(scored[0].hit.chunk.doc_id).text[scored[0].span.start:scored[0].span.end]


def test_a_sentence_repeated_in_a_near_duplicate_article_is_quoted_once(embedder, tmp_path):
    from rag.chain import Assistant, build_index
    from rag.config import BUNDLED_ARTICLES, get_settings

    # The same story syndicated by another outlet, one sentence near its end reworded: its sentences score
    # almost exactly as the original's, so without the rule the second citation is the first one again.
    corpus = tmp_path / "articles"
    corpus.mkdir()
    original = (BUNDLED_ARTICLES / f"{TALKS_DOC}.txt").read_text(encoding="utf-8")
    (corpus / f"{TALKS_DOC}.txt").write_text(original, encoding="utf-8")
    copy = original.replace("المصدر: الحرة", "المصدر: وكالات").replace(
        "وتتهم وزارة الدفاع الأميركية (البنتاغون)", "وتتهم وزارة الدفاع في واشنطن")
    assert copy.count("وكالات") == 1 and "في واشنطن الجماعة" in copy
    (corpus / "syndicated.txt").write_text(copy, encoding="utf-8")
    settings = get_settings().model_copy(update={"index_dir": tmp_path / "index"})
    build_index([corpus], settings, embedder)
    assistant = Assistant(settings, embedder=embedder)
    v, hits = assistant.encode_query(TALKS), assistant.hybrid.search(TALKS, 5)
    assert {h.chunk.doc_id for h in hits} == {TALKS_DOC, "syndicated"}

    def quotes(**config) -> list[str]:  # the three best sentences, whatever their scores
        answerer = ExtractiveAnswerer(assistant.store, AnswerConfig(
            max_sentences=3, second_sentence_margin=1.0, abstain_threshold=0, max_chars=0, **config),
            query_tokens=assistant.encode_query.tokens)
        return [c.quote for c in answerer.answer(TALKS, v, hits).citations]

    repeated = quotes(distinct_sentences=False)
    assert len(repeated) == 3 and len(set(repeated)) == 2
    distinct = quotes()
    assert len(distinct) == 3 and len(set(distinct)) == 3
    assert set(repeated) < set(distinct) and "الأحد" in " ".join(distinct)

    answerer = ExtractiveAnswerer(assistant.store, AnswerConfig(), query_tokens=assistant.encode_query.tokens)
    scored = answerer.score_sentences(TALKS, v, hits)
    document = assistant.store.document
    text = {(s.hit.chunk.doc_id, s.span.start): document(s.hit.chunk.doc_id).text[s.span.start:s.span.end]
            for s in scored}

    def find(doc: str, words: str):
        return next(s for s in scored if s.hit.chunk.doc_id == doc and words in text[(doc, s.span.start)])

    same = (find(TALKS_DOC, "تستأنف الأحد"), find("syndicated", "تستأنف الأحد"))
    reworded = (find(TALKS_DOC, "وتتهم وزارة الدفاع"), find("syndicated", "وتتهم وزارة الدفاع"))
    assert answerer.repeats(*same) and answerer.repeats(*reversed(same))
    assert not answerer.repeats(*reworded)  # 7 of 10 terms shared: said differently enough to keep both
    assert not answerer.repeats(same[0], reworded[0])


def test_a_question_in_another_language_chooses_sentences_without_shared_words(assistant):
    """The sentence score's lexical share counts for an Arabic question only (cross_language_lexical_weight)."""
    english = "How many American troops does the United States have in Iraq?"

    def scores(question: str, **config) -> dict:
        answerer = ExtractiveAnswerer(assistant.store, AnswerConfig(abstain_threshold=0, **config),
                                      query_tokens=assistant.encode_query.tokens)
        scored = answerer.score_sentences(question, assistant.encode_query(question), assistant.hybrid.search(question, 5))
        return {(s.hit.row, s.span): (s.score, s.coverage) for s in scored}

    shipped, heavier = scores(english), scores(english, lexical_weight=0.5)
    assert shipped == heavier  # the Arabic weight does not touch an English question
    assert any(cov > 0 for _, cov in shipped.values())  # though it shares names with the sentences (rag.names)
    counted = scores(english, cross_language_lexical_weight=0.1)
    for key, (score, cov) in shipped.items():
        assert counted[key][0] == pytest.approx(score + 0.1 * cov, abs=1e-6)
    arabic, arabic_heavier = scores(TALKS), scores(TALKS, lexical_weight=0.5)
    assert any(arabic_heavier[k][0] == pytest.approx(s + 0.4 * c, abs=1e-6) and c > 0 for k, (s, c) in arabic.items())


def test_the_second_stage_weighs_late_interaction_by_the_index_codec(assistant):
    from types import SimpleNamespace

    from rag.chain import LATE_WEIGHT_BY_CODEC, late_weight
    from rag.store.tokens.int8 import Int8Codec

    s = assistant.settings
    assert assistant.store.codec.name == "pq"
    assert assistant.hybrid.late_weight == late_weight(s, assistant.store) == LATE_WEIGHT_BY_CODEC["pq"]
    assert late_weight(s, SimpleNamespace(codec=Int8Codec())) == LATE_WEIGHT_BY_CODEC["int8"]
    assert LATE_WEIGHT_BY_CODEC["pq"] != LATE_WEIGHT_BY_CODEC["int8"]
    assert late_weight(s.model_copy(update={"rerank_late_weight": 2.5}), assistant.store) == 2.5


def test_bm25_runs_beside_the_dense_side_and_the_ranking_is_the_serial_one(assistant, monkeypatch):
    import threading

    store = assistant.store
    assert store.parallel_search
    threads = []
    search = type(store).lexical_search

    def recording(self, tokens, k):
        threads.append(threading.current_thread().name)
        return search(self, tokens, k)

    monkeypatch.setattr(type(store), "lexical_search", recording)
    questions = [TALKS, ELSEWHERE, "Who commands Iran's Quds Force?"]
    parallel = [hybrid(assistant).search(q, 10) for q in questions]
    assert len(threads) == 3 and all(name.startswith("retriever") for name in threads)
    monkeypatch.setattr(type(store), "parallel_search", False, raising=False)
    serial = [hybrid(assistant).search(q, 10) for q in questions]
    assert threads[3:] == [threading.current_thread().name] * 3
    for p, s in zip(parallel, serial):
        assert [(h.row, h.score, h.scores, h.ranks) for h in p] == [(h.row, h.score, h.scores, h.ranks) for h in s]


NEAR_TIE_QUESTIONS = [TALKS, "ما موقف ترمب من محادثات عمان مع ايران؟", "كم عدد الجنود الأمريكيين في العراق؟",
                      "من يقود فيلق القدس الإيراني؟", "ما الذي قاله عراقجي عن الصواريخ؟"]


def shipped(assistant, tie_margin: float) -> HybridRetriever:
    """The assistant's retriever (the shipped second stage) with another tie margin."""
    import copy

    retriever = copy.copy(assistant.hybrid)
    retriever.tie_margin = tie_margin
    return retriever


@pytest.mark.parametrize("margin", [0.05, 1.0])
def test_a_near_tie_at_the_top_goes_to_the_passage_bm25_scores_highest(assistant, margin):
    """Of the passages within `tie_margin` of the best second-stage score, the one with the highest BM25 score goes
    first; the rest keep their order (HybridRetriever.settle_tie_by_bm25)."""
    moved = 0
    for q in NEAR_TIE_QUESTIONS:
        plain, evidence = shipped(assistant, tie_margin=0.0).rank(q, 20)
        settled, _ = shipped(assistant, tie_margin=margin).rank(q, 20)
        fused = dict(zip(plain.rows, plain.scores))
        bm25 = {r: evidence.get(r, {}).get("bm25", (0, 0.0))[1] for r in plain.rows}
        near = [r for r in plain.rows if fused[r] >= plain.scores[0] - margin]
        first = max(near, key=lambda r: bm25[r])  # the earliest of equals: the plain order stands on a tie
        assert settled.rows == [first] + [r for r in plain.rows if r != first]
        assert dict(zip(settled.rows, settled.scores)) == fused  # the scores themselves are not changed
        moved += first != plain.rows[0]
    if margin == 1.0:
        assert moved  # a wide margin hands some of these questions' first place to BM25


def test_a_question_in_another_language_keeps_its_order_on_a_near_tie(assistant):
    """BM25's candidates count only in the question's language, so an English question over Arabic articles has no
    lexical evidence to settle a tie with."""
    q = "How many American troops does the United States have in Iraq?"
    plain, _ = shipped(assistant, tie_margin=0.0).rank(q, 20)
    assert shipped(assistant, tie_margin=10.0).rank(q, 20)[0].rows == plain.rows


def test_an_english_questions_near_tied_sentences_go_to_the_one_holding_its_names(assistant):
    """Among the sentences within cross_language_tie_margin of the best, the one holding the largest share of the
    question's terms and names (rag.names) goes first; an Arabic question, whose score counts them already, is
    left as it is."""
    def scored(question: str, margin: float):
        answerer = ExtractiveAnswerer(assistant.store, AnswerConfig(cross_language_tie_margin=margin),
                                      query_tokens=assistant.encode_query.tokens)
        return answerer.score_sentences(question, assistant.encode_query(question), assistant.hybrid.search(question, 5))

    def keys(scored_sentences):
        return [(s.hit.row, s.span) for s in scored_sentences]

    english = "Who commands Iran's Quds Force?"
    plain, wide = scored(english, 0.0), scored(english, 1.0)
    assert [s.score for s in plain] == sorted((s.score for s in plain), reverse=True)
    first = max(plain, key=lambda s: s.coverage)  # within 1.0 of the best: every sentence here
    assert first.coverage > 0 and wide[0].coverage == first.coverage
    assert keys(wide) == keys([first] + [s for s in plain if s is not first])
    arabic = "من يقود فيلق القدس الإيراني؟"
    assert keys(scored(arabic, 1.0)) == keys(scored(arabic, 0.0))
