"""Training a token codec offline, deterministically, from text the project ships.

A trained codec (PQ's centroids) must not depend on what a user indexes first, or two indexes of the same
articles would score differently, and one segment's codes would not mean the same as another's. So it is trained
from the bundled articles (data/articles), embedded by the configured model at three chunk sizes (the same words
in different contexts: 17,113 token vectors for e5-small, 67 a centroid in each slice), with a fixed seed,
once per model and runtime, and cached under the cache directory beside the model. An index copies the
parameters into its own `codec/` at its creation and reads only those afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from rag.store.tokens import TokenCodec, load_codec

TRAINING_VERSION = "bundled-v1"  # bump when the training text, chunkings or method change
CHUNKINGS = ((256, 48), (128, 32), (64, 16))  # (max tokens, overlap): the same articles in three contexts
PQ_SUB_VECTORS = 48  # bytes a token; benchmarks/compression.py measured the trade-off


def training_tokens(embedder) -> np.ndarray:
    """The bundled articles' contextual token vectors (unit length, float32), as the indexer embeds passages."""
    from rag.chunking import ChunkingConfig, chunk_document
    from rag.config import BUNDLED_ARTICLES
    from rag.documents import clean, load_paths
    from rag.indexer import embedding_text

    docs = sorted(load_paths([BUNDLED_ARTICLES]).documents, key=lambda d: d.id)
    out = []
    for max_tokens, overlap in CHUNKINGS:
        chunks = [c for d in docs for c in chunk_document(d, clean(d), embedder.count_tokens,
                                                          ChunkingConfig(max_tokens, overlap), skip_title=True)]
        by_id = {d.id: d for d in docs}
        texts = [embedding_text(by_id[c.doc_id], c, True)[0] for c in chunks]
        _, _, tokens = embedder.encode_late(texts, [[] for _ in texts])
        out += [t.vectors for t in tokens]
    return np.vstack(out).astype(np.float32)


def _key(name: str, embedder) -> str:
    from rag.config import BUNDLED_ARTICLES

    export = ""
    if embedder.runtime_name != "torch":  # another export rounds the token vectors, so k-means moves
        export = graph_checksums(Path(embedder.settings.model_dir).expanduser(), embedder.runtime_name)
    h = hashlib.sha256(repr((TRAINING_VERSION, name, embedder.model_id, embedder.runtime_name, export)).encode())
    for p in sorted(BUNDLED_ARTICLES.glob("*")):
        h.update(p.name.encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def graph_checksums(model_dir: Path, runtime_name: str) -> str:
    """The export format and the checksums of the graph `runtime_name` runs and of its weights file, read from the
    export's manifest (rag/onnx_export.py; no model load, no hashing): a graph exported again by another recipe
    gets codecs of its own, not the old graph's, though the runtime and the format are the same."""
    from rag.onnx_export import EXPORT_FORMAT, onnx_file, onnx_manifest
    from rag.openvino_export import GRAPHS

    graph = Path(GRAPHS.get(runtime_name) or onnx_file(runtime_name == "onnx-int8"))
    files = (onnx_manifest(model_dir) or {}).get("files") or {}
    sums = [files.get(n, {}).get("sha256", "") for n in (graph.name, graph.with_suffix(".bin").name)]
    return f"onnx-export-{EXPORT_FORMAT}-" + "-".join(s[:16] for s in sums if s)


def train_codec(name: str, embedder) -> TokenCodec:
    """A new codec `name` trained from the bundled articles (codecs without parameters need no training)."""
    from rag.store.tokens.pq import PQCodec

    if name == PQCodec.name:
        return PQCodec.train(training_tokens(embedder), PQ_SUB_VECTORS)
    return load_codec(name)


def trained_codec(name: str, embedder) -> TokenCodec:
    """The codec `name` for `embedder`'s model: trained on first use, then read from the cache."""
    if name == "int8":
        return load_codec(name)
    cached = embedder.settings.cache_dir / "codecs" / f"{name}-{_key(name, embedder)}"
    if not cached.is_dir():
        codec = train_codec(name, embedder)
        tmp = cached.with_name(f".tmp-{uuid.uuid4().hex[:8]}")
        codec.save(tmp)
        try:
            os.rename(tmp, cached)  # atomic; another process that trained the same parameters may have won
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_codec(name, Path(cached))
