"""Dense embeddings: question and passage vectors, plus per-sentence vectors from the same forward pass.

torch and sentence-transformers are imported inside methods: importing this module (e.g. for `rag --help`
or to read a model id) must stay instant, and the model loads only when something is encoded.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import Settings, get_settings
from rag.errors import ModelUnavailable
from rag.model_builder import MANIFEST, bundled_model_id, ensure_model, rebuild_hint

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Spans = Sequence[Sequence[tuple[int, int]]]


def _offline() -> None:
    """No hub is reachable: fail fast on a missing model instead of retrying the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _strip(text: str) -> tuple[str, int]:
    """Strip both ends (trailing whitespace changes tokens, see the model note); return the left shift."""
    left = len(text) - len(text.lstrip())
    return text.strip(), left


class Embedder:
    """One embedding model, loaded on first use. `model` (or settings.embedding_model) overrides the bundled one."""

    def __init__(self, settings: Settings | None = None, model: str | None = None) -> None:
        self.settings = settings or get_settings()
        self._name = model if model is not None else self.settings.embedding_model  # "" = bundled
        self._st: SentenceTransformer | None = None
        self._path: str | None = None
        self._count: Any = None  # texts -> token counts
        self._lock = threading.Lock()  # the API embeds from a threadpool: load the model once
        # One forward pass at a time: torch already spreads each pass over every core, and concurrent passes
        # only fight over them (at 16 concurrent API clients, 22 req/s instead of 37 one at a time).
        self._encode_lock = threading.Lock()

    # ---- identity, cheap: no torch -------------------------------------------------------------
    def _local_dir(self) -> Path | None:
        """The model directory when it is on disk (the bundled build, or a local path override)."""
        if not self._name:
            return Path(self._resolve())
        p = Path(self._name).expanduser()
        return p if p.is_dir() else None

    def _resolve(self) -> str:
        """Path or name to load; builds the bundled model on first use (no torch needed for that)."""
        if self._path is None:
            self._path = ensure_model(self.settings) if not self._name else self._name
        return self._path

    @property
    def model_id(self) -> str:
        """Stable identity for index manifests: the bundled build's id wherever it lives, else the name given."""
        if not self._name:
            return bundled_model_id(self.settings.model_dir)
        if (Path(self._name).expanduser() / MANIFEST).is_file():
            return bundled_model_id(Path(self._name).expanduser())
        return self._name

    def _built_config(self, name: str) -> dict[str, Any] | None:
        """A config file of our own build (known layout: no Dense layer), read without loading torch."""
        d = self._local_dir()
        if d is None or not (d / MANIFEST).is_file():
            return None
        try:
            return json.loads((d / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @property
    def dimension(self) -> int:
        cfg = self._built_config("1_Pooling/config.json")
        if cfg and cfg.get("embedding_dimension"):
            return int(cfg["embedding_dimension"])
        return int(self.model.get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        cfg = self._built_config("sentence_bert_config.json")
        if cfg and cfg.get("max_seq_length"):
            return int(cfg["max_seq_length"])
        return int(self.model.max_seq_length or 512)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Model tokens per text, without special tokens or prompt: the tokenizer alone, no torch model."""
        if self._count is None:
            self._count = self._load_counter()
        return self._count([_strip(t)[0] for t in texts])

    def _load_counter(self) -> Any:
        d = self._local_dir()
        if d is not None and (d / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            try:
                tok = Tokenizer.from_file(str(d / "tokenizer.json"))
            except Exception as e:
                raise ModelUnavailable(f"cannot read {d / 'tokenizer.json'}: {e}; {self._hint()}") from e
            tok.no_truncation()
            tok.no_padding()
            return lambda xs: [len(e.ids) for e in tok.encode_batch(xs, add_special_tokens=False)] if xs else []
        _offline()
        try:
            from transformers import AutoTokenizer

            hf = AutoTokenizer.from_pretrained(self._resolve(), local_files_only=True)
        except Exception as e:
            raise ModelUnavailable(f"cannot load the tokenizer of {self._resolve()!r}: {e}; {self._hint()}") from e
        return lambda xs: [len(ids) for ids in hf(xs, add_special_tokens=False)["input_ids"]] if xs else []

    # ---- the model -------------------------------------------------------------------------------
    def _hint(self) -> str:
        if not self._name:
            return rebuild_hint(self.settings.model_dir)
        return ("set RAG_EMBEDDING_MODEL to a local sentence-transformers directory (no model hub is reachable), "
                "or unset it to use the bundled model")  # fmt: skip

    @property
    def model(self) -> SentenceTransformer:
        """The loaded sentence-transformers model (first access loads it: 4-10 s)."""
        with self._lock:
            if self._st is None:
                self._st = self._load()
        return self._st

    def _load(self) -> SentenceTransformer:
        path = self._resolve()
        _offline()
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            bar = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # the "Loading weights" bar would garble CLI output
            try:
                # Threads: torch's default (one per core) measured best on 2 cores (1 thread: 1.6x slower).
                return SentenceTransformer(path, device="cpu", local_files_only=True)
            finally:
                if bar:
                    hf_logging.enable_progress_bar()
        except Exception as e:
            raise ModelUnavailable(f"cannot load embedding model {path!r}: {e}; {self._hint()}") from e

    def _prompt(self, *names: str) -> str:
        prompts = self.model.prompts or {}
        return next((prompts[n] for n in names if prompts.get(n)), "")

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Question vectors (n, d), float32, unit length, with the model's "query" prompt if it has one."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        model, prompt = self.model, self._prompt("query")
        with self._encode_lock:
            vecs = model.encode(
                [_strip(t)[0] for t in texts], prompt=prompt, batch_size=self.settings.batch_size,
                convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False,
            )  # fmt: skip
        return _normalise(vecs)

    def encode_queries_with_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Question vectors as `encode_queries`, and from the same forward pass each question's contextual token
        vectors (content tokens only, unit length, float32): what late interaction (`rag.retrieval.max_sim`)
        matches against the stored passage tokens."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32), []
        prompt = self._prompt("query")
        outs = self._forward([_strip(t)[0] for t in texts], prompt, self.settings.batch_size)
        return _pooled(outs), [_normalise(_content_tokens(o, len(prompt))[0]) for o in outs]

    def _locked_batches(self, inputs: list[str], bs: int, encode) -> list:
        """Encode in model batches, longest first (little padding), taking the model lock per batch: a long
        ingest then interleaves with the API's queries instead of holding them up until it ends."""
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
        results: list = [None] * len(inputs)
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            with self._encode_lock:
                out = encode([inputs[i] for i in idx])
            for i, o in zip(idx, out):
                results[i] = o
        return results

    def encode_passages(
        self,
        texts: list[str],
        sentence_spans: Spans | None = None,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Passage vectors (n, d); with `sentence_spans`, also each text's sentence vectors (late chunking).

        A sentence vector is the mean of the passage's contextual token embeddings inside the sentence's
        character span, so sentences are scored in their passage's context and cost no extra forward pass.
        Spans are relative to each text. A sentence with no surviving token (truncated past the model's
        max length, or blank) gets the passage vector.
        """
        bs = batch_size or self.settings.batch_size
        if sentence_spans is not None:
            passages, sentences, _ = self.encode_late(texts, sentence_spans, bs)
            return passages, sentences
        if not texts:
            return np.zeros((0, self.dimension), np.float32), None
        prompt = self._prompt("passage", "document")
        model = self.model
        vecs = np.stack(self._locked_batches(
            [_strip(t)[0] for t in texts], bs,
            lambda batch: model.encode(batch, prompt=prompt, batch_size=bs, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False)))
        return _normalise(vecs), None

    def encode_late(
        self, texts: list[str], sentence_spans: Spans, batch_size: int | None = None
    ) -> tuple[np.ndarray, list[np.ndarray], list[TokenVectors]]:
        """One forward pass per text gives its passage vector, its sentences' vectors (see `encode_passages`)
        and its contextual token vectors with their character spans in the text (for late interaction)."""
        bs = batch_size or self.settings.batch_size
        if len(sentence_spans) != len(texts):
            raise ValueError(f"{len(sentence_spans)} span lists for {len(texts)} texts")
        if not texts:
            return np.zeros((0, self.dimension), np.float32), [], []
        prompt = self._prompt("passage", "document")
        stripped = [_strip(t) for t in texts]
        outs = self._forward([s for s, _ in stripped], prompt, bs)
        passages = _pooled(outs)
        sentences, tokens = [], []
        for out, passage, spans, (_, left) in zip(outs, passages, sentence_spans, stripped):
            vectors, raw = _content_tokens(out, len(prompt))
            starts, ends = raw[:, 0] - len(prompt) + left, raw[:, 1] - len(prompt) + left
            sentences.append(_sentence_vectors(vectors, starts, ends, passage, spans))
            tokens.append(TokenVectors(_normalise(vectors).astype(np.float16),
                                       np.stack([starts, ends], axis=1).astype(np.int32)))
        return passages, sentences, tokens

    def _forward(self, inputs: list[str], prompt: str, bs: int) -> list[dict[str, Any]]:
        """Everything one forward pass gives per text: the pooled vector, the token embeddings and their
        character offsets (which index prompt + text)."""
        model = self.model
        return self._locked_batches(
            inputs, bs, lambda batch: model.encode(batch, prompt=prompt, batch_size=bs, show_progress_bar=False,
                                                   output_value=None,
                                                   processing_kwargs={"text": {"return_offsets_mapping": True}}))


@dataclass(frozen=True)
class TokenVectors:
    """One text's contextual token vectors (unit length) and each token's [start, end) characters in the text."""

    vectors: np.ndarray  # (t, d) float16
    spans: np.ndarray  # (t, 2) int32


def _pooled(outs: list[dict[str, Any]]) -> np.ndarray:
    return _normalise(np.stack([o["sentence_embedding"].float().numpy() for o in outs]))


def _content_tokens(out: dict[str, Any], prompt_len: int) -> tuple[np.ndarray, np.ndarray]:
    """One text's token embeddings without specials (empty offsets) and prompt tokens (ending inside the
    prompt), as the model gives them; and their raw offsets, which index prompt + text."""
    keep = out["attention_mask"].bool()
    tokens = out["token_embeddings"][keep].float().numpy()
    raw = out["offset_mapping"][keep].numpy()
    content = (raw[:, 1] > raw[:, 0]) & (raw[:, 1] > prompt_len)
    return tokens[content], raw[content]


def _sentence_vectors(tokens: np.ndarray, start: np.ndarray, end: np.ndarray, passage: np.ndarray,
                      spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Mean-pool one text's content tokens (character offsets `start`, `end` in the text) per span."""
    if not spans:
        return np.zeros((0, passage.shape[0]), np.float32)
    rows = []
    for s, e in spans:
        sel = (end > s) & (start < e)
        rows.append(tokens[sel].mean(axis=0) if sel.any() else passage)
    return _normalise(np.stack(rows))
