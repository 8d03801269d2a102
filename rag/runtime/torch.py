"""The reference runtime: sentence-transformers on torch (CPU, or CUDA when RAG_DEVICE picks it)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.errors import ModelUnavailable
from rag.runtime import Forward, resolve_device


def _offline() -> None:
    """No hub is reachable: fail fast on a missing model instead of retrying the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


class TorchRuntime:
    name = "torch"

    def __init__(self, model_path: str, device: str = "auto"):
        self.device = resolve_device(device, cuda_available)
        self.model = load_sentence_transformer(model_path, self.device)

    def prepare(self, texts: Sequence[str]) -> list[str]:
        return list(texts)  # sentence-transformers tokenises inside encode()

    def forward(self, prepared: list[str]) -> list[Forward]:
        outs = self.model.encode(prepared, batch_size=max(1, len(prepared)), show_progress_bar=False,
                                 output_value=None, processing_kwargs={"text": {"return_offsets_mapping": True}})
        return [_to_forward(o) for o in outs]


def _to_forward(out: dict[str, Any]) -> Forward:
    keep = out["attention_mask"].bool()
    return Forward(out["token_embeddings"][keep].float().cpu().numpy(),
                   out["offset_mapping"][keep].cpu().numpy().astype(np.int64))


def load_sentence_transformer(path: str, device: str = "cpu"):
    _offline()
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # the "Loading weights" bar would garble CLI output
        try:
            # Threads: torch's default (one per core) measured best on 2 cores (1 thread: 1.6x slower).
            return SentenceTransformer(path, device=device, local_files_only=True)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
    except Exception as e:
        raise ModelUnavailable(f"cannot load embedding model {path!r}: {e}") from e
