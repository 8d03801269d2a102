"""The index format before segments (format 2 and older), kept to read and migrate such an index (and, in
tests, to write one): SQLite for documents and chunks, FAISS for chunk vectors, .npy for sentence vectors,
bm25s arrays for the lexical side, .npy token vectors for late interaction, and a manifest naming the model
and chunking settings.

Layout of an index directory::

    index/
      CURRENT            -> the name of the live version directory (replaced with os.replace: atomic)
      v-<stamp>/         manifest.json, store.sqlite, chunks.faiss, sentences.npy, bm25/,
                         tokens.npy, token_spans.npy, token_rows.npy
      .lock              serialises writers

A write builds a complete new version directory beside the live one and only then repoints CURRENT, so a
crash mid-write leaves the previous index whole and loadable. No pickle anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
import numpy as np

from rag.errors import IndexIncompatible, IndexMissing
from rag.store.local.manifest import fsync_path as _fsync_path
from rag.store.local.manifest import write_lock  # noqa: F401 - one lock for both formats
from rag.store.local.manifest import Manifest  # its fields are a subset of the segmented index's
from rag.store.local.segment import write_blocks, write_tables  # the same tables
from rag.runtime import compatible, compatible_runtimes
from rag.types import Chunk, Document, Span

FORMAT_VERSION = 2  # 2: token vectors (an index of format 1 is re-embedded by the next `rag index`)
CURRENT = "CURRENT"

@dataclass
class IndexData:
    """Everything one index version holds, in memory, ready to be written."""

    manifest: Manifest
    documents: list[Document]
    chunks: list[Chunk]
    vectors: np.ndarray  # (n_chunks, d) float32, L2-normalised
    sentence_vectors: np.ndarray  # (n_sentences, d) float16, in chunk order
    bm25_tokens: list[list[str]] = field(default_factory=list)
    # Late interaction: every chunk's contextual token vectors, in chunk order, and each token's characters in
    # its document ([-1, -1] for the prepended title's tokens); chunk i owns rows token_rows[i]:token_rows[i+1].
    # The vectors come as int8 blocks (`quantize_tokens`), split anyhow, written one after the other: an update
    # passes the unchanged chunks' blocks as views of the old index's memory-mapped file, so it never holds the
    # whole index's token vectors in memory. None: the index has none, and retrieval and answers do without.
    tokens: list[np.ndarray] | None = None  # int8 blocks of (t, d), unit vectors x 127
    token_spans: np.ndarray | None = None  # (n_tokens, 2) int32
    token_rows: np.ndarray | None = None  # (n_chunks + 1,) int64


def quantize_tokens(vectors: np.ndarray) -> np.ndarray:
    """Unit token vectors as stored: int8, times 127. Half of float16, and on ../shared/eval the rankings are
    the same as float16's."""
    return np.clip(np.rint(np.asarray(vectors, np.float32) * 127), -127, 127).astype(np.int8)


def current_version(index_dir: Path) -> Path | None:
    pointer = index_dir / CURRENT
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return None
    version = index_dir / name
    return version if name and version.is_dir() else None


def read_manifest(version_dir: Path) -> Manifest:
    return Manifest(**json.loads((version_dir / "manifest.json").read_text()))


