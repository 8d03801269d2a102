"""The question translator (rag/translate/): Gemma 3 270M on llama.cpp, really run, and how BM25 uses its wording."""

from __future__ import annotations

import logging

import pytest

from rag.answer import AnswerConfig, ExtractiveAnswerer
from rag.arabic import detect_language
from rag.chain import Assistant
from rag.retrieval import HybridRetriever, coverage, sentence_terms, term_weights
from rag import translate
from rag.translate import LocalTranslator, translator_from_settings

TALKS = "When do the Iraq-US talks resume?"
TALKS_AR = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"


@pytest.fixture(scope="module")
def translator(assistant):
    return LocalTranslator(assistant.settings, cache_size=4)


def test_an_english_question_gets_an_arabic_wording_once(translator):
    wording = translator(TALKS)
    assert wording and detect_language(wording) == "ar" and "\n" not in wording
    model, translator._model = translator._model, None  # a second call must not need the model
    try:
        assert translator("  When do the Iraq-US   talks resume? ") == wording  # the same question, spaced apart
    finally:
        translator._model = model
    for i in range(6):
        translator(f"Who is minister number {i}?")
    assert len(translator._cache) == translator.cache_size
    assert translator("") is None and translator("x" * 401) is None


def hybrid(assistant, translate=None, weight=0.3, **kw):
    s = assistant.settings
    return HybridRetriever(assistant.store, assistant.encode_query, candidates=s.candidates, alpha=s.fusion_alpha,
                           translate=translate, translated_lexical_weight=weight, **kw)


def test_bm25_ranks_the_translation_at_its_weight(assistant):
    """A fixed wording stands in for the model here, so the arithmetic is pinned: BM25's candidates come from the
    Arabic wording, among Arabic passages, and each counts `weight` of what the Arabic question's would."""
    words = {TALKS: TALKS_AR}.get
    english, evidence = hybrid(assistant, rerank_depth=0).rank(TALKS, 20)
    assert not any("bm25" in e for e in evidence.values())  # no words to share with the Arabic articles
    arabic, arabic_evidence = hybrid(assistant, rerank_depth=0).rank(TALKS_AR, 50)
    for weight in (0.3, 0.6):
        ranked, evidence = hybrid(assistant, words, weight, rerank_depth=0).rank(TALKS, 50)
        bm25 = {row: e["bm25"] for row, e in evidence.items() if "bm25" in e}
        assert bm25 == {row: e["bm25"] for row, e in arabic_evidence.items() if "bm25" in e}
        fused = dict(zip(ranked.rows, ranked.scores))
        dense = {row: s for row, s in zip(english.rows, english.scores)}
        top = max(score for _, score in bm25.values())
        both = [row for row in bm25 if row in fused and row in dense]
        assert both
        for row in both:
            assert fused[row] == pytest.approx(dense[row] + weight * (1 - assistant.settings.fusion_alpha)
                                               * bm25[row][1] / top)


def test_the_real_translation_gives_an_english_question_a_lexical_side(assistant, translator):
    ranked, evidence = hybrid(assistant, translator).rank(TALKS, 5)
    assert any("bm25" in evidence.get(row, {}) for row in ranked.rows)
    assert assistant.store.chunks(ranked.rows[:1])[0].doc_id == "002_f7322d59d6e02373"  # the talks article


def test_the_answer_weighs_the_terms_of_the_wording(assistant):
    asked = []
    words = lambda q: asked.append(q) or {TALKS: TALKS_AR}.get(q)  # noqa: E731 - a fixed wording, as above

    def scores(question, translate):
        answerer = ExtractiveAnswerer(assistant.store, AnswerConfig(), query_tokens=assistant.encode_query.tokens,
                                      cross_lingual=assistant.extractive.cross_lingual, translate=translate)
        scored = answerer.score_sentences(question, assistant.encode_query(question), hits)
        return {(s.hit.chunk.doc_id, s.span.start, s.span.end): s.score for s in scored}

    hits = assistant.hybrid.search(TALKS, 5)
    plain, worded = scores(TALKS, None), scores(TALKS, words)
    weights, total = term_weights(assistant.store, TALKS_AR)
    gains = {key: coverage(sentence_terms(assistant.store.document(key[0]).text[key[1]:key[2]]), weights, total)
             for key in plain}
    assert worded == pytest.approx({key: plain[key] + AnswerConfig().translated_lexical_weight * gains[key]
                                    for key in plain})
    assert max(gains.values()) > 0 and asked == [TALKS]
    hits = assistant.hybrid.search(TALKS_AR, 5)
    scores(TALKS_AR, words)
    assert asked == [TALKS]  # an Arabic question is never translated


