"""The segmented store (rag/store/local): commits, snapshots, tombstones, BM25 across segments, merges, checks.
Real files, FAISS, SQLite and bm25s; the segments' vectors are synthetic (tests/segment_data.py)."""

import json
import os

import numpy as np
import pytest

import rag.store.local.segment as segment_module
from rag.errors import IndexIncompatible, IndexMissing
from rag.store import (IndexStore, MergePolicy, check_index, commit, legacy, maybe_compact, quantize_tokens,
                       read_manifest, start_index, write_lock)
from rag.store.local.lexical import Postings
from segment_data import DIM, make_docs, settings, state


def new_index(tmp_path, ids=("a", "b"), **kw):
    data, _ = make_docs(list(ids), **kw)
    commit(tmp_path, start_index(tmp_path, settings()), add=[data])
    return data


def change(index_dir, add=(), delete=(), version="2"):
    store = IndexStore.open(index_dir)
    try:
        segments = [make_docs(list(add), version=version)[0]] if add else []
        return commit(index_dir, store.manifest, store, add=segments, delete=set(delete) | set(add))
    finally:
        store.close()


def test_write_then_open_roundtrip(tmp_path):
    data = new_index(tmp_path)
    store = IndexStore.open(tmp_path, model_id="test-model")
    assert len(store) == 4 and store.document_count() == 2 and store.manifest.generation == 1
    assert [c.text for c in store.chunks([0, 1])] == [c.text for c in data.chunks[:2]]
    assert store.document("a").title == "title a" and store.document("missing") is None
    np.testing.assert_allclose(store.vectors(), data.vectors, rtol=1e-6)
    assert store.chunk_sentence_vectors(1).shape == (1, DIM)
    sims, spans = store.token_similarities(2, data.vectors[:3])
    assert sims.shape == (3, 5) and spans.shape == (5, 2)
    np.testing.assert_array_equal(store.stored_token_vectors(3)[0], data.tokens[3])
    scores, rows = store.dense_search(data.vectors[2], 1)
    assert rows == [2] and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexMissing, match="rag index"):
        IndexStore.open(tmp_path / "nothing")


def test_index_from_another_model_is_refused(tmp_path):
    new_index(tmp_path)
    with pytest.raises(IndexIncompatible, match="test-model"):
        IndexStore.open(tmp_path, model_id="model-b")


