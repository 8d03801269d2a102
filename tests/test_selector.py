"""The sentence selector (rag/selector.py): its ONNX export from the shipped deltas, its scores on the real model,
and how the answerer folds them into the sentence scores."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

TALKS = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"
SENTENCES = [
    "وبدأت المحادثات بين البلدين في يناير الماضي بعد هجمات على القوات الأمريكية.",
    "وأعلنت بغداد أن اللجنة العسكرية العليا بين العراق والولايات المتحدة تستأنف أعمالها الأحد المقبل الموافق 11 "
    "فبراير 2024.",
    "ارتفعت أسعار النفط اليوم بعد قرار أوبك خفض الإنتاج.",
]


@pytest.fixture(scope="module")
def selector():
    from rag.config import get_settings
    from rag.selector import load_selector

    return load_selector(get_settings())


def test_the_sentence_that_answers_scores_highest(selector):
    scores = selector.scores(TALKS, SENTENCES)
    assert scores.shape == (3,) and scores.argmax() == 1, scores
    # Asked in English it still puts the answer above the sentence about something else (it was fitted on
    # Arabic questions only; the first sentence, on when the talks began, it may prefer: the sentence scores
    # the answerer adds it to decide that).
    english = selector.scores("When do the talks between Iraq and the United States resume?", SENTENCES)
    assert english[1] > english[2], english
    assert selector.scores(TALKS, []).shape == (0,)


def test_scores_do_not_depend_on_the_batch(selector):
    alone = [float(selector.scores(TALKS, [s])[0]) for s in SENTENCES]
    together = selector.scores(TALKS, SENTENCES)
    assert together.tolist() == pytest.approx(alone, abs=1e-3)


def test_the_export_is_fp32_only_and_tied_to_its_deltas(tmp_path):
    from rag.config import get_settings
    from rag.reader_export import SELECTOR, is_current, manifest

    model_dir = get_settings().model_dir
    assert is_current(SELECTOR, model_dir)
    m = manifest(SELECTOR, model_dir)
    assert set(m["files"]) == {"selector.onnx", "tokenizer.json"}  # no int8 copy: it moved the scores too far
    assert m["drift_against_torch"]["selector.onnx"] >= 0.999
    copy = tmp_path / "model"
    (copy / SELECTOR.name).mkdir(parents=True)
    shutil.copy(model_dir / "rag-model.json", copy / "rag-model.json")
    (copy / SELECTOR.name / SELECTOR.manifest_name).write_text(json.dumps({**m, "deltas": "0" * 64}), encoding="utf-8")
    assert not is_current(SELECTOR, copy)


def test_the_selector_picks_the_first_sentence_and_the_scores_pick_the_rest(assistant):
    from rag.selector import CANDIDATES

    answerer = assistant.extractive
    assert answerer.selector is not None
    question = "How many American troops does the United States have in Iraq?"
    hits = assistant.hybrid.search(question, assistant.settings.top_k)
    vector = assistant.encode_query(question)
    answerer.selector, selector = None, answerer.selector
    try:
        before = answerer.score_sentences(question, vector, hits)
    finally:
        answerer.selector = selector
    after = answerer.score_sentences(question, vector, hits)
    assert len(after) == len(before) > CANDIDATES
    top = before[:CANDIDATES]
    texts = [assistant.store.document(s.hit.chunk.doc_id).text[s.span.start:s.span.end] for s in top]
    total = [s.score + answerer.config.selector_weight * float(z) for s, z in zip(top, selector.scores(question, texts))]
    config = answerer.config
    pick = total.index(max(total))
    if total[pick] < total[0] + config.selector_lead:
        pick = 0  # a near tie stays with the sentence scores
    runner = max((i for i in range(len(top)) if i != pick), key=total.__getitem__)
    joins = (total[runner] >= total[pick] - config.selector_join_margin
             and top[runner].hit.chunk.doc_id == top[pick].hit.chunk.doc_id)
    assert (after[0].hit.row, after[0].span) == (top[pick].hit.row, top[pick].span)
    assert after[0].score == before[0].score  # it takes the first one's score: the margins read from there
    moved = (pick, runner) if joins else (pick,)
    if joins:  # the runner-up comes second, within the second-sentence margin of the first, so that it is quoted
        assert (after[1].hit.row, after[1].span) == (top[runner].hit.row, top[runner].span)
        assert after[1].score == max(top[runner].score, before[0].score - config.second_sentence_margin)
    rest = after[len(moved):]
    assert rest == [s for i, s in enumerate(before) if i not in moved]  # the rest in their order, with their scores


def test_the_selectors_runner_up_from_the_same_article_is_quoted_beside_its_pick(assistant):
    """With margins that let no sentence join on its score, the selector's runner-up is what makes a second one."""
    answerer = assistant.extractive
    hits = assistant.hybrid.search(TALKS, assistant.settings.top_k)
    vector = assistant.encode_query(TALKS)
    config = answerer.config
    alone = replace(config, second_sentence_margin=0.0, neighbour_margin=0.0)
    try:
        answerer.config = replace(alone, selector_join_margin=None)
        single = answerer.answer(TALKS, vector, hits)
        answerer.config = replace(alone, selector_join_margin=1.0)
        joined = answerer.answer(TALKS, vector, hits)
        scored = answerer.score_sentences(TALKS, vector, hits)
    finally:
        answerer.config = config
    assert len(single.citations) == 1
    runner = scored[1]
    assert runner.hit.chunk.doc_id == scored[0].hit.chunk.doc_id  # the join reads only the pick's article
    assert len(joined.citations) == 2
    assert any(c.doc_id == runner.hit.chunk.doc_id and c.start < runner.span.end and runner.span.start < c.end
               for c in joined.citations)


def test_rag_selector_off_leaves_the_sentence_scores_alone(bundled_index, embedder, monkeypatch):
    from rag.chain import Assistant
    from rag.config import Settings

    monkeypatch.setenv("RAG_SELECTOR", "false")
    assert Settings().selector is False
    off = Assistant(bundled_index.model_copy(update={"selector": False}), embedder=embedder)
    assert off.extractive.selector is None
    answer = off.ask(TALKS)
    assert not answer.abstained and "تستأنف" in answer.answer
