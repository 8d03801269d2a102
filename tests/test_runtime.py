"""The runtimes (rag/runtime/): choosing one and a device, the ONNX export and its check against torch, ONNX and
torch vectors agreeing, and the question path never importing torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings, get_settings
from rag.embeddings import Embedder
from rag.errors import IndexIncompatible, ModelUnavailable
from rag.onnx_export import ExportDrift, check_export, ensure_onnx, onnx_manifest, verified_onnx
from rag.runtime import (DEFAULT_RUNTIME, RUNTIMES, compatible, onnx_providers, resolve_device, runtime_name)
from rag.store import IndexStore

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [
    "متى تستأنف المحادثات بين العراق والولايات المتحدة؟",
    "When will the talks between Iraq and the United States resume?",
    "ارتفعت أسعار النفط اليوم بعد قرار أوبك خفض الإنتاج.  وحذرت الأرصاد الجوية من عاصفة رملية تضرب الرياض غدا.",
    " \n  فاز المنتخب المغربي على نظيره الإسباني في ركلات الترجيح. ",
    "Le chat dort sur le canapé ▁ depuis ce matin.",
]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    d = get_settings().model_dir
    ensure_onnx(d)
    return d


@pytest.fixture(scope="module")
def by_runtime(embedder: Embedder) -> dict[str, Embedder]:
    s = get_settings()
    return {name: Embedder(s.model_copy(update={"runtime": name})) for name in RUNTIMES}


# ---- choosing -----------------------------------------------------------------------------------------------
def test_runtime_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runtime_name(Settings()) == DEFAULT_RUNTIME
    assert runtime_name(Settings(embedding_model="/some/sentence-transformers/dir")) == "torch"  # no ONNX export
    assert runtime_name(Settings(runtime="onnx")) == "onnx"
    monkeypatch.setenv("RAG_RUNTIME", "torch")
    assert runtime_name(Settings()) == "torch"
    monkeypatch.setenv("RAG_RUNTIME", "tensorflow")
    with pytest.raises(ValueError, match="onnx-int8"):
        Settings()


def test_device_selection_is_asked_only_when_needed() -> None:
    def no_cuda() -> bool:
        return False

    def cuda() -> bool:
        return True

    def must_not_ask() -> bool:
        raise AssertionError("cpu must not probe for CUDA (probing torch imports it)")

    assert resolve_device("cpu", must_not_ask) == "cpu"
    assert resolve_device("auto", no_cuda) == "cpu"
    assert resolve_device("auto", cuda) == "cuda"
    assert resolve_device("cuda", cuda) == "cuda"
    with pytest.raises(ModelUnavailable, match="RAG_DEVICE=cuda.*RAG_DEVICE=cpu"):
        resolve_device("cuda", no_cuda)
    with pytest.raises(ModelUnavailable, match="unknown device"):
        resolve_device("tpu", cuda)
    assert onnx_providers("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cpu") == ["CPUExecutionProvider"]


def test_cpu_is_what_this_machine_runs(by_runtime: dict[str, Embedder]) -> None:
    for e in by_runtime.values():
        assert e.device == "cpu"
    session = by_runtime["onnx"].runtime.session
    assert session.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ModelUnavailable, match="no CUDA device"):
        Embedder(get_settings().model_copy(update={"runtime": "onnx", "device": "cuda"})).encode_queries(["x"])


def test_vector_families() -> None:
    assert compatible("torch", "onnx") and compatible("onnx", "torch") and compatible("onnx-int8", "onnx-int8")
    assert not compatible("torch", "onnx-int8") and not compatible("onnx-int8", "onnx")
    for name in ("openvino", "openvino-int8"):  # within a cosine of 0.999 of torch: the same family
        assert compatible(name, "torch") and compatible("onnx", name) and not compatible(name, "onnx-int8")


# ---- the export ---------------------------------------------------------------------------------------------
def test_export_is_recorded_with_its_drift(model_dir: Path) -> None:
    m = onnx_manifest(model_dir)
    assert set(m["files"]) == {"model.onnx", "model_int8.onnx", "tokenizer.json",  # + the quick tokenizer's parts
                               "tokenizer_skeleton.json", "vocab.txt", "vocab_scores.npy",
                               "openvino.xml", "openvino.bin", "openvino_int8.xml", "openvino_int8.bin"}
    drift = m["drift_against_torch"]
    assert drift["onnx"]["pooled_min"] > 0.9999 and drift["openvino"]["pooled_min"] > 0.9995
    assert 0.97 < drift["onnx-int8"]["pooled_min"] < drift["openvino-int8"]["pooled_min"] < drift["onnx"]["pooled_min"]
    assert drift["openvino-int8"]["tokens_min"] > 0.95
    sizes = {n: f["size"] for n, f in m["files"].items()}
    assert sizes["model_int8.onnx"] < sizes["model.onnx"] / 2
    assert sizes["openvino_int8.bin"] < sizes["openvino.bin"]  # int8 matrices, float16 word embeddings in both
    for name in m["files"]:
        assert (model_dir / "onnx" / name).stat().st_mode & 0o777 == 0o644


def test_the_export_runs_fused_transformer_kernels(model_dir: Path) -> None:
    """Each layer's attention one Attention node (QAttention in the int8 copy), its residual + LayerNorm one
    SkipLayerNormalization, its bias + GELU one BiasGelu: ONNX Runtime's transformer fusions took."""
    import collections

    import onnx

    for name, attention in (("model.onnx", "Attention"), ("model_int8.onnx", "QAttention")):
        ops = collections.Counter(n.op_type for n in onnx.load(str(model_dir / "onnx" / name)).graph.node)
        assert (ops[attention], ops["SkipLayerNormalization"], ops["BiasGelu"]) == (12, 24, 12), (name, ops)