def test_a_newer_format_is_refused_with_a_message(tmp_path):
    new_index(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(IndexIncompatible, match="newer version.*format 99"):
        IndexStore.open(tmp_path)


def test_a_crash_mid_segment_leaves_the_previous_commit_whole(tmp_path, monkeypatch):
    new_index(tmp_path)
    before = (tmp_path / "manifest.json").read_bytes()

    def crash(path, arrays):  # arrays.bin half written, after SQLite and FAISS were
        path.write_bytes(b"RAGARR1\0" + b"\1" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(segment_module, "write_arrays", crash)
    with pytest.raises(OSError, match="disk full"):
        change(tmp_path, add=["c"], delete=["a"])
    monkeypatch.undo()
    assert (tmp_path / "manifest.json").read_bytes() == before
    store = IndexStore.open(tmp_path)
    assert set(state(store)) == {"a", "b"} and check_index(tmp_path) == []
    live = {e["name"] for e in store.manifest.segments}
    assert {p.name for p in (tmp_path / "segments").iterdir()} == live, "the partial segment goes"


def test_a_snapshot_keeps_its_commit_while_the_next_ones_land_and_their_files_go(tmp_path):
    new_index(tmp_path)
    old = IndexStore.open(tmp_path)
    old_first = old.chunks([0])[0].text
    change(tmp_path, add=["c"], delete=["a"])
    maybe_compact(tmp_path, force=True)  # the snapshot's segment is merged away and its directory removed
    assert len(list((tmp_path / "segments").iterdir())) == 1
    new = IndexStore.open(tmp_path)
    assert set(state(new)) == {"b", "c"} and new.manifest.generation == 3
    # The old snapshot still reads its own commit: documents, chunks, vectors, lexical statistics.
    assert set(state(old)) == {"a", "b"} and len(old) == 4 and old.chunks([0])[0].text == old_first
    assert old.dense_search(old.row_vectors([1])[0], 1)[1] == [1]
    assert old.lexical.n == 4


def test_a_writers_snapshot_opens_its_arrays_when_used_and_keeps_what_its_commits_remove(tmp_path):
    new_index(tmp_path)
    change(tmp_path, add=["c"])
    outside = IndexStore.open(tmp_path)
    assert all("postings" in s.__dict__ for s in outside.segments)  # a reader opens every file at once
    with write_lock(tmp_path):
        store = IndexStore.open(tmp_path)
        assert not any("postings" in s.__dict__ for s in store.segments)  # under the lock: SQLite only
        assert {d.id for d in store.documents()} == {"a", "b", "c"} and store.document("c").text
        doc_c = next(d for d in store.documents() if d.id == "c")
        assert "text" not in doc_c.__dict__ and "title" not in doc_c.__dict__  # listed without its text ...
        assert doc_c.title == "title c" and doc_c == outside.document("c")  # ... which is read when used
        doc_b = next(d for d in store.documents() if d.id == "b")
        first = store.segments[0]
        assert first.postings is not None and "postings" in first.__dict__  # opened on first use
        # c's segment goes with this commit, its files when the lock is released (once for all its commits)
        commit(tmp_path, store.manifest, store, delete={"c"})
        gone = tmp_path / "segments" / store.segments[1].name
        assert gone.exists()
        last = len(store) - 1
        assert store.chunks([last])[0].doc_id == "c" and store.row_vectors([last]).shape == (1, DIM)
        assert store.lexical.n == 6 and store.stored_token_vectors(last) is not None
        kept = IndexStore.open(tmp_path)
        store.close()
    assert not gone.exists()
    assert doc_b.text == outside.document("b").text  # listed before the close, read after it
    # at the release, a snapshot still open opened everything: a merge removing its files does not disturb it
    assert all("postings" in s.__dict__ for s in kept.segments)
    change(tmp_path, add=["d"])
    maybe_compact(tmp_path, force=True)
    assert not (tmp_path / "segments" / kept.segments[0].name).exists()
    assert kept.dense_search(kept.row_vectors([1])[0], 1)[1] == [1] and kept.lexical.n == 4
    assert kept.stored_token_vectors(3) is not None and kept.chunk_sentence_vectors(0).shape == (1, DIM)


def test_replace_and_remove_write_only_the_article(tmp_path):
    # A 2,000-passage index of realistic per-passage sizes (e5-small's 384 dimensions, 60 int8 tokens a passage).
    data, _ = make_docs([f"d{i}" for i in range(400)], passages=5, dim=384, tokens_per_passage=60)
    commit(tmp_path, start_index(tmp_path, settings(dim=384)), add=[data])

    def size():
        return sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file())

    def written(fn) -> int:
        before = {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in tmp_path.rglob("*") if f.is_file()}
        fn()
        return sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file()
                   and before.get(f) != (f.stat().st_ino, f.stat().st_mtime_ns))

    total = size()
    store = IndexStore.open(tmp_path)
    replaced = make_docs(["d7"], passages=5, dim=384, tokens_per_passage=60, version="2")[0]
    replace = written(lambda: commit(tmp_path, store.manifest, store, add=[replaced], delete={"d7"}))
    store = IndexStore.open(tmp_path)
    remove = written(lambda: commit(tmp_path, store.manifest, store, delete={"d9"}))
    assert replace / total <= 0.02 and remove / total <= 0.001, (replace, remove, total)
    store = IndexStore.open(tmp_path)
    assert store.document_count() == 399 and len(store) == 1995 and store.document("d7").content_hash.endswith("2")


def bm25s_scores(token_lists, query):
    import bm25s

    bm25 = bm25s.BM25()
    bm25.index(token_lists, show_progress=False)
    ids = bm25.get_tokens_ids(query)
    return bm25.get_scores_from_ids(ids) if ids else np.zeros(len(token_lists))


QUERIES = [["w0", "w5"], ["w1", "w1", "w30"], ["w12"], ["w2", "w3", "w250"], ["nothing"]]


def test_bm25_on_one_segment_equals_bm25s(tmp_path):
    data, lexical = make_docs([f"d{i}" for i in range(60)], passages=3)
    commit(tmp_path, start_index(tmp_path, settings()), add=[data])
    store = IndexStore.open(tmp_path)
    for query in QUERIES:
        want = bm25s_scores(lexical, query)
        scores, rows = store.lexical_search(query, 500)
        got = np.zeros(len(lexical))
        got[rows] = scores
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert scores == sorted(scores, reverse=True)
    n, df = len(lexical), sum("w5" in t for t in lexical)
    assert store.idf("w5") == pytest.approx(np.log(1 + (n - df + 0.5) / (df + 0.5)))


