"""The cross-language model (rag/crosslingual.py): USE multilingual, really run, and what the answerer reads of it."""

from __future__ import annotations

import numpy as np
import pytest

from rag.answer import AnswerConfig, ExtractiveAnswerer
from rag.crosslingual import CrossLingualEncoder

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
    # the sentences' scores and order do not depend on it
    plain = answerer_with(assistant, None)
    assert [(s.hit.row, s.span, s.score) for s in plain.score_sentences(q, assistant.encode_query(q), hits)] == \
        [(s.hit.row, s.span, s.score) for s in answerer.score_sentences(q, assistant.encode_query(q), hits)]
    assert plain.features(q, best, hits)["crosslingual_top"] == 0.0


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
