"""Runtimes for the embedding model: the same e5 weights run by sentence-transformers (torch, the reference), by
ONNX Runtime (an fp32 export, or its dynamically quantised int8 copy) or by OpenVINO (the same export as OpenVINO
IR, in bfloat16 where the CPU has it, or with int8 weights). One setting, RAG_RUNTIME, picks one.

A runtime does one thing: texts (prompt already prepended) in, each text's last hidden states and their
character offsets out, one forward pass. Pooling, sentence vectors and token vectors are computed from those in
rag/embeddings.py, the same numpy code for every runtime, so the runtimes differ only in the forward pass.

Nothing heavy is imported here: `rag ask` on an ONNX runtime must never import torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rag.errors import ModelUnavailable

if TYPE_CHECKING:
    from rag.config import Settings

RUNTIMES = ("openvino-int8", "openvino", "onnx-int8", "onnx", "torch")
# The default is the fastest runtime within 0.005 of torch on the pooled dev set (benchmarks/quality.py --runtimes;
# R@1, R@5, containment; shipped configuration): openvino-int8 -0.004 / -0.000 / +0.000, openvino -0.002 / +0.001 /
# -0.002; onnx-int8 lost 0.011. openvino-int8 indexes 1.15-1.25x faster than openvino. Its drift reordered near-tied
# passages and sentences of the bundled articles' questions until the retriever and the answerer settled near ties
# by the question's own words (rag.retrieval.settle_near_tie).
DEFAULT_RUNTIME = "openvino-int8"
DEVICES = ("auto", "cpu", "cuda")
# Runtimes whose vectors are interchangeable: an index built by one may be queried (and updated) by another of
# the same family. torch, the fp32 export and OpenVINO's bfloat16 agree to a cosine of 0.99999 on every pooled
# vector and token state (the export check); OpenVINO's int8 to 0.999 (mean 0.9996), and its index queried by
# onnx, or onnx's by it, scores within 0.004 of either alone. ONNX Runtime's int8 copy drifts further (pooled
# cosine about 0.993, token states 0.97 at worst), so it is its own.
VECTOR_FAMILY = {"torch": "float32", "onnx": "float32", "openvino": "float32", "openvino-int8": "float32",
                 "onnx-int8": "int8"}


@dataclass(frozen=True)
class Forward:
    """One text's forward pass: the last hidden state of every token (padding removed, specials and prompt
    kept, as mean pooling reads them) and each token's [start, end) characters in the input (specials: 0, 0)."""

    states: np.ndarray  # (t, d) float32
    offsets: np.ndarray  # (t, 2) int64


class EncoderRuntime(Protocol):
    name: str  # one of RUNTIMES
    device: str  # "cpu" or "cuda"

    def prepare(self, texts: Sequence[str]) -> Any:
        """What can be done before the forward pass without the model (tokenising, padding). Runs in the
        indexer's producer thread, overlapping the previous batch's forward pass."""

    def forward(self, prepared: Any) -> list[Forward]:
        """One forward pass over a prepared batch."""


def runtime_name(settings: Settings) -> str:
    """The configured runtime; unset, the default for the bundled model and torch for any other model (an
    arbitrary sentence-transformers model has no ONNX export)."""
    name = settings.runtime or (DEFAULT_RUNTIME if not settings.embedding_model else "torch")
    if name not in RUNTIMES:
        raise ModelUnavailable(f"unknown runtime {name!r}: use one of {', '.join(RUNTIMES)} (RAG_RUNTIME, --runtime)")
    return name


def resolve_device(requested: str, cuda_available: Callable[[], bool]) -> str:
    """`auto` is CUDA when there is one, else the CPU; `cuda` without one is an error, not a silent CPU run.
    `cuda_available` is asked only when needed (asking torch imports it)."""
    if requested not in DEVICES:
        raise ModelUnavailable(f"unknown device {requested!r}: use one of {', '.join(DEVICES)} (RAG_DEVICE)")
    if requested == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if requested == "cuda":
        raise ModelUnavailable("RAG_DEVICE=cuda, but no CUDA device is available to this runtime (see the README "
                               "for a CUDA build of torch or onnxruntime-gpu), or set RAG_DEVICE=cpu")
    return "cpu"


def onnx_providers(device: str) -> list[str]:
    """ONNX Runtime execution providers for a resolved device, best first."""
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]


def cpu_threads() -> int:
    """The cores this process may run on (a container's quota shows in the affinity mask, not in cpu_count),
    capped by OMP_NUM_THREADS when set: Ray sets it to each worker's CPUs, so two embedding actors on two cores
    run a thread each instead of four threads fighting over two cores."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        cores = max(1, os.cpu_count() or 1)
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(cap)) if cap.isdigit() and int(cap) > 0 else cores


def compatible(index_runtime: str, runtime: str) -> bool:
    """May an index built by `index_runtime` be queried or updated by `runtime`?"""
    return VECTOR_FAMILY.get(index_runtime, index_runtime) == VECTOR_FAMILY.get(runtime, runtime)


def compatible_runtimes(index_runtime: str) -> list[str]:
    return [r for r in RUNTIMES if compatible(index_runtime, r)]


def load_runtime(name: str, model_path: str, device: str, max_seq_length: int) -> EncoderRuntime:
    """Load the named runtime over a model directory (for torch: any sentence-transformers name or path)."""
    if name == "torch":
        from rag.runtime.torch import TorchRuntime

        return TorchRuntime(model_path, device)
    if name.startswith("openvino"):
        from rag.runtime.openvino import OpenVinoRuntime

        return OpenVinoRuntime(Path(model_path), quantized=name == "openvino-int8", device=device,
                               max_seq_length=max_seq_length)
    from rag.runtime.onnx import OnnxRuntime

    return OnnxRuntime(Path(model_path), quantized=name == "onnx-int8", device=device,
                       max_seq_length=max_seq_length)