def test_an_arabic_question_never_loads_the_model(assistant):
    fresh = LocalTranslator(assistant.settings)
    hybrid(assistant, fresh).search(TALKS_AR, 5)
    assert fresh._model is None and not fresh._cache


def test_the_setting_chooses_the_translator(assistant, monkeypatch, caplog):
    s = assistant.settings
    assert isinstance(translator_from_settings(s.model_copy(update={"translator": "local"})), LocalTranslator)
    off = Assistant(s.model_copy(update={"translator": "off"}), embedder=assistant.embedder, store=assistant.store)
    assert off.hybrid.translate is None
    answer = off.ask(TALKS)
    assert answer.citations and answer.searched_as is None  # still answered, by the dense side and that model
    monkeypatch.setattr(translate, "local_translator_available", lambda: False)  # packages not installed
    with caplog.at_level(logging.WARNING, logger="rag.translate"):
        assert translator_from_settings(s.model_copy(update={"translator": "local"})) is None
    assert "not installed" in caplog.text


def test_a_broken_model_costs_the_lexical_side_not_the_answer(assistant, tmp_path, monkeypatch, caplog):
    import rag.local_llm

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)  # a truncated file: llama.cpp really fails to load it
    monkeypatch.setattr(rag.local_llm, "gguf_path", lambda settings: broken)
    translator = LocalTranslator(assistant.settings)
    with caplog.at_level(logging.WARNING, logger="rag.translate"):
        assert translator(TALKS) is None and translator("Who commands Iran's Quds Force?") is None
    assert "translator failed" in caplog.text and caplog.text.count("translator failed") == 1
    s = assistant.settings
    broken_assistant = Assistant(s, embedder=assistant.embedder, store=assistant.store, translator=translator)
    answer = broken_assistant.ask(TALKS)
    assert not answer.abstained and answer.citations[0].doc_id == "002_f7322d59d6e02373"


@pytest.mark.parametrize("reply, expected", [
    ("متى تستأنف المحادثات؟", "متى تستأنف المحادثات؟"),
    ("Arabic: «متى تستأنف المحادثات؟»", "متى تستأنف المحادثات؟"),
    ("\n  متى تستأنف المحادثات؟orestation\nWhat is the name?", "متى تستأنف المحادثات؟"),  # a chat template run on
    ("When do the talks resume?\nمتى تستأنف المحادثات؟", None),  # the first line is English: no wording
    ("", None),
])
def test_the_wording_is_the_first_line_up_to_its_question_mark(reply, expected):
    assert translate.wording(reply) == expected


def test_the_chat_translator_needs_a_chat_model(bundled_index, cli, monkeypatch):
    from rag.config import get_settings

    with pytest.raises(translate.RagError, match="RAG_LLM_MODEL"):
        translator_from_settings(bundled_index.model_copy(update={"translator": "llm"}))
    monkeypatch.setenv("RAG_TRANSLATOR", "llm")
    get_settings.cache_clear()
    try:
        for args in (("ask", TALKS), ("serve", "--port", "9")):
            result = cli(*args, "--index-dir", bundled_index.index_dir)
            assert result.exit_code == 1, result.output
            assert "RAG_TRANSLATOR=llm" in result.output and "Traceback" not in result.output
            assert "serving on" not in result.output
    finally:
        monkeypatch.delenv("RAG_TRANSLATOR")
        get_settings.cache_clear()
