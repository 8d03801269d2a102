"""The OpenVINO runtime: the exported e5 graph as OpenVINO IR (rag/openvino_export.py), tokenised by `tokenizers`.

On a CPU with bfloat16 (AVX512_BF16, AMX) OpenVINO runs the float graph in bfloat16 with float32 sums: the same
vectors as torch to a cosine of 0.99999, at about twice ONNX Runtime's float32 speed here. The int8 copy
multiplies int8 weights by activations quantised per token as it runs. On a CPU without either, the float graph
runs in float32 and the int8 copy's weights are widened once at load. Imports openvino, tokenizers and numpy only.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rag.errors import ModelUnavailable
from rag.onnx_export import onnx_manifest, verified_onnx
from rag.openvino_export import GRAPHS
from rag.runtime import Forward, cpu_threads, resolve_device
from rag.runtime.tokenizer import Batch, TokenizedRuntime

# Activations are quantised per token in groups of this many channels, each with its own scale. Over the 488 chunks
# of 400 ARCD paragraphs (mean 1 - cosine to torch of pooled vectors / forward passes): 384 7.4e-4 / 8.2 s, 128
# 3.6e-4 / 8.9 s, 64 2.4e-4 / 10.4 s (bfloat16 without int8: 0.1e-4 / 10.9 s; int8 weights alone: 1.2e-4).
QUANT_GROUP = 128


class OpenVinoRuntime(TokenizedRuntime):
    def __init__(self, model_dir: Path, quantized: bool, device: str = "auto", max_seq_length: int = 512,
                 tokenizer: Any = None, path: Path | None = None):
        """`path`: an IR (.xml) to load as it is, unverified (the export check); by default the verified export."""
        self.name = "openvino-int8" if quantized else "openvino"
        ov = import_openvino(f"the {self.name} runtime")
        self.device = resolve_device(device, lambda: False)  # OpenVINO's GPUs are Intel's, not CUDA
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": cpu_threads()}
        if quantized:
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = QUANT_GROUP
        if path is None:
            path = verified_onnx(Path(model_dir), GRAPHS[self.name])
            verified_onnx(Path(model_dir), path.with_suffix(".bin").name)
            cache = compiled_cache(Path(model_dir))
            if cache is not None:
                config["CACHE_DIR"] = str(cache)
        self.path = path

        def compile_model() -> Any:
            try:
                compiled = ov.Core().compile_model(str(path), "CPU", config)
            except Exception:  # noqa: BLE001 - a cache it cannot read or write: compile without one
                if "CACHE_DIR" not in config:
                    raise
                uncached = {k: v for k, v in config.items() if k != "CACHE_DIR"}
                compiled = ov.Core().compile_model(str(path), "CPU", uncached)
            self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # bf16, f32
            return compiled.create_infer_request()

        self._load(compile_model, Path(model_dir) / "onnx")
        self._start_tokenizer(model_dir, max_seq_length, tokenizer)

    def forward(self, prepared: Batch) -> list[Forward]:
        if not len(prepared.input_ids):
            return []
        # One request, one pass at a time (the Embedder serialises passes); infer() returns copies of the outputs.
        states = self.session.infer({"input_ids": prepared.input_ids, "attention_mask": prepared.attention_mask})[0]
        return self.forwards(states, prepared)


def import_openvino(what: str) -> Any:
    """The openvino module, or a one-line error naming the fix (a venv made before the runtime existed)."""
    try:
        import openvino
    except ImportError as e:
        raise ModelUnavailable(f"{what} needs the openvino package ({e}): run `make install` (or `pip install "
                               f"openvino==2026.4.1`), or set RAG_RUNTIME=onnx") from e
    return openvino


def compiled_cache(model_dir: Path) -> Path | None:
    """Where OpenVINO keeps this export's compiled graphs (its model cache): a first compile takes 0.9-1.5 s here,
    a cached one 0.1 s, which is most of a cold `rag ask`'s model start. One folder per export (named by its
    graphs' checksums), so a new export never meets an old blob; other folders are removed. None where the model
    directory is not writable: OpenVINO then compiles at each start."""
    files = (onnx_manifest(model_dir) or {}).get("files", {})
    key = "-".join(files.get(g, {}).get("sha256", "none")[:12] for g in sorted(GRAPHS.values()))
    root = model_dir / "openvino-cache"
    here = root / key
    if not here.is_dir():
        for old in root.iterdir() if root.is_dir() else ():
            if old.name != key:  # another process may have just made this export's folder
                shutil.rmtree(old, ignore_errors=True)
        try:
            here.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
    return here
