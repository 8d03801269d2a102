"""The on-disk index: real SQLite, real FAISS; a crash mid-write is simulated by failing one file write."""

import json

import numpy as np
import pytest

import rag.store as store_module
from rag.errors import IndexIncompatible, IndexMissing
from rag.store import IndexData, IndexStore, Manifest, current_version, quantize_tokens, write_index
from rag.types import Chunk, Document, Span

DIM = 8


def make_data(doc_text: str, model_id: str = "test-model") -> IndexData:
    doc = Document(id="doc1", text=doc_text, title="عنوان", content_hash="h1")
    half = len(doc_text) // 2
    chunks = [Chunk("doc1", 0, half, doc_text[:half], 0, (Span(0, half),)),
              Chunk("doc1", half, len(doc_text), doc_text[half:], 1, (Span(half, len(doc_text)),))]
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(2, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return IndexData(manifest=Manifest(model_id=model_id, dimension=DIM, chunk_tokens=256, chunk_overlap_tokens=48,
                                       embed_title=True, tokenizer="t", documents=1, chunks=2),
                     documents=[doc], chunks=chunks, vectors=vecs, sentence_vectors=vecs.astype(np.float16),
                     bm25_tokens=[["عنوان", "اول"], ["ثاني"]])


def test_write_then_open_roundtrip(tmp_path):
    write_index(tmp_path, make_data("النص الأول والنص الثاني"))
    store = IndexStore.open(tmp_path, model_id="test-model")
    assert len(store) == 2 and store.document_count() == 1
    c0, c1 = store.chunks([0, 1])
    assert c0.text + c1.text == "النص الأول والنص الثاني"
    assert store.document("doc1").title == "عنوان"
    assert store.document("missing") is None
    np.testing.assert_allclose(store.vectors(), make_data("النص الأول والنص الثاني").vectors, rtol=1e-6)
    assert store.chunk_sentence_vectors(1).shape == (1, DIM)
    assert store.bm25 is not None


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexMissing, match="rag index"):
        IndexStore.open(tmp_path / "nothing")


def test_index_from_another_model_is_refused(tmp_path):
    write_index(tmp_path, make_data("نص", model_id="model-a"))
    with pytest.raises(IndexIncompatible, match="model-a"):
        IndexStore.open(tmp_path, model_id="model-b")


def test_a_crash_mid_write_leaves_the_previous_index_whole(tmp_path, monkeypatch):
    write_index(tmp_path, make_data("النسخة القديمة من المقال"))
    before = current_version(tmp_path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store_module.np, "save", crash)  # fails after SQLite and FAISS were written
    with pytest.raises(OSError, match="disk full"):
        write_index(tmp_path, make_data("النسخة الجديدة من المقال"))
    monkeypatch.undo()

    assert current_version(tmp_path) == before
    store = IndexStore.open(tmp_path)
    assert store.document("doc1").text == "النسخة القديمة من المقال"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")], "the partial version is cleaned up"


def test_a_new_version_replaces_the_old_and_old_directories_go(tmp_path):
    write_index(tmp_path, make_data("أول"))
    write_index(tmp_path, make_data("ثان"))
    versions = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(versions) == 1 and versions[0] == current_version(tmp_path)
    assert IndexStore.open(tmp_path).document("doc1").text == "ثان"
    manifest = json.loads((versions[0] / "manifest.json").read_text())
    assert manifest["model_id"] == "test-model"
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))


def with_tokens(data: IndexData, counts=(3, 2)) -> IndexData:
    rng = np.random.default_rng(1)
    tokens = rng.normal(size=(sum(counts), DIM)).astype(np.float32)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    spans = np.array([[-1, -1]] + [[i, i + 1] for i in range(sum(counts) - 1)], np.int32)  # a title token first
    data.tokens, data.token_spans = [quantize_tokens(tokens[:2]), quantize_tokens(tokens[2:])], spans  # any split
    data.token_rows = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return data


def test_token_vectors_roundtrip_per_chunk_as_int8(tmp_path):
    data = with_tokens(make_data("النص الأول والنص الثاني"))
    write_index(tmp_path, data)
    store = IndexStore.open(tmp_path)
    assert np.load(current_version(tmp_path) / "tokens.npy").dtype == np.int8
    assert store.manifest.token_codec == "int8" and store.has_tokens
    first, second = store.stored_token_vectors(0), store.stored_token_vectors(1)
    assert first[0].shape == (3, DIM) and second[0].shape == (2, DIM) and second[0].dtype == np.int8
    np.testing.assert_array_equal(np.vstack([first[0], second[0]]), np.vstack(data.tokens))
    assert first[1].tolist() == [[-1, -1], [0, 1], [1, 2]] and second[1].tolist() == [[2, 3], [3, 4]]
    q = np.random.default_rng(3).normal(size=(4, DIM)).astype(np.float32)
    sims, spans = store.token_similarities(1, q)
    np.testing.assert_allclose(sims, q @ (np.vstack(data.tokens)[3:] / 127).T, atol=1e-5)
    assert spans.tolist() == second[1].tolist()


def test_token_vectors_are_quantized_to_int8_within_half_a_step():
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(50, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    stored = quantize_tokens(vectors)
    assert stored.dtype == np.int8 and np.abs(stored).max() <= 127
    np.testing.assert_allclose(stored / 127, vectors, atol=0.5 / 127 + 1e-6)


def test_an_index_without_token_vectors_still_opens(tmp_path):
    write_index(tmp_path, make_data("نص"))
    store = IndexStore.open(tmp_path)
    assert not store.has_tokens and store.token_similarities(0, np.ones((1, DIM), np.float32)) is None


def test_token_vectors_that_do_not_match_the_chunks_are_refused(tmp_path):
    data = with_tokens(make_data("نص أطول قليلا"))
    data.token_rows = np.array([0, 3], np.int64)  # one chunk's worth for two chunks
    with pytest.raises(ValueError, match="token vectors"):
        write_index(tmp_path, data)
    unquantized = with_tokens(make_data("نص أطول قليلا"))
    unquantized.tokens = [block / 127 for block in unquantized.tokens]  # float vectors, not the stored int8
    with pytest.raises(ValueError, match="token vectors"):
        write_index(tmp_path, unquantized)
    assert current_version(tmp_path) is None
