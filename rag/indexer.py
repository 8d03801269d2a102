"""Ingest: load files, clean, chunk, embed what changed, and write a new index version atomically.

Content hashes decide what is re-embedded: an unchanged document keeps its chunks and vectors from the
previous version, a changed one is re-chunked and re-embedded, and a document whose file disappeared from
a folder that was indexed again is removed. A file that became unreadable keeps its previous version (and
is reported), so a bad edit never silently drops indexed data.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.chunking import ChunkingConfig, chunk_document, embedding_text
from rag.documents import LoadReport, clean, load_paths
from rag.embeddings import Embedder
from rag.errors import DocumentNotFound
from rag.store import Manifest, MergePolicy
from rag.store.base import StoreBackend
from rag.store.embedded import ChunkEmbeddings
from rag.store.tokens import TokenCodec, load_codec
from rag.types import Chunk, Document, Skipped

# The version of rag.arabic's rules that shape an index (lexical tokens, sentence boundaries): an index written
# under another is re-embedded by the next `rag index`. v2: "؛" no longer ends a sentence.
TOKENIZER_VERSION = "arabic-v2"
# The version of the stemmer alone (BM25's tokens, not the sentences): an index written under another gets its
# BM25 index rebuilt by the next `rag index`, without re-embedding. v1: broken plurals (rag/plurals.py) and ل / ب
# before a name in -ان (لإيران) stem as their singular / the bare name.
STEMMER_VERSION = "stem-v1"
Progress = Callable[[int, int], None]  # (done, total) chunks embedded


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_unreadable: list[str] = field(default_factory=list)  # doc ids kept because their file is now unreadable
    skipped: list[Skipped] = field(default_factory=list)
    chunks_embedded: int = 0
    documents: int = 0
    chunks: int = 0
    written: bool = False
    seconds: float = 0.0
    notice: str = ""  # what the write did beyond the change (a migration, a rebuild)
    merged: str = ""  # segments merged after the commit ("8 -> 1 segments")
    generation: int = 0

    def to_dict(self) -> dict:
        return {"added": self.added, "updated": self.updated, "removed": self.removed, "unchanged": self.unchanged,
                "kept_unreadable": self.kept_unreadable,
                "skipped": [{"path": s.path, "line": s.line, "reason": s.reason} for s in self.skipped],
                "chunks_embedded": self.chunks_embedded, "documents": self.documents, "chunks": self.chunks,
                "written": self.written, "seconds": round(self.seconds, 3), "notice": self.notice,
                "merged": self.merged, "generation": self.generation}


def _chunk_inputs(docs: dict[str, Document], chunks: list[Chunk], embed_title: bool
                  ) -> tuple[list[str], list[list[tuple[int, int]]], list[int]]:
    """The texts embedded for `chunks`, their sentences' spans in those texts, and each chunk's offset in its text."""
    texts, spans, offsets = [], [], []
    for c in chunks:
        text, offset = embedding_text(docs[c.doc_id], c, embed_title)
        texts.append(text)
        offsets.append(offset)
        spans.append([(s.start - c.start + offset, s.end - c.start + offset) for s in c.sentences])
    return texts, spans, offsets


def _stored(chunks: list[Chunk], offsets: list[int], vecs, sents, tokens, codec: TokenCodec) -> list[ChunkEmbeddings]:
    """Per chunk, what the index stores: token vectors as the codec's codes and their spans in the document. The
    codec encodes the batch's tokens in one call (a code depends on its own vector only: the same codes)."""
    counts = [len(t.vectors) for t in tokens]
    codes = np.split(codec.encode(np.vstack([t.vectors for t in tokens])), np.cumsum(counts)[:-1]) if tokens else []
    parts = []
    for c, offset, vec, sent, t, code in zip(chunks, offsets, vecs, sents, tokens, codes):
        doc_spans = t.spans - offset + c.start  # text offsets -> document offsets
        doc_spans[t.spans[:, 1] <= offset] = -1  # the prepended title's tokens are in no sentence
        parts.append(ChunkEmbeddings.one(vec, sent, code, doc_spans))
    return parts


