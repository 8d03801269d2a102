"""The one writer of a segmented index: new segments, tombstones, the manifest swap, and the removal of the files
no commit references any more. The caller holds `write_lock`.

A change writes only what it adds: a segment for the added or replaced documents, a tombstone file for each
segment that loses documents (every deletion of that segment so far, so a reader needs one file), and the manifest.
Every new file and directory of a commit is fsynced at once, with the manifest's temp file, before the rename
(manifest.fsync_all): one wait for the disk instead of one per file. A crash at any point before the manifest's
rename leaves the previous commit live and whole; what the crash left behind (an unreferenced segment or
tombstone) is removed by the next writer. The files a commit no longer references are removed once, when the
writer releases the lock (manifest.after_commits), not after each of its commits.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

from rag.store.local.manifest import (FORMAT_VERSION, MANIFEST, SEGMENTS, Manifest, checksum, fsync_path,
                                     after_commits, lazy_snapshots, read_manifest, write_manifest)
from rag.store.local.packed import FILE as ARRAYS
from rag.store.local.segment import SegmentData, write_segment, write_tombstones
from rag.store.tokens import load_codec


def segment_name(generation: int) -> str:
    return f"s{generation:06d}-{uuid.uuid4().hex[:8]}"


def start_index(index_dir: Path, settings: Manifest, codec=None) -> Manifest:
    """The manifest of a new, empty index with `settings` (not yet committed): writes the parameters of `codec`
    (a trained one: rag/store/tokens/training.py; by default the untrained codec the settings name)."""
    base = read_manifest(index_dir)
    generation = base.generation + 1 if base else 1
    codec_dir, codec_files = "", {}
    codec = codec or load_codec(settings.token_codec)
    directory = index_dir / f"codec-{generation}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    codec.save(directory)
    files = sorted(f for f in directory.iterdir() if f.is_file())
    if files:
        codec_dir = directory.name
        codec_files = {f.name: checksum(f) for f in files}
        fsync_path(directory)
    else:
        directory.rmdir()
    return settings.with_commit(generation=generation - 1, segments=(), codec_dir=codec_dir, codec_files=codec_files,
                                documents=0, chunks=0)


def commit(index_dir: Path, base: Manifest, store=None, add: list[SegmentData] = (), delete: set[str] = frozenset(),
           drop: set[str] = frozenset(), replace_at: int | None = None) -> Manifest:
    """Commit on top of `base` (the live manifest, or `start_index`'s): write the `add` segments, tombstone the
    live documents in `delete` (found through `store`, the snapshot of `base`), drop the segments named in `drop`
    (a merge's inputs; the added segments take the place of the first, `replace_at`). Returns the new manifest."""
    generation = base.generation + 1
    segments_dir = index_dir / SEGMENTS
    pending: list[Path] = []  # the new files and directories, fsynced together before the manifest swap
    if not segments_dir.is_dir():
        segments_dir.mkdir(parents=True)
        pending.append(index_dir)  # the new directory's name
    entries = [dict(e) for e in base.segments]
    if delete:
        by_segment: dict[int, tuple[set[str], set[int]]] = {}
        for doc_id in sorted(delete):
            found = store.locate_document(doc_id) if store is not None else None
            if found is None:
                continue
            i, rows = found
            docs, dead = by_segment.setdefault(i, (set(), set()))
            docs.add(doc_id)
            dead.update(rows)
        for i, (docs, dead) in by_segment.items():
            entry = entries[i]
            if entry.get("deletes"):
                old = json.loads((segments_dir / entry["name"] / entry["deletes"]["file"]).read_text())
                docs, dead = docs | set(old["docs"]), dead | set(old["rows"])
            if len(docs) == entry["documents"]:
                drop = set(drop) | {entry["name"]}  # every document gone: the segment goes
            else:
                entry["deletes"] = write_tombstones(segments_dir / entry["name"], generation, sorted(docs),
                                                    sorted(dead), pending)
    new_entries = [write_segment(segments_dir, segment_name(generation), data, base.dimension, pending)
                   for data in add if data.chunks or data.documents]
    if replace_at is None:
        kept = [e for e in entries if e["name"] not in drop] + new_entries
    else:
        kept = [e for e in entries[:replace_at] if e["name"] not in drop] + new_entries + \
               [e for e in entries[replace_at:] if e["name"] not in drop]
    documents = sum(e["documents"] - (e["deletes"] or {}).get("docs", 0) for e in kept)
    chunks = sum(e["rows"] - (e["deletes"] or {}).get("rows", 0) for e in kept)
    # format 4 once a segment holds its arrays in one file; an index of format-3 segments only stays readable by
    # the version that wrote it
    version = FORMAT_VERSION if any(ARRAYS in e["files"] for e in kept) else min(base.format_version, 3)
    manifest = base.with_commit(generation=generation, segments=tuple(kept), documents=documents, chunks=chunks,
                                created=time.time(), format_version=version)
    write_manifest(index_dir, manifest, pending)
    if not after_commits(index_dir, lambda: remove_unreferenced(index_dir, read_manifest(index_dir))):
        remove_unreferenced(index_dir, manifest)  # a caller without the lock (tests, tools): now
    return manifest


def referenced_files(manifest: Manifest) -> dict[str, dict]:
    """Every file of a commit, relative to the index directory, with its size and checksum."""
    files = {f"{manifest.codec_dir}/{name}": info for name, info in manifest.codec_files.items()}
    for e in manifest.segments:
        for name, info in e["files"].items():
            files[f"{SEGMENTS}/{e['name']}/{name}"] = info
        if e.get("deletes"):
            d = e["deletes"]
            files[f"{SEGMENTS}/{e['name']}/{d['file']}"] = {"size": d["size"], "crc32": d["crc32"]}
    return files


def remove_unreferenced(index_dir: Path, manifest: Manifest) -> list[str]:
    """Remove what no commit references: dropped segments, old tombstones, a crash's leftovers, the directories of
    the format before segments. Open readers keep their files (POSIX), so this is safe while they run."""
    keep = set(referenced_files(manifest))
    live_segments = {e["name"] for e in manifest.segments}
    removed = []
    segments_dir = index_dir / SEGMENTS
    for snapshot in list(lazy_snapshots(index_dir) or ()):  # this writer's lazy snapshots keep what goes now
        snapshot.open_segments({s.name for s in snapshot.segments} - live_segments)
    for entry in segments_dir.iterdir() if segments_dir.is_dir() else ():
        if entry.name not in live_segments:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed.append(entry.name)
            continue
        for f in entry.iterdir():
            if f"{SEGMENTS}/{entry.name}/{f.name}" not in keep:
                f.unlink(missing_ok=True)
                removed.append(f"{entry.name}/{f.name}")
    for entry in index_dir.iterdir():
        legacy = entry.name.startswith(("v-", ".tmp-v-", "CURRENT", ".CURRENT"))
        old_codec = entry.name.startswith("codec-") and entry.name != manifest.codec_dir
        if legacy or old_codec:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed.append(entry.name)
    (index_dir / (MANIFEST + ".tmp")).unlink(missing_ok=True)
    return removed