def test_the_openvino_copies(model_dir: Path, by_runtime: dict[str, Embedder]) -> None:
    """The int8 copy reads each of the 72 layer matrices from int8 codes; the float copy runs in bfloat16 exactly
    where the CPU multiplies bfloat16 natively (OpenVINO's capability list), else in float32."""
    import openvino as ov

    core = ov.Core()
    int8 = core.read_model(str(model_dir / "onnx" / "openvino_int8.xml"))
    codes = [op for op in int8.get_ops() if op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.i8]
    assert len(codes) == 72
    assert not any(op.get_element_type() == ov.Type.i8 for op in core.read_model(
        str(model_dir / "onnx" / "openvino.xml")).get_ops() if op.get_type_name() == "Constant")
    runtime = by_runtime["openvino"].runtime
    runtime.session  # noqa: B018 - compiled
    native = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert runtime.precision == ("bf16" if native else "f32")


def test_openvino_keeps_one_compiled_cache_per_export(tmp_path: Path, model_dir: Path) -> None:
    """A compile is cached beside the model, in a folder named by the export's graphs: a new export's folder
    replaces the old one, and a second compile of the same export finds its blob."""
    import shutil

    from rag.runtime.openvino import OpenVinoRuntime, compiled_cache

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("model.safetensors", "*.onnx", "openvino-cache"))
    (copy / "openvino-cache" / "an-older-export").mkdir(parents=True)
    first = OpenVinoRuntime(copy, quantized=True, device="cpu")
    first.session  # noqa: B018
    folders = list((copy / "openvino-cache").iterdir())
    assert folders == [compiled_cache(copy)] and any(f.suffix == ".blob" for f in folders[0].iterdir())
    blobs = sorted(folders[0].iterdir())
    again = OpenVinoRuntime(copy, quantized=True, device="cpu")
    again.session  # noqa: B018
    assert sorted(folders[0].iterdir()) == blobs  # found, not written again
    texts = ["passage: " + TEXTS[2]]
    assert np.array_equal(first.forward(first.prepare(texts))[0].states, again.forward(again.prepare(texts))[0].states)


def test_openvino_missing_or_its_cache_unwritable(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  cli) -> None:
    """A venv without openvino (made before the runtime existed: a fault only a mock can cause here) gets one line
    naming the fix; a model directory where the compile cache cannot be made still loads, uncached."""
    import shutil

    from rag.runtime.openvino import OpenVinoRuntime

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("model.safetensors", "*.onnx", "openvino-cache"))
    (copy / "openvino-cache").write_text("a file where the cache folder would go")
    runtime = OpenVinoRuntime(copy, quantized=False, device="cpu")
    assert runtime.forward(runtime.prepare(["passage: " + TEXTS[0]]))[0].states.shape[1] == 384
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises ImportError
    monkeypatch.setattr("rag.cli._embedders", {})  # no model the CLI loaded before
    with pytest.raises(ModelUnavailable, match="openvino runtime needs the openvino package.*RAG_RUNTIME=onnx"):
        OpenVinoRuntime(copy, quantized=False, device="cpu")
    result = cli("search", "Iraq", "--runtime", "openvino", "--index-dir", tmp_path / "index")
    assert result.exit_code == 1 and "needs the openvino package" in result.output and "Traceback" not in result.output


