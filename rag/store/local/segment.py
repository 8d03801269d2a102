"""One segment: an immutable directory holding some documents and everything the index keeps of their passages.

    segments/<name>/
      store.sqlite                 documents and chunks (exact offsets, sentence spans), local rows 0..n-1
      <vector index files>         dense vectors through rag.store.vectors (`kind` in the manifest entry), when
                                   the segment is large enough for the IVF (a smaller one's are in arrays.bin)
      arrays.bin                   every other array, memory-mapped (rag/store/local/packed.py):
        vectors                    passage vectors, float32, of a segment scanned exactly (kind "exact")
        sentences                  sentence vectors, float16, in chunk order
        tokens, token_spans, token_rows   token codes (the index's codec), their document spans, and
                                   chunk i's tokens at token_rows[i]:token_rows[i+1]
        lex_*                      lexical postings (rag/store/local/lexical.py)
      del-<generation>.json        tombstones, when some of its documents were removed (a new file per change)

A segment of format 3 holds those arrays as one .npy file each (sentences.npy, tokens.npy, lex_terms.npy, ...);
it is read as it is, and rewritten as format 4 by the merge that takes it in.

A segment is written in place under its new name (no manifest names it yet), its files and directories fsynced with
the rest of the commit before the manifest swap; nothing in it is rewritten afterwards (a tombstone is a new file
named by the commit that wrote it).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.store.arrays import load_array
from rag.store.local.lexical import Postings
from rag.store.local.manifest import checksum, fsync_all
from rag.store.local.packed import FILE as ARRAYS
from rag.store.local.packed import read_arrays, write_arrays
from rag.store.vectors import build_vector_index, open_vector_index
from rag.types import Chunk, Document, Span

_SCHEMA = """
CREATE TABLE documents (
    id TEXT PRIMARY KEY, title TEXT, date TEXT, source TEXT, url TEXT, path TEXT,
    content_hash TEXT, text TEXT NOT NULL
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,          -- local row in the segment
    doc_id TEXT NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    sentences TEXT NOT NULL,          -- JSON [[start, end], ...], absolute offsets
    sentence_row INTEGER NOT NULL     -- first row of this chunk's sentences in sentences.npy
);
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE INDEX documents_path ON documents(path);  -- documents_in_scope (a segment written before it had none: a scan)
"""
SMALL_SEGMENT_TEXT = 1 << 18  # characters of text under which a segment's SQLite file has 1 KB pages
# Bound parameters per query: SQLite refuses more than its limit (250,000 since 3.32, 999 before), and a merge asks
# for every row of its segments.
BOUND = 500
_DOC_COLUMNS = "id, title, date, source, url, path, content_hash, text"


def document_from_row(r) -> Document:
    return Document(id=r[0], title=r[1], date=r[2], source=r[3], url=r[4], path=r[5], content_hash=r[6], text=r[7])


class _Detail:
    """A field of a StoredDocument read from its segment on first use. Not a data descriptor: once read (or
    given), the value in the instance's __dict__ is what attribute lookup finds. On the class it also hides
    Document's default ("" for the title), which a listed document must not show for its real value."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, doc, owner=None):
        if doc is None:
            return self
        if self.name not in doc.__dict__:
            doc.__dict__.update(zip(StoredDocument._DETAILS, doc._segment.document_details(doc.id)))
        return doc.__dict__[self.name]


class StoredDocument(Document):
    """A document listed from a segment with its id, path and content hash; its text and other metadata are read
    from the segment when first used. Listing every document is what a writer does on each change (to compare
    content hashes and paths), and it needs the rest of few: reading every text was most of that listing (pooled:
    904 documents, 1.1 MB of text, 30-45 ms), and the titles and the rest most of what remained (11 ms of 12).
    Equal to, and pickled as, the plain Document it stands for."""

    _LISTED = ("id", "path", "content_hash")
    _DETAILS = ("title", "date", "source", "url", "text")
    title = _Detail()
    date = _Detail()
    source = _Detail()
    url = _Detail()
    text = _Detail()

    def __init__(self, id, text="", title="", date="", source="", url="", path="", content_hash="", *,
                 segment: "SegmentReader | None" = None):
        d = self.__dict__  # a frozen dataclass: its fields are set through __dict__, as its own __init__ does
        d.update(id=id, text=text, title=title, date=date, source=source, url=url, path=path,
                 content_hash=content_hash, _segment=segment)

    @classmethod
    def listed(cls, row: tuple, segment: "SegmentReader") -> "StoredDocument":
        """From a row of (id, path, content_hash), without calling __init__."""
        doc = cls.__new__(cls)
        doc.__dict__.update(zip(cls._LISTED, row), _segment=segment)
        return doc

    def _fields(self) -> tuple:
        return (self.id, self.text, self.title, self.date, self.source, self.url, self.path, self.content_hash)

    def __eq__(self, other):
        if isinstance(other, Document):
            return self._fields() == tuple(getattr(other, f) for f in Document.__dataclass_fields__)
        return NotImplemented

    __hash__ = Document.__hash__

    def __reduce__(self):
        return Document, self._fields()


