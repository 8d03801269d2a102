"""The Milvus backend (RAG_STORE=milvus) on Milvus Lite, against the local index of the same articles.

The API's end-to-end tests run on both stores through tests/test_api.py's parametrised fixtures; these check what
is Milvus's own: that a passage's offsets, texts and late-interaction data survive the round trip exactly, that
writes are idempotent, that an interrupted write never shows two versions of an article, and the errors.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from rag.chain import Assistant, build_index
from rag.errors import IndexIncompatible, IndexMissing
from rag.store.base import backend_for
from rag.store.milvus import schema, writer

RESUME_Q = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"
TALKS_DOC = "002_f7322d59d6e02373"


@pytest.fixture
def milvus_copy(request, tmp_path):
    from conftest import store_copy

    return store_copy(request, "milvus", tmp_path)


@pytest.fixture
def environment(monkeypatch):
    """Set RAG_* variables for the in-process `rag` command (whose settings are read once and cached)."""
    from rag.config import get_settings

    def set_env(**values):
        for key, value in values.items():
            monkeypatch.setenv(key, str(value))
        get_settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    get_settings.cache_clear()


def passages(settings) -> dict:
    store = backend_for(settings).open()
    return {(c.doc_id, c.ordinal): (row, c) for row, c in store.all_chunks()}, store


def test_passages_offsets_and_late_data_survive_the_round_trip(bundled_index, milvus_index):
    local, local_store = passages(bundled_index)
    milvus, milvus_store = passages(milvus_index)
    assert set(local) == set(milvus) and len(milvus) == len(milvus_store) == 20
    for key, (row, chunk) in milvus.items():
        local_row, expected = local[key]
        assert (chunk.start, chunk.end, chunk.sentences, chunk.text) == \
               (expected.start, expected.end, expected.sentences, expected.text)
        assert chunk.text == milvus_store.document(chunk.doc_id).text[chunk.start:chunk.end]
        np.testing.assert_array_equal(milvus_store.chunk_sentence_vectors(row),
                                      local_store.chunk_sentence_vectors(local_row))
        for got, want in zip(milvus_store.stored_token_vectors(row), local_store.stored_token_vectors(local_row)):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(milvus_store.row_vectors([row]), local_store.row_vectors([local_row]), atol=1e-6)
    for doc in local_store.documents():
        assert milvus_store.document(doc.id) == doc
    # IDF from the writer's document frequencies is the local postings' (the coverage weights depend on it)
    tokens = ["", "العراق", "واشنطن", "no-such-token"] + sorted({t for _, c in milvus.values() for t in
                                                                 c.text.split()[:3]})[:40]
    from rag.arabic import tokenize

    tokens = sorted({t for text in tokens for t in (tokenize(text) or [text])})
    assert milvus_store.idfs(tokens) == pytest.approx(local_store.idfs(tokens), rel=1e-12)
    # Milvus's BM25 function over the `lexical` field scores as the local postings do (the abstention reads them)
    for question in (RESUME_Q, "قاعدة عين الأسد في العراق", "Iraq talks"):
        got, want = milvus_store.lexical_search(tokenize(question), 10), local_store.lexical_search(tokenize(question), 10)
        assert got[0] == pytest.approx(want[0], rel=1e-4)
        assert [milvus_store.chunks([r])[0].start for r in got[1]] == [local_store.chunks([r])[0].start for r in want[1]]


def test_the_answer_object_is_the_local_indexes(bundled_index, milvus_index, embedder):
    local = Assistant(bundled_index, embedder=embedder)
    milvus = Assistant(milvus_index, embedder=embedder)
    for question in (RESUME_Q, "When do the Iraq-US talks resume?", "ما عاصمة منغوليا؟"):
        a, b = local.ask(question), milvus.ask(question)
        assert b.answer == a.answer and b.abstained == a.abstained
        assert [c.id for c in b.citations] == [c.id for c in a.citations]
        assert b.short_answer == a.short_answer
    answer = milvus.ask(RESUME_Q)
    assert answer.citations[0].doc_id == TALKS_DOC and "الأحد" in answer.answer


def test_rrf_fusion_is_milvus_hybrid_search_with_the_projects_scores(bundled_index, milvus_index, embedder):
    """With RAG_FUSION=rrf the Milvus store fuses in one `hybrid_search` (RRFRanker); the fused scores are the
    project's own reciprocal-rank fusion of the local index's dense and BM25 rankings."""
    from rag.retrieval import HybridRetriever

    def first_stage(settings):
        a = Assistant(settings, embedder=embedder)
        return HybridRetriever(a.store, a.encode_query, fusion="rrf", rrf_k=60, rerank_depth=0)

    local, milvus = first_stage(bundled_index), first_stage(milvus_index)
    assert hasattr(milvus.store, "hybrid_search") and not hasattr(local.store, "hybrid_search")
    for question in (RESUME_Q, "When do the Iraq-US talks resume?", "قاعدة عين الأسد"):
        a, b = local.search(question, 10), milvus.search(question, 10)
        assert [(h.chunk.doc_id, h.chunk.start) for h in b] == [(h.chunk.doc_id, h.chunk.start) for h in a]
        assert [h.score for h in b] == pytest.approx([h.score for h in a], rel=1e-5)


def test_writes_are_idempotent_and_a_change_replaces_every_passage(milvus_copy, embedder, tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "bridge.txt").write_text("افتتاح جسر\nافتتحت البلدية جسرا جديدا فوق النهر يربط ضفتي المدينة. "
                                       "وقال رئيس البلدية إن الجسر يختصر الطريق نصف ساعة.\n", encoding="utf-8")
    backend = backend_for(milvus_copy)
    first = build_index([folder], milvus_copy, embedder)
    assert first.added == ["bridge"] and first.documents == 6
    again = build_index([folder], milvus_copy, embedder)
    assert again.unchanged == ["bridge"] and not again.written and again.chunks == first.chunks
    client, n = backend.client, schema.names(milvus_copy.milvus_collection)

    def rows_of(doc_id):
        return client.query(n["passages"], filter=f"doc_id == {schema.literal(doc_id)}", output_fields=["row", "doc_hash"])

    old = rows_of("bridge")
    (folder / "bridge.txt").write_text("افتتاح جسر\nأغلقت البلدية الجسر القديم للصيانة حتى الربيع.\n", encoding="utf-8")
    changed = build_index([folder], milvus_copy, embedder)
    assert changed.updated == ["bridge"] and changed.documents == 6
    new = rows_of("bridge")
    assert new and not {r["row"] for r in old} & {r["row"] for r in new}
    assert len({r["doc_hash"] for r in new}) == 1  # only the new version's passages are left
    store = backend.open()
    assert "للصيانة" in store.document("bridge").text
    total = client.query(n["passages"], filter="", output_fields=["count(*)"])[0]["count(*)"]
    assert total == len(store) == changed.chunks  # no duplicates
    assert writer.stored_terms(client, n["passages"]) == writer.live_terms(client, n["passages"])

    (folder / "bridge.txt").unlink()
    removed = build_index([folder], milvus_copy, embedder)
    assert removed.removed == ["bridge"] and removed.documents == 5 and rows_of("bridge") == []
    assert writer.stored_terms(client, n["passages"]) == writer.live_terms(client, n["passages"])
    assert client.query(n["texts"], filter='doc_id == "bridge"', output_fields=["key"]) == []


def test_an_interrupted_write_shows_no_second_version(milvus_copy, embedder, cli, environment):
    """A writer that died after writing a document's new passages, before switching its row to them."""
    from dataclasses import replace

    from rag.chain import index_spec
    from rag.indexer import embed_documents

    backend = backend_for(milvus_copy)
    store = backend.open()
    doc = store.document(TALKS_DOC)
    before = Assistant(milvus_copy, embedder=embedder).ask(RESUME_Q)
    edited = replace(doc, text=doc.text.replace("الأحد", "الاثنين"), content_hash="interrupted-version")
    chunks, emb = embed_documents(index_spec(milvus_copy, embedder), {doc.id: edited}, [doc.id], codec=store.codec)
    n = schema.names(milvus_copy.milvus_collection)
    backend.client.upsert(n["passages"], writer.passage_rows({doc.id: edited}, chunks, emb, True))
    backend.client.upsert(n["texts"], writer.text_rows(edited))  # ...and died here: the document row is not switched

    after = Assistant(milvus_copy, embedder=embedder).ask(RESUME_Q)
    assert after.answer == before.answer and [c.id for c in after.citations] == [c.id for c in before.citations]
    assert all("الاثنين" not in c.quote for c in after.citations)
    environment(RAG_STORE="milvus", RAG_INDEX_DIR=milvus_copy.index_dir)
    checked = cli("index", "--check")
    assert checked.exit_code == 1 and f"{len(chunks)} passages and 1 texts belong to no live document" in checked.output
    compacted = json.loads(cli("index", "--compact", "--json").output)["compact"]
    assert compacted["merged"] == f"{len(chunks)} orphaned passages and 1 texts deleted"
    assert cli("index", "--check").exit_code == 0


