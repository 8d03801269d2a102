"""The ONNX runtime: the exported e5 graph (fp32, or its int8 copy) on onnxruntime, tokenised by `tokenizers`.

Imports onnxruntime, tokenizers and numpy only: this is what `rag ask` loads instead of torch (about 0.5 s of
imports against 5-18 s here). The graph outputs the last hidden states; pooling is numpy (rag/embeddings.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelUnavailable
from rag.onnx_export import onnx_file, verified_onnx
from rag.runtime import Forward, cpu_threads, onnx_providers, resolve_device


def load_tokenizer(path: Path) -> Any:
    """A tokenizers.Tokenizer from its file, untruncated and unpadded (the runtime truncates and pads itself)."""
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:
        raise ModelUnavailable(f"cannot read {path}: {e}") from e
    tok.no_truncation()
    tok.no_padding()
    return tok


@dataclass
class Batch:
    input_ids: np.ndarray  # (n, L) int64, padded with the pad id
    attention_mask: np.ndarray  # (n, L) int64
    offsets: list[np.ndarray]  # per text (t_i, 2)


class OnnxRuntime:
    def __init__(self, model_dir: Path, quantized: bool, device: str = "auto", max_seq_length: int = 512,
                 tokenizer: Any = None, path: Path | None = None):
        """`path`: a graph to load as it is, unverified (the export check); by default the verified export."""
        import onnxruntime as ort

        self.name = "onnx-int8" if quantized else "onnx"
        self.model_dir = Path(model_dir)
        self.device = resolve_device(device, lambda: "CUDAExecutionProvider" in ort.get_available_providers())
        path = path or verified_onnx(self.model_dir, onnx_file(quantized))
        self.max_len = max_seq_length
        options = ort.SessionOptions()
        # One pass at a time (the Embedder serialises them) spread over every core; ONNX Runtime's default of
        # physical cores can leave a hyperthreaded core idle.
        options.intra_op_num_threads = cpu_threads()
        options.inter_op_num_threads = 1
        # Threads that spin after a pass steal the core the indexer's producer thread is tokenising on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session: Any = None
        self._error: Exception | None = None

        def create() -> None:
            try:
                self._session = ort.InferenceSession(str(path), options, providers=onnx_providers(self.device))
            except Exception as e:  # noqa: BLE001 - raised where the session is used
                self._error = e

        # Creating the session releases the GIL and loading the tokenizer holds it: do both at once.
        self._loading = threading.Thread(target=create, name="rag-onnx-session", daemon=True)
        self._loading.start()
        self.tokenizer = tokenizer or load_tokenizer(verified_onnx(self.model_dir, "tokenizer.json"))
        self.pad_id = self.tokenizer.token_to_id("<pad>")
        self.eos_id = self.tokenizer.token_to_id("</s>")
        if self.pad_id is None or self.eos_id is None:
            raise ModelUnavailable(f"{self.model_dir / 'tokenizer.json'} has no <pad> or </s> token")
        self.session  # noqa: B018 - a graph that does not load fails here, not at the first question
        self.path = path

    @property
    def session(self) -> Any:
        self._loading.join()
        if self._error is not None:
            raise ModelUnavailable(f"cannot load {self.model_dir / 'onnx'}: {self._error}") from self._error
        return self._session

    def prepare(self, texts: Sequence[str]) -> Batch:
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True) if texts else []
        ids, offsets = [], []
        for e in encodings:
            tid, off = e.ids, e.offsets
            if len(tid) > self.max_len:  # what HF truncation does: the first max_len - 1 tokens, then </s>
                tid = tid[:self.max_len - 1] + [self.eos_id]
                off = off[:self.max_len - 1] + [(0, 0)]
            ids.append(tid)
            offsets.append(np.asarray(off, np.int64).reshape(-1, 2))
        width = max((len(t) for t in ids), default=0)
        input_ids = np.full((len(ids), width), self.pad_id, np.int64)
        mask = np.zeros((len(ids), width), np.int64)
        for i, t in enumerate(ids):
            input_ids[i, :len(t)] = t
            mask[i, :len(t)] = 1
        return Batch(input_ids, mask, offsets)

    def forward(self, prepared: Batch) -> list[Forward]:
        if not len(prepared.input_ids):
            return []
        (states,) = self.session.run(["token_embeddings"], {"input_ids": prepared.input_ids,
                                                            "attention_mask": prepared.attention_mask})
        return [Forward(np.asarray(states[i, :len(off)], np.float32), off)
                for i, off in enumerate(prepared.offsets)]
