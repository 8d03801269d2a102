"""`np.load` for the store's arrays, one thread at a time.

numpy parses a .npy header with `ast.literal_eval`, and CPython 3.11.7's AST validator keeps its recursion
depth per interpreter, not per thread: two readers opening segments at once raised
SystemError('AST constructor recursion depth mismatch') in the crash test's concurrent readers (a fresh clone,
`.ci/run`). Headers are a few hundred bytes, so holding a lock while one is read costs nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

_HEADERS = threading.Lock()


def load_array(path: Path, mmap: bool = True) -> np.ndarray:
    """The array in `path` (memory-mapped unless `mmap` is False); never pickled objects."""
    with _HEADERS:  # a str, not a Path: np.memmap resolves a Path (a realpath: an lstat per component)
        return np.load(str(path), mmap_mode="r" if mmap else None, allow_pickle=False)