def test_docs_cite_and_rm_from_the_command_line(milvus_copy, cli, environment):
    environment(RAG_STORE="milvus", RAG_INDEX_DIR=milvus_copy.index_dir)
    docs = json.loads(cli("docs", "--json").output)
    assert len(docs) == 5 and TALKS_DOC in {d["id"] for d in docs}
    store = backend_for(milvus_copy).open()
    _, chunk = next((r, c) for r, c in store.all_chunks() if c.doc_id == TALKS_DOC)
    view = json.loads(cli("cite", f"{TALKS_DOC}:{chunk.start}-{chunk.end}", "--json").output)
    assert view["quote"] == chunk.text
    removed = cli("rm", TALKS_DOC, "--json")
    assert removed.exit_code == 0 and json.loads(removed.output)["documents"] == 4
    assert backend_for(milvus_copy).open().document(TALKS_DOC) is None
    missing = cli("rm", TALKS_DOC)
    assert missing.exit_code == 1 and "not in the index" in missing.output


def test_an_unreachable_server_and_a_mismatched_model_are_one_line_errors(milvus_copy, cli, environment):
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environment(RAG_STORE="milvus", RAG_MILVUS_URI=f"http://127.0.0.1:{port}")
    result = cli("docs")
    assert result.exit_code == 1 and "cannot reach Milvus at http://127.0.0.1:" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(IndexIncompatible, match=r"built with the model .*\(384 dimensions\)"):
        backend_for(milvus_copy).open(model_id="someone/other-model")
    with pytest.raises(IndexMissing, match="no index in milvus:"):
        backend_for(milvus_copy.model_copy(update={"milvus_collection": "nothing_here"})).open()


