"""Dense embeddings: question and passage vectors, plus per-sentence and token vectors from the same forward pass.

The forward pass is a runtime's (rag/runtime/: torch through sentence-transformers, or ONNX Runtime); everything
after it (mean pooling as e5 does, late-chunked sentence vectors, token vectors) is numpy here, the same for every
runtime. Nothing heavy is imported at module level: importing this (`rag --help`, reading a model id) stays
instant, the model loads on first use, and on an ONNX runtime torch is never imported at all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import Settings, get_settings
from rag.errors import ModelUnavailable
from rag.model_builder import MANIFEST, bundled_model_id, ensure_model, rebuild_hint
from rag.runtime import EncoderRuntime, Forward, load_runtime, runtime_name

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Spans = Sequence[Sequence[tuple[int, int]]]


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _strip(text: str) -> tuple[str, int]:
    """Strip both ends (trailing whitespace changes tokens, see the model note); return the left shift."""
    left = len(text) - len(text.lstrip())
    return text.strip(), left


@dataclass
class PreparedPassages:
    """Passages tokenised for one forward pass (`Embedder.prepare_passages`): what the indexer's producer thread
    hands to the model while the previous batch runs."""

    lefts: list[int]  # characters stripped from each text's start
    prompt_len: int
    batch: Any  # the runtime's prepared input


class Embedder:
    """One embedding model, loaded on first use. `model` (or settings.embedding_model) overrides the bundled one;
    settings.runtime / settings.device choose how it runs (rag/runtime/)."""

    def __init__(self, settings: Settings | None = None, model: str | None = None) -> None:
        self.settings = settings or get_settings()
        self._name = model if model is not None else self.settings.embedding_model  # "" = bundled
        self.runtime_name = runtime_name(self.settings.model_copy(update={"embedding_model": self._name}))
        self._runtime: EncoderRuntime | None = None
        self._st: SentenceTransformer | None = None
        self._path: str | None = None
        self._count: Any = None  # texts -> token counts
        self._tokenizer: Any = None
        self._quick: Any = None  # the export's quick tokenizer, once an index job primed it
        self._lock = threading.Lock()  # the API embeds from a threadpool: load the model once
        # The chunker's tokenizer has its own: the indexer loads it while the model session loads beside it.
        self._tokenizer_lock = threading.Lock()
        # One forward pass at a time: each runtime already spreads a pass over every core, and concurrent passes
        # only fight over them (at 16 concurrent API clients, 22 req/s instead of 37 one at a time).
        self._encode_lock = threading.Lock()

    # ---- identity, cheap: no model -------------------------------------------------------------
    def _local_dir(self) -> Path | None:
        """The model directory when it is on disk (the bundled build, or a local path override)."""
        if not self._name:
            return Path(self._resolve())
        p = Path(self._name).expanduser()
        return p if p.is_dir() else None

    def _resolve(self) -> str:
        """Path or name to load; builds the bundled model (and its ONNX export, for an ONNX runtime) on first
        use. A current export skips re-hashing the torch weights this runtime never reads."""
        if self._path is None:
            if self._name:
                self._path = self._name
            elif self.runtime_name == "torch":
                self._path = ensure_model(self.settings)
            else:
                from rag.onnx_export import ensure_onnx, export_is_current

                target = Path(self.settings.model_dir).expanduser().absolute()
                if not export_is_current(target):
                    ensure_model(self.settings)
                    ensure_onnx(target)
                self._path = str(target)
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
        """A config file of our own build (known layout: no Dense layer), read without loading the model."""
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
        """Model tokens per text, without special tokens or prompt: the tokenizer alone, no model."""
        stripped = [_strip(t)[0] for t in texts]
        quick = self._primed_quick()
        counts = quick.count(stripped) if quick is not None else None
        if counts is not None:
            return counts
        if self._count is None:
            self._count = self._load_counter()
        return self._count(stripped)

    def prime_tokenizer(self, texts: list[str]) -> None:
        """Show the tokenizer the texts an index job is about to chunk and embed. With an exported runtime whose
        full tokenizer is not loaded yet, the quick one learns their pieces (rag.runtime.tokenizer.QuickTokenizer)
        and then counts and tokenises them: for 400 ARCD paragraphs 0.3 s, where the full one's load holds the GIL
        for 0.9 s before the first batch can be cut."""
        loaded = self._tokenizer is not None or getattr(self._runtime, "full_tokenizer_loaded", False)  # a server's
        if not loaded and self._exported():
            from rag.runtime.tokenizer import quick_tokenizer

            quick = quick_tokenizer(self._local_dir())
            if quick is not None:
                quick.prime([self._prompt("passage", "document"), self._prompt("query"), *texts])
                self._quick = quick

    def _primed_quick(self) -> Any:
        return self._quick if self._quick is not None and self._tokenizer is None else None

    def _fast_tokenizer(self) -> Any:
        """The model's tokenizers.Tokenizer (its tokenizer.json, as the chunker has always counted with). An
        exported runtime's own copy gives the same ids (its offsets differ), so with one the two share a load."""
        exported = self._exported()
        with self._tokenizer_lock:
            if self._tokenizer is None:
                from rag.runtime.tokenizer import load_tokenizer

                path = self._local_dir() / "tokenizer.json"
                if exported:
                    from rag.onnx_export import verified_onnx

                    path = verified_onnx(self._local_dir(), "tokenizer.json")
                try:
                    self._tokenizer = load_tokenizer(path)
                except ModelUnavailable as e:
                    raise ModelUnavailable(f"{e}; {self._hint()}") from e
            tokenizer = self._tokenizer
        if self._runtime is not None and exported:
            self._tokenizer = self._runtime.share_tokenizer(tokenizer)  # type: ignore[attr-defined]
        return self._tokenizer

    def _exported(self) -> bool:
        """Whether the model runs from the bundled build's export (ONNX Runtime, OpenVINO), tokenizer included."""
        if self.runtime_name == "torch" or self._name:
            return False
        from rag.onnx_export import export_is_current

        return export_is_current(self._local_dir())

    def _load_counter(self) -> Any:
        d = self._local_dir()
        if d is not None and (d / "tokenizer.json").is_file():
            tok = self._fast_tokenizer()
            return lambda xs: [len(e.ids) for e in tok.encode_batch(xs, add_special_tokens=False)] if xs else []
        from rag.runtime.torch import _offline

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
    def runtime(self) -> EncoderRuntime:
        """The loaded runtime (first access loads it: about 1 s for ONNX, 4-10 s for torch)."""
        if self._runtime is None:
            path = self._resolve()
            # torch reads its own limit; an ONNX export is of our build, whose config says it without a model
            max_len = 512 if self.runtime_name == "torch" else self.max_seq_length
            with self._lock:
                if self._runtime is None:
                    try:
                        runtime = load_runtime(self.runtime_name, path, self.settings.device, max_len)
                    except ModelUnavailable as e:
                        raise ModelUnavailable(f"{e}; {self._hint()}") from e
                    if self._tokenizer is not None and self._exported():  # loaded meanwhile, for counting
                        runtime.share_tokenizer(self._tokenizer)  # type: ignore[attr-defined]
                    self._runtime = runtime
        return self._runtime

    def preload(self) -> None:
        """Start loading the runtime in the background (the CLI does, while it imports the chain and opens the
        index); the first encode waits for it. A failure is raised by that encode, as without preloading."""
        def load() -> None:
            try:
                self.runtime  # noqa: B018
            except Exception:  # noqa: BLE001 - raised again, with its message, where the model is used
                pass

        if self._runtime is None:
            threading.Thread(target=load, name="rag-model-preload", daemon=True).start()

    @property
    def device(self) -> str:
        return self.runtime.device

    @property
    def model(self) -> SentenceTransformer:
        """The sentence-transformers model (the torch runtime's, else loaded for this: 4-10 s, imports torch).
        For comparisons and benchmarks; encoding goes through `runtime`."""
        if self.runtime_name == "torch":
            return self.runtime.model  # type: ignore[attr-defined]
        with self._lock:
            if self._st is None:
                from rag.runtime.torch import load_sentence_transformer

                self._st = load_sentence_transformer(self._resolve(), "cpu")
        return self._st

    def _prompt(self, *names: str) -> str:
        cfg = self._built_config("config_sentence_transformers.json")
        prompts = cfg.get("prompts", {}) if cfg is not None else (self.model.prompts or {})
        return next((prompts[n] for n in names if prompts.get(n)), "")

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Question vectors (n, d), float32, unit length, with the model's "query" prompt if it has one."""
        return self.encode_queries_with_tokens(texts)[0]

    def encode_queries_with_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Question vectors as `encode_queries`, and from the same forward pass each question's contextual token
        vectors (content tokens only, unit length, float32): what late interaction (`rag.retrieval.max_sim`)
        matches against the stored passage tokens."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32), []
        prompt = self._prompt("query")
        outs = self._forward([_strip(t)[0] for t in texts], prompt, self.settings.batch_size)
        return _pooled(outs), [_normalise(_content_tokens(o, len(prompt))[0]) for o in outs]

    def _forward(self, inputs: list[str], prompt: str, bs: int) -> list[Forward]:
        """Each text's forward pass (prompt + text), in model batches, longest first (little padding), taking
        the model lock per batch: a long ingest then interleaves with the API's queries."""
        runtime = self.runtime
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
        results: list = [None] * len(inputs)
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            prepared = runtime.prepare([prompt + inputs[i] for i in idx])  # tokenising needs no lock
            with self._encode_lock:
                out = runtime.forward(prepared)
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
        return _pooled(self._forward([_strip(t)[0] for t in texts], self._prompt("passage", "document"), bs)), None

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
        order = self.length_order(texts)
        passages: list = [None] * len(texts)
        sentences: list = [None] * len(texts)
        tokens: list = [None] * len(texts)
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            prepared = self.prepare_passages([texts[i] for i in idx])
            p, s, t = self.late_vectors(prepared, self.forward_passages(prepared), [sentence_spans[i] for i in idx])
            for j, i in enumerate(idx):
                passages[i], sentences[i], tokens[i] = p[j], s[j], t[j]
        return np.stack(passages), sentences, tokens

    def length_order(self, texts: list[str]) -> list[int]:
        """Indices of `texts`, longest first in model tokens: batches cut from this order are all but free of
        padding. By characters (what sentence-transformers sorts by), batches of 16 of the 488 chunks of 400 ARCD
        paragraphs were 19% padding, Arabic and Latin script tokenising at different rates; by tokens, 2%."""
        counts = self.count_tokens(texts)
        return sorted(range(len(texts)), key=lambda i: -counts[i])

    # The three steps of `encode_late`, apart: the indexer runs the first in a producer thread while the model
    # runs the second, and the third after it.
    def prepare_passages(self, texts: list[str]) -> PreparedPassages:
        prompt = self._prompt("passage", "document")
        stripped = [_strip(t) for t in texts]
        return PreparedPassages([left for _, left in stripped], len(prompt),
                                self.runtime.prepare([prompt + s for s, _ in stripped]))

    def forward_passages(self, prepared: PreparedPassages) -> list[Forward]:
        runtime = self.runtime
        with self._encode_lock:
            return runtime.forward(prepared.batch)

    def late_vectors(self, prepared: PreparedPassages, outs: list[Forward], sentence_spans: Spans
                     ) -> tuple[np.ndarray, list[np.ndarray], list[TokenVectors]]:
        if not outs:
            return np.zeros((0, self.dimension), np.float32), [], []
        passages = _pooled(outs)
        plen = prepared.prompt_len
        sentences, tokens = [], []
        for out, passage, spans, left in zip(outs, passages, sentence_spans, prepared.lefts):
            vectors, raw = _content_tokens(out, plen)
            starts, ends = raw[:, 0] - plen + left, raw[:, 1] - plen + left
            sentences.append(_sentence_vectors(vectors, starts, ends, passage, spans))
            tokens.append(TokenVectors(_normalise(vectors).astype(np.float16),
                                       np.stack([starts, ends], axis=1).astype(np.int32)))
        return passages, sentences, tokens


@dataclass(frozen=True)
class TokenVectors:
    """One text's contextual token vectors (unit length) and each token's [start, end) characters in the text."""

    vectors: np.ndarray  # (t, d) float16
    spans: np.ndarray  # (t, 2) int32


def _pooled(outs: list[Forward]) -> np.ndarray:
    """e5's sentence vector: the mean of every token state (prompt and specials included), unit length."""
    return _normalise(np.stack([o.states.mean(axis=0) for o in outs]))


def _content_tokens(out: Forward, prompt_len: int) -> tuple[np.ndarray, np.ndarray]:
    """One text's token states without specials (empty offsets) and prompt tokens (ending inside the prompt);
    and their raw offsets, which index prompt + text."""
    raw = out.offsets
    content = (raw[:, 1] > raw[:, 0]) & (raw[:, 1] > prompt_len)
    return out.states[content], raw[content]


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
