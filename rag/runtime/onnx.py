"""The ONNX runtime: the exported e5 graph (fp32, or its int8 copy) on onnxruntime, tokenised by `tokenizers`.

Imports onnxruntime, tokenizers and numpy only: this is what `rag ask` loads instead of torch (about 0.5 s of
imports against 5-18 s here). The graph outputs the last hidden states; pooling is numpy (rag/embeddings.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.onnx_export import onnx_file, verified_onnx
from rag.runtime import Forward, cpu_threads, onnx_providers, resolve_device
from rag.runtime.tokenizer import Batch, TokenizedRuntime


class OnnxRuntime(TokenizedRuntime):
    def __init__(self, model_dir: Path, quantized: bool, device: str = "auto", max_seq_length: int = 512,
                 tokenizer: Any = None, path: Path | None = None):
        """`path`: a graph to load as it is, unverified (the export check); by default the verified export."""
        import onnxruntime as ort

        self.name = "onnx-int8" if quantized else "onnx"
        self.device = resolve_device(device, lambda: "CUDAExecutionProvider" in ort.get_available_providers())
        self.path = path = path or verified_onnx(Path(model_dir), onnx_file(quantized))
        options = ort.SessionOptions()
        # One pass at a time (the Embedder serialises them) spread over every core; ONNX Runtime's default of
        # physical cores can leave a hyperthreaded core idle.
        options.intra_op_num_threads = cpu_threads()
        options.inter_op_num_threads = 1
        # Threads that spin after a pass steal the core the indexer's producer thread is tokenising on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._load(lambda: ort.InferenceSession(str(path), options, providers=onnx_providers(self.device)),
                   Path(model_dir) / "onnx")
        self._start_tokenizer(model_dir, max_seq_length, tokenizer)

    def forward(self, prepared: Batch) -> list[Forward]:
        if not len(prepared.input_ids):
            return []
        (states,) = self.session.run(["token_embeddings"], {"input_ids": prepared.input_ids,
                                                            "attention_mask": prepared.attention_mask})
        return self.forwards(states, prepared)