def test_bm25_ties_at_the_cut_are_broken_by_row(tmp_path):
    # 40 passages with the same tokens score alike: the top 7 are the first 7 rows, in row order, across segments.
    data, _ = make_docs([f"d{i}" for i in range(20)], passages=2)
    data.postings = Postings.build([["same", "words"]] * len(data.chunks))
    commit(tmp_path, start_index(tmp_path, settings()), add=[data])
    more, _ = make_docs([f"e{i}" for i in range(10)], passages=2)
    more.postings = Postings.build([["same", "words"]] * len(more.chunks))
    commit(tmp_path, read_manifest(tmp_path), IndexStore.open(tmp_path), add=[more])
    store = IndexStore.open(tmp_path)
    for k in (1, 7, 39, 60):
        scores, rows = store.lexical_search(["words", "same", "words"], k)
        assert rows == list(range(min(k, 60))) and len(set(scores)) == 1, (k, rows[:10])
    assert store.lexical_search(["unknown"], 5) == ([], [])


def test_bm25_across_segments_with_tombstones_is_bm25s_over_the_live_passages(tmp_path):
    first, lex1 = make_docs([f"a{i}" for i in range(30)], passages=3)
    commit(tmp_path, start_index(tmp_path, settings()), add=[first])
    live = {f"a{i}": lex1[3 * i:3 * i + 3] for i in range(30)}
    for part in range(3):
        store = IndexStore.open(tmp_path)
        ids = [f"b{part}-{i}" for i in range(10)]
        data, lex = make_docs(ids, passages=2, seed=part)
        gone = {f"a{part * 7 + j}" for j in range(3)} | ({f"b{part - 1}-0"} if part else set())
        commit(tmp_path, store.manifest, store, add=[data], delete=gone)
        for doc_id in gone:
            live.pop(doc_id)
        live.update({doc_id: lex[2 * i:2 * i + 2] for i, doc_id in enumerate(ids)})
    store = IndexStore.open(tmp_path)
    assert len(store.segments) == 4 and len(store) == sum(len(v) for v in live.values())
    texts = {row: chunk for row, chunk in store.all_chunks()}
    # live passages in the snapshot's row order, with their lexical tokens
    order = sorted(texts)
    tokens_of = {}
    for doc_id, lists in live.items():
        rows = [r for r in order if texts[r].doc_id == doc_id]
        tokens_of.update(dict(zip(rows, lists)))
    lexical = [tokens_of[r] for r in order]
    for query in QUERIES:
        want = bm25s_scores(lexical, query)
        scores, rows = store.lexical_search(query, 1000)
        got = dict(zip(rows, scores))
        np.testing.assert_allclose([got.get(r, 0.0) for r in order], want, rtol=1e-5, atol=1e-6)
    # and a compaction (which drops the tombstoned rows) keeps every score and passage
    before = {q[0]: [(store.chunks([r])[0].text, round(s, 5)) for s, r in zip(*store.lexical_search(q, 20))]
              for q in QUERIES}
    dense_query = store.row_vectors([order[5]])[0]
    dense_before = [(store.chunks([r])[0].text, round(s, 5)) for s, r in zip(*store.dense_search(dense_query, 10))]
    assert maybe_compact(tmp_path, force=True) == (4, 1)
    after_store = IndexStore.open(tmp_path)
    assert len(after_store.segments) == 1 and not after_store.segments[0].entry["deletes"]
    for q in QUERIES:
        got = [(after_store.chunks([r])[0].text, round(s, 5)) for s, r in zip(*after_store.lexical_search(q, 20))]
        assert sorted(got) == sorted(before[q[0]])
    assert sorted(after_store.chunks([r])[0].text for r in after_store.dense_search(dense_query, 10)[1]) == \
        sorted(t for t, _ in dense_before)
    assert state(after_store) == state(store) and check_index(tmp_path) == []


def test_postings_merge_equals_postings_built_from_the_kept_rows():
    a, lex_a = make_docs(["x", "y"], passages=3)
    b, lex_b = make_docs(["z"], passages=2, seed=1)
    keep_a = np.array([0, -1, 1, 2, -1, 3])
    merged = Postings.merge([(a.postings, keep_a), (b.postings, np.array([4, 5]))])
    want = Postings.build([lex_a[0], lex_a[2], lex_a[3], lex_a[5]] + lex_b)
    for name in ("terms", "indptr", "rows", "tfs", "lengths"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(want, name))


