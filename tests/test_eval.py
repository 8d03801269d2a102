"""`rag eval` on a slice of the real third-party ARCD data in ../shared/eval, end to end with the real model."""

import json
import os
from pathlib import Path

import pytest

from rag.evaluate import load_questions
from rag.errors import InvalidInput

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def arcd_slice(tmp_path_factory):
    """The first 15 ARCD paragraphs, their questions, and MLQA questions as negatives."""
    out = tmp_path_factory.mktemp("arcd")
    corpus = [json.loads(l) for l in (EVAL / "arcd" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:15]]
    ids = {p["id"] for p in corpus}
    questions = [l for l in (EVAL / "arcd" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
                 if json.loads(l)["context_id"] in ids][:30]
    negatives = (EVAL / "mlqa_ar_dev" / "questions.jsonl").read_text(encoding="utf-8").splitlines()[:10]
    (out / "corpus.jsonl").write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in corpus) + "\n", encoding="utf-8")
    (out / "questions.jsonl").write_text("\n".join(questions) + "\n", encoding="utf-8")
    (out / "negatives.jsonl").write_text("\n".join(negatives) + "\n", encoding="utf-8")
    return out


def test_eval_reports_retrieval_answers_and_abstention(cli, arcd_slice):
    result = cli("eval", arcd_slice / "questions.jsonl", "--corpus", arcd_slice / "corpus.jsonl",
                 "--negatives", arcd_slice / "negatives.jsonl", "--json")
    assert result.exit_code == 0, result.output
    answerable, negatives = json.loads(result.stdout)
    assert answerable["questions"] == 30 and negatives["questions"] == 10
    hybrid = answerable["retrieval"]["hybrid"]
    assert set(answerable["retrieval"]) == {"dense", "bm25", "hybrid-rrf", "hybrid"}
    assert hybrid["recall@1"] <= hybrid["recall@5"] <= hybrid["recall@10"] <= 1.0
    assert hybrid["recall@5"] >= 0.8, "15 paragraphs: the gold one is nearly always in the top 5"
    assert 0 < hybrid["mrr@10"] <= hybrid["recall@10"]
    assert 0.3 <= answerable["answer"]["containment"] <= 1.0
    a = answerable["answer"]
    assert a["containment@400"] <= a["containment"] and a["over_400_chars"] == 0.0  # answers are held to 400
    # ARCD's gold spans run long (clauses, punctuation): exact matches are rare in 30 questions, overlaps are not
    assert 0.0 <= a["short_em"] <= a["short_f1"] <= a["with_short_answer"] <= a["answered"] and a["short_f1"] > 0.1
    assert a["mean_answer_sentences"] <= 3  # RAG_ANSWER_SENTENCES
    assert 0.0 <= negatives["answer"]["abstained_on_unanswerable"] <= 1.0
    assert negatives["retrieval"] == {}

    readable = cli("eval", arcd_slice / "questions.jsonl", "--corpus", arcd_slice / "corpus.jsonl", "--limit", "5")
    assert readable.exit_code == 0 and "recall@1" in readable.stdout and "containment" in readable.stdout


def test_eval_bad_inputs_are_clear_errors(cli, arcd_slice, tmp_path):
    missing = cli("eval", tmp_path / "nope.jsonl", "--corpus", arcd_slice / "corpus.jsonl")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no id"}\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="bad.jsonl:1"):
        load_questions(bad)


def test_the_cached_eval_index_is_keyed_by_content_not_by_where_the_checkout_is(tmp_path):
    import shutil

    from rag.config import Settings
    from rag.evaluate import eval_index_dir

    articles = Path(__file__).resolve().parents[1] / "data" / "articles"
    here, there = tmp_path / "a" / "articles", tmp_path / "b" / "articles"
    shutil.copytree(articles, here)
    shutil.copytree(articles, there)
    settings = Settings(cache_dir=tmp_path / "cache")
    key = eval_index_dir([here], settings, "m")
    assert key == eval_index_dir([there], settings, "m")
    first = sorted(there.iterdir())[0]
    first.write_text(first.read_text(encoding="utf-8") + "\nسطر جديد", encoding="utf-8")
    assert eval_index_dir([there], settings, "m") != key
    assert eval_index_dir([here], settings, "m", runtime="onnx") != key
    corpus = EVAL / "arcd" / "corpus.jsonl"
    assert eval_index_dir([here, corpus], settings, "m") == eval_index_dir([corpus, here], settings, "m")
    relative = Path(os.path.relpath(corpus))
    assert eval_index_dir([relative, here], settings, "m") == eval_index_dir([corpus, here], settings, "m")