def test_a_milvus_lite_file_held_by_another_process_is_named(milvus_copy, cli, environment):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from rag.store.milvus import MilvusBackend\n"
        f"print(MilvusBackend({str(milvus_copy.index_dir / 'milvus.db')!r}).exists(), flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"  # it has the file open
        environment(RAG_STORE="milvus", RAG_INDEX_DIR=milvus_copy.index_dir)
        result = cli("docs")
        # the error line is wrapped to the terminal's width, where a long temporary path breaks it
        assert result.exit_code == 1 and "is open in another process" in " ".join(result.output.split())
        assert "Traceback" not in result.output
    finally:
        holder.kill()
        holder.wait()


def test_a_rebuild_written_in_batches_holds_the_same_passages(milvus_copy, bundled_index, embedder, monkeypatch):
    import rag.store.milvus as milvus_store
    from rag.config import BUNDLED_ARTICLES

    monkeypatch.setattr(milvus_store, "WRITE_BATCH", 2)  # 5 articles: three batches, each embedded then written
    seen = []
    report = build_index([BUNDLED_ARTICLES], milvus_copy, embedder, rebuild=True,
                         progress=lambda done, total: seen.append((done, total)))
    assert report.written and report.chunks_embedded == report.chunks == 20 and report.documents == 5
    assert seen[-1] == (20, 20) and all(a <= b for a, b in seen)
    local, _ = passages(bundled_index)
    rebuilt, _ = passages(milvus_copy)
    assert {k: (c.start, c.end) for k, (_, c) in rebuilt.items()} == {k: (c.start, c.end) for k, (_, c) in local.items()}
    assert backend_for(milvus_copy).check() == []