@dataclass
class SegmentData:
    """What one segment holds, in memory, ready to be written."""

    documents: list[Document]
    chunks: list[Chunk]
    vectors: np.ndarray  # (n, d) float32, unit length
    sentence_vectors: np.ndarray  # (sentences, d) float16, in chunk order
    postings: Postings
    tokens: list[np.ndarray] | None = None  # blocks of codes (t, width), one after the other
    token_spans: np.ndarray | None = None  # (tokens, 2) int32
    token_rows: np.ndarray | None = None  # (n + 1,) int64

    def check(self, dimension: int) -> None:
        n_sentences = sum(len(c.sentences) for c in self.chunks)
        if n_sentences != len(self.sentence_vectors):
            raise ValueError("sentence vectors do not match the chunks' sentences")
        if len(self.vectors) != len(self.chunks) or len(self.postings.lengths) != len(self.chunks):
            raise ValueError("vectors or lexical postings do not match the chunks")
        if self.tokens is not None:
            n_tokens = sum(len(b) for b in self.tokens)
            if len(self.token_rows) != len(self.chunks) + 1 or self.token_rows[-1] != n_tokens \
                    or len(self.token_spans) != n_tokens:
                raise ValueError("token vectors do not match the chunks")


def write_tables(path: Path, documents: list[Document], chunks: list[Chunk]) -> int:
    """The documents and chunks into a new SQLite file; returns how many sentences the chunks hold."""
    db = sqlite3.connect(path)
    # Every table and index takes a page at least: one article's segment in 4 KB pages was 24 KB of SQLite (6
    # pages), most of the bytes an add writes. A small segment gets 1 KB pages; a large (merged) one keeps 4 KB,
    # fewer and shallower pages to read. SQLite reads the page size from the file's header, so any reader opens it.
    small = sum(len(d.text) for d in documents) < SMALL_SEGMENT_TEXT
    db.execute(f"PRAGMA page_size={1024 if small else 4096}")
    with db:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")  # the whole file is fsynced with the segment's others
        db.executescript(_SCHEMA)
        db.executemany(f"INSERT INTO documents ({_DOC_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                       [(d.id, d.title, d.date, d.source, d.url, d.path, d.content_hash, d.text) for d in documents])
        rows, sentence_row = [], 0
        for row, c in enumerate(chunks):
            rows.append((row, c.doc_id, c.ordinal, c.start, c.end,
                         json.dumps([[s.start, s.end] for s in c.sentences]), sentence_row))
            sentence_row += len(c.sentences)
        db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?)", rows)
    db.close()
    return sentence_row


def write_blocks(path: Path, blocks: list[np.ndarray], dtype, shape: tuple) -> None:
    """Blocks of rows written one after the other into one .npy file, never all in memory at once (the format
    before segments: rag/store/legacy.py)."""
    stored = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    at = 0
    for block in blocks:
        stored[at:at + len(block)] = block
        at += len(block)
    stored.flush()
    del stored


