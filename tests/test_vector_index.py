"""The segment's dense index (rag/store/vectors/): the size rule, the IVF's recall of the exact top 50 on real model
vectors, its scores being the exact ones, memory-mapped opening, and the empty / tiny segments."""

from __future__ import annotations

import filecmp

import numpy as np
import pytest

from rag.store.vectors import ANN_FROM, build_vector_index, open_vector_index
from rag.store.vectors.flat import FlatIndex
from rag.store.vectors.ivf import INDEX_FILE, IVFIndex


@pytest.fixture(scope="module")
def real_vectors(bundled_index):
    """The bundled articles' passage and sentence vectors, from the real model."""
    from rag.store import IndexStore

    store = IndexStore.open(bundled_index.index_dir)
    sentences = np.vstack([store.chunk_sentence_vectors(row) for row in store.live_rows()])
    vectors = np.vstack([store.vectors(), sentences / np.linalg.norm(sentences, axis=1, keepdims=True)])
    store.close()
    return vectors.astype(np.float32)


def around(real: np.ndarray, count: int, seed: int, noise: float = 0.3) -> np.ndarray:
    """`count` unit vectors scattered around the real ones (each a real vector plus Gaussian noise of about
    `noise` of its length): a corpus of many passages close to the real ones, as an archive is."""
    rng = np.random.default_rng(seed)
    x = real[rng.integers(0, len(real), count)]
    x = x + rng.standard_normal(x.shape, dtype=np.float32) * (noise / np.sqrt(x.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def large(real_vectors, tmp_path_factory):
    """A segment just over the size rule's threshold, built by the rule."""
    vectors = around(real_vectors, ANN_FROM + 1000, seed=1)
    directory = tmp_path_factory.mktemp("large")
    kind = build_vector_index(vectors, directory)
    flat_dir = tmp_path_factory.mktemp("large-flat")
    FlatIndex.build(vectors, flat_dir)
    return vectors, kind, open_vector_index(kind, directory), FlatIndex.open(flat_dir)


def test_the_size_rule_scans_small_segments_and_uses_the_ivf_for_large_ones(large, real_vectors, tmp_path):
    vectors, kind, index, _ = large
    assert kind == IVFIndex.kind and len(index) == len(vectors)
    assert build_vector_index(around(real_vectors, ANN_FROM - 1, seed=2), tmp_path) == FlatIndex.kind


def test_the_ivf_finds_the_exact_top_50_of_real_questions(large, real_vectors):
    vectors, _, index, flat = large
    queries = around(real_vectors, 200, seed=3, noise=0.5)  # unseen: fresh noise around the real vectors
    recalls = []
    for q in queries:
        _, truth = flat.search(q, 50)
        _, rows = index.search(q, 50)
        assert len(rows) == 50 and len(set(rows.tolist())) == 50
        recalls.append(len(set(rows.tolist()) & set(truth.tolist())) / 50)
    assert np.mean(recalls) >= 0.98
    # and a much smaller probe visibly loses some: the recall above is the probe's, not the data's
    narrow = [len(set(index.search(q, 50, nprobe=1, candidates=50)[1].tolist())
                  & set(flat.search(q, 50)[1].tolist())) / 50 for q in queries[:50]]
    assert np.mean(narrow) < np.mean(recalls[:50])


def test_the_ivf_returns_the_flat_index_exact_scores_best_first(large, real_vectors):
    vectors, _, index, flat = large
    for q in around(real_vectors, 20, seed=4, noise=0.5):
        scores, rows = index.search(q, 10)
        assert np.all(np.diff(scores) <= 0)
        np.testing.assert_allclose(scores, flat.vector(rows) @ q, rtol=0, atol=1e-6)
        np.testing.assert_allclose(scores, vectors[rows] @ q, rtol=0, atol=1e-6)
        flat_scores, flat_rows = flat.search(q, 1)
        assert rows[0] == flat_rows[0] and abs(scores[0] - flat_scores[0]) <= 1e-6
    np.testing.assert_array_equal(index.vector(np.array([0, 5, len(vectors) - 1])), vectors[[0, 5, -1]])


def test_the_ivf_opens_by_memory_map(large):
    import faiss

    _, _, index, _ = large
    assert isinstance(index._vectors, np.memmap)
    assert isinstance(faiss.downcast_InvertedLists(index._index.invlists), faiss.OnDiskInvertedLists)


def test_building_twice_writes_the_same_index(real_vectors, tmp_path):
    vectors = around(real_vectors, 5000, seed=5)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    IVFIndex.build(vectors, tmp_path / "a", nlist=32)
    IVFIndex.build(vectors, tmp_path / "b", nlist=32)
    assert filecmp.cmp(tmp_path / "a" / INDEX_FILE, tmp_path / "b" / INDEX_FILE, shallow=False)


def test_empty_and_tiny_segments(real_vectors, tmp_path):
    (tmp_path / "empty").mkdir(), (tmp_path / "tiny").mkdir()
    kind = build_vector_index(np.zeros((0, real_vectors.shape[1]), np.float32), tmp_path / "empty")
    empty = open_vector_index(kind, tmp_path / "empty")
    scores, rows = empty.search(real_vectors[0], 5)
    assert kind == FlatIndex.kind and len(empty) == 0 and len(scores) == len(rows) == 0
    tiny = open_vector_index(build_vector_index(real_vectors[:3], tmp_path / "tiny"), tmp_path / "tiny")
    scores, rows = tiny.search(real_vectors[1], 10)
    assert sorted(rows.tolist()) == [0, 1, 2] and rows[0] == 1 and scores[0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="at least as many vectors"):
        IVFIndex.build(real_vectors[:3], tmp_path / "tiny", nlist=16)
    with pytest.raises(ValueError, match="unknown vector index"):
        open_vector_index("hnsw-pq", tmp_path / "tiny")


def test_the_exact_scan_in_a_segments_arrays_equals_the_flat_index(tmp_path):
    from rag.store.local.packed import read_arrays, write_arrays

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(700, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[10] = vectors[11]  # a tie: broken by row
    arrays: dict = {}
    assert build_vector_index(vectors, tmp_path, arrays) == "exact" and not list(tmp_path.iterdir())
    write_arrays(tmp_path / "arrays.bin", arrays)
    exact = open_vector_index("exact", tmp_path, read_arrays(tmp_path / "arrays.bin"))
    FlatIndex.build(vectors, tmp_path)
    flat = open_vector_index("flat", tmp_path)
    assert len(exact) == len(flat) == 700
    for q in [vectors[10]] + list(rng.normal(size=(20, 32)).astype(np.float32)):
        q = q / np.linalg.norm(q)
        for k in (1, 10, 700, 900):
            (s1, r1), (s2, r2) = exact.search(q, k), flat.search(q, k)
            np.testing.assert_allclose(s1, s2, atol=1e-5)
            assert list(s1) == sorted(s1, reverse=True) and len(r1) == min(k, 700)
            assert set(r1[s1 > s1[-1] + 1e-5]) == set(r2[s2 > s2[-1] + 1e-5])  # the same rows but ties at the cut
    assert list(exact.search(vectors[10], 2)[1]) == [10, 11]
    np.testing.assert_array_equal(exact.vector(np.array([3, 699])), vectors[[3, 699]])
    empty: dict = {}
    build_vector_index(np.zeros((0, 32), np.float32), tmp_path, empty)
    write_arrays(tmp_path / "empty.bin", empty)
    nothing = open_vector_index("exact", tmp_path, read_arrays(tmp_path / "empty.bin"))
    assert len(nothing) == 0 and nothing.search(vectors[0], 5)[1].size == 0
    with pytest.raises(ValueError, match="unknown vector index"):
        open_vector_index("hnsw", tmp_path)
