"""A segment's arrays in one file (`arrays.bin`), memory-mapped whole: one file to write, fsync and checksum per
segment instead of nine .npy files, and one map to open (format 4; a format-3 segment keeps its .npy files and is
read as it is).

    b"RAGARR1\\0"  uint64 little-endian header length  header (JSON)  arrays, each at a 64-byte aligned offset

The header names each array's dtype (numpy's `dtype.str`), shape and offset. JSON, not the .npy header's Python
literal: no `ast.literal_eval` (rag/store/arrays.py). safetensors has this shape, but it holds no string arrays
(the lexical terms) and its numpy loader copies what it reads; a memory map reads only the pages a query touches.
The CRC32 the manifest keeps is computed while the file is written, not by reading it back.
"""

from __future__ import annotations

import json
import mmap
import os
import zlib
from pathlib import Path
from typing import Iterable

import numpy as np

FILE = "arrays.bin"
MAGIC = b"RAGARR1\0"
ALIGN = 64


def write_arrays(path: Path, arrays: dict[str, tuple[np.dtype, tuple, Iterable[np.ndarray]]], fsync: bool = False
                 ) -> dict:
    """Write `arrays` (name -> (dtype, shape, the rows in blocks, one after the other)) to `path` (fsynced only with
    `fsync`: a segment's writer fsyncs it with the commit's other files); returns its {"size", "crc32"}. Blocks are
    written as they come, so a merge never holds all its tokens at once."""
    header, at = {}, 0
    for name, (dtype, shape, _) in arrays.items():
        dtype = np.dtype(dtype)
        header[name] = {"dtype": dtype.str, "shape": [int(x) for x in shape], "offset": at}  # from the data's start
        at += _aligned(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
    text = json.dumps(header).encode()
    start = _aligned(len(MAGIC) + 8 + len(text))
    crc, size = 0, 0
    with open(path, "wb") as fh:
        def put(data) -> None:
            nonlocal crc, size
            fh.write(data)
            crc = zlib.crc32(data, crc)
            size += len(data)

        put(MAGIC + len(text).to_bytes(8, "little") + text)
        for name, (dtype, shape, blocks) in arrays.items():
            put(b"\0" * (start + header[name]["offset"] - size))
            want = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            written = size
            for block in blocks:
                put(np.ascontiguousarray(block, dtype=dtype).tobytes())
            if size - written != want:
                raise ValueError(f"{name}: {size - written} bytes written, its shape {tuple(shape)} needs {want}")
        put(b"\0" * (-size % ALIGN))
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return {"size": size, "crc32": crc}


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _header(fh) -> tuple[dict, int]:
    head = fh.read(len(MAGIC) + 8)
    if len(head) < len(MAGIC) + 8 or head[:len(MAGIC)] != MAGIC:
        raise ValueError(f"{fh.name}: not an arrays file")
    length = int.from_bytes(head[len(MAGIC):], "little")
    return json.loads(fh.read(length)), _aligned(len(MAGIC) + 8 + length)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of `path`, read-only views of one memory map (kept alive by the arrays)."""
    with open(path, "rb") as fh:
        header, start = _header(fh)
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    out = {}
    for name, entry in header.items():
        dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        out[name] = np.frombuffer(mapped, dtype=dtype, count=count, offset=start + entry["offset"]).reshape(shape) \
            if count else np.zeros(shape, dtype)
    return out


def array_sizes(path: Path) -> dict[str, int]:
    """Bytes each array of `path` holds (for the benchmarks' bytes by kind)."""
    with open(path, "rb") as fh:
        header, _ = _header(fh)
    return {name: int(np.prod(e["shape"], dtype=np.int64)) * np.dtype(e["dtype"]).itemsize
            for name, e in header.items()}
