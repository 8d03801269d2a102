"""What every passage store is: a reader (`PassageStore`, the view a question is answered from) and a backend
(`StoreBackend`, which opens readers and commits changes). One module per implementation, chosen by
`RAG_STORE` (`backend_for`): `rag.store.local` (segments on this machine's disk, the default) and
`rag.store.milvus` (a Milvus collection: Milvus Lite in a file, or a Milvus server or cluster).

The indexer (rag/indexer.py) decides *what* changes (which documents are added, replaced, removed, by content
hash); a backend decides *how* that is committed. Retrieval, answers and citations only see a `PassageStore`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from rag.types import Chunk, Document

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.indexer import IndexReport, IndexSpec, Progress


@runtime_checkable
class PassageStore(Protocol):
    """The read side. Rows are the store's passage ids (ints, stable while a passage lives)."""

    manifest: Any  # rag.store.local.Manifest: the model, dimension, chunking, runtime and codec that shaped it
    version: str  # what changes with every commit ("gen-12")
    has_tokens: bool  # late interaction's token vectors are kept
    codec: Any  # the TokenCodec of those token vectors (None without them)

    def __len__(self) -> int: ...
    def document_count(self) -> int: ...
    def documents(self) -> list[Document]: ...
    def document(self, doc_id: str) -> Document | None: ...
    def chunks(self, rows: list[int]) -> list[Chunk]: ...
    def chunk_sentence_vectors(self, row: int) -> np.ndarray: ...
    def dense_search(self, query: np.ndarray, k: int) -> tuple[list[float], list[int]]: ...
    def lexical_search(self, tokens: list[str], k: int) -> tuple[list[float], list[int]]: ...
    def idf(self, token: str) -> float: ...
    def idfs(self, tokens) -> dict[str, float]: ...
    def token_similarities(self, row: int, query_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None: ...
    def warm(self) -> None: ...
    def close(self) -> None: ...


Embed = Callable[..., tuple[list[Chunk], Any]]  # rag.indexer.embed_documents, or Ray's (rag/ray_ingest.py)


class StoreBackend(Protocol):
    name: str  # "local" | "milvus"

    def describe(self) -> str:
        """Where the index is, for messages ("index/", "milvus:/path/rag.db#passages")."""

    def exists(self) -> bool: ...

    def open(self, model_id: str | None = None, runtime: str | None = None,
             older_format: bool = False) -> PassageStore:
        """The live index; refused (IndexIncompatible) when `model_id` / `runtime` cannot query it."""

    def generation(self) -> int | None:
        """The live commit's number (None: no index): the API reopens when it moved on."""

    def write_lock(self) -> AbstractContextManager: ...

    def needs_write(self, old: PassageStore | None, spec: "IndexSpec") -> bool:
        """Whether the index must be written though no document changed (none yet, a migration...)."""

    def write(self, old: PassageStore | None, final: dict[str, Document], report: "IndexReport",
              spec: "IndexSpec", embed: Embed, progress: "Progress | None", force: bool) -> None:
        """Commit the change from `old` to `final` (report.added / updated / removed say what changed); with
        `force`, everything is embedded again. Fills in report.chunks_embedded, notice, merged."""

    def remove(self, old: PassageStore, doc_ids: list[str], report: "IndexReport") -> None:
        """Commit the removal of `doc_ids` (all in `old`)."""

    def compact(self, report: "IndexReport") -> None: ...

    def check(self) -> list[str]:
        """What is wrong with the index (empty: nothing)."""

    def counts(self) -> tuple[int, int]:
        """(documents, passages) of the live commit."""


def backend_for(settings: "Settings") -> StoreBackend:
    """The store `RAG_STORE` names, at the settings' place (the index dir, or the Milvus URI and collection)."""
    if settings.store == "milvus":
        from rag.store.milvus import MilvusBackend

        return MilvusBackend(settings.milvus_uri or str(settings.index_dir / "milvus.db"), settings.milvus_collection,
                             token=settings.milvus_token.get_secret_value())
    from rag.store.local.backend import LocalBackend

    return LocalBackend(settings.index_dir)
