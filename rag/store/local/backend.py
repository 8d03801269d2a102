"""The local store as a `StoreBackend`: how a change becomes a commit of segments on this machine's disk.

Incremental when it can be: one segment for the added and changed documents, tombstones for the changed and
removed ones. A new index (none yet, --rebuild, other chunking) re-embeds everything; an index of the format
before segments, under another stemmer or another token codec, is rewritten as one segment from what it stores,
without re-embedding. After a commit the merge policy may merge segments.
"""

from __future__ import annotations

from pathlib import Path

from rag.arabic import tokenize
from rag.chunking import embedding_text
from rag.errors import IndexIncompatible
from rag.store import legacy
from rag.store.embedded import ChunkEmbeddings
from rag.store.local.compaction import MergePolicy, maybe_compact
from rag.store.local.check import check_index
from rag.store.local.lexical import Postings
from rag.store.local.manifest import FORMAT_VERSION, Manifest, current_generation, read_manifest, write_lock
from rag.store.local.reader import IndexStore
from rag.store.local.segment import SegmentData
from rag.store.local.writer import commit, start_index
from rag.store.tokens import load_codec
from rag.store.tokens.training import trained_codec
from rag.types import Chunk, Document


class LocalBackend:
    name = "local"

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)

    def describe(self) -> str:
        return str(self.index_dir)

    def exists(self) -> bool:
        return read_manifest(self.index_dir) is not None or legacy.current_version(self.index_dir) is not None

    def open(self, model_id: str | None = None, runtime: str | None = None, older_format: bool = False):
        return IndexStore.open(self.index_dir, model_id=model_id, older_format=older_format, runtime=runtime)

    def generation(self) -> int | None:
        return current_generation(self.index_dir)

    def write_lock(self):
        return write_lock(self.index_dir)

    def counts(self) -> tuple[int, int]:
        manifest = read_manifest(self.index_dir)
        return manifest.documents, manifest.chunks

    def needs_write(self, old, spec) -> bool:
        from rag.indexer import STEMMER_VERSION

        return (old is None or isinstance(old, legacy.IndexStore) or old.manifest.stemmer != STEMMER_VERSION
                or _needs_embedding(old, spec.manifest()))

    def write(self, old, final: dict[str, Document], report, spec, embed, progress, force: bool) -> None:
        from rag.indexer import STEMMER_VERSION

        index_dir, settings = self.index_dir, spec.manifest()
        changed = set(report.added + report.updated)
        dim = spec.embedder.dimension
        is_legacy = isinstance(old, legacy.IndexStore)
        reembed = force or _needs_embedding(old, settings)
        recoded = not reembed and getattr(old.manifest, "token_codec", "int8") != settings.token_codec
        if reembed or is_legacy or recoded or old.manifest.stemmer != STEMMER_VERSION:
            base = start_index(index_dir, settings, trained_codec(settings.token_codec, spec.embedder))
            codec = load_codec(base.token_codec, index_dir / base.codec_dir if base.codec_dir else None)
            keep_ids = set() if reembed else {d for d in final if d not in changed and old.document(d) is not None}
            kept_chunks, kept = _copied(old, keep_ids, codec) if keep_ids else ([], [])
            new_chunks, new = embed(spec, final, sorted(set(final) - keep_ids), progress, codec=codec)
            every = ChunkEmbeddings.concat(kept + [new], dim)
            docs = [final[d] for d in sorted(final)]
            commit(index_dir, base, add=[segment_data(docs, kept_chunks + new_chunks, every, spec.embed_title)])
            report.chunks_embedded = len(new_chunks)
            if is_legacy and not reembed:
                report.notice = (f"migrated the index to segments (format {FORMAT_VERSION}): {len(kept_chunks)} "
                                 "passages copied, not re-embedded")
            elif recoded:
                report.notice = (f"re-coded the token vectors as {settings.token_codec} "
                                 f"(was {getattr(old.manifest, 'token_codec', 'int8')}), not re-embedded")
            elif not reembed:
                report.notice = f"rebuilt the lexical postings under the stemmer {STEMMER_VERSION}, vectors kept"
            elif is_legacy:
                report.notice = f"rebuilt the index of an older version as segments (format {FORMAT_VERSION})"
        else:
            codec = old.codec or load_codec(old.manifest.token_codec)
            ids = sorted(changed)
            new_chunks, new = embed(spec, final, ids, progress, codec=codec)
            commit(index_dir, old.manifest, old, add=[segment_data([final[d] for d in ids], new_chunks, new,
                                                                    spec.embed_title)],
                   delete=set(report.updated + report.removed))
            report.chunks_embedded = len(new_chunks)
        report.written = True
        self._merge(report, spec.merge_policy)

    def remove(self, old, doc_ids: list[str], report) -> None:
        if isinstance(old, legacy.IndexStore):
            raise IndexIncompatible(f"the index in {self.index_dir} was written by an older version; run `rag index` "
                                    "(with the PATHs you indexed) to migrate it first")
        commit(self.index_dir, old.manifest, old, delete=set(doc_ids))
        report.written = True
        self._merge(report, MergePolicy())

    def compact(self, report) -> None:
        if read_manifest(self.index_dir) is None:
            IndexStore.open(self.index_dir)  # says what is wrong: no index, or one to migrate first
        merged = maybe_compact(self.index_dir, force=True)
        report.written = merged is not None
        report.merged = f"{merged[0]} -> {merged[1]} segments" if merged else ""

    def _merge(self, report, policy: MergePolicy) -> None:
        merged = maybe_compact(self.index_dir, policy)
        if merged:
            report.merged = f"{merged[0]} -> {merged[1]} segments"

    def check(self) -> list[str]:
        return check_index(self.index_dir)


def segment_data(docs: list[Document], chunks: list[Chunk], every: ChunkEmbeddings, embed_title: bool) -> SegmentData:
    by_id = {d.id: d for d in docs}
    return SegmentData(documents=docs, chunks=chunks, vectors=every.vectors, sentence_vectors=every.sentences,
                       postings=Postings.build([tokenize(embedding_text(by_id[c.doc_id], c, embed_title)[0])
                                                for c in chunks]),
                       tokens=every.tokens, token_spans=every.token_spans, token_rows=every.token_rows)


def _copied(old, keep_ids: set[str], codec) -> tuple[list[Chunk], list[ChunkEmbeddings]]:
    """The chunks of `keep_ids` with what `old` stores of them, not re-embedded (a migration, a new stemmer, a
    new token codec). Token codes are copied as stored, or decoded by the old codec and re-coded by the new one
    when the index changes codec (int8 -> pq: the format before segments held int8)."""
    rows = [(row, chunk) for row, chunk in old.all_chunks() if chunk.doc_id in keep_ids]
    vectors = old.row_vectors([row for row, _ in rows])
    old_codec = load_codec("int8") if isinstance(old, legacy.IndexStore) else old.codec
    recode = old_codec.name != codec.name
    parts = []
    for (row, _), vector in zip(rows, vectors):
        codes, spans = old.stored_token_vectors(row)
        if recode:
            codes = codec.encode(old_codec.decode(codes))
        parts.append(ChunkEmbeddings.one(vector, old.chunk_sentence_vectors(row), codes, spans))
    return [chunk for _, chunk in rows], parts


def _needs_embedding(old, settings: Manifest) -> bool:
    """Whether `old` must be re-embedded whole: none yet, other chunking or sentence rules, no token vectors (an
    index of format 1). (Another token codec is a re-coding of what it stores, not a re-embedding.)"""
    return old is None or old.manifest.chunking_key()[:4] != settings.chunking_key() or old.tokens is None
