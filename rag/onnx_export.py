"""Export the built e5 model to ONNX (fp32 and a dynamically quantised int8 copy) and to OpenVINO IR (bfloat16 /
float32 and int8 weights), check every graph against torch, and find a verified export cheaply at start-up.

Layout, inside the model directory (rag/model_builder.py)::

    onnx/model.onnx        the graph: input_ids, attention_mask -> token_embeddings (last hidden states), with
                           ONNX Runtime's transformer fusions (Attention, SkipLayerNormalization, BiasGelu);
                           the word embeddings stay float16 as built (they are float16 values), cast after lookup
    onnx/model_int8.onnx   onnxruntime.quantization.quantize_dynamic of the fused graph, int8 weights per output
                           channel in 7 bits (reduce_range)
    onnx/openvino*.xml/.bin the plain (unfused) graph as OpenVINO IR, and its int8-weight copy (rag/openvino_export.py)
    onnx/tokenizer.json    the tokenizer exactly as transformers runs it for the torch model (transformers 5
                           rebuilds the file's pipeline: the same ids, but offsets without the leading space)
    onnx/vocab.txt, vocab_scores.npy, tokenizer_skeleton.json
                           the same tokenizer in parts that load in a fraction of its second (rag/runtime/tokenizer.py)
    onnx/rag-onnx.json     checksums, the drift measured against torch, and the model build it came from

The directory is written beside the model and renamed into place, so a reader sees a whole export or none.
The export needs torch and onnx (the build path only); finding and verifying one needs neither.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from rag.errors import ModelUnavailable
from rag.model_builder import _lock, _sha256, read_manifest, rebuild_hint

ONNX_DIR = "onnx"
ONNX_MANIFEST = "rag-onnx.json"
EXPORT_FORMAT = 3  # 2: fused graphs, int8 with reduce_range; 3: the OpenVINO copies (rag/openvino_export.py)
# The format that last changed each graph's vectors: cached eval indexes key on it (rag/evaluate.py).
VECTORS_SINCE = {"onnx": 2, "onnx-int8": 2, "openvino": 3, "openvino-int8": 3}
OPSET = 17
# Texts the export is checked on: Arabic and English questions and passages, short and past the 512-token limit.
CHECK_TEXTS = [
    "query: متى تستأنف المحادثات بين العراق والولايات المتحدة؟",
    "query: When will the talks between Iraq and the United States resume?",
    "query: ما هي عاصمة المغرب؟",
    "query: how much protein should a woman eat per day",
    "passage: أعلنت بغداد، الخميس، أن المحادثات مع الولايات المتحدة الأميركية تستأنف الأحد، بهدف مناقشة مستقبل "
    "مهمة التحالف الدولي لمكافحة تنظيم الدولة الاسلامية في العراق.",
    "passage: الرباط هي عاصمة المملكة المغربية ومقر الحكومة والبرلمان، وتقع على ساحل المحيط الأطلسي.",
    "passage: The Iraqi government said on Thursday that talks with the United States on the future of the "
    "coalition would resume on Sunday, a day after a US strike in Baghdad.",
    "passage: Le chat dort sur le canapé depuis ce matin.",
    "passage: " + "ارتفعت أسعار النفط اليوم بعد قرار أوبك خفض الإنتاج، وحذرت الأرصاد من عاصفة رملية. " * 40,
]
# Worst cosine to torch allowed over CHECK_TEXTS: (pooled vectors, token states). fp32 measured 0.99996 /
# 0.9999 at worst; int8 per channel 0.985 / 0.92 at worst over 160 eval questions and passages (mean 0.9945 /
# 0.9895). A broken export (a wrong mask, a shifted position table, weights off by 1%) falls far below.
# OpenVINO here: bfloat16 (float32 sums) 0.99999 / 0.99997, its int8 copy 0.9995 / 0.998 (activations in groups
# of 128); on a CPU without bfloat16 or VNNI both run closer to float32.
THRESHOLDS = {"onnx": (0.9995, 0.999), "onnx-int8": (0.97, 0.85), "openvino": (0.9995, 0.999),
              "openvino-int8": (0.995, 0.95)}


class ExportDrift(ModelUnavailable):
    """The exported graph does not compute what the torch model computes."""


def onnx_file(quantized: bool) -> str:
    return "model_int8.onnx" if quantized else "model.onnx"


def _source_key(model_dir: Path) -> str | None:
    """What ties an export to its model build: the weights' checksum in the build's manifest."""
    built = read_manifest(model_dir) or {}
    return built.get("files", {}).get("model.safetensors", {}).get("sha256")


def onnx_manifest(model_dir: Path) -> dict | None:
    try:
        return json.loads((Path(model_dir) / ONNX_DIR / ONNX_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def export_is_current(model_dir: Path) -> bool:
    m, source = onnx_manifest(model_dir), _source_key(model_dir)
    return bool(m) and m.get("format") == EXPORT_FORMAT and source is not None and m.get("source") == source


def has_file(model_dir: Path, name: str) -> bool:
    return name in ((onnx_manifest(model_dir) or {}).get("files") or {})


def verified_onnx(model_dir: Path, name: str) -> Path:
    """The path of one exported graph, checked against its manifest. A file whose size and modification time are
    those recorded at export is trusted; any other is hashed (0.5 s per 100 MB), so a cold start pays nothing
    and a replaced or edited file still fails loudly."""
    model_dir = Path(model_dir)
    m = onnx_manifest(model_dir)
    hint = f"run `rag model build` to export it, or {rebuild_hint(model_dir)}"
    if not m or m.get("format") != EXPORT_FORMAT:
        raise ModelUnavailable(f"no ONNX export in {model_dir / ONNX_DIR}: {hint}")
    if m.get("source") != _source_key(model_dir):
        raise ModelUnavailable(f"the ONNX export in {model_dir / ONNX_DIR} is of another model build: {hint}")
    want, path = m.get("files", {}).get(name), model_dir / ONNX_DIR / name
    if not want or not path.is_file():
        raise ModelUnavailable(f"the ONNX export in {model_dir / ONNX_DIR} is missing {name}: {hint}")
    return checked_file(path, want, "ONNX model file", hint)


def checked_file(path: Path, want: dict, what: str, hint: str) -> Path:
    """`path` when its size and modification time are those recorded (else its hash must be), or raise."""
    st = path.stat()
    if st.st_size != want["size"] or (st.st_mtime_ns != want["mtime_ns"] and _sha256(path) != want["sha256"]):
        raise ModelUnavailable(f"{what} {path} is corrupt (checksum mismatch): {hint}")
    return path


# ---- the build path (torch, onnx, onnxruntime.quantization) ------------------------------------------------
def ensure_onnx(model_dir: Path, force: bool = False) -> Path:
    """Export `model_dir` to ONNX unless a current export is there. Returns the export's directory."""
    model_dir = Path(model_dir)
    with _lock(model_dir / ONNX_DIR):
        if force or not export_is_current(model_dir):
            _export_locked(model_dir)
    return model_dir / ONNX_DIR


