"""The cross-language model (rag/crosslingual.py): USE multilingual, really run, and what the answerer reads of it."""

from __future__ import annotations

import numpy as np
import pytest

from rag.answer import AnswerConfig, ExtractiveAnswerer
from rag.crosslingual import CrossLingualEncoder
from rag.confidence import CONFIDENCE_MODELS, probability
from rag.retrieval import HybridRetriever, names_found, names_shared

TROOPS = "وللولايات المتحدة 2500 جندي في العراق."
UNRELATED = "ارتفعت أسعار الذهب في الأسواق العالمية يوم الجمعة."


@pytest.fixture(scope="module")
def encoder():
    return CrossLingualEncoder(cache_size=8)


def test_an_english_question_is_closest_to_the_arabic_sentence_that_answers_it(encoder):
    cos = encoder.similarities("How many American troops are in Iraq?", [UNRELATED, TROOPS])
    assert cos.shape == (2,) and cos[1] > cos[0] + 0.1
    vectors = encoder.encode([TROOPS, UNRELATED])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_sentences_are_encoded_once_and_the_cache_stays_bounded(encoder):
    calls = []
    model = encoder.model
    original = model.encode
    model.encode = lambda texts: calls.append(list(texts)) or original(texts)
    try:
        first = encoder.encode(["sentence one", TROOPS, "sentence one"])
        again = encoder.encode([TROOPS, "sentence one"])
        assert np.allclose(first[0], first[2]) and np.allclose(again[1], first[0]) and np.allclose(again[0], first[1])
        assert sorted(t for c in calls for t in c) in (["sentence one"], sorted(["sentence one", TROOPS]))
        encoder.encode([f"filler {i}" for i in range(20)])
        assert len(encoder._cache) == encoder.cache_size
    finally:
        model.encode = original
    assert encoder.similarities("anything", []).shape == (0,)


def answerer_with(assistant, cross_lingual):
    return ExtractiveAnswerer(assistant.store, AnswerConfig(), query_tokens=assistant.encode_query.tokens,
                              cross_lingual=cross_lingual)


def test_an_english_questions_abstention_reads_it_and_an_arabic_one_never_loads_it(assistant):
    fresh = CrossLingualEncoder()
    answerer = answerer_with(assistant, fresh)
    q = "كم عدد الجنود الأمريكيين في العراق؟"
    answer = answerer.answer(q, assistant.encode_query(q), assistant.hybrid.search(q, 5))
    assert not answer.abstained and fresh._model is None
    q = "How many American troops does the United States have in Iraq?"
    hits = assistant.hybrid.search(q, 5)
    best = answerer.score_sentences(q, assistant.encode_query(q), hits)[0]
    top = answerer.features(q, best, hits)["crosslingual_top"]
    assert fresh._model is not None
    sentences = [assistant.store.document(h.chunk.doc_id).text[s.start:s.end] for h in hits for s in h.chunk.sentences]
    assert top == pytest.approx(float(fresh.similarities(q, sentences).max()))
    assert 0.3 < top < 1  # the passages read hold the sentence on the 2,500 troops
    # the question names Iraq and the United States, which the sentences hold: their scores do not read it
    assert names_shared(q, sentences)
    plain = answerer_with(assistant, None)
    assert [(s.hit.row, s.span, s.score) for s in plain.score_sentences(q, assistant.encode_query(q), hits)] == \
        [(s.hit.row, s.span, s.score) for s in answerer.score_sentences(q, assistant.encode_query(q), hits)]
    assert plain.features(q, best, hits)["crosslingual_top"] == 0.0


NAMELESS = "How many soldiers does the coalition have in the country?"  # no capitalised name: nothing to share


def test_a_question_without_shared_names_is_also_ranked_by_it(assistant):
    fresh = CrossLingualEncoder()
    plain = HybridRetriever(assistant.store, assistant.encode_query, late_weight=assistant.hybrid.late_weight)
    across = HybridRetriever(assistant.store, assistant.encode_query, late_weight=assistant.hybrid.late_weight,
                             cross_lingual=fresh, cross_lingual_weight=2.0)
    before = {h.row: h.score for h in plain.search(NAMELESS, 20)}
    after = {h.row: h.score for h in across.search(NAMELESS, 20)}
    rows = list(before)
    best = dict(zip(rows, across.cross_lingual_best(NAMELESS, rows)))
    assert set(after) == set(before) and any(b > 0.2 for b in best.values())
    for row in rows:
        assert after[row] == pytest.approx(before[row] + 2.0 * best[row], abs=1e-6)
    hits = plain.search(NAMELESS, 5)
    on = ExtractiveAnswerer(assistant.store, AnswerConfig(cross_lingual_weight=0.1),
                            query_tokens=assistant.encode_query.tokens, cross_lingual=fresh)
    off = ExtractiveAnswerer(assistant.store, AnswerConfig(cross_lingual_weight=0.0),
                             query_tokens=assistant.encode_query.tokens, cross_lingual=fresh)
    similarity = on.similarities(NAMELESS, hits)
    scored = {(s.hit.chunk.doc_id, s.span.start, s.span.end): s.score
              for s in off.score_sentences(NAMELESS, assistant.encode_query(NAMELESS), hits)}
    for s in on.score_sentences(NAMELESS, assistant.encode_query(NAMELESS), hits):
        key = (s.hit.chunk.doc_id, s.span.start, s.span.end)
        assert s.score == pytest.approx(scored[key] + 0.1 * similarity[key], abs=1e-6)


