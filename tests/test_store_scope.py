"""What one change writes (a small segment's SQLite file) and the store's lookup of what it touches (documents_in_scope: by id and by path, through SQLite's indexes)
and the indexer's view of the documents after a change (FinalDocuments), against a listing of every document.
Real segments (SQLite, FAISS) with synthetic vectors (tests/segment_data.py)."""

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from rag.indexer import FinalDocuments, _in_scope
from rag.store import IndexStore, commit, start_index
from rag.store.local.segment import write_tables
from segment_data import make_docs, settings

PATHS = {"a": "/news/a.txt", "b": "/news/sub/b.txt", "c": "/news-old/c.txt", "d": "/news", "e": "",
         "f": "/newsx.txt", "g": "/news/sub/deep/g.txt", "h": "/other/h.txt"}


def segment(ids, version=""):
    data, _ = make_docs(ids, version=version)
    data.documents = [replace(d, path=PATHS[d.id]) for d in data.documents]
    return data


def build(tmp_path):
    """Three segments: a-d, e-h (a later segment), then b replaced and c removed (tombstones)."""
    commit(tmp_path, start_index(tmp_path, settings()), add=[segment(["a", "b", "c", "d"])])
    for add, delete in ((["e", "f", "g", "h"], set()), (["b"], {"b", "c"})):
        store = IndexStore.open(tmp_path)
        commit(tmp_path, store.manifest, store, add=[segment(add, version="2")], delete=delete)
        store.close()
    return IndexStore.open(tmp_path)


def listed(store, ids, roots):
    """What the indexer found by listing every document (before the lookup)."""
    return sorted(d.id for d in store.documents() if d.id in ids or (d.path and _in_scope(d.path, roots)))


@pytest.mark.parametrize("ids, roots", [
    ([], ["/news"]), ([], ["/news/"]), ([], ["/news/sub"]), (["h", "zz"], ["/news/a.txt"]), (["e"], []),
    ([], ["/"]), ([], ["/new"]), (["c"], ["/news-old"]), (["a", "g"], ["/other", "/news/sub/deep"])])
def test_the_lookup_finds_what_a_listing_of_every_document_finds(tmp_path, ids, roots):
    store = build(tmp_path)
    got = store.documents_in_scope(ids, [Path(r) for r in roots])
    assert [d.id for d in got] == listed(store, set(ids), [Path(r) for r in roots])
    by_id = {d.id: d for d in store.documents()}
    assert all(d.content_hash == by_id[d.id].content_hash and d.text == by_id[d.id].text for d in got)


def test_the_lookup_reads_the_newest_version_and_never_a_removed_one(tmp_path):
    store = build(tmp_path)
    got = {d.id: d for d in store.documents_in_scope(["b", "c"], [Path("/news")])}
    assert set(got) == {"a", "b", "d", "g"} and got["b"].content_hash == "h-b-2"


def test_a_segment_written_before_the_path_index_is_searched_all_the_same(tmp_path):
    build(tmp_path).close()
    first = sorted((tmp_path / "segments").iterdir())[0] / "store.sqlite"
    db = sqlite3.connect(first)
    db.execute("DROP INDEX documents_path")
    db.commit()
    db.close()
    store = IndexStore.open(tmp_path)
    assert [d.id for d in store.documents_in_scope([], [Path("/news")])] == ["a", "b", "d", "g"]


def test_the_final_documents_read_the_snapshot_only_for_what_is_asked(tmp_path):
    store = build(tmp_path)
    final = FinalDocuments(store)
    new = replace(store.document("a"), text="new text", content_hash="h-a-3")
    final["a"] = new
    final["x"] = replace(new, id="x")
    final.pop("d")
    with pytest.raises(KeyError):
        del final["c"]  # removed before this change: not there to delete
    assert final["a"] is new and final["g"].content_hash == "h-g-2" and "d" not in final and "c" not in final
    assert final._listed is None, "no lookup listed every document"
    assert sorted(final) == ["a", "b", "e", "f", "g", "h", "x"] and len(final) == 7
    assert final.get("d") is None and final.get("x").id == "x"


def test_one_articles_segment_writes_small_sqlite_pages_and_a_large_one_keeps_4k(tmp_path):
    build(tmp_path).close()
    sizes = []
    for directory in sorted((tmp_path / "segments").iterdir()):
        db = sqlite3.connect(directory / "store.sqlite")
        sizes.append((db.execute("PRAGMA page_size").fetchone()[0], (directory / "store.sqlite").stat().st_size))
        db.close()
    assert all(page == 1024 for page, _ in sizes) and sizes[-1][1] <= 12 * 1024  # b's new version: one article
    big = segment(["a"])
    big.documents = [replace(big.documents[0], text=big.documents[0].text + " " * (1 << 18))]
    write_tables(tmp_path / "big.sqlite", big.documents, big.chunks)
    db = sqlite3.connect(tmp_path / "big.sqlite")
    assert db.execute("PRAGMA page_size").fetchone()[0] == 4096
