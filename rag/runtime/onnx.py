"""The ONNX runtime: the exported e5 graph (fp32, or its int8 copy) on onnxruntime, tokenised by `tokenizers`.

Imports onnxruntime, tokenizers and numpy only: this is what `rag ask` loads instead of torch (about 0.5 s of
imports against 5-18 s here). The graph outputs the last hidden states; pooling is numpy (rag/embeddings.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelUnavailable
from rag.onnx_export import has_file, onnx_file, verified_onnx
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


class QuickTokenizer:
    """The model's tokenizer for a few short texts, ready in about a fifth of the full one's load (1 s of CPU
    holding the GIL here: building the 250,002-piece Unigram trie). Per batch it builds a Unigram over only the
    pieces that occur in the texts' pre-tokens, with their own scores, plus the lowest-scoring piece (which
    sets the unknown-token penalty): the Viterbi lattice, hence the tokens and offsets, are those of the full
    vocabulary. The ids are mapped back to the full vocabulary's."""

    MAX_PIECE = 16  # characters in the longest piece

    def __init__(self, onnx_dir: Path):
        self.pieces = verified_onnx(onnx_dir.parent, "vocab.txt").read_text(encoding="utf-8").split("\n")
        self.index = {p: i for i, p in enumerate(self.pieces)}
        self.scores = np.load(verified_onnx(onnx_dir.parent, "vocab_scores.npy"), allow_pickle=False)
        self.spec = json.loads(verified_onnx(onnx_dir.parent, "tokenizer_skeleton.json").read_text(encoding="utf-8"))
        # <mask> (id 250001) is an added token past the pieces: a text holding it goes to the full tokenizer.
        self.spec["added_tokens"] = [t for t in self.spec["added_tokens"] if t["id"] < 4]
        self.always = [0, 1, 2, 3, int(np.argmin(self.scores))]  # <s> <pad> </s> <unk>, the lowest score
        self.splitter = self._build(self.always)

    def _build(self, ids: list[int]) -> Any:
        from tokenizers import Tokenizer

        model = {**self.spec["model"], "unk_id": 3,
                 "vocab": [[self.pieces[i], float(self.scores[i])] for i in ids]}
        return Tokenizer.from_str(json.dumps({**self.spec, "model": model}))

    def handles(self, texts: Sequence[str]) -> bool:
        return len(texts) <= 8 and not any("<mask>" in t for t in texts)

    def encode_batch(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        tok, ids = self.for_texts(texts)
        return [([ids[i] for i in e.ids], e.offsets) for e in tok.encode_batch(list(texts), add_special_tokens=True)]

    def for_texts(self, texts: Sequence[str]) -> tuple[Any, list[int]]:
        """A tokenizer over the pieces `texts` can use (untruncated, unpadded), and its ids' full-vocabulary ids."""
        found = set(self.always)
        normalizer, pre = self.splitter.normalizer, self.splitter.pre_tokenizer
        for t in texts:
            for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(t)):
                for i in range(len(word)):
                    for j in range(i + 1, min(len(word), i + self.MAX_PIECE) + 1):
                        k = self.index.get(word[i:j])
                        if k is not None:
                            found.add(k)
        ids = sorted(found)  # the four specials keep ids 0-3, as the post-processor names them
        tok = self._build(ids)
        tok.no_truncation()
        tok.no_padding()
        return tok, ids


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
        # A process that asks a question or two (`rag ask`) tokenises with the quick tokenizer; the full one
        # loads at the first larger batch, or the fifth small one (a server).
        self._tokenizer = tokenizer
        self._tokenizer_lock = threading.Lock()
        quick = tokenizer is None and has_file(self.model_dir, "vocab.txt")  # exports since the quick tokenizer
        self._quick = QuickTokenizer(self.model_dir / "onnx") if quick else None
        self._quick_batches = 0
        self.pad_id, self.eos_id = 1, 2
        if self._quick is None and (self.tokenizer.token_to_id("<pad>"), self.tokenizer.token_to_id("</s>")) != (1, 2):
            raise ModelUnavailable(f"{self.model_dir / 'onnx' / 'tokenizer.json'} is not e5's (<pad> 1, </s> 2)")
        self.session  # noqa: B018 - a graph that does not load fails here, not at the first question
        self.path = path

    @property
    def session(self) -> Any:
        self._loading.join()
        if self._error is not None:
            raise ModelUnavailable(f"cannot load {self.model_dir / 'onnx'}: {self._error}") from self._error
        return self._session

    @property
    def tokenizer(self) -> Any:
        """The full tokenizer (loaded on first use)."""
        with self._tokenizer_lock:  # the API tokenises from many threads: load it once
            if self._tokenizer is None:
                self._tokenizer = load_tokenizer(verified_onnx(self.model_dir, "tokenizer.json"))
        return self._tokenizer

    def _encode(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        if self._tokenizer is None and self._quick is not None and self._quick.handles(texts) \
                and self._quick_batches < 4:
            self._quick_batches += 1
            return self._quick.encode_batch(texts)
        return [(e.ids, e.offsets) for e in self.tokenizer.encode_batch(texts, add_special_tokens=True)]

    def prepare(self, texts: Sequence[str]) -> Batch:
        encodings = self._encode(list(texts)) if texts else []
        ids, offsets = [], []
        for tid, off in encodings:
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