def test_the_tiered_policy_merges_a_level_when_it_fills():
    policy = MergePolicy(min_segments=3, factor=4, floor_rows=10)
    small = [{"name": f"s{i}", "rows": 5, "deletes": None} for i in range(2)]
    big = [{"name": "big", "rows": 1000, "deletes": None}]
    assert policy.select(small + big) == []
    assert policy.select(small + big + [{"name": "s2", "rows": 8, "deletes": None}]) == ["s0", "s1", "s2"]
    wasted = {"name": "w", "rows": 100, "deletes": {"rows": 60}}
    assert policy.select(big + [wasted]) == ["w"]


def test_commits_merge_small_segments_and_stay_few(tmp_path):
    new_index(tmp_path, ids=["seed"])
    policy = MergePolicy(min_segments=4, factor=4, floor_rows=4)
    for i in range(20):
        change(tmp_path, add=[f"n{i}"], version="1")
        maybe_compact(tmp_path, policy)
    store = IndexStore.open(tmp_path)
    assert store.document_count() == 21 and len(store.segments) < 8 and check_index(tmp_path) == []
    assert len(list((tmp_path / "segments").iterdir())) == len(store.segments)  # merged inputs removed


def test_check_names_a_flipped_byte_and_a_missing_file(tmp_path):
    new_index(tmp_path)
    change(tmp_path, delete=["a"])
    assert check_index(tmp_path) == []
    segment = next((tmp_path / "segments").iterdir())
    target = segment / "arrays.bin"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(raw))
    (segment / "store.sqlite").unlink()
    problems = check_index(tmp_path)
    assert len(problems) == 2
    assert any("arrays.bin: checksum" in p for p in problems)
    assert any("store.sqlite: missing" in p for p in problems)


def as_format_3(index_dir):
    """Rewrite the live commit's segments as the previous version wrote them: one .npy file per array."""
    from rag.store.local.manifest import checksum, write_manifest
    from rag.store.local.packed import read_arrays
    from rag.store.vectors.flat import FlatIndex

    manifest = read_manifest(index_dir)
    entries = []
    for e in manifest.segments:
        directory = index_dir / "segments" / e["name"]
        arrays = read_arrays(directory / "arrays.bin")
        FlatIndex.build(arrays.pop("vectors"), directory)  # format 3 kept a small segment's vectors in FAISS's file
        for name, array in arrays.items():
            np.save(directory / f"{name}.npy", array, allow_pickle=False)
        (directory / "arrays.bin").unlink()
        files = {f.name: checksum(f) for f in sorted(directory.iterdir()) if not f.name.startswith("del-")}
        entries.append({**e, "files": files, "vector_kind": "flat"})
    write_manifest(index_dir, manifest.with_commit(segments=tuple(entries), format_version=3))


def test_segments_of_format_3_are_read_as_they_are_and_merged_into_one_file(tmp_path):
    data = new_index(tmp_path, ids=("a", "b", "c"))
    as_format_3(tmp_path)
    assert check_index(tmp_path) == [] and read_manifest(tmp_path).format_version == 3
    store = IndexStore.open(tmp_path)
    assert {d.id for d in store.documents()} == {"a", "b", "c"} and store.lexical.n == 6
    np.testing.assert_allclose(store.vectors(), data.vectors, rtol=1e-6)
    np.testing.assert_array_equal(store.stored_token_vectors(3)[0], data.tokens[3])
    np.testing.assert_allclose(store.chunk_sentence_vectors(5), data.sentence_vectors[5:6].astype(np.float32))
    manifest = change(tmp_path, delete=["b"])  # a tombstone only: the index stays readable by the version before
    assert manifest.format_version == 3 and check_index(tmp_path) == []
    manifest = change(tmp_path, add=["d"])  # a segment of one file: format 4
    assert manifest.format_version == 4 and {tuple(sorted(e["files"])) for e in manifest.segments} == {
        tuple(sorted(("lex_indptr.npy", "lex_lengths.npy", "lex_rows.npy", "lex_tfs.npy", "lex_terms.npy",
                      "sentences.npy", "store.sqlite", "token_rows.npy", "token_spans.npy", "tokens.npy",
                      "vectors.faiss"))),
        ("arrays.bin", "store.sqlite")}
    maybe_compact(tmp_path, force=True)
    merged = IndexStore.open(tmp_path)
    assert [sorted(e["files"]) for e in merged.manifest.segments] == [["arrays.bin", "store.sqlite"]]
    assert [e["vector_kind"] for e in merged.manifest.segments] == ["exact"]
    np.testing.assert_allclose(merged.row_vectors([0, 2]), data.vectors[[0, 4]], rtol=1e-6)  # a, c (b went)
    assert {d.id for d in merged.documents()} == {"a", "c", "d"} and check_index(tmp_path) == []
    np.testing.assert_array_equal(merged.stored_token_vectors(0)[0], data.tokens[0])
    assert not list((tmp_path / "segments").rglob("*.npy"))