def write_index(index_dir: Path, data: IndexData) -> Path:
    """Write `data` as a new version and make it live atomically. Returns the version directory."""
    import bm25s
    import faiss

    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"v-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    try:
        sentence_row = write_tables(tmp / "store.sqlite", data.documents, data.chunks)
        if sentence_row != len(data.sentence_vectors):
            raise ValueError("sentence vectors do not match the chunks' sentences")

        index = faiss.IndexFlatIP(data.manifest.dimension)
        if len(data.vectors):
            index.add(np.ascontiguousarray(data.vectors, dtype=np.float32))
        faiss.write_index(index, str(tmp / "chunks.faiss"))
        np.save(tmp / "sentences.npy", data.sentence_vectors.astype(np.float16), allow_pickle=False)
        if data.tokens is not None:
            n_tokens = sum(len(block) for block in data.tokens)
            if len(data.token_rows) != len(data.chunks) + 1 or data.token_rows[-1] != n_tokens \
                    or len(data.token_spans) != n_tokens \
                    or any(b.dtype != np.int8 or b.shape[1:] != (data.manifest.dimension,) for b in data.tokens):
                raise ValueError("token vectors do not match the chunks")
            write_blocks(tmp / "tokens.npy", data.tokens, np.int8, (n_tokens, data.manifest.dimension))
            np.save(tmp / "token_spans.npy", data.token_spans.astype(np.int32), allow_pickle=False)
            np.save(tmp / "token_rows.npy", data.token_rows.astype(np.int64), allow_pickle=False)

        if data.bm25_tokens and any(data.bm25_tokens):
            bm25 = bm25s.BM25()
            bm25.index(data.bm25_tokens, show_progress=False)
            bm25.save(str(tmp / "bm25"), show_progress=False)

        (tmp / "manifest.json").write_text(json.dumps(asdict(data.manifest), indent=2, ensure_ascii=False))
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        final = index_dir / name
        os.rename(tmp, final)
        pointer_tmp = index_dir / f".{CURRENT}.tmp"
        pointer_tmp.write_text(name + "\n")
        with open(pointer_tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(pointer_tmp, index_dir / CURRENT)
        _fsync_path(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_old_versions(index_dir, keep=name)
    return final


def _remove_old_versions(index_dir: Path, keep: str) -> None:
    # Open readers keep their files (POSIX unlink semantics), so removing is safe.
    for entry in index_dir.iterdir():
        if entry.is_dir() and entry.name != keep and (entry.name.startswith("v-") or entry.name.startswith(".tmp-v-")):
            shutil.rmtree(entry, ignore_errors=True)


class IndexStore:
    """A read-only view of the live index version (documents, chunks, vectors, BM25)."""

    def __init__(self, version_dir: Path):
        import faiss

        self.path = version_dir
        self.manifest = read_manifest(version_dir)
        self._db = sqlite3.connect(f"file:{version_dir / 'store.sqlite'}?mode=ro", uri=True, check_same_thread=False)
        # Memory-mapped (faiss's IndexFlatCodes mmap): opening costs nothing however large the index, and the
        # page cache is shared between processes (`rag ask` after `rag ask`, the API's workers).
        self.faiss = faiss.read_index(str(version_dir / "chunks.faiss"), getattr(faiss, "IO_FLAG_MMAP_IFC", 0))
        self.sentence_vectors = np.load(version_dir / "sentences.npy", mmap_mode="r", allow_pickle=False)
        self.tokens = self.token_spans = self.token_rows = None
        if (version_dir / "tokens.npy").exists():
            self.tokens = np.load(version_dir / "tokens.npy", mmap_mode="r", allow_pickle=False)
            self.token_spans = np.load(version_dir / "token_spans.npy", mmap_mode="r", allow_pickle=False)
            self.token_rows = np.load(version_dir / "token_rows.npy", allow_pickle=False)
        self._bm25 = None
        self._chunk_cache: dict[int, Chunk] = {}
        self._sentence_row: dict[int, int] = {}
        self._doc_cache: dict[str, Document] = {}

    @classmethod
    def open(cls, index_dir: Path, model_id: str | None = None, older_format: bool = False,
             runtime: str | None = None) -> "IndexStore":
        """The live version. An index of an older format is refused, since its answers would be scored without
        what the new format adds; `older_format` opens it anyway, for `rag index` (which re-embeds it) and for
        reading documents and citations, which every format holds. `runtime`: the embedding runtime that will
        query it, refused when its vectors are not comparable with the index's (rag.runtime.compatible)."""
        version = current_version(index_dir)
        if version is None:
            raise IndexMissing(f"no index in {index_dir}; build one with `rag index PATH`")
        store = cls(version)
        if model_id is not None and store.manifest.model_id != model_id:
            raise IndexIncompatible(
                f"the index in {index_dir} was built with the model {store.manifest.model_id!r}, "
                f"but {model_id!r} is configured; rebuild it with `rag index --rebuild PATH` "
                "or point --index-dir elsewhere"
            )
        if runtime is not None and not compatible(store.manifest.runtime, runtime):
            raise IndexIncompatible(
                f"the index in {index_dir} was built by the {store.manifest.runtime} runtime, and the {runtime} "
                "runtime's vectors are not comparable with its; use "
                f"RAG_RUNTIME={' or '.join(compatible_runtimes(store.manifest.runtime))} (or --runtime), "
                "or rebuild it with `rag index --rebuild PATH`"
            )
        if not older_format and store.manifest.format_version < FORMAT_VERSION:
            raise IndexIncompatible(
                f"the index in {index_dir} was built by an older version (format {store.manifest.format_version}, "
                f"now {FORMAT_VERSION}: token vectors); run `rag index PATH` on its articles to re-embed them "
                "(with no PATH, the bundled ones)"
            )
        return store

    # -- counts and documents -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.faiss.ntotal)

    def document_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    def documents(self) -> list[Document]:
        rows = self._db.execute("SELECT id, title, date, source, url, path, content_hash, text FROM documents ORDER BY id")
        return [Document(id=r[0], title=r[1], date=r[2], source=r[3], url=r[4], path=r[5], content_hash=r[6], text=r[7])
                for r in rows]

    def document(self, doc_id: str) -> Document | None:
        if doc_id in self._doc_cache:
            return self._doc_cache[doc_id]
        r = self._db.execute(
            "SELECT id, title, date, source, url, path, content_hash, text FROM documents WHERE id = ?", (doc_id,)
        ).fetchone()
        if r is None:
            return None
        doc = Document(id=r[0], title=r[1], date=r[2], source=r[3], url=r[4], path=r[5], content_hash=r[6], text=r[7])
        self._doc_cache[doc_id] = doc
        return doc

    # -- chunks ---------------------------------------------------------------------------------------------
    def chunks(self, rows: list[int]) -> list[Chunk]:
        missing = [r for r in rows if r not in self._chunk_cache]
        if missing:
            marks = ",".join("?" * len(missing))
            for row, doc_id, ordinal, start, end, sents, sentence_row in self._db.execute(
                f"SELECT row, doc_id, ordinal, start, end, sentences, sentence_row FROM chunks WHERE row IN ({marks})",
                missing,
            ):
                doc = self.document(doc_id)
                spans = tuple(Span(s, e) for s, e in json.loads(sents))
                self._chunk_cache[row] = Chunk(doc_id=doc_id, start=start, end=end, text=doc.text[start:end],
                                               ordinal=ordinal, sentences=spans)
                self._sentence_row[row] = sentence_row
        return [self._chunk_cache[r] for r in rows]

    def chunk_sentence_vectors(self, row: int) -> np.ndarray:
        """The contextual vectors of one chunk's sentences (rows of sentences.npy), float32."""
        chunk = self.chunks([row])[0]
        first = self._sentence_row[row]
        return np.asarray(self.sentence_vectors[first:first + len(chunk.sentences)], dtype=np.float32)

    def chunk_token_vectors(self, row: int) -> tuple[np.ndarray, np.ndarray] | None:
        """One chunk's contextual token vectors (float32) and their document spans; None without any."""
        stored = self.stored_token_vectors(row)
        return None if stored is None else (stored[0].astype(np.float32) / 127, stored[1])

    def stored_token_vectors(self, row: int) -> tuple[np.ndarray, np.ndarray] | None:
        """As `chunk_token_vectors`, but the int8 vectors as stored: a view of the memory-mapped file, which
        an update writes into the next version without reading the rest of the index into memory."""
        if self.tokens is None:
            return None
        a, b = int(self.token_rows[row]), int(self.token_rows[row + 1])
        return self.tokens[a:b], np.asarray(self.token_spans[a:b])

    def all_chunks(self) -> list[tuple[int, Chunk]]:
        rows = [r for (r,) in self._db.execute("SELECT row FROM chunks ORDER BY row")]
        return list(zip(rows, self.chunks(rows)))

    def row_vectors(self, rows: list[int]) -> np.ndarray:
        return self.vectors()[rows] if rows else np.zeros((0, self.manifest.dimension), np.float32)

    def vectors(self) -> np.ndarray:
        if len(self) == 0:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        return self.faiss.reconstruct_n(0, len(self))

    @property
    def bm25(self):
        """The bm25s index, loaded on first use (None when the index holds no lexical tokens)."""
        if self._bm25 is None and (self.path / "bm25").is_dir():
            import bm25s

            self._bm25 = bm25s.BM25.load(str(self.path / "bm25"), mmap=True)
        return self._bm25

    def close(self) -> None:
        self._db.close()

