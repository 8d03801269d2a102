"""The sentence selector: which of the sentences retrieval scored best answers the question.

The project's e5 model read as a cross-encoder (the question and one sentence in one sequence), scored by a head
over its last hidden states: column 0 of the head at the first token plus the mean of column 1 over every token.
Fitted on ARCD by benchmarks/train_selector.py, listwise over each question's ten best-scored sentences (the ones
holding the gold answer against the ones retrieval put beside them), as low-rank deltas (rag/data/selector.npz)
that rag/reader_export.py merges into the built weights and exports to ONNX (fp32: int8 moved its scores too far),
as it does the extractive reader's.

The answerer (rag/answer.py, ExtractiveAnswerer.select) reads the CANDIDATES best-scored sentences and quotes first
the one with the highest sentence score + AnswerConfig.selector_weight x its score, when that sum leads the first
one's by AnswerConfig.selector_lead, and the runner-up of its article beside it (`reorder`); the sentence scores
still decide which other sentences join them. By itself the
selector chose worse than the sentence scores (held out, the best sentence holds the gold answer: MLQA 0.534 by
the scores, 0.495 by a first fit of the selector alone, 0.565 by both as shipped), and re-sorting every candidate by the sum lost sentences that
answer (benchmarks/quality.py docstring, sixteenth round).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.reader import Reader

# The sentences it reads a question. The 5 best-scored hold a gold answer for 0.774 of MLQA's questions, the 10 best
# for 0.812, but re-scoring 5 or 10 put one holding it first as often (0.569 / 0.571; English 0.546 / 0.553), at
# half the cost.
CANDIDATES = 5
MAX_LENGTH = 128  # question + sentence tokens (a sentence runs about 30 tokens, 70 at the 90th percentile)


class SentenceSelector:
    """The exported selector graph (rag/reader_export.py, SELECTOR) and its tokenizer, loaded once."""

    def __init__(self, graph: Path, tokenizer: Path, threads: int | None = None, quick_dir: Path | None = None):
        self._reader = Reader(graph, tokenizer, threads=threads, quick_dir=quick_dir, max_length=MAX_LENGTH)

    def scores(self, question: str, sentences: list[str]) -> np.ndarray:
        """One score per sentence, in one batch: the higher, the likelier it answers the question."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        ids, mask = self._reader.encode(question, sentences)
        logits = self._reader.logits(ids, mask)
        m = mask.astype(np.float32)
        return logits[:, 0, 0] + (logits[..., 1] * m).sum(axis=1) / m.sum(axis=1)


def reorder(scored: list, selector_scores: np.ndarray, config) -> list:
    """The answerer's scored sentences (rag.answer.ScoredSentence, best first) with the selector's pick first: of the
    CANDIDATES best-scored, whose `selector_scores` are given, the one with the highest score + selector_weight x its
    selector score, when that leads the first one's by selector_lead (a near tie stays with the sentence scores). It
    takes the first one's score, so that which sentences join it is the sentence scores' rule (re-sorting every
    candidate by the sum dropped sentences that answer: "كما رحب ... ترامب بمضمون المحادثات" for Trump's position on
    the Oman talks). The runner-up by that sum comes second, its score lifted to the second-sentence margin so that it
    joins, when it is from the pick's article and within selector_join_margin of its sum. `config`: the answerer's
    AnswerConfig."""
    top = scored[:CANDIDATES]
    total = [s.score + config.selector_weight * float(z) for s, z in zip(top, selector_scores)]
    pick = max(range(len(top)), key=total.__getitem__)
    if total[pick] < total[0] + config.selector_lead:
        pick = 0
    first = replace(top[pick], score=scored[0].score)
    runner = max((i for i in range(len(top)) if i != pick), key=total.__getitem__)
    margin = config.selector_join_margin
    if (margin is None or total[runner] < total[pick] - margin
            or top[runner].hit.chunk.doc_id != top[pick].hit.chunk.doc_id):
        return [first, *(s for i, s in enumerate(scored) if i != pick)]
    lifted = max(top[runner].score, scored[0].score - config.second_sentence_margin)
    return [first, replace(top[runner], score=lifted), *(s for i, s in enumerate(scored) if i not in (pick, runner))]


def load_selector(settings) -> SentenceSelector:
    """The selector of the bundled model build (its graph exported on first use; rag/reader_export.py), fp32
    whatever reader_runtime says (rag.reader_export.CrossEncoder.quantized)."""
    from rag.reader_export import SELECTOR, exported

    graph, tokenizer, quick = exported(SELECTOR, settings, "selector.onnx")
    return SentenceSelector(graph, tokenizer, quick_dir=quick)
