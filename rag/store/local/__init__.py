"""The segmented local index (segments + manifest + tombstones + merges), the default store."""

from rag.store.local.check import check_index
from rag.store.local.compaction import MergePolicy, maybe_compact
from rag.store.local.manifest import (FORMAT_VERSION, Manifest, current_generation, read_manifest, write_lock)
from rag.store.local.reader import IndexStore
from rag.store.local.segment import SegmentData
from rag.store.local.writer import commit, start_index

__all__ = ["FORMAT_VERSION", "IndexStore", "Manifest", "MergePolicy", "SegmentData", "check_index", "commit",
           "current_generation", "maybe_compact", "read_manifest", "start_index", "write_lock"]