def write_segment(segments_dir: Path, name: str, data: SegmentData, dimension: int,
                  pending: list[Path] | None = None) -> dict:
    """Write `data` as segment `name`; returns its manifest entry. The segment is written in place: its name is
    new (generation + random) and no manifest names it until the commit's, so a crash leaves only an unreferenced
    directory, which the next writer removes. Its files and directories are fsynced now, or, with `pending`,
    added to it for the commit to fsync all at once before the manifest swap (manifest.fsync_all)."""
    data.check(dimension)
    final = segments_dir / name
    shutil.rmtree(final, ignore_errors=True)
    final.mkdir(parents=True)
    to_sync: list[Path] = []
    try:
        write_tables(final / "store.sqlite", data.documents, data.chunks)
        vectors = np.ascontiguousarray(data.vectors, np.float32).reshape(-1, dimension)
        sentences = np.asarray(data.sentence_vectors, np.float16).reshape(-1, dimension)
        arrays = {"sentences": (np.float16, sentences.shape, [sentences])}
        kind = build_vector_index(vectors, final, arrays)  # a small segment's vectors go into `arrays`
        files = {}
        for f in sorted(final.iterdir()):
            to_sync.append(f)
            files[f.name] = checksum(f)
        n_tokens = 0
        if data.tokens is not None:
            n_tokens = sum(len(b) for b in data.tokens)
            shape = data.tokens[0].shape[1:] if data.tokens else (0,)
            dtype = data.tokens[0].dtype if data.tokens else np.uint8
            spans = np.asarray(data.token_spans, np.int32).reshape(-1, 2)
            rows = np.asarray(data.token_rows, np.int64)
            arrays.update(tokens=(dtype, (n_tokens, *shape), data.tokens), token_spans=(np.int32, spans.shape, [spans]),
                          token_rows=(np.int64, rows.shape, [rows]))
        arrays.update({name: (a.dtype, a.shape, [a]) for name, a in data.postings.arrays().items()})
        files[ARRAYS] = write_arrays(final / ARRAYS, arrays)  # its CRC32 computed as it is written
        to_sync += [final / ARRAYS, final, segments_dir]  # the files, their names, the segment's name
        if pending is None:
            fsync_all(to_sync)
        else:
            pending += to_sync
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    return {"name": name, "documents": len(data.documents), "rows": len(data.chunks), "tokens": n_tokens,
            "vector_kind": kind, "has_tokens": data.tokens is not None, "files": files, "deletes": None}


def write_tombstones(segment_dir: Path, generation: int, doc_ids: list[str], rows: list[int],
                     pending: list[Path] | None = None) -> dict:
    """A segment's tombstones as of commit `generation` (every deletion so far, not only the new ones). Written in
    place, as a segment is: `del-<generation>.json` is named by no manifest until this commit's (a crash's
    partial one is rewritten by the next commit of that generation, or removed). Fsynced now, or through
    `pending` with the rest of the commit."""
    name = f"del-{generation}.json"
    path = segment_dir / name
    with open(path, "w") as fh:
        fh.write(json.dumps({"docs": sorted(doc_ids), "rows": sorted(rows)}))
    if pending is None:
        fsync_all([path, segment_dir])
    else:
        pending += [path, segment_dir]
    return {"file": name, "docs": len(doc_ids), "rows": len(rows), **checksum(path)}