def replace_dir(model_dir: Path, name: str, build) -> None:
    """Run `build(tmp)` in a new directory beside `model_dir / name`, then rename it into place (the old one
    aside first), so a reader sees the whole old export or the whole new one. The caller holds the lock."""
    target = model_dir / name
    for stale in model_dir.glob(f".{name}.*-*"):  # leftovers of crashed runs (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.build-", dir=model_dir))
    old = model_dir / f".{name}.old-{os.getpid()}"
    try:
        build(tmp)
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def file_entries(tmp: Path, manifest: str) -> dict[str, dict]:
    """Size, SHA-256 and modification time of each file of an export (made world-readable) but its manifest."""
    files = {}
    for p in sorted(f for f in tmp.iterdir() if f.name != manifest):
        p.chmod(0o644)
        st = p.stat()
        files[p.name] = {"size": st.st_size, "sha256": _sha256(p), "mtime_ns": st.st_mtime_ns}
    return files


def _export_locked(model_dir: Path) -> None:
    replace_dir(model_dir, ONNX_DIR, lambda tmp: _build(model_dir, tmp))


def _build(model_dir: Path, tmp: Path) -> None:
    from rag.openvino_export import write_openvino

    _export_graph(model_dir, tmp / "exported.onnx")
    _fuse(tmp / "exported.onnx", tmp / "float32.onnx", model_dir)
    graphs = write_openvino(tmp / "exported.onnx", tmp)
    (tmp / "exported.onnx").unlink()
    _write_tokenizer(model_dir, tmp / "tokenizer.json")
    _quantize(tmp / "float32.onnx", tmp / "model_int8.onnx")  # quantises the lookup table too: from float32
    _float16_word_embeddings(tmp / "float32.onnx", tmp / "model.onnx")
    (tmp / "float32.onnx").unlink()
    drift = check_export(model_dir, {"onnx": tmp / "model.onnx", "onnx-int8": tmp / "model_int8.onnx", **graphs})
    _write_manifest(model_dir, tmp, drift)