_DONE = object()


# The quick tokenizer learns the pieces of the first documents' text up to this many characters (0.3 s per 300,000
# here, before the first batch); a job that goes on past them loads the full tokenizer while the model runs.
PRIME_CHARS = 500_000


def _priming_texts(docs: dict[str, Document], doc_ids: list[str]) -> list[str]:
    texts, size = [], 0
    for doc_id in doc_ids:
        doc = docs[doc_id]
        if size + len(doc.text) > PRIME_CHARS:
            break
        texts += [doc.title or "", doc.text]
        size += len(doc.text)
    return texts


def embed_documents(spec: IndexSpec, docs: dict[str, Document], doc_ids: list[str], progress: Progress | None = None,
                    window: int = 512, queue_size: int = 4, codec: TokenCodec | None = None,
                    first_window: int | None = None) -> tuple[list[Chunk], ChunkEmbeddings]:
    """Chunk `doc_ids` and embed their chunks, the CPU work beside the model's: a producer thread chunks the
    documents and tokenises each batch (with the fast tokenizer, outside the GIL) while the model runs the
    previous one, through a bounded queue. Within each window of chunks the batches are sorted by length in
    tokens, so little of a forward pass is padding. The first window is small (`first_window`, two batches by
    default), so the model starts once a few documents are chunked: with one window of 512 it sat idle for 5.9 s
    at the start of 400 ARCD paragraphs. The vectors are those of `Embedder.encode_late` on each window
    (tests/test_indexing_pipeline.py checks it). The model session loads beside the first chunking."""
    embedder, bs = spec.embedder, spec.batch_size
    codec = codec or load_codec("int8")
    embedder.preload()
    batches: queue.Queue = queue.Queue(maxsize=queue_size)
    chunks: list[Chunk] = []
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            embedder.prime_tokenizer(_priming_texts(docs, doc_ids))
            pending: list[Chunk] = []
            size = min(first_window or 2 * bs, window)
            for n, doc_id in enumerate(doc_ids):
                doc = docs[doc_id]
                pending += chunk_document(doc, clean(doc), embedder.count_tokens, spec.chunking,
                                          skip_title=spec.embed_title)
                while len(pending) >= size or (pending and n == len(doc_ids) - 1):
                    part, pending, size = pending[:size], pending[size:], window
                    first = len(chunks)
                    chunks.extend(part)
                    texts, spans, offsets = _chunk_inputs(docs, part, spec.embed_title)
                    order = embedder.length_order(texts)
                    for at in range(0, len(order), bs):
                        idx = order[at:at + bs]
                        put(([first + i for i in idx], [spans[i] for i in idx], [offsets[i] for i in idx],
                             embedder.prepare_passages([texts[i] for i in idx])))
                        if stop.is_set():
                            return
            put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            put(e)

    producer = threading.Thread(target=produce, name="rag-index-producer", daemon=True)
    producer.start()
    results: dict[int, ChunkEmbeddings] = {}
    try:
        while (item := batches.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            rows, spans, offsets, prepared = item
            vecs, sents, tokens = embedder.late_vectors(prepared, embedder.forward_passages(prepared), spans)
            for row, part in zip(rows, _stored([chunks[r] for r in rows], offsets, vecs, sents, tokens, codec)):
                results[row] = part
            if progress:
                progress(len(results), max(len(chunks), len(results)))
    finally:
        stop.set()
        producer.join()
    return chunks, ChunkEmbeddings.concat([results[i] for i in range(len(chunks))], embedder.dimension)


class FinalDocuments(MutableMapping):
    """The documents an index holds after a change, without listing them: the snapshot `old`'s, as changed by
    what is set (added, replaced) and deleted here. A lookup reads the snapshot by id; only iterating it (a
    rebuild, a migration, a backend that writes everything) lists every document of `old`, once."""

    def __init__(self, old=None):
        self.old, self.given, self.dropped = old, {}, set()
        self._listed: dict[str, Document] | None = None  # every document of `old`, once iterated

    def _old(self, doc_id: str):
        if self.old is None or doc_id in self.dropped:
            return None
        if self._listed is not None:
            return self._listed.get(doc_id)
        return self.old.document(doc_id)

    def __getitem__(self, doc_id: str) -> Document:
        if doc_id in self.given:
            return self.given[doc_id]
        doc = self._old(doc_id)
        if doc is None:
            raise KeyError(doc_id)
        return doc

    def __setitem__(self, doc_id: str, doc: Document) -> None:
        self.given[doc_id] = doc

    def __delitem__(self, doc_id: str) -> None:
        found = self.given.pop(doc_id, None) is not None
        if self._old(doc_id) is not None:
            self.dropped.add(doc_id)
            found = True
        if not found:
            raise KeyError(doc_id)

    def _ids(self) -> list[str]:
        if self._listed is None:
            self._listed = {d.id: d for d in self.old.documents()} if self.old is not None else {}
        return [d for d in self._listed if d not in self.dropped and d not in self.given] + list(self.given)

    def __iter__(self):
        return iter(self._ids())

    def __len__(self) -> int:
        return len(self._ids())


def _in_scope(path: str, roots: list[Path]) -> bool:
    for root in roots:
        r = str(root)
        if path == r or path.startswith(r.rstrip(os.sep) + os.sep):
            return True
    return False


@dataclass(frozen=True)
class IndexSpec:
    """What shapes an index: the model and the chunking (a change of either means re-embedding)."""

    embedder: Embedder
    chunking: ChunkingConfig
    embed_title: bool = True
    batch_size: int = 32
    token_codec: str = "pq"  # how a new index keeps its token vectors (rag/store/tokens/)
    merge_policy: MergePolicy = MergePolicy()
    # Who loads the files and embeds the chunks: this process (None) or another runner with the same contracts
    # as `load_paths` and `embed_documents` (rag/ray_ingest.py: Ray tasks and an actor pool).
    load: Callable[[list[Path]], LoadReport] | None = None
    embed: Callable[..., tuple[list[Chunk], "ChunkEmbeddings"]] | None = None

    def manifest(self) -> Manifest:
        return Manifest(model_id=self.embedder.model_id, dimension=self.embedder.dimension,
                        chunk_tokens=self.chunking.max_tokens, chunk_overlap_tokens=self.chunking.overlap_tokens,
                        embed_title=self.embed_title, tokenizer=TOKENIZER_VERSION, stemmer=STEMMER_VERSION,
                        runtime=self.embedder.runtime_name, token_codec=self.token_codec)


Target = Path | StoreBackend  # an index directory (the local store) or any backend (rag/store/base.py)


def _backend(target: Target) -> StoreBackend:
    if isinstance(target, (str, Path)):
        from rag.store.local.backend import LocalBackend

        return LocalBackend(Path(target))
    return target


def _open_previous(backend: StoreBackend, spec: IndexSpec, rebuild: bool):
    """The live index (a snapshot; for the local store perhaps one of the format before segments, to migrate)."""
    if rebuild or not backend.exists():
        return None
    return backend.open(model_id=spec.embedder.model_id, runtime=spec.embedder.runtime_name, older_format=True)


def _finish(backend: StoreBackend, old, final: dict[str, Document], report: IndexReport,
            spec: IndexSpec, progress: Progress | None, force: bool = False) -> None:
    """Commit when anything changed (or the backend must write anyway); fill in the counts."""
    try:
        if force or report.added or report.updated or report.removed or backend.needs_write(old, spec):
            backend.write(old, final, report, spec, spec.embed or embed_documents, progress, force)
    finally:
        if old is not None:
            old.close()
    _counted(backend, report)


def _counted(backend: StoreBackend, report: IndexReport) -> None:
    """The live commit's numbers into the report."""
    report.documents, report.chunks = backend.counts()
    report.generation = backend.generation() or 0


def index_paths(paths: list[Path], target: Target, spec: IndexSpec, rebuild: bool = False,
                progress: Progress | None = None) -> IndexReport:
    """Bring the index in line with files and folders: add new, replace changed, drop vanished documents."""
    t0 = time.perf_counter()
    backend = _backend(target)
    report = IndexReport()
    loaded = (spec.load or load_paths)(paths)
    report.skipped = loaded.skipped
    with backend.write_lock():
        old = _open_previous(backend, spec, rebuild)
        new_docs = {d.id: d for d in loaded.documents}
        roots = [p.resolve() for p in paths]
        # What this run can change: the documents it loaded and those under its paths (through the store's id and
        # path lookup when it has one, not a listing of every document); every other one is kept as it is.
        scoped = old is not None and hasattr(old, "documents_in_scope")
        listed = [] if old is None else old.documents_in_scope(list(new_docs), roots) if scoped else old.documents()
        old_docs = {d.id: d for d in listed}
        unreadable_files = {s.path for s in loaded.skipped if s.line is None}
        final = FinalDocuments(old if scoped else None)
        for doc_id, doc in old_docs.items():  # what the previous index keeps
            if doc_id in new_docs:
                continue
            if not doc.path or not _in_scope(doc.path, roots):
                final[doc_id] = doc  # out of this run's scope
            elif doc.path in unreadable_files:
                final[doc_id] = doc
                report.kept_unreadable.append(doc_id)
            else:
                report.removed.append(doc_id)
                final.pop(doc_id, None)
        for doc_id, doc in new_docs.items():
            prev = old_docs.get(doc_id)
            if prev is None:
                report.added.append(doc_id)
            elif prev.content_hash != doc.content_hash:
                report.updated.append(doc_id)
            else:
                report.unchanged.append(doc_id)
            final[doc_id] = doc

        _finish(backend, old, final, report, spec, progress, force=rebuild)
    report.seconds = time.perf_counter() - t0
    return report


def change_documents(target: Target, spec: IndexSpec, upsert: list[Document] = (),
                     delete: list[str] = ()) -> IndexReport:
    """Add or replace single documents and delete others by id (what the HTTP API does while serving)."""
    t0 = time.perf_counter()
    backend = _backend(target)
    report = IndexReport()
    with backend.write_lock():
        old = _open_previous(backend, spec, rebuild=False)
        final = FinalDocuments(old) if hasattr(old, "documents_in_scope") else \
            {d.id: d for d in old.documents()} if old else {}
        for doc_id in delete:
            if final.pop(doc_id, None) is not None:
                report.removed.append(doc_id)
        for doc in upsert:
            prev = final.get(doc.id)
            (report.added if prev is None else report.updated if prev.content_hash != doc.content_hash
             else report.unchanged).append(doc.id)
            final[doc.id] = doc
        _finish(backend, old, final, report, spec, progress=None)
    report.seconds = time.perf_counter() - t0
    return report


def remove_documents(target: Target, doc_ids: list[str]) -> IndexReport:
    """`rag rm`: remove documents by id (no model, no embedding). Every id must be in the index, else nothing
    is removed and DocumentNotFound names the unknown ones."""
    t0 = time.perf_counter()
    backend = _backend(target)
    report = IndexReport()
    with backend.write_lock():
        store = backend.open(older_format=True)
        try:
            unknown = [d for d in dict.fromkeys(doc_ids) if store.document(d) is None]
            if unknown:
                raise DocumentNotFound(f"not in the index: {', '.join(unknown)} (nothing removed; `rag docs` lists "
                                       "the documents)")
            report.removed = list(dict.fromkeys(doc_ids))
            backend.remove(store, report.removed, report)
        finally:
            store.close()
        _counted(backend, report)
    report.seconds = time.perf_counter() - t0
    return report


def compact_index(target: Target) -> IndexReport:
    """`rag index --compact`: merge every segment into one, dropping every removed row."""
    t0 = time.perf_counter()
    backend = _backend(target)
    report = IndexReport()
    with backend.write_lock():
        backend.compact(report)
        _counted(backend, report)
    report.seconds = time.perf_counter() - t0
    return report
