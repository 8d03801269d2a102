"""Build the cross-encoders' ONNX graphs from the built e5 weights and their shipped deltas, offline: the extractive
reader (rag/reader.py) and the sentence selector (rag/selector.py).

Each is the e5 model read as a cross-encoder with a head of two columns over its last hidden states, and differs
only in what was fitted: rag/data/reader.npz (benchmarks/train_reader.py: a start / end score per token) and
rag/data/selector.npz (benchmarks/train_selector.py: a score per sentence, read off the same two columns). The
file holds low-rank deltas B A of the top layers' linear weights (their scale folded into B) and the head. The
build adds each delta to its weight, puts the head on the last hidden states, and exports input_ids,
attention_mask -> span_logits (batch, sequence, 2) with the same steps as the embedding export
(rag/onnx_export.py: TorchScript export, transformer fusions, the word embeddings kept float16, a dynamically
quantised int8 copy), checked against the merged torch model. Layout, beside the model (NAME = reader, selector)::

    NAME/NAME.onnx         fp32 graph (float16 word embeddings)
    NAME/NAME_int8.onnx    int8 weights per output channel (the reader only)
    NAME/tokenizer.json    the model's tokenizer as transformers runs it (pairs: question, passage)
    NAME/rag-NAME.json     checksums, the drift measured, the model build and the deltas it came from

Written beside the model and renamed into place, like the other exports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.errors import ModelUnavailable
from rag.model_builder import _lock, rebuild_hint
from rag.onnx_export import (OPSET, _float16_word_embeddings, _fuse, _quantize, _source_key, checked_file,
                              file_entries, replace_dir)

EXPORT_FORMAT = 1
DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class CrossEncoder:
    """One exported cross-encoder: its name (directory, graphs, manifest) and the deltas it is built from."""
    name: str
    deltas: Path
    # An int8 copy too. The selector's scores are one number a sentence, and int8 moved them too far (on 150 MLQA
    # questions' sentences: correlation with torch 0.937, the same best sentence for 78%), so it runs in fp32.
    quantized: bool = True

    @property
    def manifest_name(self) -> str:
        return f"rag-{self.name}.json"

    @property
    def thresholds(self) -> dict[str, float]:
        # Worst agreement with the merged torch model allowed: the cosine of each pair's two logit columns over its
        # tokens. A wrong merge (a delta on the wrong layer, the scale applied twice) falls far below.
        return {f"{self.name}.onnx": 0.999, **({f"{self.name}_int8.onnx": 0.9} if self.quantized else {})}


READER = CrossEncoder("reader", DATA / "reader.npz")
SELECTOR = CrossEncoder("selector", DATA / "selector.npz", quantized=False)
# The (question, passage) pairs an export is checked on, Arabic and English, one past the length limit.
CHECK_PAIRS = [
    ("متى تستأنف المحادثات بين العراق والولايات المتحدة؟",
     "أعلنت بغداد، الخميس، أن المحادثات مع الولايات المتحدة الأميركية تستأنف الأحد، بهدف مناقشة مستقبل مهمة "
     "التحالف الدولي لمكافحة تنظيم الدولة الاسلامية في العراق."),
    ("ما هي عاصمة المغرب؟", "الرباط هي عاصمة المملكة المغربية ومقر الحكومة والبرلمان، وتقع على ساحل المحيط الأطلسي."),
    ("Who commands Iran's Quds Force?", "ويقود فيلق القدس، ذراع العمليات الخارجية للحرس الثوري، إسماعيل قآني منذ 2020."),
    ("كم سعر النفط؟", "ارتفعت أسعار النفط اليوم بعد قرار أوبك خفض الإنتاج، وحذرت الأرصاد من عاصفة رملية. " * 30),
]


@lru_cache(maxsize=4)
def deltas_key(path: Path) -> str | None:
    """The deltas' SHA-256, once per process: they are package data, and every Assistant checks the export."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def manifest(spec: CrossEncoder, model_dir: Path) -> dict | None:
    try:
        return json.loads((Path(model_dir) / spec.name / spec.manifest_name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current(spec: CrossEncoder, model_dir: Path) -> bool:
    m = manifest(spec, model_dir)
    return bool(m and m.get("format") == EXPORT_FORMAT and m.get("source") == _source_key(model_dir)
                and m.get("deltas") == deltas_key(spec.deltas))


def verified(spec: CrossEncoder, model_dir: Path, name: str) -> Path:
    """One file of an export, checked against its manifest by size and modification time (hashed when they
    differ), as rag.onnx_export.verified_onnx does."""
    m, path = manifest(spec, model_dir), Path(model_dir) / spec.name / name
    hint = f"run `rag model build`, or {rebuild_hint(Path(model_dir))}"
    want = (m or {}).get("files", {}).get(name)
    if not want or not path.is_file():
        raise ModelUnavailable(f"the {spec.name} export in {path.parent} is missing {name}: {hint}")
    return checked_file(path, want, f"{spec.name} file", hint)


def exported(spec: CrossEncoder, settings, graph: str) -> tuple[Path, Path, Path | None]:
    """The bundled model build's `graph` of `spec` (built, and exported, on first use), its tokenizer, and the
    embedding export whose quick tokenizer can stand in for it (None without one): what rag.reader.Reader loads.
    Whatever model the index was embedded with: a cross-encoder reads text, not the index's vectors."""
    from rag.model_builder import ensure_model
    from rag.onnx_export import has_file

    model_dir = Path(settings.model_dir).expanduser().absolute()
    if not is_current(spec, model_dir):
        ensure_model(settings.model_copy(update={"embedding_model": ""}))
        ensure_export(spec, model_dir)
    quick = model_dir / "onnx" if has_file(model_dir, "vocab.txt") else None
    return verified(spec, model_dir, graph), verified(spec, model_dir, "tokenizer.json"), quick


# ---- the build path (torch, onnx, onnxruntime.quantization) ------------------------------------------------
def ensure_export(spec: CrossEncoder, model_dir: Path, force: bool = False) -> Path:
    """Export `spec` unless a current export is there. Returns its directory."""
    model_dir = Path(model_dir)
    if not spec.deltas.is_file():
        raise ModelUnavailable(f"the {spec.name}'s weights {spec.deltas} are missing: reinstall the package")
    with _lock(model_dir / spec.name):
        if force or not is_current(spec, model_dir):
            replace_dir(model_dir, spec.name, lambda tmp: _build(spec, model_dir, tmp))
    return model_dir / spec.name


def merged_model(model_dir: Path, deltas: Path):
    """The torch cross-encoder: the built BertModel with each delta added to its weight, and the head."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from rag.runtime.torch import _offline

    _offline()
    hf_logging.disable_progress_bar()
    bert = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32, attn_implementation="eager",
                                     local_files_only=True).eval()
    with np.load(deltas, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    with torch.no_grad():
        for key in [k for k in arrays if k.endswith(".lora_A")]:
            name = key[:-len(".lora_A")]
            linear = bert.get_submodule(name)
            delta = arrays[name + ".lora_B"].astype(np.float32) @ arrays[key].astype(np.float32)
            linear.weight += torch.from_numpy(delta)

    class SpanReader(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert
            self.head = torch.nn.Linear(bert.config.hidden_size, 2)
            self.head.weight.copy_(torch.from_numpy(arrays["head.weight"].astype(np.float32)))
            self.head.bias.copy_(torch.from_numpy(arrays["head.bias"].astype(np.float32)))

        def forward(self, input_ids, attention_mask):
            return self.head(self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state)

    with torch.no_grad():
        return SpanReader().eval()


def _build(spec: CrossEncoder, model_dir: Path, tmp: Path) -> None:
    model = merged_model(model_dir, spec.deltas)
    _export_graph(model, tmp / "exported.onnx")
    _fuse(tmp / "exported.onnx", tmp / "float32.onnx", model_dir)
    (tmp / "exported.onnx").unlink()
    _write_tokenizer(model_dir, tmp / "tokenizer.json")
    if spec.quantized:
        _quantize(tmp / "float32.onnx", tmp / f"{spec.name}_int8.onnx")
    _float16_word_embeddings(tmp / "float32.onnx", tmp / f"{spec.name}.onnx")
    (tmp / "float32.onnx").unlink()
    _write_manifest(spec, model_dir, tmp, check_export(model, tmp, thresholds=spec.thresholds))


def _write_tokenizer(model_dir: Path, out: Path) -> None:
    """The tokenizer exactly as transformers ran it in training (its offsets leave out a word's leading space)."""
    from transformers import AutoTokenizer

    out.write_text(AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True).backend_tokenizer.to_str(),
                   encoding="utf-8")


def _export_graph(model, out: Path) -> None:
    import warnings

    import onnx
    import torch

    ids = torch.tensor([[0, 581, 10176, 2, 1], [0, 1284, 7, 5, 2]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    names = ("input_ids", "attention_mask", "span_logits")
    dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(model, (ids, mask), str(out), input_names=list(names[:2]), output_names=[names[2]],
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    onnx.checker.check_model(str(out))


def check_export(model, export_dir: Path, thresholds: dict[str, float], pairs=CHECK_PAIRS) -> dict[str, float]:
    """Run `pairs` through the merged torch model and each graph; raise when a graph's worst logit cosine is
    under its threshold. Returns the worst cosine per graph."""
    import torch

    from rag.reader import Reader

    drift = {}
    for name, floor in thresholds.items():
        reader = Reader(export_dir / name, export_dir / "tokenizer.json", threads=None)
        worst = 1.0
        for question, passage in pairs:
            ids, mask = reader.encode(question, [passage])
            got = reader.logits(ids, mask)[0]
            with torch.no_grad():
                want = model(torch.from_numpy(ids), torch.from_numpy(mask))[0].numpy()
            for col in (0, 1):
                a, b = want[:, col] - want[:, col].mean(), got[:, col] - got[:, col].mean()
                worst = min(worst, float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)))
        drift[name] = round(worst, 6)
        if worst < floor:
            raise ModelUnavailable(f"the export {name} drifts from torch: worst logit cosine {worst:.4f} "
                                   f"(needs {floor}); not installed")
    return drift


def _write_manifest(spec: CrossEncoder, model_dir: Path, tmp: Path, drift: dict) -> None:
    files = file_entries(tmp, spec.manifest_name)
    with np.load(spec.deltas, allow_pickle=False) as z:
        trained = json.loads(str(z["meta"]))
    (tmp / spec.manifest_name).write_text(json.dumps({
        "format": EXPORT_FORMAT, "source": _source_key(model_dir), "deltas": deltas_key(spec.deltas),
        "trained": trained, "drift_against_torch": drift, "files": files}, indent=2) + "\n", encoding="utf-8")
    (tmp / spec.manifest_name).chmod(0o644)
    tmp.chmod(0o755)