def test_export_check_refuses_a_graph_that_drifts(model_dir: Path, tmp_path: Path) -> None:
    """A graph with one layer's feed-forward weights perturbed by noise of 10% of their spread (what a lossy
    conversion does to a little of the model) must be refused; the real one passes the same check."""
    import shutil

    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_dir / "onnx" / "model.onnx"))
    target = next(i for i in model.graph.initializer if tuple(i.dims) == (384, 1536))  # a feed-forward matrix
    w = numpy_helper.to_array(target)
    noise = np.random.default_rng(0).normal(0, 0.1 * w.std(), w.shape).astype(w.dtype)
    target.CopyFrom(numpy_helper.from_array(w + noise, target.name))
    onnx.save(model, str(tmp_path / "model.onnx"))
    shutil.copy(model_dir / "onnx" / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(ExportDrift, match="drifts from torch"):
        check_export(model_dir, {"onnx": tmp_path / "model.onnx"})
    ok = check_export(model_dir, {"onnx": model_dir / "onnx" / "model.onnx"})
    assert ok["onnx"]["pooled_min"] > 0.9999


def test_a_corrupt_or_missing_export_is_refused(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("model.safetensors", "model.onnx"))
    with pytest.raises(ModelUnavailable, match="missing model.onnx.*rag model build"):
        verified_onnx(copy, "model.onnx")
    assert verified_onnx(copy, "model_int8.onnx")  # copied with its times: trusted without hashing
    with open(copy / "onnx" / "model_int8.onnx", "r+b") as f:
        f.seek(-1000, 2)
        byte = f.read(1)
        f.seek(-1000, 2)
        f.write(bytes([byte[0] ^ 0xFF]))  # the edit moves the mtime: now it is hashed
    with pytest.raises(ModelUnavailable, match="corrupt"):
        verified_onnx(copy, "model_int8.onnx")
    shutil.rmtree(copy / "onnx")
    with pytest.raises(ModelUnavailable, match="no ONNX export"):
        verified_onnx(copy, "model_int8.onnx")


# ---- the vectors --------------------------------------------------------------------------------------------
def test_onnx_tokenises_exactly_as_sentence_transformers(by_runtime: dict[str, Embedder]) -> None:
    """Both tokenizers of the ONNX runtime (the quick one a short-lived process starts with, and the full one)
    give the ids and offsets sentence-transformers gives, truncation at 512 tokens included."""
    from rag.runtime.tokenizer import QuickTokenizer

    onnx, torch = by_runtime["onnx"].runtime, by_runtime["torch"].runtime
    texts = ["query: " + t.strip() for t in TEXTS] + ["passage: " + " ".join(TEXTS * 30),  # > 512 tokens
                                                    "query: ؟؟ 12,5% \u200fمرحبا\u200f  co-operation ﷺ ﻻ x²"]
    hf = torch.model.tokenizer(texts, truncation=True, max_length=512, return_offsets_mapping=True)
    want = [(ids, [list(o) for o in offsets]) for ids, offsets in zip(hf["input_ids"], hf["offset_mapping"])]
    quick = QuickTokenizer(onnx.model_dir / "onnx")
    for part in (texts[:4], texts[4:]):
        got = quick.encode_batch(part)
        for (ids, offsets), (want_ids, want_offsets) in zip(got, want[texts.index(part[0]):]):
            cut = min(len(ids), 512)
            assert ids[:cut - 1] == want_ids[:cut - 1] and [list(o) for o in offsets[:cut - 1]] == want_offsets[:cut - 1]
    full = onnx.prepare(texts * 2)  # more than a small batch: the full tokenizer
    for i, (ids, offsets) in enumerate(want):
        assert list(full.input_ids[i][full.attention_mask[i] == 1]) == ids
        assert full.offsets[i].tolist() == offsets
    assert full.attention_mask[len(TEXTS)].sum() == 512


def test_onnx_vectors_agree_with_torch(by_runtime: dict[str, Embedder]) -> None:
    ref = by_runtime["torch"]
    spans = [[(0, len(t) // 2), (len(t) // 2, len(t))] for t in TEXTS]
    ref_q, (ref_qt) = ref.encode_queries_with_tokens(TEXTS)
    ref_p, ref_s, ref_t = ref.encode_late(TEXTS, spans)
    for name, floor in (("onnx", 0.9999), ("onnx-int8", 0.97), ("openvino", 0.9995), ("openvino-int8", 0.995)):
        e = by_runtime[name]
        q, qt = e.encode_queries_with_tokens(TEXTS)
        p, s, t = e.encode_late(TEXTS, spans)
        assert q.shape == ref_q.shape and q.dtype == np.float32
        assert np.min(np.sum(q * ref_q, axis=1)) > floor, name
        assert np.min(np.sum(p * ref_p, axis=1)) > floor, name
        for a, b in zip(s, ref_s):
            assert np.min(np.sum(a * b, axis=1)) > floor - 0.02, name
        for a, b in zip(t, ref_t):  # the same tokens, at the same characters
            assert np.array_equal(a.spans, b.spans)
            cos = np.sum(a.vectors.astype(np.float32) * b.vectors.astype(np.float32), axis=1)
            assert np.mean(cos) > floor - 0.02, name
        for a, b in zip(qt, ref_qt):
            assert a.shape == b.shape
    # Same vectors as before the runtimes existed: sentence-transformers' own encode.
    raw = ref.model.encode(["passage: " + TEXTS[0]], normalize_embeddings=True)
    assert np.allclose(by_runtime["onnx"].encode_passages([TEXTS[0]])[0], raw, atol=1e-4)


# ---- indexes and runtimes -----------------------------------------------------------------------------------
def test_an_index_refuses_a_runtime_with_other_vectors(bundled_index: Settings, cli) -> None:
    store = IndexStore.open(bundled_index.index_dir)
    assert store.manifest.runtime == DEFAULT_RUNTIME
    other = next(r for r in ("onnx-int8", "onnx", "torch") if not compatible(DEFAULT_RUNTIME, r))
    with pytest.raises(IndexIncompatible, match=f"built by the {DEFAULT_RUNTIME} runtime.*RAG_RUNTIME=[a-z0-9 -]*\\b{DEFAULT_RUNTIME}\\b"):
        IndexStore.open(bundled_index.index_dir, runtime=other)
    result = cli("ask", "متى تستأنف المحادثات؟", "--index-dir", bundled_index.index_dir, "--runtime", other)
    message = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 1
    assert f"built by the {DEFAULT_RUNTIME} runtime" in message and "Traceback" not in message
    assert cli("ask", "x", "--runtime", "tensorflow").exit_code == 1


def test_compatible_runtimes_share_an_index(tmp_path: Path, by_runtime: dict[str, Embedder]) -> None:
    from rag.chain import Assistant, build_index
    from rag.config import BUNDLED_ARTICLES

    s = get_settings().model_copy(update={"index_dir": tmp_path / "index", "runtime": "onnx"})
    build_index([BUNDLED_ARTICLES], s, by_runtime["onnx"])
    torch_answer = Assistant(s.model_copy(update={"runtime": "torch"}), embedder=by_runtime["torch"]).ask(
        "متى تستأنف المحادثات بين العراق والولايات المتحدة؟")
    onnx_answer = Assistant(s, embedder=by_runtime["onnx"]).ask("متى تستأنف المحادثات بين العراق والولايات المتحدة؟")
    assert [c.id for c in torch_answer.citations] == [c.id for c in onnx_answer.citations]
    assert onnx_answer.citations


def test_the_question_path_never_imports_torch(bundled_index: Settings) -> None:
    """`rag ask` and `rag search` in a fresh interpreter: the answer is printed and neither torch nor
    sentence-transformers (nor transformers) was ever imported."""
    probe = ("import sys\nfrom rag.cli import app\nsys.argv = ['rag', *sys.argv[1:]]\ncode = 0\ntry:\n    app()\n"
             "except SystemExit as e:\n    code = e.code\nheavy = sorted(m for m in sys.modules if m.split('.')[0] in "
             "('torch', 'sentence_transformers', 'transformers'))\nprint('HEAVY', heavy, 'EXIT', code)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_INDEX_DIR": str(bundled_index.index_dir)}
    env.pop("RAG_RUNTIME", None)
    for args in (["ask", "متى تستأنف المحادثات بين العراق والولايات المتحدة؟", "--json"], ["search", "Iraq talks"]):
        run = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env,
                             timeout=300)
        last = run.stdout.strip().splitlines()[-1]
        assert last == "HEAVY [] EXIT 0", (last, run.stderr[-2000:])
        if args[0] == "ask":
            body = run.stdout[:run.stdout.rindex("HEAVY")]
            assert json.loads(body)["citations"]
