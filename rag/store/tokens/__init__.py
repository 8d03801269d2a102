"""How late interaction's token vectors are kept on disk: one codec per module, behind `TokenCodec`.

An index records the codec that wrote its token vectors (and the codec's parameters, when it has trained ones), so
every segment of one index is written and read by the same codec, and a merge copies codes without decoding them.
Codes are fixed-width rows (one per token), so a passage's tokens are a slice of one memory-mapped array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class TokenCodec(Protocol):
    name: str  # recorded in the index's manifest
    width: int  # bytes per token on disk (0: the index's dimension)
    dtype: type  # of the codes

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """Unit token vectors (t, d) float32 -> their codes (t, width), as stored."""

    def similarities(self, query_tokens: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The (approximate) cosine of every question token (m, d) float32 with every coded token: (m, t) float32."""

    def save(self, directory: Path) -> None:
        """Write the codec's trained parameters (if any) into `directory`."""


def load_codec(name: str, directory: Path | None = None) -> TokenCodec:
    """The codec `name`, with the parameters saved in `directory` (codecs without trained parameters ignore it)."""
    from rag.errors import IndexIncompatible
    from rag.store.tokens.int8 import Int8Codec
    from rag.store.tokens.pq import PQCodec

    codecs = {c.name: c for c in (Int8Codec, PQCodec)}
    if name not in codecs:
        raise IndexIncompatible(f"unknown token codec {name!r} (this version knows {', '.join(sorted(codecs))}); "
                                "an index written by a newer version needs that version, or `rag index --rebuild`")
    return codecs[name].load(directory)


def codec_files(codec: TokenCodec | None) -> dict[str, bytes]:
    """The files a codec saves its trained parameters to (none for int8): what travels to a Ray actor or into
    Milvus, so every writer and reader codes as the index does."""
    import tempfile

    if codec is None:
        return {}
    with tempfile.TemporaryDirectory() as where:
        codec.save(Path(where))
        return {f.name: f.read_bytes() for f in Path(where).iterdir() if f.is_file()}


def codec_from_files(name: str, files: dict[str, bytes]) -> TokenCodec:
    """`load_codec` from the bytes `codec_files` gave."""
    import tempfile

    if not files:
        return load_codec(name)
    with tempfile.TemporaryDirectory() as where:
        for file_name, blob in files.items():
            (Path(where) / file_name).write_bytes(blob)
        return load_codec(name, Path(where))