def test_a_question_whose_names_the_passages_hold_is_ranked_without_it(assistant):
    """It sees topics, not names: for this question it scores a sentence on Iran's enrichment far above the one
    naming the commander, and the name keys (Quds = القدس) decide instead."""
    q = "Who commands Iran's Quds Force?"
    plain = HybridRetriever(assistant.store, assistant.encode_query, late_weight=assistant.hybrid.late_weight)
    across = HybridRetriever(assistant.store, assistant.encode_query, late_weight=assistant.hybrid.late_weight,
                             cross_lingual=CrossLingualEncoder(), cross_lingual_weight=2.0)
    head = [h.row for h in plain.search(q, 20)]
    assert across.cross_lingual_best(q, head) == [0.0] * len(head)
    assert [(h.row, h.score) for h in across.search(q, 10)] == [(h.row, h.score) for h in plain.search(q, 10)]


def test_the_english_confidence_model_follows_the_setting(assistant, bundled_index, embedder):
    from rag.chain import Assistant

    on, off = answerer_with(assistant, CrossLingualEncoder()), answerer_with(assistant, None)
    assert on.confidence_model("en") == "cross_language" and off.confidence_model("en") == "cross_language_e5"
    assert on.confidence_model("ar") == off.confidence_model("ar") == "same_language"
    assert assistant.extractive.cross_lingual is not None  # RAG_CROSS_LINGUAL defaults to on
    plain = Assistant(bundled_index.model_copy(update={"cross_lingual": False}), embedder=embedder)
    assert plain.extractive.cross_lingual is None
    q = "Who commands Iran's Quds Force?"
    for answerer in (on, off):
        hits = assistant.hybrid.search(q, 5)
        answer = answerer.answer(q, assistant.encode_query(q), hits)
        assert not answer.abstained and "قآني" in answer.answer
    for q in ("What is the capital of Mongolia?", "Who won the 2018 World Cup?"):
        assert on.answer(q, assistant.encode_query(q), assistant.hybrid.search(q, 5)).abstained


def test_names_found_is_the_share_of_the_questions_names_some_sentence_holds():
    q = "What did Trump say about Araghchi?"  # ترامب = trmb, عراقجي = rkj
    assert names_found(q, ["قال ترامب إن المحادثات مستمرة."]) == 0.5
    assert names_found(q, ["قال ترامب إن المحادثات مستمرة.", "التقى عراقجي بنظيره."]) == 1.0
    assert names_found(q, [UNRELATED]) == 0.0 and names_found(q, []) == 0.0
    # "Quds Force" is one name, found where القدس is (no Arabic word has the key of "Force")
    qaani = "Who refused to meet the Quds Force commander Esmail Qaani?"
    assert names_found(qaani, ["رفض لقاء قائد فيلق القدس."]) == 0.5
    assert names_found(qaani, ["رفض لقاء قائد فيلق القدس إسماعيل قاآني."]) == 1.0
    assert names_found("What did he say about the talks?", []) == 1.0  # names nothing: no evidence either way
    assert names_found("Did Iran answer?", []) == 1.0  # a two-consonant key (rn) names plain words as often
    assert names_found("متى تستأنف المحادثات بين العراق والولايات المتحدة؟", []) == 1.0


def test_an_english_question_naming_no_one_the_passages_name_is_less_likely_answered(assistant):
    answerer = assistant.extractive
    weights = CONFIDENCE_MODELS[answerer.confidence_model("en")]
    assert weights["names_found"] > 0
    q = "What did Zelensky say about the talks in Oman?"  # the bundled articles never name him
    hits = assistant.hybrid.search(q, 5)
    best = answerer.score_sentences(q, assistant.encode_query(q), hits)[0]
    f = answerer.features(q, best, hits)
    assert f["names_found"] == 0.0
    assert answerer.confidence(q, best, hits, "en") < probability(weights, {**f, "names_found": 1.0})