def _export_graph(model_dir: Path, out: Path) -> None:
    """torch.onnx.export (the TorchScript exporter: it handles this BertModel with no extra package) of
    input_ids, attention_mask -> last hidden states, with the batch and sequence axes dynamic."""
    import warnings

    import onnx
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from rag.runtime.torch import _offline

    _offline()
    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32, attn_implementation="eager",
                                      local_files_only=True).eval()

    class TokenStates(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.tensor([[0, 581, 10176, 2, 1], [0, 1284, 7, 5, 2]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    axes = {"batch": 0, "sequence": 1}
    dynamic = {n: {v: k for k, v in axes.items()} for n in ("input_ids", "attention_mask", "token_embeddings")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(TokenStates(model), (ids, mask), str(out), input_names=["input_ids", "attention_mask"],
                          output_names=["token_embeddings"], dynamic_axes=dynamic, opset_version=OPSET,
                          dynamo=False)
    onnx.checker.check_model(str(out))


def _fuse(src: Path, out: Path, model_dir: Path) -> None:
    """ONNX Runtime's transformer optimizer: each layer's attention becomes one Attention node, each residual +
    LayerNorm a SkipLayerNormalization, each bias + GELU a BiasGelu. The same arithmetic in fewer, fused kernels:
    forward passes 1.1-1.45x faster here on 2 cores, vectors unchanged (the export check). The embeddings'
    LayerNorm is left unfused (EmbedLayerNormalization would need the word embeddings float32)."""
    import logging

    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False
    quiet = logging.getLogger("onnxruntime.transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        fused = optimize_model(str(src), model_type="bert", num_heads=config["num_attention_heads"],
                               hidden_size=config["hidden_size"], opt_level=0, optimization_options=options)
    finally:
        quiet.setLevel(level)
    counts = fused.get_fused_operator_statistics()
    layers = config["num_hidden_layers"]
    if counts.get("Attention") != layers or counts.get("SkipLayerNormalization") != 2 * layers:
        raise ModelUnavailable(f"cannot export the model: the transformer fusions did not apply ({counts})")
    fused.save_model_to_file(str(out))


def _write_tokenizer(model_dir: Path, out: Path) -> None:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    text = hf.backend_tokenizer.to_str()
    out.write_text(text, encoding="utf-8")
    # The parts a short-lived process tokenises a few questions with (rag.runtime.tokenizer.QuickTokenizer): the
    # pieces one per line, their scores, and the pipeline around them with the vocabulary left out.
    spec = json.loads(text)
    pieces, scores = zip(*spec["model"]["vocab"])
    if any("\n" in p for p in pieces) or spec["model"].get("type") != "Unigram":
        raise ModelUnavailable("cannot export the model: the tokenizer is not the expected Unigram one")
    (out.parent / "vocab.txt").write_text("\n".join(pieces), encoding="utf-8")
    np.save(out.parent / "vocab_scores.npy", np.asarray(scores, np.float64), allow_pickle=False)
    spec["model"] = {**spec["model"], "vocab": []}
    (out.parent / "tokenizer_skeleton.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")


def _float16_word_embeddings(src: Path, out: Path) -> None:
    """The word embeddings (250,037 x 384, 70% of the weights) were float16 when built: keep them so on disk and
    cast the looked-up rows to float32, which computes exactly the same thing in 40% less file."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    table = next(i for i in graph.initializer if i.name.endswith("word_embeddings.weight"))
    table.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(table).astype(np.float16), table.name))
    for at, node in enumerate(graph.node):
        if node.op_type == "Gather" and node.input[0] == table.name:
            rows = node.output[0]
            node.output[0] = rows + "_float16"
            graph.node.insert(at + 1, helper.make_node("Cast", [rows + "_float16"], [rows], to=TensorProto.FLOAT,
                                                       name="word_embeddings_to_float32"))
            onnx.save(model, str(out))
            return
    raise ModelUnavailable("cannot export the model: no word-embedding lookup in the graph")


def _quantize(src: Path, out: Path) -> None:
    """Dynamic int8 quantisation of the fused graph (its Attention nodes become QAttention), one scale per output
    channel: per tensor drifted 3x further from torch (mean pooled cosine 0.984 against 0.9945). The weights in 7
    bits (reduce_range): on a CPU without VNNI (AVX2 only) ONNX Runtime multiplies uint8 by int8 with 16-bit
    pairwise sums that saturate at 8 bits; with 7 the worst token-state cosine to torch rose from 0.90 to 0.95
    over the 488 chunks of 400 ARCD paragraphs, at the same speed."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Its "consider pre-processing" advice is meant for CNNs; and it leaves the root logger at DEBUG, which would
    # print bm25s's debug lines for the rest of the process: the root logger is put back as it was.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(logging.ERROR)
    try:
        # The fused nodes are of the com.microsoft domain, which shape inference does not type: say float.
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def check_export(model_dir: Path, graphs: dict[str, Path], texts: list[str] = CHECK_TEXTS,
                 thresholds: dict[str, tuple[float, float]] = THRESHOLDS) -> dict[str, dict[str, float]]:
    """Run `texts` through torch and through each graph; raise ExportDrift when a graph's worst cosine to torch
    (pooled vectors, or token states) is under its threshold. Returns the worst and mean cosines measured."""
    from rag.runtime.onnx import OnnxRuntime
    from rag.runtime.openvino import OpenVinoRuntime
    from rag.runtime.tokenizer import load_tokenizer
    from rag.runtime.torch import TorchRuntime

    reference = TorchRuntime(str(model_dir), "cpu")
    want = reference.forward(reference.prepare(texts))
    drift = {}
    for name, path in graphs.items():
        tokenizer = load_tokenizer(path.parent / "tokenizer.json")
        engine = OpenVinoRuntime if name.startswith("openvino") else OnnxRuntime
        runtime = engine(model_dir, quantized=name.endswith("-int8"), device="cpu", tokenizer=tokenizer, path=path)
        got = runtime.forward(runtime.prepare(texts))
        drift[name] = d = compare_forwards(want, got)
        pooled_min, token_min = thresholds[name]
        if d["pooled_min"] < pooled_min or d["tokens_min"] < token_min:
            raise ExportDrift(f"the {name} export of {model_dir} drifts from torch: worst cosine {d['pooled_min']:.4f} "
                              f"(pooled vectors, needs {pooled_min}) and {d['tokens_min']:.4f} (token states, needs "
                              f"{token_min}); not installed")
    return drift


def compare_forwards(want: list, got: list) -> dict[str, float]:
    """Cosines between two runtimes' outputs for the same texts: mean-pooled vectors, and every token state."""
    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    pooled, tokens = [], []
    for w, g in zip(want, got):
        if w.states.shape != g.states.shape or not np.array_equal(w.offsets, g.offsets):
            return {"pooled_min": -1.0, "pooled_mean": -1.0, "tokens_min": -1.0, "tokens_mean": -1.0}
        pooled.append(float(unit(w.states.mean(0)) @ unit(g.states.mean(0))))
        tokens.extend((unit(w.states) * unit(g.states)).sum(1).tolist())
    return {"pooled_min": round(min(pooled), 6), "pooled_mean": round(float(np.mean(pooled)), 6),
            "tokens_min": round(min(tokens), 6), "tokens_mean": round(float(np.mean(tokens)), 6)}


def _write_manifest(model_dir: Path, tmp: Path, drift: dict) -> None:
    from importlib import metadata

    files = file_entries(tmp, ONNX_MANIFEST)
    versions = {d: metadata.version(d) for d in ("torch", "onnx", "onnxruntime", "openvino")}
    (tmp / ONNX_MANIFEST).write_text(json.dumps({
        "format": EXPORT_FORMAT, "source": _source_key(model_dir), "opset": OPSET, "versions": versions,
        "inputs": ["input_ids", "attention_mask"], "output": "token_embeddings", "drift_against_torch": drift,
        "files": files}, indent=2) + "\n", encoding="utf-8")  # fmt: skip
    (tmp / ONNX_MANIFEST).chmod(0o644)
    tmp.chmod(0o755)
