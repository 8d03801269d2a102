"""Merging segments: a tiered (log) policy as tantivy's LogMergePolicy and Lucene's TieredMergePolicy use, and
the merge itself, which copies the live rows of its inputs (vectors, sentence vectors, token codes as stored,
lexical postings remapped) into one new segment and drops their tombstoned rows.

Policy: segments are put in levels by live size (level = floor(log_{factor}(max(live rows, floor rows)))); when one
level holds `min_segments` or more, they are merged into one, which lands a level up. So an index of N passages
keeps O(log N) segments, and each passage is rewritten O(log N) times over its life. A segment that lost more than
half its rows to tombstones is merged too (Lucene's deletesPctAllowed), so deletions do not pile up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.store.local.lexical import Postings
from rag.store.local.manifest import Manifest
from rag.store.local.segment import SegmentData
from rag.store.local.writer import commit
from rag.types import Chunk


@dataclass(frozen=True)
class MergePolicy:
    min_segments: int = 8  # tantivy's default
    factor: float = 8.0
    floor_rows: int = 64  # smaller segments all count as the lowest level
    max_deleted_share: float = 0.5

    def level(self, live_rows: int) -> int:
        return int(math.log(max(live_rows, self.floor_rows) / self.floor_rows, self.factor))

    def select(self, entries: list[dict]) -> list[str]:
        """The names of the segments to merge now (empty: nothing to do)."""
        levels: dict[int, list[dict]] = {}
        for e in entries:
            live = e["rows"] - (e.get("deletes") or {}).get("rows", 0)
            levels.setdefault(self.level(live), []).append(e)
        for level in sorted(levels):
            if len(levels[level]) >= self.min_segments:
                return [e["name"] for e in levels[level]]
        wasted = [e["name"] for e in entries
                  if e["rows"] and (e.get("deletes") or {}).get("rows", 0) / e["rows"] > self.max_deleted_share]
        return wasted


def merged_segment(store, indices: list[int]) -> SegmentData:
    """The live rows of the snapshot's segments `indices`, as one new segment."""
    documents, chunks, vectors, sentences, postings = [], [], [], [], []
    tokens, spans, token_counts = [], [], []
    has_tokens = all(store.segments[i].tokens is not None for i in indices)
    for i in indices:
        seg = store.segments[i]
        local = np.arange(seg.rows) if seg.live is None else np.flatnonzero(seg.live)
        row_map = np.full(seg.rows, -1, np.int64)
        row_map[local] = np.arange(len(local)) + len(chunks)
        docs = {d.id: d for d in seg.documents(with_text=True)}
        documents += docs.values()
        if len(local):
            vectors.append(seg.vectors.vector(local))
        for row, doc_id, ordinal, start, end, sents, sentence_row in sorted(seg.chunk_rows(local.tolist())):
            chunks.append(Chunk(doc_id=doc_id, start=start, end=end, text=docs[doc_id].text[start:end],
                                ordinal=ordinal, sentences=sents))
            sentences.append(np.asarray(seg.sentences[sentence_row:sentence_row + len(sents)]))
            if has_tokens:
                codes, token_spans = seg.token_slice(row)
                tokens.append(np.asarray(codes))
                spans.append(token_spans)
                token_counts.append(len(codes))
        postings.append((seg.postings, row_map))
    d = store.manifest.dimension
    return SegmentData(
        documents=documents, chunks=chunks,
        vectors=np.vstack(vectors) if vectors else np.zeros((0, d), np.float32),
        sentence_vectors=np.vstack(sentences) if sentences else np.zeros((0, d), np.float16),
        postings=Postings.merge(postings),
        tokens=tokens if has_tokens else None,
        token_spans=(np.vstack(spans) if spans else np.zeros((0, 2), np.int32)) if has_tokens else None,
        token_rows=np.concatenate([[0], np.cumsum(token_counts)]).astype(np.int64) if has_tokens else None)


def merge(index_dir: Path, store, names: list[str]) -> Manifest:
    """Merge the segments `names` of the snapshot `store` (of the live commit; the caller holds the write lock)
    into one, committed in the place of the first."""
    indices = [i for i, s in enumerate(store.segments) if s.name in set(names)]
    data = merged_segment(store, indices)
    return commit(index_dir, store.manifest, store, add=[data], drop=set(names), replace_at=indices[0] if indices else None)


def maybe_compact(index_dir: Path, policy: MergePolicy = MergePolicy(), force: bool = False) -> tuple[int, int] | None:
    """Merge what the policy selects (with `force`, every segment into one, dropping every tombstone), until it
    selects nothing. Returns (segments before, after), or None when nothing was merged. Caller holds the lock."""
    from rag.store.local.manifest import read_manifest
    from rag.store.local.reader import IndexStore

    merged = None
    while True:
        entries = list(read_manifest(index_dir).segments)  # the policy reads the manifest only: no files opened
        if force:
            names = [e["name"] for e in entries] if len(entries) > 1 or any(e.get("deletes") for e in entries) else []
        else:
            names = policy.select(entries)
        if not names:
            return merged
        store = IndexStore.open(index_dir)
        try:
            manifest = merge(index_dir, store, names)
        finally:
            store.close()
        merged = (len(entries) if merged is None else merged[0], len(manifest.segments))
        if force:
            return merged
