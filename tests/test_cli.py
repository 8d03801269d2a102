"""End to end through the `rag` command on the bundled articles, with the real model, FAISS and SQLite.

The questions and their answers were checked by reading the articles in data/articles/.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.answer import AnswerConfig
from rag.arabic import detect_language, normalize
from rag.config import BUNDLED_ARTICLES
from rag.store import IndexStore

pytestmark = pytest.mark.e2e

# (question, doc that holds the answer, text the cited sentences must contain)
ANSWERABLE = [
    ("متى تستأنف المحادثات بين العراق والولايات المتحدة؟", "002_f7322d59d6e02373", "الأحد"),
    ("متى تستأنف اللجنة العسكرية العليا بين العراق والولايات المتحدة أعمالها؟", "002_f7322d59d6e02373", "11 فبراير 2024"),
    ("كم صاروخا استهدف القاعدة العسكرية في غرب العراق؟", "000_3ec499f8665a1831", "10 صواريخ"),
    ("ما اسم القاعدة الجوية التي أصابتها الصواريخ في محافظة الأنبار؟", "000_3ec499f8665a1831", "عين الأسد"),
    ("من رفض لقاء قائد فيلق القدس إسماعيل قآني؟", "001_5ff42c8ba2e3807b", "الصدر"),
    ("كم تبلغ الموارد المالية التي سيسهل الاتفاق النووي وصول طهران إليها؟", "001_5ff42c8ba2e3807b", "100 مليار دولار"),
    ("من هو رئيس الحكومة العراقي الذي سيبدأ مفاوضات علنية مع الأميركيين؟", "003_4d31ec5fb27880ad", "القاظمي"),
    ("أين جرت الجولة الأولى من المناقشات بين الولايات المتحدة وإيران؟", "004_8c9efbd2f6262e81", "عمان"),
    # spelling variants: the article writes عراقتشي, ترمب, أمريكا; the questions do not
    ("ماذا قال عراقجي عن مسألة الصواريخ؟", "004_8c9efbd2f6262e81", "الصواريخ لا يمكن التفاوض عليها"),
    ("ماذا قال عراقتشي عن مسألة الصواريخ؟", "004_8c9efbd2f6262e81", "الصواريخ لا يمكن التفاوض عليها"),
    ("كيف ترى إدارة بايدن عقوبات إدارة ترامب على إيران؟", "000_3ec499f8665a1831", "وسيلة ضغط"),
    ("كم جندي للولايات المتحدة في العراق؟", "002_f7322d59d6e02373", "2500"),
    # an English question over Arabic articles
    ("When do the talks between Iraq and the United States resume?", "002_f7322d59d6e02373", "الأحد"),
]

# English questions whose article the assistant finds, though cross-language sentence choice is weaker: the
# answer must cite the right article (the sentence may not be the one holding the answer).
ENGLISH_RIGHT_ARTICLE = [
    ("Where was the first round of talks between the United States and Iran held?", "004_8c9efbd2f6262e81"),
    ("Who refused to meet the Quds Force commander Esmail Qaani?", "001_5ff42c8ba2e3807b"),
]

UNANSWERABLE = [
    ("ما هي عاصمة أستراليا؟", "ar"),
    ("من فاز بكأس العالم لكرة القدم عام 2018؟", "ar"),
    ("ما هو أفضل نظام غذائي لمرضى السكري؟", "ar"),
    ("What is the capital of Australia?", "en"),
    ("Who painted the Mona Lisa?", "en"),
]


def ask_json(cli, index_dir, question):
    result = cli("ask", question, "--json", "--index-dir", index_dir)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("question,doc_id,expected", ANSWERABLE)
def test_ask_answers_with_citations_that_resolve_to_the_answer(cli, bundled_index, question, doc_id, expected):
    answer = ask_json(cli, bundled_index.index_dir, question)
    assert not answer["abstained"]
    assert (answer["searched_as"] is None) == (detect_language(question) == "ar")  # Arabic is searched as asked
    assert answer["mode"] == "extractive"
    assert 1 <= len(answer["citations"]) <= AnswerConfig().max_sentences and len(answer["answer"]) <= 400
    assert normalize(expected) in normalize(" ".join(c["quote"] for c in answer["citations"]))
    assert any(c["doc_id"] == doc_id for c in answer["citations"])
    for c in answer["citations"]:
        assert f"[{c['n']}]" in answer["answer"]
        assert c["quote"] in answer["answer"]
        looked_up = cli("cite", c["id"], "--json", "--index-dir", bundled_index.index_dir)
        assert looked_up.exit_code == 0, looked_up.output
        view = json.loads(looked_up.stdout)
        assert view["quote"] == c["quote"]
        assert (view["start"], view["end"]) == (c["start"], c["end"])
    assert set(answer["timings_ms"]) >= {"retrieve", "answer", "total"}


@pytest.mark.parametrize("question,doc_id", ENGLISH_RIGHT_ARTICLE)
def test_english_questions_cite_the_right_article(cli, bundled_index, question, doc_id):
    answer = ask_json(cli, bundled_index.index_dir, question)
    assert not answer["abstained"]
    assert answer["citations"][0]["doc_id"] == doc_id
    assert answer["searched_as"] and detect_language(answer["searched_as"]) == "ar"  # what BM25 ranked
    shown = cli("ask", question, "--index-dir", bundled_index.index_dir)
    assert shown.exit_code == 0 and "Searched in Arabic as:" in shown.output
    assert answer["searched_as"] in shown.output


@pytest.mark.parametrize("question,lang", UNANSWERABLE)
def test_ask_abstains_in_the_question_language_when_the_articles_hold_no_answer(cli, bundled_index, question, lang):
    answer = ask_json(cli, bundled_index.index_dir, question)
    assert answer["abstained"], answer
    assert answer["citations"] == []
    assert answer["answer"].startswith("لم أجد" if lang == "ar" else "I could not find")


def test_ask_shows_the_short_answer_first_and_json_carries_it(cli, bundled_index):
    q = "كم عدد الجنود الأمريكيين في العراق؟"
    data = json.loads(cli("ask", q, "--index-dir", bundled_index.index_dir, "--json").stdout)
    short = data["short_answer"]
    assert short["text"] == "2500 جندي" and short["kind"] == "number"
    cited = next(c for c in data["citations"] if c["n"] == short["n"])
    assert cited["start"] <= short["start"] < short["end"] <= cited["end"]
    assert cited["quote"][short["start"] - cited["start"]:short["end"] - cited["start"]] == short["text"]
    readable = cli("ask", q, "--index-dir", bundled_index.index_dir)
    assert readable.exit_code == 0
    assert readable.stdout.splitlines()[0] == f"2500 جندي [{short['n']}]"
    assert data["answer"] in readable.stdout


def test_ask_readable_output_lists_sources(cli, bundled_index):
    result = cli("ask", ANSWERABLE[0][0], "--index-dir", bundled_index.index_dir)
    assert result.exit_code == 0
    assert "Sources:" in result.stdout and "[1] 002_f7322d59d6e02373:" in result.stdout


def test_search_lists_ranked_passages_with_scores_and_ids(cli, bundled_index):
    result = cli("search", "عين الأسد", "-k", "3", "--json", "--index-dir", bundled_index.index_dir)
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["doc_id"] == "000_3ec499f8665a1831"
    assert rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]
    assert set(rows[0]["scores"]) <= {"dense", "bm25"} and rows[0]["scores"]
    view = json.loads(cli("cite", rows[0]["id"], "--json", "--index-dir", bundled_index.index_dir).stdout)
    assert view["quote"] == rows[0]["text"]


def test_cite_shows_metadata_and_context(cli, bundled_index):
    answer = ask_json(cli, bundled_index.index_dir, ANSWERABLE[0][0])
    cid = answer["citations"][0]["id"]
    view = json.loads(cli("cite", cid, "--json", "--index-dir", bundled_index.index_dir).stdout)
    assert view["title"].startswith("العراق يعلن موعد استئناف المحادثات")
    assert view["date"] == "9th, February 2024 GMT"
    assert view["source"] == "الحرة"
    assert view["context_before"] and view["context_after"]
    text = (BUNDLED_ARTICLES / "002_f7322d59d6e02373.txt").read_text(encoding="utf-8")
    assert text[view["start"]:view["end"]] == view["quote"]
    readable = cli("cite", cid, "--index-dir", bundled_index.index_dir)
    assert readable.exit_code == 0 and view["quote"] in readable.stdout


@pytest.mark.parametrize("cid,message", [
    ("not-an-id", "malformed citation id"),
    ("002_f7322d59d6e02373:50-10", "start must be smaller"),
    ("no_such_doc:0-10", "no document 'no_such_doc'"),
    ("002_f7322d59d6e02373:0-999999", "outside"),
])
def test_cite_bad_ids_are_clear_errors(cli, bundled_index, cid, message):
    result = cli("cite", cid, "--index-dir", bundled_index.index_dir)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_docs_lists_the_bundled_articles(cli, bundled_index):
    rows = json.loads(cli("docs", "--json", "--index-dir", bundled_index.index_dir).stdout)
    assert sorted(r["id"] for r in rows) == sorted(p.stem for p in BUNDLED_ARTICLES.glob("*.txt"))
    assert all(r["title"] and r["chars"] > 1000 for r in rows)


def test_empty_question_is_refused(cli, bundled_index):
    result = cli("ask", "   ", "--index-dir", bundled_index.index_dir)
    assert result.exit_code == 1 and "empty" in result.stderr


def test_reindexing_reembeds_only_what_changed(cli, tmp_path):
    corpus = tmp_path / "articles"
    shutil.copytree(BUNDLED_ARTICLES, corpus)
    index_dir = tmp_path / "index"
    first = json.loads(cli("index", corpus, "--json", "--index-dir", index_dir).stdout)
    assert len(first["added"]) == 5 and first["chunks_embedded"] == first["chunks"] > 0

    again = json.loads(cli("index", corpus, "--json", "--index-dir", index_dir).stdout)
    assert again["chunks_embedded"] == 0 and not again["written"]
    assert len(again["unchanged"]) == 5

    def stored_tokens() -> dict[tuple[str, int], tuple[bytes, bytes]]:  # per chunk: its int8 vectors and spans
        store = IndexStore.open(index_dir)
        out = {}
        for row, chunk in store.all_chunks():
            vectors, spans = store.stored_token_vectors(row)
            out[(chunk.doc_id, chunk.ordinal)] = (np.asarray(vectors).tobytes(), spans.tobytes())
        store.close()
        return out

    before = stored_tokens()
    changed = corpus / "004_8c9efbd2f6262e81.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\nوأعلن الطرفان عن جولة ثالثة في مسقط.\n", encoding="utf-8")
    (corpus / "001_5ff42c8ba2e3807b.txt").unlink()
    third = json.loads(cli("index", corpus, "--json", "--index-dir", index_dir).stdout)
    assert third["updated"] == ["004_8c9efbd2f6262e81"]
    assert third["removed"] == ["001_5ff42c8ba2e3807b"]
    assert 0 < third["chunks_embedded"] < first["chunks_embedded"]
    # The unchanged articles' token vectors are carried over as stored, byte for byte, into their new rows.
    after = stored_tokens()
    unchanged = {key for key in before if key[0] not in ("004_8c9efbd2f6262e81", "001_5ff42c8ba2e3807b")}
    assert unchanged and unchanged <= set(after)
    assert all(after[key] == before[key] for key in unchanged)
    docs = json.loads(cli("docs", "--json", "--index-dir", index_dir).stdout)
    assert len(docs) == 4
    found = json.loads(cli("search", "جولة ثالثة في مسقط", "--json", "-k", "1", "--index-dir", index_dir).stdout)
    assert "مسقط" in found[0]["text"]


def index_written_by_an_older_version(cli, tmp_path, **manifest_fields) -> tuple[Path, Path, dict]:
    """The bundled articles indexed, then the manifest rewritten as an older version would have left it:
    (corpus, index dir, the first `rag index` report)."""
    corpus = tmp_path / "articles"
    shutil.copytree(BUNDLED_ARTICLES, corpus)
    index_dir = tmp_path / "index"
    first = json.loads(cli("index", corpus, "--json", "--index-dir", index_dir).stdout)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    (index_dir / "manifest.json").write_text(json.dumps({**manifest, **manifest_fields}))
    return corpus, index_dir, first


@pytest.fixture
def int8_codes(monkeypatch):
    """The format before segments held int8 token vectors: these tests index with the int8 codec, so the index
    written in that format and the one it is migrated to hold the same codes (pq re-coding: test_token_codecs)."""
    from rag.config import get_settings

    monkeypatch.setattr(get_settings(), "token_codec", "int8")


def index_of_the_format_before_segments(cli, tmp_path, tokens: bool = True) -> tuple[Path, Path, dict]:
    """The bundled articles indexed, then written again as the version before segments would have (one version
    directory + CURRENT, bm25s), from the same stored vectors: (corpus, legacy index dir, first report)."""
    from rag.arabic import tokenize
    from rag.indexer import embedding_text
    from rag.store import legacy

    corpus = tmp_path / "articles"
    shutil.copytree(BUNDLED_ARTICLES, corpus)
    first = json.loads(cli("index", corpus, "--json", "--index-dir", tmp_path / "new").stdout)
    store = IndexStore.open(tmp_path / "new")
    rows = [row for row, _ in store.all_chunks()]
    chunks = store.chunks(rows)
    docs = {d.id: d for d in store.documents()}
    stored = [store.stored_token_vectors(r) for r in rows]
    m = store.manifest
    legacy.write_index(tmp_path / "index", legacy.IndexData(
        manifest=legacy.Manifest(model_id=m.model_id, dimension=m.dimension, chunk_tokens=m.chunk_tokens,
                                 chunk_overlap_tokens=m.chunk_overlap_tokens, embed_title=m.embed_title,
                                 tokenizer=m.tokenizer, runtime=m.runtime, stemmer=m.stemmer,
                                 documents=len(docs), chunks=len(rows), format_version=2 if tokens else 1),
        documents=list(docs.values()), chunks=chunks, vectors=store.row_vectors(rows),
        sentence_vectors=np.vstack([store.chunk_sentence_vectors(r) for r in rows]).astype(np.float16),
        bm25_tokens=[tokenize(embedding_text(docs[c.doc_id], c, m.embed_title)[0]) for c in chunks],
        tokens=[np.asarray(t) for t, _ in stored] if tokens else None,
        token_spans=np.vstack([sp for _, sp in stored]) if tokens else None,
        token_rows=np.concatenate([[0], np.cumsum([len(t) for t, _ in stored])]) if tokens else None))
    store.close()
    return corpus, tmp_path / "index", first


QUESTION = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"


def test_an_index_from_before_token_vectors_is_refused_until_re_embedded(cli, tmp_path, int8_codes):
    corpus, index_dir, first = index_of_the_format_before_segments(cli, tmp_path, tokens=False)
    # Reading it is refused with what to do ...
    refused = cli("ask", QUESTION, "--json", "--index-dir", index_dir)
    message = " ".join(refused.output.split())  # the terminal wraps it
    assert refused.exit_code == 1 and "older version" in message and "rag index" in message
    assert "Traceback" not in refused.output
    # Listing its documents and opening a citation need no token vectors, so they still work ...
    assert len(json.loads(cli("docs", "--json", "--index-dir", index_dir).stdout)) == 5
    cited = json.loads(cli("cite", "002_f7322d59d6e02373:111-363", "--json", "--index-dir", index_dir).stdout)
    assert "الأحد" in cited["quote"]
    # ... and `rag index` re-embeds every chunk, token vectors included, though no file changed, as segments.
    again = json.loads(cli("index", corpus, "--json", "--index-dir", index_dir).stdout)
    assert again["written"] and again["chunks_embedded"] == again["chunks"] == first["chunks"]
    assert "rebuilt" in again["notice"] and not (index_dir / "CURRENT").exists()
    assert IndexStore.open(index_dir).has_tokens
    answer = json.loads(cli("ask", QUESTION, "--json", "--index-dir", index_dir).stdout)
    assert not answer["abstained"] and "الأحد" in " ".join(c["quote"] for c in answer["citations"])


def test_an_index_of_the_format_before_segments_is_migrated_without_re_embedding(cli, tmp_path, int8_codes):
    corpus, index_dir, first = index_of_the_format_before_segments(cli, tmp_path)
    refused = cli("search", QUESTION, "--index-dir", index_dir)
    message = " ".join(refused.output.split())
    assert refused.exit_code == 1 and "migrate" in message and "without re-embedding" in message
    before = json.loads(cli("search", QUESTION, "--json", "--index-dir", tmp_path / "new").stdout)
    migrated = cli("index", corpus, "--json", "--index-dir", index_dir)
    report = json.loads(migrated.stdout)
    assert report["written"] and report["chunks_embedded"] == 0 and report["chunks"] == first["chunks"]
    assert "migrated" in report["notice"] and "not re-embedded" in report["notice"]
    assert not [p for p in index_dir.iterdir() if p.name.startswith(("v-", "CURRENT"))]
    assert cli("index", "--check", "--index-dir", index_dir).exit_code == 0
    after = json.loads(cli("search", QUESTION, "--json", "--index-dir", index_dir).stdout)
    assert [(h["id"], round(h["score"], 4)) for h in after] == [(h["id"], round(h["score"], 4)) for h in before]


def test_an_index_split_under_older_sentence_rules_is_re_embedded(cli, tmp_path):
    corpus, index_dir, first = index_written_by_an_older_version(cli, tmp_path, tokenizer="arabic-v1")
    again = json.loads(cli("index", corpus, "--json", "--index-dir", index_dir).stdout)
    assert again["written"] and again["chunks_embedded"] == again["chunks"] == first["chunks"]
    # "؛" joins the clauses of one sentence: the passage quotes it whole
    store = IndexStore.open(index_dir)
    text = store.document("001_5ff42c8ba2e3807b").text
    sentences = [text[s.start:s.end] for _, c in store.all_chunks() if c.doc_id == "001_5ff42c8ba2e3807b"
                 for s in c.sentences]
    store.close()
    assert any("سورية؛ جاءت رداً" in s for s in sentences)


def test_bad_files_are_reported_and_skipped_while_the_rest_is_indexed(cli, tmp_path):
    corpus = tmp_path / "in"
    corpus.mkdir()
    shutil.copy(BUNDLED_ARTICLES / "002_f7322d59d6e02373.txt", corpus)
    (corpus / "empty.txt").write_text("")
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (corpus / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    (corpus / "feed.jsonl").write_text(
        json.dumps({"id": "j1", "text": "خبر صحيح عن الانتخابات البلدية في تونس.", "title": "تونس"}, ensure_ascii=False)
        + "\n{not json\n" + json.dumps({"text": "no id"}) + "\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    result = cli("index", corpus, "--index-dir", index_dir)
    assert result.exit_code == 3, result.output
    out = result.stdout
    for name in ("empty.txt", "binary.txt", "latin1.txt", "feed.jsonl:2", "feed.jsonl:3"):
        assert name in out
    assert "not UTF-8" in out and "binary" in out and "empty" in out
    docs = json.loads(cli("docs", "--json", "--index-dir", index_dir).stdout)
    assert sorted(d["id"] for d in docs) == ["002_f7322d59d6e02373", "j1"]


def test_a_fresh_process_builds_the_bundled_index_and_answers(tmp_path):
    """The README's main path, as a new user runs it: a real process, no index yet. The process leaves by
    os._exit (rag/__main__.py): its piped output must be whole, and the index it wrote committed."""
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "index")}
    rag = Path(sys.executable).parent / "rag"
    proc = subprocess.run([str(rag), "ask", ANSWERABLE[0][0], "--json"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "No index yet" in proc.stderr
    answer = json.loads(proc.stdout)
    assert not answer["abstained"] and answer["citations"][0]["doc_id"] == "002_f7322d59d6e02373"
    bundled = sorted(p.stem for p in BUNDLED_ARTICLES.iterdir() if p.suffix in (".txt", ".md", ".html", ".jsonl"))
    assert sorted(d.id for d in IndexStore.open(tmp_path / "index").documents()) == bundled

    bad = subprocess.run([str(rag), "cite", "nope"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1 and "malformed citation id" in bad.stderr and "Traceback" not in bad.stderr


def test_an_index_stemmed_under_an_older_stemmer_gets_new_bm25_tokens_without_re_embedding(cli, tmp_path):
    corpus, index_dir, first = index_written_by_an_older_version(cli, tmp_path, stemmer="")
    old = IndexStore.open(index_dir)
    vectors = {(c.doc_id, c.ordinal): old.chunk_sentence_vectors(r) for r, c in old.all_chunks()}
    old.close()
    again = json.loads(cli("index", corpus, "--json", "--index-dir", index_dir).stdout)
    assert again["written"] and again["chunks_embedded"] == 0 and again["chunks"] == first["chunks"]
    store = IndexStore.open(index_dir)
    assert store.manifest.stemmer == "stem-v1"
    assert all(np.array_equal(store.chunk_sentence_vectors(r), vectors[(c.doc_id, c.ordinal)])
               for r, c in store.all_chunks())
    assert store.lexical.df("جند") > 0  # جنود and جندي, one stem
    store.close()


def test_rm_removes_by_id_and_refuses_an_unknown_one(cli, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(BUNDLED_ARTICLES, tmp_path / "articles")
    cli("index", tmp_path / "articles", "--index-dir", index_dir)
    unknown = cli("rm", "002_f7322d59d6e02373", "no-such-id", "--index-dir", index_dir)
    assert unknown.exit_code == 1 and "no-such-id" in unknown.output and "nothing removed" in unknown.output
    assert len(json.loads(cli("docs", "--json", "--index-dir", index_dir).stdout)) == 5
    removed = json.loads(cli("rm", "002_f7322d59d6e02373", "--json", "--index-dir", index_dir).stdout)
    assert removed["removed"] == ["002_f7322d59d6e02373"] and removed["documents"] == 4
    ids = [d["id"] for d in json.loads(cli("docs", "--json", "--index-dir", index_dir).stdout)]
    assert "002_f7322d59d6e02373" not in ids and len(ids) == 4
    found = json.loads(cli("search", QUESTION, "--json", "--index-dir", index_dir).stdout)
    assert found and all(h["doc_id"] != "002_f7322d59d6e02373" for h in found)
    # --compact drops the tombstoned rows; --check verifies every file; a flipped byte and a lost file are named
    assert "merged 1 -> 1" in cli("index", "--compact", "--index-dir", index_dir).stdout
    checked = json.loads(cli("index", "--check", "--json", "--index-dir", index_dir).stdout)
    assert checked["check"]["ok"] and checked["check"]["segments"] == 1
    segment = next((index_dir / "segments").iterdir())
    raw = bytearray((segment / "store.sqlite").read_bytes())
    raw[-100] ^= 0xFF
    (segment / "store.sqlite").write_bytes(bytes(raw))
    (segment / "arrays.bin").unlink()
    broken = cli("index", "--check", "--index-dir", index_dir)
    lines = broken.stderr.strip().splitlines()
    assert broken.exit_code == 1 and len(lines) == 2, broken.output
    assert "store.sqlite: checksum" in broken.stderr and "arrays.bin: missing" in broken.stderr
    assert cli("rm", "x", "--index-dir", tmp_path / "none").exit_code == 1
