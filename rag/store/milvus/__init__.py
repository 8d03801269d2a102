"""Milvus as the passage store (`RAG_STORE=milvus`): the same index, in collections a cluster can serve.

`RAG_MILVUS_URI` is a file path (Milvus Lite, embedded in this process, from the `milvus-lite` package) or a
server's address (`http://host:19530`, with `RAG_MILVUS_TOKEN`); `RAG_MILVUS_COLLECTION` names the collections
(rag/store/milvus/schema.py). Writes go through rag/store/milvus/writer.py, reads through reader.py.

One writer at a time: for Milvus Lite a file lock beside the database serialises them (as the local index's
lock does); against a server, run one ingest job at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from rag.errors import IndexMissing
from rag.store.milvus import schema, writer
from rag.store.milvus.reader import MilvusStore
from rag.store.tokens import codec_files, codec_from_files
from rag.store.tokens.training import trained_codec


WRITE_BATCH = 500  # documents embedded and written at a time


def _is_lite(uri: str) -> bool:
    return "://" not in uri


class MilvusBackend:
    name = "milvus"

    def __init__(self, uri: str, collection: str = "rag_news", token: str = ""):
        self.uri, self.collection, self.token = uri, collection, token
        self._client = None
        self._loaded = False

    @property
    def client(self):
        if self._client is None:
            if _is_lite(self.uri):
                Path(self.uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            self._client = schema.connect(self.uri, self.token)
        return self._client

    def describe(self) -> str:
        return f"milvus:{self.uri}#{self.collection}"

    def _collections(self) -> bool:
        """Whether the collections are there (and loaded)."""
        if _is_lite(self.uri) and not Path(self.uri).exists():
            return False  # no file yet: nothing to connect to, and no need to create one to say so
        if not self._loaded:
            self._loaded = schema.exists(self.client, self.collection)
        return self._loaded

    def exists(self) -> bool:
        return self._collections() and self._manifest() is not None

    def _manifest(self):
        return schema.read_manifest(self.client, self.collection)

    def open(self, model_id: str | None = None, runtime: str | None = None, older_format: bool = False):
        manifest = self._manifest() if self._collections() else None
        if manifest is None:
            raise IndexMissing(f"no index in {self.describe()}; build one with `rag index PATH`")
        schema.check_settings(manifest, self.describe(), model_id, runtime)
        return MilvusStore(self.client, self.collection, self.describe(), manifest,
                           schema.read_codec_files(self.client, self.collection))

    def generation(self) -> int | None:
        manifest = self._manifest() if self._collections() else None  # one round trip: the API asks per request
        return manifest.generation if manifest else None

    @contextlib.contextmanager
    def write_lock(self):
        if not _is_lite(self.uri):
            yield
            return
        path = Path(self.uri).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def counts(self) -> tuple[int, int]:
        if not self._collections():
            return 0, 0
        n = schema.names(self.collection)
        return tuple(int(self.client.query(n[k], filter="", output_fields=["count(*)"])[0]["count(*)"])
                     for k in ("documents", "passages"))

    def needs_write(self, old, spec) -> bool:
        return old is None or old.manifest.chunking_key() != spec.manifest().chunking_key()

    def write(self, old, final, report, spec, embed, progress, force: bool) -> None:
        settings = spec.manifest()
        # A new index (none yet, --rebuild, other chunking): everything embedded, the collections made afresh.
        fresh = old is None or force or old.manifest.chunking_key() != settings.chunking_key()
        if fresh:
            codec = trained_codec(settings.token_codec, spec.embedder)
            manifest = replace(settings, generation=0, created=time.time())
            ids = sorted(final)
        else:
            codec, manifest = old.codec, old.manifest
            ids = sorted(set(report.added + report.updated))
        leaving = [] if fresh else sorted(set(report.updated + report.removed))
        old_terms = Counter() if fresh else writer.live_terms(self.client, self.collection, leaving)
        new_terms, embedded = Counter(), 0
        # In batches of documents: embedded, then written (each document switched as it lands), so a large
        # ingest (a Ray cluster's) never holds every passage's vectors and late data at once.
        for at in range(0, max(len(ids), 1), WRITE_BATCH):
            part = ids[at:at + WRITE_BATCH]
            if not part and not fresh:
                continue
            shown = (lambda done, total, base=embedded: progress(base + done, base + total)) if progress else None
            chunks, emb = embed(spec, final, part, shown, codec=codec)
            if fresh and at == 0:  # only now, so a failed embedding leaves the previous collections as they were
                schema.drop(self.client, self.collection)
                schema.create(self.client, self.collection, settings.dimension)
                self._loaded = True
                schema.write_codec_files(self.client, self.collection, codec_files(codec))
            new_terms += writer.write_documents(self.client, self.collection, {d: final[d] for d in part}, chunks,
                                                emb, spec.embed_title)
            embedded += len(chunks)
        if report.removed and not fresh:
            writer.remove_documents(self.client, self.collection, report.removed)
        writer.apply_terms(self.client, self.collection, new_terms, old_terms)
        self._commit(manifest)
        report.chunks_embedded = embedded
        report.written = True

    def copy_from(self, store, embed_title: bool = True) -> None:
        """A new index in these collections holding what another store holds (the same passages, vectors and
        token codes, not re-embedded): moving a local index to Milvus, and the benchmark's like-for-like."""
        from rag.store.embedded import ChunkEmbeddings

        schema.drop(self.client, self.collection)
        schema.create(self.client, self.collection, store.manifest.dimension)
        self._loaded = True
        schema.write_codec_files(self.client, self.collection, codec_files(store.codec))
        docs = {d.id: d for d in store.documents()}
        rows, terms = store.all_chunks(), Counter()
        for at in range(0, len(rows), 512):
            part = rows[at:at + 512]
            vectors = store.row_vectors([r for r, _ in part])
            emb = ChunkEmbeddings.concat([ChunkEmbeddings.one(v, store.chunk_sentence_vectors(r),
                                                              *store.stored_token_vectors(r))
                                          for (r, _), v in zip(part, vectors)], store.manifest.dimension)
            terms += writer.write_documents(self.client, self.collection, {c.doc_id: docs[c.doc_id] for _, c in part},
                                            [c for _, c in part], emb, embed_title, switch=False)
        writer.apply_terms(self.client, self.collection, terms)
        n = schema.names(self.collection)
        writer.in_batches(self.client, n["texts"], [row for d in docs.values() for row in writer.text_rows(d)])
        writer.in_batches(self.client, n["documents"], [writer.document_row(d) for d in docs.values()])
        self._commit(replace(store.manifest, generation=0, segments=()))

    def _commit(self, manifest) -> None:
        documents, passages = self.counts()
        schema.write_manifest(self.client, self.collection, replace(
            manifest, generation=manifest.generation + 1, documents=documents, chunks=passages))
        # Sealed segments: Milvus Lite re-indexes its in-memory rows on every search (BM25 took 400 ms a question
        # on 1,215 passages before, 24 ms after); a server seals them itself.
        for name in schema.names(self.collection).values():
            self.client.flush(name)

    def remove(self, old, doc_ids: list[str], report) -> None:
        old_terms = writer.live_terms(self.client, self.collection, doc_ids)
        writer.remove_documents(self.client, self.collection, doc_ids)
        writer.apply_terms(self.client, self.collection, Counter(), old_terms)
        self._commit(old.manifest)
        report.written = True

    def compact(self, report) -> None:
        """Delete what a writer that died half-way left, and let Milvus compact its segments."""
        if not self.exists():
            raise IndexMissing(f"no index in {self.describe()}; build one with `rag index PATH`")
        rows, texts = writer.orphans(self.client, self.collection)
        n = schema.names(self.collection)
        if rows:
            self.client.delete(n["passages"], ids=rows)
        if texts:
            self.client.delete(n["texts"], ids=texts)
        recounted, stored = writer.term_drift(self.client, self.collection)
        drift = set(recounted) | set(stored)
        if drift:  # the document frequencies set to the recount from the live passages
            writer.apply_terms(self.client, self.collection, recounted, stored)
        for name in n.values():
            self.client.compact(name)
        report.written = bool(rows or texts or drift)
        report.merged = ", ".join(part for part in (
            (rows or texts) and f"{len(rows)} orphaned passages and {len(texts)} texts deleted",
            drift and f"{len(drift)} document frequencies recounted") if part)

    def check(self) -> list[str]:
        manifest = self._manifest()
        if manifest is None:
            return [f"{self.describe()}: no manifest row in {schema.names(self.collection)['meta']}"]
        problems = []
        rows, texts = writer.orphans(self.client, self.collection)
        if rows or texts:
            problems.append(f"{len(rows)} passages and {len(texts)} texts belong to no live document version "
                            "(a write was interrupted); `rag index --compact` deletes them")
        drift = len(set().union(*writer.term_drift(self.client, self.collection)))
        if drift:
            problems.append(f"{drift} tokens' document frequencies differ from the live passages' "
                            "(a write was interrupted); `rag index --compact` recounts them")
        store = self.open()
        for doc in store.documents():
            header = store._headers[doc.id]
            if len(doc.text) != header["chars"]:
                problems.append(f"{doc.id}: its text has {len(doc.text)} characters, its row says {header['chars']}")
        try:
            codec_from_files(manifest.token_codec, schema.read_codec_files(self.client, self.collection))
        except Exception as e:  # noqa: BLE001 - an unknown codec, its parameters missing or damaged
            problems.append(f"{self.describe()}: the token codec: {e}")
        return problems
