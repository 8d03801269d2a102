"""The front half of the exported runtimes (ONNX Runtime, OpenVINO): e5's tokenizer run by `tokenizers`, the
batch padded as the graph takes it, and the engine's session loaded in the background beside the tokenizer.

Imports tokenizers and numpy only (never torch): each runtime module adds its engine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelUnavailable
from rag.onnx_export import has_file, verified_onnx
from rag.runtime import Forward


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
    """The model's tokenizer for texts it has been shown, ready long before the full one (whose load is 0.9 s of
    CPU holding the GIL here: building the 250,002-piece Unigram trie). It builds a Unigram over only the pieces
    that occur in the texts' pre-tokens, with their own scores, plus the lowest-scoring piece (which sets the
    unknown-token penalty): the Viterbi lattice, hence the tokens and offsets, are those of the full vocabulary.
    The ids are mapped back to the full vocabulary's.

    One instance per export serves the chunker's counts and the runtime's batches (`quick_tokenizer`). `prime`
    shows it what an index job is about to chunk and embed (the 400 ARCD paragraphs: 8,233 pieces, 0.3 s); from
    then on the pieces found stay, so it is rebuilt only when a text brings a new one, and a text that would need
    more than MAX_REBUILDS rebuilds is declined (None): the caller loads the full tokenizer."""

    MAX_PIECE = 16  # characters in the longest piece
    MAX_REBUILDS = 16  # after `prime`

    def __init__(self, onnx_dir: Path):
        self.pieces = verified_onnx(onnx_dir.parent, "vocab.txt").read_text(encoding="utf-8").split("\n")
        self.index = {p: i for i, p in enumerate(self.pieces)}
        self.scores = np.load(verified_onnx(onnx_dir.parent, "vocab_scores.npy"), allow_pickle=False)
        self.spec = json.loads(verified_onnx(onnx_dir.parent, "tokenizer_skeleton.json").read_text(encoding="utf-8"))
        # <mask> (id 250001) is an added token past the pieces: a text holding it goes to the full tokenizer.
        self.spec["added_tokens"] = [t for t in self.spec["added_tokens"] if t["id"] < 4]
        self.always = [0, 1, 2, 3, int(np.argmin(self.scores))]  # <s> <pad> </s> <unk>, the lowest score
        splitter = self._build(self.always)
        self.normalizer, self.pre_tokenizer = splitter.normalizer, splitter.pre_tokenizer
        self.words: set[str] = set()  # pre-tokens already scanned for pieces
        self.found = set(self.always)
        self.built: tuple[Any, list[int]] | None = None
        self.primed, self.rebuilds = False, 0
        self.lock = threading.Lock()

    def _build(self, ids: list[int]) -> Any:
        from tokenizers import Tokenizer

        model = {**self.spec["model"], "unk_id": 3,
                 "vocab": [[self.pieces[i], float(self.scores[i])] for i in ids]}
        return Tokenizer.from_str(json.dumps({**self.spec, "model": model}))

    @staticmethod
    def handles(texts: Sequence[str]) -> bool:
        return not any("<mask>" in t for t in texts)

    def prime(self, texts: Sequence[str]) -> None:
        with self.lock:
            words, ids = self._scan(texts, self.words, self.found)
            self.words |= words
            self.found |= ids
            self.primed, self.rebuilds, self.built = True, 0, None  # built again with what it just found

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True
                     ) -> list[tuple[list[int], list[tuple[int, int]]]] | None:
        built = self.for_texts(texts)
        if built is None:
            return None
        tok, ids = built
        return [([ids[i] for i in e.ids], e.offsets)
                for e in tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)]

    def count(self, texts: Sequence[str]) -> list[int] | None:
        """Tokens per text without the special ones (what the chunker counts), or None (declined)."""
        built = self.for_texts(texts)
        return None if built is None else [len(e.ids) for e in built[0].encode_batch(list(texts), add_special_tokens=False)]

    def for_texts(self, texts: Sequence[str]) -> tuple[Any, list[int]] | None:
        """A tokenizer covering the pieces `texts` can use (untruncated, unpadded) and its ids' full-vocabulary ids,
        or None when a primed tokenizer would need too many more rebuilds, or a text holds <mask>. Unprimed (a
        question, the reader's pairs), it is built over the texts' own pieces and kept by no one."""
        if not self.handles(texts):
            return None
        if not self.primed:
            return self._built(sorted(set(self.always) | self._scan(texts, set(), set())[1]))
        with self.lock:
            words, ids = self._scan(texts, self.words, self.found)
            self.words |= words
            if ids or self.built is None:
                if self.rebuilds >= self.MAX_REBUILDS:
                    self.words -= words  # scanned again when a later text needs them
                    return None
                self.found |= ids
                self.built = self._built(sorted(self.found))
                self.rebuilds += 1
            return self.built

    def _built(self, ids: list[int]) -> tuple[Any, list[int]]:
        tok = self._build(ids)  # ids sorted: the four specials keep 0-3, as the post-processor names them
        tok.no_truncation()
        tok.no_padding()
        return tok, ids

    def _scan(self, texts: Sequence[str], seen: set[str], found: set[int]) -> tuple[set[str], set[int]]:
        """The texts' pre-tokens not in `seen`, and the pieces inside them not in `found`."""
        index = self.index
        words: set[str] = set()
        ids: set[int] = set()
        for t in texts:
            for word, _ in self.pre_tokenizer.pre_tokenize_str(self.normalizer.normalize_str(t)):
                if word in seen or word in words:
                    continue
                words.add(word)
                for i in range(len(word)):
                    for j in range(i + 1, min(len(word), i + self.MAX_PIECE) + 1):
                        k = index.get(word[i:j])
                        if k is not None and k not in found:
                            ids.add(k)
        return words, ids


_QUICK: dict[tuple[str, int], QuickTokenizer] = {}
_QUICK_LOCK = threading.Lock()


def quick_tokenizer(model_dir: Path) -> QuickTokenizer | None:
    """The export's QuickTokenizer, one per process (keyed by the export's vocabulary file), or None for an export
    made before the quick tokenizer (no vocab.txt)."""
    if not has_file(model_dir, "vocab.txt"):
        return None
    vocab = Path(model_dir) / "onnx" / "vocab.txt"
    key = (str(vocab.resolve()), vocab.stat().st_mtime_ns)
    with _QUICK_LOCK:
        if key not in _QUICK:
            _QUICK[key] = QuickTokenizer(Path(model_dir) / "onnx")
        return _QUICK[key]


@dataclass
class Batch:
    input_ids: np.ndarray  # (n, L) int64, padded with the pad id
    attention_mask: np.ndarray  # (n, L) int64
    offsets: list[np.ndarray]  # per text (t_i, 2)


class TokenizedRuntime:
    """What the exported runtimes share: tokenising and padding (`prepare`), and loading the engine's session in
    a background thread (`_load`) while the tokenizer loads: the engine releases the GIL, the tokenizer holds it.
    A subclass sets name and device, calls `_load(create, what)` then `_start_tokenizer`, and runs `forward`."""

    name: str
    device: str

    def _load(self, create: Callable[[], Any], what: Path) -> None:
        self._session: Any = None
        self._error: Exception | None = None
        self._what = what

        def run() -> None:
            try:
                self._session = create()
            except Exception as e:  # noqa: BLE001 - raised where the session is used
                self._error = e

        self._loading = threading.Thread(target=run, name=f"rag-{self.name}-session", daemon=True)
        self._loading.start()

    def _start_tokenizer(self, model_dir: Path, max_seq_length: int, tokenizer: Any = None) -> None:
        self.model_dir = Path(model_dir)
        self.max_len = max_seq_length
        # A process that asks a question or two (`rag ask`) tokenises with the quick tokenizer; the full one
        # loads at the first larger batch, or the fifth small one (a server).
        self._tokenizer = tokenizer
        self._tokenizer_lock = threading.Lock()
        self._quick = quick_tokenizer(self.model_dir) if tokenizer is None else None
        self._quick_batches = 0
        self.pad_id, self.eos_id = 1, 2
        if self._quick is None and (self.tokenizer.token_to_id("<pad>"), self.tokenizer.token_to_id("</s>")) != (1, 2):
            raise ModelUnavailable(f"{self.model_dir / 'onnx' / 'tokenizer.json'} is not e5's (<pad> 1, </s> 2)")
        self.session  # noqa: B018 - a graph that does not load fails here, not at the first question

    @property
    def session(self) -> Any:
        self._loading.join()
        if self._error is not None:
            raise ModelUnavailable(f"cannot load {self._what}: {self._error}") from self._error
        return self._session

    @property
    def tokenizer(self) -> Any:
        """The full tokenizer (loaded on first use)."""
        with self._tokenizer_lock:  # the API tokenises from many threads: load it once
            if self._tokenizer is None:
                self._tokenizer = load_tokenizer(verified_onnx(self.model_dir, "tokenizer.json"))
        return self._tokenizer

    @property
    def full_tokenizer_loaded(self) -> bool:
        return self._tokenizer is not None

    def share_tokenizer(self, tokenizer: Any) -> Any:
        """Take a full tokenizer the caller loaded from this export's tokenizer.json (the Embedder's, which counts
        tokens for chunking) unless one is loaded: one load (0.8 s holding the GIL) and one teardown, not two.
        Returns the one in use."""
        with self._tokenizer_lock:
            if self._tokenizer is None:
                self._tokenizer = tokenizer
            return self._tokenizer

    def _encode(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        # Texts an index job primed it with, or a few short ones (a question): the quick tokenizer.
        quick = self._quick
        if self._tokenizer is None and quick is not None and (quick.primed or (len(texts) <= 8 and self._quick_batches < 4)):
            encoded = quick.encode_batch(texts)
            if encoded is not None:
                self._quick_batches += 1
                return encoded
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

    @staticmethod
    def forwards(states: np.ndarray, prepared: Batch) -> list[Forward]:
        """The engine's (n, L, d) last hidden states as each text's Forward, padding dropped."""
        return [Forward(np.asarray(states[i, :len(off)], np.float32), off) for i, off in enumerate(prepared.offsets)]
