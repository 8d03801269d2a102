"""The extractive reader (rag/reader.py): its span search, its ONNX export from the shipped deltas, and what it
gives the answer (the sentence quoted first, the short answer, the confidence), on the real model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rag.errors import ModelUnavailable
from rag.reader import best_span


def test_best_span_is_the_highest_start_plus_end_within_the_passage_and_length():
    start = np.array([9.0, 1.0, 5.0, 0.0, 0.0, 0.0])
    end = np.array([9.0, 0.0, 0.0, 4.0, 0.0, 8.0])
    allowed = np.array([False, True, True, True, True, True])  # token 0 (the question side) is never picked
    assert best_span(start, end, allowed) == (2, 5, 13.0)
    assert best_span(start, end, allowed, max_tokens=3) == (2, 3, 9.0)  # 2..5 is 4 tokens long
    assert best_span(start, end, np.zeros(6, dtype=bool)) is None


def test_an_end_before_its_start_is_never_picked():
    start = np.array([0.0, 10.0, 0.0])
    end = np.array([10.0, 0.0, 1.0])  # start 1 with end 0 would score 20
    assert best_span(start, end, np.ones(3, dtype=bool)) == (1, 2, 11.0)


@pytest.fixture(scope="module")
def reader():
    from rag.config import get_settings
    from rag.reader import load_reader

    return load_reader(get_settings())


def test_the_reader_finds_the_answer_words_with_exact_offsets(reader):
    passage = ("أعلنت بغداد، الخميس، أن المحادثات مع الولايات المتحدة الأميركية تستأنف الأحد، بهدف مناقشة مستقبل "
               "مهمة التحالف الدولي.")
    other = "ارتفعت أسعار النفط اليوم بعد قرار أوبك خفض الإنتاج، وحذرت الأرصاد من عاصفة رملية."
    spans = reader.read("متى تستأنف المحادثات بين العراق والولايات المتحدة؟", [passage, other])
    assert passage[spans[0].start:spans[0].end] == "الأحد"
    # The passage that answers leads "no answer" by more than the one that does not.
    assert spans[0].score - spans[0].null > spans[1].score - spans[1].null


def test_the_quick_tokenizer_encodes_pairs_as_the_full_one_does(reader):
    assert reader.quick is not None
    question = "Who commands Iran's Quds Force?"
    passages = ["ويقود فيلق القدس، ذراع العمليات الخارجية للحرس الثوري، إسماعيل قآني منذ 2020.",
                "ارتفعت أسعار النفط اليوم بعد قرار أوبك خفض الإنتاج. " * 40]  # cut at the length limit
    quick_ids, quick_mask = reader.encode(question, passages)
    full_ids, full_mask = reader.encode(question, passages, quick=False)
    assert quick_ids.shape[1] == 384
    assert np.array_equal(quick_ids, full_ids) and np.array_equal(quick_mask, full_mask)


def test_a_corrupt_reader_graph_is_refused_with_a_message(tmp_path):
    from rag.config import get_settings
    from rag.reader_export import READER, verified

    model_dir = get_settings().model_dir
    copy = tmp_path / "model"
    copy.mkdir()
    for f in ("rag-model.json", "config.json"):
        shutil.copy(model_dir / f, copy / f)
    shutil.copytree(model_dir / READER.name, copy / READER.name)
    assert verified(READER, copy, "tokenizer.json").is_file()
    with open(copy / READER.name / "tokenizer.json", "r+b") as f:
        f.truncate(100)
    with pytest.raises(ModelUnavailable, match="corrupt"):
        verified(READER, copy, "tokenizer.json")


def test_an_export_of_other_deltas_is_not_current(tmp_path):
    from rag.config import get_settings
    from rag.reader_export import READER, is_current

    model_dir = get_settings().model_dir
    assert is_current(READER, model_dir)
    copy = tmp_path / "model"
    copy.mkdir()
    shutil.copy(model_dir / "rag-model.json", copy / "rag-model.json")
    (copy / READER.name).mkdir()
    manifest = json.loads((model_dir / READER.name / READER.manifest_name).read_text(encoding="utf-8"))
    (copy / READER.name / READER.manifest_name).write_text(json.dumps({**manifest, "deltas": "0" * 64}), encoding="utf-8")
    assert not is_current(READER, copy)


def test_an_english_question_gets_the_readers_span_as_its_short_answer(assistant):
    answer = assistant.ask("When do the talks between Iraq and the United States resume?")
    assert assistant.extractive.reader is not None
    assert not answer.abstained and answer.short_answer is not None
    short = answer.short_answer
    doc = assistant.store.document(short.doc_id)
    assert doc.text[short.start:short.end] == short.text
    assert short.text in ("الأحد", "الأحد المقبل", "11 فبراير 2024", "الأحد المقبل الموافق 11 فبراير 2024")
    quoting = next(c for c in answer.citations if c.n == short.n)
    assert quoting.start <= short.start and short.end <= quoting.end


def test_without_the_reader_the_picker_gives_the_short_answer(bundled_index, embedder):
    from rag.chain import Assistant

    plain = Assistant(bundled_index.model_copy(update={"reader": False}), embedder=embedder)
    assert plain.extractive.reader is None
    answer = plain.ask("When do the talks between Iraq and the United States resume?")
    assert not answer.abstained and "تستأنف" in answer.answer