def test_removing_every_document_of_a_segment_drops_it(tmp_path):
    new_index(tmp_path)
    change(tmp_path, add=["c"])
    manifest = change(tmp_path, delete=["c"])
    assert len(manifest.segments) == 1 and manifest.documents == 2
    assert len(list((tmp_path / "segments").iterdir())) == 1


def legacy_index(tmp_path, tokens=True):
    data, lexical = make_docs(["a", "b"])
    old = legacy.IndexData(
        manifest=legacy.Manifest(model_id="test-model", dimension=DIM, chunk_tokens=256, chunk_overlap_tokens=48,
                                 embed_title=True, tokenizer="arabic-v2", stemmer="stem-v1", documents=2, chunks=4,
                                 format_version=2),
        documents=data.documents, chunks=data.chunks, vectors=data.vectors, sentence_vectors=data.sentence_vectors,
        bm25_tokens=lexical, tokens=data.tokens if tokens else None,
        token_spans=data.token_spans if tokens else None, token_rows=data.token_rows if tokens else None)
    legacy.write_index(tmp_path, old)
    return data


def test_an_index_of_the_format_before_segments_says_what_to_run(tmp_path):
    legacy_index(tmp_path)
    with pytest.raises(IndexIncompatible, match="older version.*rag index.*migrate.*without re-embedding"):
        IndexStore.open(tmp_path)
    old = IndexStore.open(tmp_path, older_format=True)  # docs and cite read it
    assert isinstance(old, legacy.IndexStore) and old.document("a").title == "title a"


def test_quantize_tokens_is_the_int8_codec():
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(50, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    stored = quantize_tokens(vectors)
    assert stored.dtype == np.int8 and np.abs(stored).max() <= 127
    np.testing.assert_allclose(stored / 127, vectors, atol=0.5 / 127 + 1e-6)


def test_the_commit_is_one_rename_of_a_synced_manifest(tmp_path, monkeypatch):
    new_index(tmp_path)
    renames = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renames.append((str(a), str(b))), real(a, b))[1])
    change(tmp_path, add=["c"])
    assert renames[-1] == (str(tmp_path / "manifest.json.tmp"), str(tmp_path / "manifest.json"))
    assert read_manifest(tmp_path).generation == 2


def test_a_reader_racing_a_merge_retries_on_the_newer_manifest(tmp_path, monkeypatch):
    import rag.store.local.reader as reader_module

    new_index(tmp_path)
    change(tmp_path, add=["c"])
    stale = read_manifest(tmp_path)
    maybe_compact(tmp_path, force=True)  # the stale manifest's segments are gone from disk
    calls = []

    def racing(index_dir):
        calls.append(1)
        return stale if len(calls) == 1 else read_manifest(index_dir)

    monkeypatch.setattr(reader_module, "read_manifest", racing)
    store = IndexStore.open(tmp_path)
    assert store.manifest.generation == stale.generation + 1 and set(state(store)) == {"a", "b", "c"}


def test_a_merge_asks_sqlite_for_its_rows_in_batches_under_the_bound_parameter_limit(tmp_path, monkeypatch):
    # At a million passages the forced compaction asked one segment for its 622,080 rows in one query, over SQLite's
    # limit of 250,000 bound parameters ("too many SQL variables"): the same, with the limit lowered to 30.
    import sqlite3

    from rag.store.local.compaction import merge

    new_index(tmp_path, ids=[f"a{i}" for i in range(40)])
    change(tmp_path, add=[f"b{i}" for i in range(40)])
    monkeypatch.setattr(segment_module, "BOUND", 20)
    store = IndexStore.open(tmp_path)
    try:
        assert all(seg.rows > 30 for seg in store.segments)
        for seg in store.segments:
            seg.db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 30)
        merge(tmp_path, store, [seg.name for seg in store.segments])
    finally:
        store.close()
    merged = IndexStore.open(tmp_path)
    assert len(merged.segments) == 1 and merged.document_count() == 80 and len(merged) == 160
    assert check_index(tmp_path) == []
    merged.close()
