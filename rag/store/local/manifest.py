"""The manifest of a segmented index: one small JSON file naming the live segments, their files' sizes and
checksums, their tombstones, and a generation number. Writing a new one is the commit.

Like tantivy's meta.json and Lucene's segments_N: segment files are written first and never change; the commit
writes `manifest.json.tmp`, fsyncs it, renames it over `manifest.json` and fsyncs the directory, so a reader (or a
crash) sees either the previous commit whole or the new one whole. The generation grows by one per commit; a
reader keeps the manifest it read (its snapshot) however many commits follow.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import weakref
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from rag.errors import IndexIncompatible

FORMAT_VERSION = 4  # 4: a segment's arrays in one file; 3: segments + manifest, one .npy file per array (read as
# they are); 2: one directory per version, copied whole; 1: no token vectors
MANIFEST = "manifest.json"
SEGMENTS = "segments"


@dataclass(frozen=True)
class Manifest:
    """Index-wide settings (what shaped every segment) and, for a segmented index, the commit itself."""

    model_id: str
    dimension: int
    chunk_tokens: int
    chunk_overlap_tokens: int
    embed_title: bool
    tokenizer: str  # version of the rag.arabic rules that shape an index (lexical tokens, sentence boundaries)
    runtime: str = "torch"  # the embedding runtime that wrote it (rag/runtime/); older indexes: torch
    stemmer: str = ""  # version of the stemmer that made the BM25 tokens ("" before it had one)
    documents: int = 0  # live documents
    chunks: int = 0  # live passages
    created: float = 0.0
    format_version: int = FORMAT_VERSION
    generation: int = 0
    token_codec: str = "int8"
    codec_dir: str = ""  # the codec's trained parameters, beside the manifest ("" when it has none)
    codec_files: dict = field(default_factory=dict)  # name -> {"size", "crc32"}
    segments: tuple = ()  # of segment entries (dicts; see rag/store/local/segment.py)

    def chunking_key(self) -> tuple:
        return (self.chunk_tokens, self.chunk_overlap_tokens, self.embed_title, self.tokenizer)

    def with_commit(self, **changes) -> "Manifest":
        return replace(self, **changes)


def checksum(path: Path) -> dict:
    """Size and CRC32 of a file (Lucene keeps a CRC32 in every file's footer; here the manifest keeps it)."""
    crc, size = 0, 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return {"size": size, "crc32": crc}


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (its entries): both open read-only."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_sync_pool: ThreadPoolExecutor | None = None


def fsync_all(paths: list[Path]) -> None:
    """fsync files and directories all at once, from a few threads (fsync releases the GIL): a commit's new files
    wait for one journal flush together instead of one flush each (2.7-6.3 ms per fsync here, 6-8 per commit).
    Returns when every one is durable; the first failure is raised."""
    global _sync_pool
    paths = list(dict.fromkeys(paths))
    if len(paths) <= 1:
        for p in paths:
            fsync_path(p)
        return
    if _sync_pool is None:
        _sync_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rag-fsync")
    for future in [_sync_pool.submit(fsync_path, p) for p in paths]:
        future.result()


_held = threading.local()  # this thread's write locks: index directory -> the snapshots opened lazily under it


def _held_locks() -> dict:
    if not hasattr(_held, "dirs"):
        _held.dirs = {}
        _held.cleanups = {}
    return _held.dirs


def after_commits(index_dir: Path, cleanup) -> bool:
    """Run `cleanup` once, when this thread releases its write lock on `index_dir`, instead of after every commit
    under it (an add and the merge after it: one scan of the directory, not two; the newest call's `cleanup`
    wins). False, and nothing kept, when this thread does not hold the lock."""
    key = os.path.abspath(index_dir)
    if key not in _held_locks():
        return False
    _held.cleanups[key] = cleanup
    return True


def lazy_snapshots(index_dir: Path) -> "weakref.WeakSet | None":
    """The snapshots this thread opened while holding the write lock on `index_dir` (None: it does not hold it).

    Files of a commit are removed only by a writer, after a newer commit, under the lock. So a snapshot opened
    under the lock may open its segments' files when first used instead of all at once (a writer reads the
    documents of a few and the arrays of none): until the lock is released, only this thread removes files, and
    it opens a lazy snapshot's segments before it removes them (writer.remove_unreferenced); at the release, a
    snapshot still open opens everything, and from then on is as any reader's."""
    return _held_locks().get(os.path.abspath(index_dir))


@contextlib.contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time per index directory (readers never wait)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    key = os.path.abspath(index_dir)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _held_locks()[key] = weakref.WeakSet()
        try:
            yield
        finally:
            try:
                for snapshot in list(_held_locks().pop(key, ())):
                    snapshot.open_segments()
                cleanup = _held.cleanups.pop(key, None)
                if cleanup is not None:  # the last commit is durable: what it no longer references can go
                    cleanup()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def manifest_from_dict(data: dict, where: Path) -> Manifest:
    version = data.get("format_version", 1)
    if version > FORMAT_VERSION:
        raise IndexIncompatible(
            f"the index in {where} was written by a newer version of rag-news (format {version}; this one reads "
            f"up to {FORMAT_VERSION}); upgrade rag-news, or rebuild it with `rag index --rebuild PATH`")
    known = Manifest.__dataclass_fields__
    fields = {k: v for k, v in data.items() if k in known}
    fields["segments"] = tuple(fields.get("segments", ()))
    return Manifest(**fields)


def read_manifest(index_dir: Path) -> Manifest | None:
    """The live commit's manifest, or None when the directory holds no segmented index."""
    try:
        text = (index_dir / MANIFEST).read_text()
    except FileNotFoundError:
        return None
    return manifest_from_dict(json.loads(text), index_dir)


_generation_cache: dict[str, tuple[tuple, int]] = {}


def current_generation(index_dir: Path) -> int | None:
    """The live commit's generation; a stat when nothing changed (the API asks on every request)."""
    path = index_dir / MANIFEST
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _generation_cache.get(str(path))
    if cached and cached[0] == key:
        return cached[1]
    manifest = read_manifest(index_dir)
    generation = None if manifest is None else manifest.generation
    if generation is not None:
        _generation_cache[str(path)] = (key, generation)
    return generation


def write_manifest(index_dir: Path, manifest: Manifest, pending: list[Path] = ()) -> None:
    """The commit: temp file, fsync, rename over the live manifest, fsync the directory. `pending`: the commit's
    new files and directories not yet fsynced, fsynced together with the temp file, all before the rename (a
    manifest is never live before every file it names is durable)."""
    tmp = index_dir / (MANIFEST + ".tmp")
    # the fields as they are (dataclasses.asdict deep-copies every segment entry: 2 ms a commit on the pooled index)
    data = {name: getattr(manifest, name) for name in Manifest.__dataclass_fields__}
    data["segments"] = list(manifest.segments)
    with open(tmp, "w") as fh:
        # one line: with `indent` json encodes in Python, not C (2 ms a commit on the pooled index); `python -m
        # json.tool manifest.json` shows it indented
        fh.write(json.dumps(data, ensure_ascii=False))
    fsync_all([*pending, tmp])
    os.replace(tmp, index_dir / MANIFEST)
    fsync_path(index_dir)
