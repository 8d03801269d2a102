"""The learned short-answer picker (rag/span_scorer.py): its candidates, the shipped model, that the model the
benchmark fits scores exactly as the answerer applies it, and the fall-back to the rules."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.answer import AnswerConfig, ExtractiveAnswerer
from rag.arabic import detect_language, tokenize
from rag.sentences import split_sentences
from rag.short_answer import mark_asked, pick, question_type, sentence_words
from rag.span_scorer import BASE_FEATURES, KINDS, MAX_WORDS, SpanScorer, candidates, learned_span_scorer

TROOPS = "كم عدد الجنود الأمريكيين في العراق؟"


def test_candidates_are_runs_inside_one_clause_of_the_type_asked():
    text = "وقالت المصادر، يوم الخميس، إن المحادثات تستأنف الأحد المقبل الموافق 11 فبراير 2024 في بغداد."
    question = "متى تستأنف المحادثات؟"
    words = sentence_words(text, split_sentences(text)[0])
    mark_asked(words, set(tokenize(question)))
    cands = candidates(words, "date", np.zeros(len(words)), np.ones(len(words)))
    assert cands and all(c.features.shape == (len(BASE_FEATURES),) for c in cands)
    spans = {text[words[c.first].start:words[c.last].end] for c in cands}
    assert "11 فبراير 2024" in spans and "الخميس" in spans
    for c in cands:
        span = words[c.first:c.last + 1]
        assert c.last - c.first < MAX_WORDS and len({w.clause for w in span}) == 1
        assert not span[0].stop and not span[-1].stop and not any(w.asked for w in span)
        assert any(w.date for w in span)  # a date question's candidates hold a date
    # a question naming none of the sentence's words gives nothing to stand near
    unrelated = sentence_words(text, split_sentences(text)[0])
    mark_asked(unrelated, set(tokenize("متى ولد المتنبي؟")))
    assert candidates(unrelated, "date", np.zeros(len(words)), np.ones(len(words))) == []


def test_the_shipped_model_is_fitted_for_the_bundled_model(assistant):
    scorer = learned_span_scorer()
    assert scorer is not None
    assert scorer.model_id == assistant.store.manifest.model_id
    assert scorer.weights.shape == (len(BASE_FEATURES) * (1 + len(KINDS)),)
    assert scorer.probes.shape == (2, assistant.store.manifest.dimension)
    assert np.isfinite(scorer.weights).all() and np.abs(scorer.probes).sum() > 0


def test_save_and_load_keep_the_model(tmp_path):
    rng = np.random.default_rng(0)
    scorer = SpanScorer(rng.normal(size=len(BASE_FEATURES) * 6), rng.normal(size=(2, 8)), "some-model")
    scorer.save(tmp_path / "m.npz")
    back = SpanScorer.load(tmp_path / "m.npz")
    assert back.model_id == "some-model"
    np.testing.assert_allclose(back.weights, scorer.weights)
    np.testing.assert_allclose(back.probes, scorer.probes)
    assert SpanScorer.load(tmp_path / "absent.npz") is None


def test_the_model_scores_as_the_benchmark_fitted_it(assistant):
    """benchmarks/span_scorer.py fits weights over the candidates' word vectors; the answerer applies the same
    weights as two directions through the token codec. Both must give every candidate the same score."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from span_scorer import design, sentence_rows, to_scorer

    from rag.evaluate import EvalQuestion

    rows = sentence_rows(assistant, EvalQuestion("q", TROOPS, ("2500 جندي",), None), train=False)
    assert rows and rows[0]["best"]
    row = rows[0]
    d = row["vectors"].shape[0]
    w = np.random.default_rng(1).normal(size=len(BASE_FEATURES) * (1 + len(KINDS)) + 2 * d)
    scorer = to_scorer(w, d, "m")
    fitted = design(row) @ w
    applied = scorer.design(row["cands"], row["kind"], scorer.probes @ row["vectors"]) @ np.concatenate(
        [scorer.weights, [1.0, 1.0]])
    np.testing.assert_allclose(applied, fitted, rtol=1e-4, atol=1e-4)
    assert row["f1"].max() == 1.0  # "2500 جندي" is among the candidates, with the word it counts


def test_the_rules_pick_when_the_model_cannot_read_the_index(assistant, monkeypatch):
    import rag.answer

    hits = assistant.hybrid.search(TROOPS, 5)
    v = assistant.encode_query(TROOPS)
    learned = ExtractiveAnswerer(assistant.store, AnswerConfig(), query_tokens=assistant.encode_query.tokens)
    rules = ExtractiveAnswerer(assistant.store, AnswerConfig(learned_short=False),
                               query_tokens=assistant.encode_query.tokens)
    assert learned.span_scorer() is not None and rules.span_scorer() is None
    best = rules.score_sentences(TROOPS, v, hits)[0]
    words = rules.sentence_words(TROOPS, detect_language(TROOPS), best)
    by_rules = pick(words, question_type(TROOPS), rules.config.short)
    assert rules.answer(TROOPS, v, hits).short_answer.start == words[by_rules[0]].start
    # fitted for another embedding model: its directions mean nothing in this index's vector space
    other = learned_span_scorer()
    monkeypatch.setattr(rag.answer, "learned_span_scorer", lambda: SpanScorer(other.weights, other.probes, "other"))
    assert learned.span_scorer() is None
    assert learned.answer(TROOPS, v, hits).short_answer == rules.answer(TROOPS, v, hits).short_answer
    # nor without the question's token vectors
    assert replace_tokens(learned).span_scorer() is None


def replace_tokens(answerer: ExtractiveAnswerer) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(answerer.store, answerer.config, query_tokens=None)


@pytest.mark.parametrize("floor", [0.0, 1.01])
def test_below_the_confidence_floor_there_is_no_short_answer(assistant, floor):
    config = AnswerConfig()
    config = replace(config, short=replace(config.short, min_probability=floor))
    answerer = ExtractiveAnswerer(assistant.store, config, query_tokens=assistant.encode_query.tokens)
    ans = answerer.answer(TROOPS, assistant.encode_query(TROOPS), assistant.hybrid.search(TROOPS, 5))
    assert (ans.short_answer is None) == (floor > 1)
    assert ans.citations  # the quoted sentences stand either way