class SegmentReader:
    """One segment opened read-only: every file opened (or memory-mapped) now, so a later removal of the files
    (after a newer commit dropped the segment) does not disturb this reader (POSIX unlink semantics). With `lazy`
    (a snapshot opened under the write lock: manifest.lazy_snapshots), only the SQLite file and the tombstones are
    opened now, the arrays when first used or by `open_files`."""

    ARRAYS = ("vectors", "sentences", "tokens", "token_spans", "token_rows", "postings")

    def __init__(self, directory: Path, entry: dict, lazy: bool = False):
        self.closed = False
        self.directory, self.entry = directory, entry
        self.name = entry["name"]
        self.rows = int(entry["rows"])
        deletes = entry.get("deletes")
        self.deleted_docs: frozenset[str] = frozenset()
        self.live: np.ndarray | None = None  # None: every row is live
        if deletes:
            tomb = json.loads((directory / deletes["file"]).read_text())
            self.deleted_docs = frozenset(tomb["docs"])
            self.live = np.ones(self.rows, bool)
            self.live[np.asarray(tomb["rows"], np.int64)] = False
        self.db = sqlite3.connect(f"file:{directory / 'store.sqlite'}?mode=ro&immutable=1", uri=True,
                                  check_same_thread=False)
        # opens the file now: a header read (COUNT(*) walked every document: 7 ms at 100,000 passages)
        self.db.execute("PRAGMA schema_version").fetchone()
        if not lazy:
            self.open_files()

    def open_files(self) -> None:
        """Open (memory-map) the segment's arrays, if not yet."""
        if "postings" in self.__dict__:
            return
        directory, entry = self.directory, self.entry
        self.tokens = self.token_spans = self.token_rows = None
        if ARRAYS in entry["files"]:  # format 4: one file
            arrays = read_arrays(directory / ARRAYS)
            self.vectors = open_vector_index(entry["vector_kind"], directory, arrays)
            self.sentences = arrays["sentences"]
            if entry.get("has_tokens"):
                self.tokens, self.token_spans, self.token_rows = (arrays["tokens"], arrays["token_spans"],
                                                                  arrays["token_rows"])
            self.postings = Postings.from_arrays(arrays)
            return
        self.vectors = open_vector_index(entry["vector_kind"], directory)
        self.sentences = load_array(directory / "sentences.npy")  # format 3: one .npy file per array
        if entry.get("has_tokens"):
            self.tokens = load_array(directory / "tokens.npy")
            self.token_spans = load_array(directory / "token_spans.npy")
            self.token_rows = load_array(directory / "token_rows.npy", mmap=False)
        self.postings = Postings.open(directory)

    def __getattr__(self, name):  # only for what __dict__ lacks: the arrays of a lazy reader
        if name not in SegmentReader.ARRAYS:
            raise AttributeError(name)
        self.open_files()
        return self.__dict__[name]

    @property
    def live_rows(self) -> int:
        return self.rows if self.live is None else int(self.live.sum())

    @property
    def live_documents(self) -> int:
        return int(self.entry["documents"]) - len(self.deleted_docs)

    def is_live(self, row: int) -> bool:
        return self.live is None or bool(self.live[row])

    def document(self, doc_id: str) -> Document | None:
        if doc_id in self.deleted_docs:
            return None
        r = self.db.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return None if r is None else document_from_row(r)

    def documents(self, with_text: bool = False) -> list[Document]:
        """The live documents; without `with_text`, their text is read when first used (StoredDocument)."""
        if with_text:
            return [d for d in map(document_from_row, self.db.execute(f"SELECT {_DOC_COLUMNS} FROM documents"))
                    if d.id not in self.deleted_docs]
        return [StoredDocument.listed(r, self) for r in self.db.execute("SELECT id, path, content_hash FROM documents")
                if r[0] not in self.deleted_docs]

    def documents_in_scope(self, ids: list[str], roots: list[str]) -> list[Document]:
        """The live documents (listed, as `documents`) whose id is in `ids` or whose path is a root or under one:
        through the id and path indexes, not a listing of every document (a change to one article reads the
        rows it touches). A path under `root` is one from `root/` (inclusive) to `root0` (exclusive): '0' is the
        character after the separator, and SQLite compares text by bytes, which for UTF-8 is code point order."""
        found: dict[str, tuple] = {r[0]: r for r in self._where_in(
            "SELECT id, path, content_hash FROM documents WHERE id IN ({})", list(ids))}
        for root in roots:
            under = root.rstrip(os.sep) + os.sep
            found.update((r[0], r) for r in self.db.execute(
                "SELECT id, path, content_hash FROM documents WHERE path = ? OR (path >= ? AND path < ?)",
                (root, under, under[:-1] + chr(ord(os.sep) + 1))))
        return [StoredDocument.listed(r, self) for doc_id, r in found.items() if doc_id not in self.deleted_docs]

    def document_details(self, doc_id: str) -> tuple:
        """(title, date, source, url, text) of a listed document."""
        db = self.db
        if self.closed:  # a document listed before its snapshot was closed: the file is read again
            path = self.directory / "store.sqlite"
            if not path.is_file():
                raise RuntimeError(f"the text of {doc_id!r} was read after its snapshot closed and a later commit "
                                   "removed its segment")
            db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            return db.execute("SELECT title, date, source, url, text FROM documents WHERE id = ?", (doc_id,)).fetchone()
        finally:
            if db is not self.db:
                db.close()

    def document_rows(self, doc_id: str) -> list[int]:
        return [r for (r,) in self.db.execute("SELECT row FROM chunks WHERE doc_id = ? ORDER BY row", (doc_id,))]

    def chunk_rows(self, rows: list[int]) -> list[tuple]:
        """(row, doc_id, ordinal, start, end, sentence spans, first sentence row) of local `rows`, asked BOUND at a
        time (a merge asks for every row of its segments: 622,080 at a million passages)."""
        return [(row, doc_id, ordinal, start, end, tuple(Span(s, e) for s, e in json.loads(sents)), sentence_row)
                for row, doc_id, ordinal, start, end, sents, sentence_row in self._where_in(
                    "SELECT row, doc_id, ordinal, start, end, sentences, sentence_row FROM chunks WHERE row IN ({})",
                    rows)]

    def _where_in(self, sql: str, values: list):
        """The rows of `sql`, whose `IN ({})` takes `values`, asked BOUND values at a time."""
        for at in range(0, len(values), BOUND):
            part = values[at:at + BOUND]
            yield from self.db.execute(sql.format(",".join("?" * len(part))), part)

    def token_slice(self, row: int) -> tuple[np.ndarray, np.ndarray] | None:
        if self.tokens is None:
            return None
        a, b = int(self.token_rows[row]), int(self.token_rows[row + 1])
        return self.tokens[a:b], np.asarray(self.token_spans[a:b])

    def close(self) -> None:
        self.closed = True
        self.db.close()
