"""The on-disk index. `rag.store.local` is the segmented store the project uses (segments, a manifest per commit,
tombstones, merges); `rag.store.legacy` reads (and, for tests of the migration, writes) the format before it, one
directory copied whole per change. The names here are what the rest of the code imports.

Layout of an index directory::

    index/
      manifest.json      the live commit: generation, settings, segments with their files' sizes and CRC32s
      segments/<name>/   one segment per add (or merge): rag/store/local/segment.py
      codec-<gen>/       the token codec's trained parameters, when it has some
      .lock              serialises writers
"""

from __future__ import annotations


from rag.store import legacy
from rag.store.local import (FORMAT_VERSION, IndexStore, Manifest, MergePolicy, SegmentData, check_index, commit,
                             current_generation, maybe_compact, read_manifest, start_index, write_lock)
from rag.store.tokens.int8 import Int8Codec


def quantize_tokens(vectors):
    """Unit token vectors as the int8 codec stores them (units x 127)."""
    return Int8Codec().encode(vectors)


__all__ = ["FORMAT_VERSION", "IndexStore", "Manifest", "MergePolicy", "SegmentData", "check_index", "commit",
           "current_generation", "maybe_compact", "quantize_tokens", "read_manifest", "start_index",
           "write_lock"]
