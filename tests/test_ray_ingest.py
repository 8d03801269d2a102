"""`rag index --ray local`: a real local Ray (2 CPUs) reads, chunks and embeds; the index it commits holds the same
documents, passages and citation offsets as the single-process `rag index`, and vectors equal to float rounding."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.config import BUNDLED_ARTICLES
from rag.store import IndexStore

pytestmark = pytest.mark.e2e
RAG = [sys.executable, "-m", "rag.cli"]


def _rag(*args, **env):
    return subprocess.run([*RAG, *map(str, args)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})


@pytest.fixture(scope="module")
def ray_index(tmp_path_factory):
    where = tmp_path_factory.mktemp("ray")
    (where / "empty.txt").write_text("   \n", encoding="utf-8")  # a file that fails: reported, not fatal
    done = _rag("index", BUNDLED_ARTICLES, where / "empty.txt", "--index-dir", where / "index", "--ray", "local",
                "--json", RAG_RAY_WORKERS="2")
    return where / "index", done


def _by_passage(store):
    return {(c.doc_id, c.ordinal): (row, c) for row, c in store.all_chunks()}


def test_ray_ingest_commits_the_same_passages_as_one_process(ray_index, bundled_index):
    index_dir, done = ray_index
    assert done.returncode == 3, done.stderr[-2000:]  # 3: something was skipped
    report = json.loads(done.stdout)
    assert sorted(report["added"]) == sorted(p.stem for p in BUNDLED_ARTICLES.glob("*.txt"))
    assert [s["reason"] for s in report["skipped"]] == ["empty file (whitespace only)"]
    assert report["skipped"][0]["path"].endswith("empty.txt")

    ray_store, local = IndexStore.open(index_dir), IndexStore.open(bundled_index.index_dir)
    assert [(d.id, d.text, d.content_hash) for d in ray_store.documents()] == \
        [(d.id, d.text, d.content_hash) for d in local.documents()]
    ray_rows, local_rows = _by_passage(ray_store), _by_passage(local)
    assert ray_rows.keys() == local_rows.keys() and len(ray_rows) == len(local) > 10
    for key, (row, chunk) in ray_rows.items():
        other_row, other = local_rows[key]
        assert (chunk.start, chunk.end, chunk.sentences) == (other.start, other.end, other.sentences)
        a, b = ray_store.row_vectors([row])[0], local.row_vectors([other_row])[0]
        assert float(a @ b) > 0.9999, key
        assert np.allclose(ray_store.chunk_sentence_vectors(row), local.chunk_sentence_vectors(other_row), atol=2e-3)
        (codes, spans), (other_codes, other_spans) = (ray_store.stored_token_vectors(row),
                                                      local.stored_token_vectors(other_row))
        assert np.array_equal(spans, other_spans)
        if ray_store.manifest.token_codec == "int8":
            assert np.abs(codes.astype(int) - other_codes.astype(int)).max() <= 1  # rounding apart
        else:  # centroid ids: a vector on the edge of two cells may fall in the other
            assert (codes == other_codes).mean() > 0.95, key


def test_the_ray_index_answers_with_the_same_citations(ray_index, bundled_index):
    index_dir, _ = ray_index
    question = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"
    cited = []
    for where in (index_dir, bundled_index.index_dir):
        done = _rag("ask", question, "--index-dir", where, "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        cited.append([c["id"] for c in json.loads(done.stdout)["citations"]])
    assert cited[0] == cited[1] and cited[0]


def test_an_address_that_does_not_answer_is_one_line_and_no_index(tmp_path):
    done = _rag("index", BUNDLED_ARTICLES, "--index-dir", tmp_path / "index", "--ray", "127.0.0.1:1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "could not reach Ray at 127.0.0.1:1" in done.stderr
    assert not (tmp_path / "index").exists()
