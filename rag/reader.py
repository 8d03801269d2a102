"""The extractive reader: which words of a passage answer the question.

The project's e5 model read as a cross-encoder (question and passage in one sequence, so every passage token
attends to the question), with a start / end score per token, fitted on ARCD by benchmarks/train_reader.py as
low-rank deltas (rag/data/reader.npz) that rag/reader_export.py merges into the built weights and exports to
ONNX. Here: run that graph over passages and find the best span of each, with its exact character offsets in
the passage. No torch: ONNX Runtime and tokenizers only, like the question path.

The answerer (rag/answer.py) reads only the best sentence, for the short answer of a question asked in another
language than the article's: over whole passages (5 of about 230 tokens, 0.25-0.5 s a question on 2 cores) the
reader fitted here chose the sentence to quote worse than the sentence scores do (benchmarks/quality.py
docstring, ninth round).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np

MAX_LENGTH = 384  # question + passage tokens; passages are chunks of at most 256 tokens (rag/chunking.py)
MAX_ANSWER_TOKENS = 30


def best_span(start: np.ndarray, end: np.ndarray, allowed: np.ndarray,
              max_tokens: int = MAX_ANSWER_TOKENS) -> tuple[int, int, float] | None:
    """The (first, last) token of the highest start + end score with first <= last < first + max_tokens, both
    among `allowed` (the passage's tokens), and that score; None when no token is allowed."""
    idx = np.flatnonzero(allowed)
    if not len(idx):
        return None
    s, e = start[idx], end[idx]
    # scores[i, j] = s[i] + e[j] for passage tokens i <= j within max_tokens (positions, not indices: a
    # passage's tokens are contiguous, so the two agree)
    scores = s[:, None] + e[None, :]
    n = len(idx)
    offset = np.arange(n)[None, :] - np.arange(n)[:, None]
    scores = np.where((offset >= 0) & (offset < max_tokens), scores, -np.inf)
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return int(idx[i]), int(idx[j]), float(scores[i, j])


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without the spaces and punctuation at its edges (a token can carry the comma after a word)."""
    def edge(ch: str) -> bool:
        return unicodedata.category(ch)[0] in "PZ" or ch.isspace()

    while start < end and edge(text[start]):
        start += 1
    while end > start and edge(text[end - 1]):
        end -= 1
    return start, end


@dataclass(frozen=True)
class ReadSpan:
    start: int  # character offsets in the passage text given
    end: int
    score: float  # start + end logit of the span
    null: float  # start + end logit of "no answer" (the first token)


class Reader:
    """The exported reader graph (rag/reader_export.py) and its tokenizer, loaded once."""

    def __init__(self, graph: Path, tokenizer: Path, threads: int | None = None, quick_dir: Path | None = None,
                 max_length: int = MAX_LENGTH):
        """`max_length`: question + passage tokens, the passage cut to fit. `quick_dir`: the embedding export, whose QuickTokenizer (rag/runtime/tokenizer.py) is the same tokenizer as
        `tokenizer` (both are transformers' own) and ready in a fraction of the full one's second to load."""
        self.graph, self.tokenizer_path, self.threads = Path(graph), Path(tokenizer), threads
        self.quick_dir, self.max_length = quick_dir, max_length
        self._quick: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = Lock()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort

            from rag.runtime import cpu_threads

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads or cpu_threads()
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(self.graph), options, providers=["CPUExecutionProvider"])
            if self.quick_dir is not None:
                from rag.runtime.tokenizer import QuickTokenizer

                self._quick = QuickTokenizer(self.quick_dir)

    @property
    def quick(self) -> Any:
        self._load()
        return self._quick

    def _full_tokenizer(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(self.tokenizer_path))
                tok.no_padding()
                tok.enable_truncation(self.max_length, strategy="only_second")
                self._tokenizer = tok
        return self._tokenizer

    def _encode(self, question: str, passages: list[str], quick: bool = True):
        """Encodings (their ids in the full vocabulary), input_ids and attention_mask."""
        self._load()
        pairs = [(question, p) for p in passages]
        if quick and self._quick is not None and self._quick.handles([question, *passages]):
            tok, vocab = self._quick.for_texts([question, *passages])
            tok.enable_truncation(self.max_length, strategy="only_second")
            encodings = tok.encode_batch(pairs)
            token_ids = [[vocab[i] for i in e.ids] for e in encodings]
        else:
            encodings = self._full_tokenizer().encode_batch(pairs)
            token_ids = [e.ids for e in encodings]
        width = max(len(t) for t in token_ids)
        ids = np.ones((len(encodings), width), dtype=np.int64)  # 1 = the pad token
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, t in enumerate(token_ids):
            ids[row, :len(t)] = t
            mask[row, :len(t)] = 1
        return encodings, ids, mask

    def encode(self, question: str, passages: list[str], quick: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """input_ids and attention_mask of the (question, passage) pairs, padded to the longest."""
        return self._encode(question, passages, quick)[1:]

    def logits(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(batch, sequence, 2): start and end scores per token."""
        self._load()
        return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def read(self, question: str, passages: list[str]) -> list[ReadSpan | None]:
        """The best span of each passage (None when the passage was cut to nothing), in one batch."""
        if not passages:
            return []
        encodings, ids, mask = self._encode(question, passages)
        logits = self.logits(ids, mask)
        out: list[ReadSpan | None] = []
        for row, e in enumerate(encodings):
            allowed = np.array([s == 1 for s in e.sequence_ids], dtype=bool)
            found = best_span(logits[row, :len(e.ids), 0], logits[row, :len(e.ids), 1], allowed)
            if found is None:
                out.append(None)
                continue
            first, last, score = found
            start, end = _trimmed(passages[row], e.offsets[first][0], e.offsets[last][1])
            out.append(ReadSpan(start=start, end=end, score=score, null=float(logits[row, 0, 0] + logits[row, 0, 1])))
        return out


def load_reader(settings) -> Reader:
    """The reader of the bundled model build (its graph exported on first use; rag/reader_export.py)."""
    from rag.reader_export import READER, exported

    graph, tokenizer, quick = exported(READER, settings, "reader_int8.onnx" if settings.reader_runtime == "onnx-int8"
                                       else "reader.onnx")
    return Reader(graph, tokenizer, quick_dir=quick)
