"""A snapshot of a segmented index: the manifest one reader read, and its segments, opened once and kept.

Rows are global to the snapshot (the segment's base + its local row, segments in manifest order); tombstoned rows
are never returned. A snapshot never changes: the next commit is seen by opening the index again (the API does it
when the manifest's generation moved on).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rag.errors import IndexIncompatible, IndexMissing
from rag.runtime import compatible, compatible_runtimes
from rag.store.local.lexical import LexicalIndex
from rag.store.local.manifest import SEGMENTS, Manifest, lazy_snapshots, read_manifest
from rag.store.local.segment import SegmentReader
from rag.store.tokens import load_codec
from rag.types import Chunk, Document


class IndexStore:
    """The read-only view of one commit: documents, chunks, dense and lexical search, sentence and token data."""

    parallel_search = True  # dense and lexical search may run in two threads at once (read-only arrays)

    def __init__(self, index_dir: Path, manifest: Manifest, lazy: bool = False):
        """`lazy`: open the segments' arrays when first used (only under the write lock: lazy_snapshots)."""
        self.path = index_dir
        self.manifest = manifest
        self.version = f"gen-{manifest.generation}"
        self.segments: list[SegmentReader] = []
        try:
            for entry in manifest.segments:
                self.segments.append(SegmentReader(index_dir / SEGMENTS / entry["name"], entry, lazy=lazy))
        except BaseException:
            self.close()
            raise
        self.bases = np.cumsum([0] + [s.rows for s in self.segments]).astype(np.int64)
        self.has_tokens = bool(self.segments) and all(s.entry.get("has_tokens") for s in self.segments)
        self._closed = False
        self._codec = None  # loaded now, or by a lazy snapshot when first used (a removal never needs it)
        if not lazy:
            self._load_codec()
        self._lexical: LexicalIndex | None = None
        self._chunk_cache: dict[int, Chunk] = {}
        self._sentence_row: dict[int, int] = {}
        self._doc_cache: dict[str, Document] = {}

    @classmethod
    def open(cls, index_dir: Path, model_id: str | None = None, older_format: bool = False,
             runtime: str | None = None):
        """The live commit. An index of today's format but written before segments (CURRENT + v-*/) is read with
        `older_format` (for `rag index`, which migrates it, and for `docs` / `cite`) and refused otherwise, with
        what to run. `runtime`: the embedding runtime that will query it, refused when its vectors are not
        comparable with the index's (rag.runtime.compatible)."""
        from rag.store import legacy

        store = None
        lazy = lazy_snapshots(index_dir)
        for attempt in range(20):
            manifest = read_manifest(index_dir)
            if manifest is None:
                break
            try:
                store = cls(index_dir, manifest, lazy=lazy is not None)
                if lazy is not None:
                    lazy.add(store)
                break
            except Exception:  # noqa: BLE001 - a missing file shows as OSError, sqlite3's or FAISS's RuntimeError
                # A commit landed between reading the manifest and opening its segments, and removed one: the
                # newer manifest names only files that exist (they are removed only after its swap).
                if read_manifest(index_dir).generation == manifest.generation:
                    raise
                time.sleep(0.01 * attempt)
        if store is None:
            if legacy.current_version(index_dir) is None:
                raise IndexMissing(f"no index in {index_dir}; build one with `rag index PATH`")
            old = legacy.IndexStore.open(index_dir, model_id=model_id, older_format=True, runtime=runtime)
            if older_format:
                return old
            old.close()
            raise IndexIncompatible(
                f"the index in {index_dir} was written by an older version (format {old.manifest.format_version}, "
                "one directory copied whole per change); run `rag index` (with the PATHs you indexed, or none for "
                "the bundled articles) to migrate it to segments" + (" without re-embedding"
                                                                      if old.tokens is not None else ""))
        if model_id is not None and store.manifest.model_id != model_id:
            store.close()
            raise IndexIncompatible(
                f"the index in {index_dir} was built with the model {store.manifest.model_id!r}, "
                f"but {model_id!r} is configured; rebuild it with `rag index --rebuild PATH` "
                "or point --index-dir elsewhere")
        if runtime is not None and not compatible(store.manifest.runtime, runtime):
            store.close()
            raise IndexIncompatible(
                f"the index in {index_dir} was built by the {store.manifest.runtime} runtime, and the {runtime} "
                "runtime's vectors are not comparable with its; use "
                f"RAG_RUNTIME={' or '.join(compatible_runtimes(store.manifest.runtime))} (or --runtime), "
                "or rebuild it with `rag index --rebuild PATH`")
        return store

    # -- rows ------------------------------------------------------------------------------------------------
    def _locate(self, row: int) -> tuple[SegmentReader, int]:
        i = int(np.searchsorted(self.bases, row, side="right")) - 1
        if row < 0 or i >= len(self.segments):
            raise IndexError(f"row {row} is not in this index")
        return self.segments[i], row - int(self.bases[i])

    def __len__(self) -> int:
        return sum(s.live_rows for s in self.segments)

    def live_rows(self) -> list[int]:
        out = []
        for seg, base in zip(self.segments, self.bases):
            local = np.arange(seg.rows) if seg.live is None else np.flatnonzero(seg.live)
            out.extend((local + int(base)).tolist())
        return out

    # -- documents -------------------------------------------------------------------------------------------
    def document_count(self) -> int:
        return sum(s.live_documents for s in self.segments)

    def documents(self) -> list[Document]:
        return sorted((d for s in self.segments for d in s.documents()), key=lambda d: d.id)

    def documents_in_scope(self, ids, roots) -> list[Document]:
        """The live documents with an id in `ids` or a path at or under one of `roots` (what one change to some
        files touches: the indexer compares those, and keeps every other document as it is), sorted by id."""
        roots = [str(r) for r in roots]
        return sorted((d for s in self.segments for d in s.documents_in_scope(ids, roots)), key=lambda d: d.id)

    def document(self, doc_id: str) -> Document | None:
        if doc_id in self._doc_cache:
            return self._doc_cache[doc_id]
        for seg in reversed(self.segments):
            doc = seg.document(doc_id)
            if doc is not None:
                self._doc_cache[doc_id] = doc
                return doc
        return None

    def locate_document(self, doc_id: str) -> tuple[int, list[int]] | None:
        """(segment index, local rows) of a live document, for a writer's tombstones."""
        for i in range(len(self.segments) - 1, -1, -1):
            if self.segments[i].document(doc_id) is not None:
                return i, self.segments[i].document_rows(doc_id)
        return None

    # -- chunks ----------------------------------------------------------------------------------------------
    def chunks(self, rows: list[int]) -> list[Chunk]:
        missing = [r for r in dict.fromkeys(rows) if r not in self._chunk_cache]
        by_segment: dict[int, list[int]] = {}
        for row in missing:
            seg, local = self._locate(row)
            by_segment.setdefault(self.segments.index(seg), []).append(local)
        for i, locals_ in by_segment.items():
            base = int(self.bases[i])
            for local, doc_id, ordinal, start, end, spans, sentence_row in self.segments[i].chunk_rows(locals_):
                doc = self.segments[i].document(doc_id) or self.document(doc_id)
                text = doc.text[start:end] if doc is not None else ""
                self._chunk_cache[base + local] = Chunk(doc_id=doc_id, start=start, end=end, text=text,
                                                        ordinal=ordinal, sentences=spans)
                self._sentence_row[base + local] = sentence_row
        return [self._chunk_cache[r] for r in rows]

    def all_chunks(self) -> list[tuple[int, Chunk]]:
        rows = self.live_rows()
        return list(zip(rows, self.chunks(rows)))

    def chunk_sentence_vectors(self, row: int) -> np.ndarray:
        """The contextual vectors of one chunk's sentences, float32."""
        chunk = self.chunks([row])[0]
        seg, _ = self._locate(row)
        first = self._sentence_row[row]
        return np.asarray(seg.sentences[first:first + len(chunk.sentences)], dtype=np.float32)

    def row_vectors(self, rows: list[int]) -> np.ndarray:
        """The stored passage vectors of `rows`, float32 (n, d)."""
        if not rows:
            return np.zeros((0, self.manifest.dimension), np.float32)
        return np.vstack([self._locate(r)[0].vectors.vector(np.array([self._locate(r)[1]])) for r in rows])

    def vectors(self) -> np.ndarray:
        return self.row_vectors(self.live_rows())

    # -- search ----------------------------------------------------------------------------------------------
    def dense_search(self, query: np.ndarray, k: int) -> tuple[list[float], list[int]]:
        """The top `k` live passages by inner product with the unit query vector, over every segment."""
        scores, rows = [], []
        q = np.ascontiguousarray(query, np.float32).reshape(-1)
        for seg, base in zip(self.segments, self.bases):
            want = min(seg.rows, k + (seg.rows - seg.live_rows))  # room for the tombstoned hits dropped below
            if want <= 0:
                continue
            s, r = seg.vectors.search(q, want)
            keep = r >= 0 if seg.live is None else (r >= 0) & seg.live[np.clip(r, 0, None)]
            scores.append(np.asarray(s)[keep])
            rows.append(np.asarray(r)[keep] + int(base))
        if not scores:
            return [], []
        s, r = np.concatenate(scores), np.concatenate(rows)
        order = np.lexsort((r, -s))[:k]
        return s[order].astype(float).tolist(), r[order].tolist()

    @property
    def lexical(self) -> LexicalIndex:
        if self._lexical is None:
            self._lexical = LexicalIndex([(s.postings, s.live, int(b)) for s, b in zip(self.segments, self.bases)])
        return self._lexical

    def lexical_search(self, tokens: list[str], k: int) -> tuple[list[float], list[int]]:
        return self.lexical.search(tokens, k)

    def idf(self, token: str) -> float:
        return self.lexical.idf(token)

    def idfs(self, tokens) -> dict[str, float]:
        return self.lexical.idfs(tokens)

    def warm(self) -> None:
        """Read what the first question would (the lexical statistics)."""
        self.lexical

    # -- late interaction ------------------------------------------------------------------------------------
    def stored_token_vectors(self, row: int) -> tuple[np.ndarray, np.ndarray] | None:
        """One chunk's token codes as stored (a view of the memory-mapped file) and their document spans."""
        seg, local = self._locate(row)
        return seg.token_slice(local)

    def token_similarities(self, row: int, query_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The cosine of every question token with every token of passage `row`, through the index's codec:
        (sims (m, t) float32, the passage tokens' document spans (t, 2)); None without token data."""
        stored = self.stored_token_vectors(row) if self.has_tokens else None
        if stored is None:
            return None
        return self.codec.similarities(query_tokens, stored[0]), stored[1]

    def chunk_token_vectors(self, row: int) -> tuple[np.ndarray, np.ndarray] | None:
        """One chunk's token vectors decoded (float32) and their spans, for codecs that can decode (int8)."""
        stored = self.stored_token_vectors(row) if self.has_tokens else None
        if stored is None or not hasattr(self.codec, "decode"):
            return None
        return self.codec.decode(stored[0]), stored[1]

    def _load_codec(self):
        if self._codec is None and self.has_tokens:
            m = self.manifest
            self._codec = load_codec(m.token_codec, self.path / m.codec_dir if m.codec_dir else None)
        return self._codec

    @property
    def codec(self):
        """The TokenCodec of the token vectors (None without them)."""
        return self._load_codec()

    @property
    def tokens(self):
        """Kept for the consumers that test `store.tokens is not None` (use `has_tokens`)."""
        return True if self.has_tokens else None

    def open_segments(self, names: set[str] | None = None) -> None:
        """Open the arrays of the segments `names` (all: None) of a lazy snapshot, and its codec, before their
        files may go (a closed one needs neither)."""
        if self._closed:
            return
        self._load_codec()
        for s in self.segments:
            if (names is None or s.name in names) and not s.closed:
                s.open_files()

    def close(self) -> None:
        self._closed = True
        for s in self.segments:
            s.close()
