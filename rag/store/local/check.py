"""`rag index --check`: every file of the live commit against the size and CRC32 its manifest recorded."""

from __future__ import annotations

import json
from pathlib import Path

from rag.store.local.manifest import MANIFEST, checksum, read_manifest
from rag.store.local.writer import referenced_files


def check_index(index_dir: Path) -> list[str]:
    """One line per problem (empty: the commit is whole)."""
    try:
        manifest = read_manifest(index_dir)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
        return [f"{MANIFEST}: unreadable ({e})"]
    if manifest is None:
        return [f"{MANIFEST}: missing (no segmented index in {index_dir})"]
    problems = []
    for name, want in sorted(referenced_files(manifest).items()):
        path = index_dir / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        got = checksum(path)
        if got["size"] != want["size"]:
            problems.append(f"{name}: {got['size']} bytes, the manifest says {want['size']}")
        elif got["crc32"] != want["crc32"]:
            problems.append(f"{name}: checksum {got['crc32']:08x}, the manifest says {want['crc32']:08x}")
    documents = sum(e["documents"] - (e.get("deletes") or {}).get("docs", 0) for e in manifest.segments)
    if documents != manifest.documents:
        problems.append(f"{MANIFEST}: its segments hold {documents} live documents, it says {manifest.documents}")
    return problems
