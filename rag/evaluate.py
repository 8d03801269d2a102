"""`rag eval`: retrieval and answer quality on QA sets in the format of ../shared/eval.

questions.jsonl: {"id", "question", "answers": [...], "context_id", "answerable"}; corpus.jsonl: {"id", "title",
"text"}. The corpus is indexed into its own cached index (never the user's), keyed by its content and the
settings that shape an index, so a second run reuses it.
"""

from __future__ import annotations

import hashlib
import shutil
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rag.arabic import answer_contains, normalize_answer
from rag.chain import Assistant, build_index
from rag.config import Settings
from rag.embeddings import Embedder
from rag.errors import InvalidInput
from rag.retrieval import HybridRetriever, single_retriever_search

KS = (1, 5, 10)
MAX_ANSWER_CHARS = 400  # an answer counts as containing the gold answer only when its text is at most this long


def answer_tokens(text: str) -> list[str]:
    """SQuAD-style answer tokens, Arabic-aware: rag.arabic.normalize_answer (diacritics, tatweel, letter forms,
    punctuation, the article ال), then a leading conjunction و on a word of 3+ letters ("وفي عام" = "في عام";
    both sides alike, so a root و is dropped from both)."""
    return [w[1:] if w.startswith("و") and len(w) >= 3 else w for w in normalize_answer(text).split()]


def exact_match(prediction: str, golds: Iterable[str]) -> float:
    """1.0 when the prediction equals a gold answer once both are normalised (max over the golds)."""
    p = answer_tokens(prediction)
    return float(any(p == answer_tokens(g) for g in golds)) if p else 0.0


def token_f1(prediction: str, golds: Iterable[str]) -> float:
    """SQuAD token F1 of the prediction against the best-matching gold answer (0 for an empty prediction)."""
    from collections import Counter

    p = answer_tokens(prediction)
    best = 0.0
    for g in golds:
        t = answer_tokens(g)
        common = sum((Counter(p) & Counter(t)).values())
        if common:
            precision, recall = common / len(p), common / len(t)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    context_id: str | None
    answerable: bool = True


def load_questions(path: Path, answerable: bool | None = None) -> list[EvalQuestion]:
    out = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"cannot read {path}: {e}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            q = EvalQuestion(id=str(row["id"]), question=str(row["question"]), answers=tuple(row.get("answers") or ()),
                             context_id=row.get("context_id"),
                             answerable=row.get("answerable", True) if answerable is None else answerable)
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidInput(f"{path}:{n}: not a question line ({e})") from None
        out.append(q)
    if not out:
        raise InvalidInput(f"{path}: no questions")
    return out


def eval_index_dir(corpus: list[Path], settings: Settings, model_id: str, runtime: str = "torch") -> Path:
    """The cached index of `corpus`; one per runtime (torch keeps the key it had before there were others)."""
    # Each part by its name and contents (a folder by its files' relative names and contents), in the order of
    # those digests: not by where the checkout is, nor by how the paths were written (relative or absolute), so
    # every worktree and fresh clone shares the cached index of the same corpus.
    parts = []
    for p in corpus:
        part = hashlib.sha256(p.name.encode())
        if p.is_file():
            part.update(hashlib.sha256(p.read_bytes()).digest())
        else:
            for f in sorted(f for f in p.rglob("*") if f.is_file()):
                part.update(str(f.relative_to(p)).encode())
                part.update(hashlib.sha256(f.read_bytes()).digest())
        parts.append(part.digest())
    h = hashlib.sha256(b"".join(sorted(parts)))
    h.update(repr((model_id, settings.chunk_tokens, settings.chunk_overlap_tokens, settings.embed_title)).encode())
    if runtime != "torch":
        from rag.onnx_export import VECTORS_SINCE

        h.update(runtime.encode())
        h.update(f"onnx-export-{VECTORS_SINCE[runtime]}".encode())  # another export recipe computes other vectors
        if runtime == "openvino-int8":  # so does another activation grouping
            from rag.runtime.openvino import QUANT_GROUP

            h.update(f"group-{QUANT_GROUP}".encode())
    if settings.token_codec != "int8":  # indexes from before the codecs keep their keys
        h.update(f"tokens:{settings.token_codec}".encode())
    before_segments = settings.cache_dir / "eval" / h.hexdigest()[:16]
    # Segmented indexes (rag/store/local) get their own key, so a checkout of an older version sharing the cache
    # keeps its own; the first run copies the older one, which `rag index` then migrates without re-embedding.
    h.update(b"segments")
    path = settings.cache_dir / "eval" / h.hexdigest()[:16]
    if not path.exists() and (before_segments / "CURRENT").is_file():
        shutil.copytree(before_segments, path, ignore=shutil.ignore_patterns(".lock"))
    return path


def prepare(corpus: list[Path], settings: Settings, embedder: Embedder, progress=None) -> Assistant:
    s = settings.model_copy(update={"index_dir": eval_index_dir(corpus, settings, embedder.model_id,
                                                                embedder.runtime_name)})
    report = build_index(corpus, s, embedder, progress=progress)
    if report.skipped:
        raise InvalidInput("the corpus has unreadable parts: " + "; ".join(map(str, report.skipped[:3])))
    return Assistant(s, embedder=embedder)


@dataclass
class SetResult:
    name: str
    questions: int = 0
    retrieval: dict[str, dict[str, float]] = field(default_factory=dict)  # retriever -> metric -> value
    answer: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"set": self.name, "questions": self.questions, "retrieval": self.retrieval, "answer": self.answer}


def _rank_of(doc_ids: list[str], gold: str | None) -> int | None:
    for i, d in enumerate(doc_ids, start=1):
        if d == gold:
            return i
    return None


def evaluate_set(assistant: Assistant, name: str, questions: list[EvalQuestion], k: int | None = None,
                 retrievers: Iterable[str] = ("dense", "bm25", "hybrid-rrf", "hybrid"),
                 on_question: Callable[[], None] | None = None) -> SetResult:
    k = k or assistant.settings.top_k
    by_name = {r.name: r for r in assistant.hybrid.retrievers}
    rrf = HybridRetriever(assistant.store, assistant.encode_query, candidates=assistant.hybrid.candidates,
                          fusion="rrf", rrf_k=assistant.settings.rrf_k, rerank_depth=0, one_per_document=False)
    result = SetResult(name, questions=len(questions))
    ranks: dict[str, list[int | None]] = {r: [] for r in retrievers}
    answerable = [q for q in questions if q.answerable]
    contained = contained_short = abstained_answerable = abstained_negative = 0
    lengths_chars, lengths_sents, em, f1, with_short = [], [], [], [], 0
    for q in questions:
        if q.answerable:
            for r in retrievers:
                hits = (assistant.hybrid.search(q.question, max(KS)) if r == "hybrid"
                        else rrf.search(q.question, max(KS)) if r == "hybrid-rrf"
                        else single_retriever_search(by_name[r], q.question, max(KS)))
                ranks[r].append(_rank_of([h.chunk.doc_id for h in hits], q.context_id))
        ans = assistant.ask(q.question, k=k)
        if q.answerable:
            abstained_answerable += ans.abstained
            short = "" if ans.abstained or ans.short_answer is None else ans.short_answer.text
            em.append(exact_match(short, q.answers))
            f1.append(token_f1(short, q.answers))
            if not ans.abstained:
                text = " ".join(c.quote for c in ans.citations)
                hit = any(answer_contains(text, a) for a in q.answers)
                contained += hit
                contained_short += hit and len(ans.answer) <= MAX_ANSWER_CHARS
                with_short += bool(short)
                lengths_chars.append(len(ans.answer))
                lengths_sents.append(len(ans.citations))
        else:
            abstained_negative += ans.abstained
        if on_question:
            on_question()
    for r, rs in ranks.items() if answerable else ():
        n = len(rs)
        m = {f"recall@{kk}": sum(1 for x in rs if x is not None and x <= kk) / n for kk in KS}
        m["mrr@10"] = sum(1 / x for x in rs if x is not None and x <= 10) / n
        result.retrieval[r] = {key: round(v, 4) for key, v in m.items()}
    negatives = len(questions) - len(answerable)
    if answerable:
        result.answer.update({
            f"containment@{MAX_ANSWER_CHARS}": round(contained_short / len(answerable), 4),
            "containment": round(contained / len(answerable), 4),
            "short_em": round(sum(em) / len(answerable), 4),
            "short_f1": round(sum(f1) / len(answerable), 4),
            "with_short_answer": round(with_short / len(answerable), 4),
            "answered": round(1 - abstained_answerable / len(answerable), 4),
            "containment_when_answered": round(contained / max(1, len(answerable) - abstained_answerable), 4),
            "mean_answer_chars": round(sum(lengths_chars) / max(1, len(lengths_chars)), 1),
            f"over_{MAX_ANSWER_CHARS}_chars": round(sum(n > MAX_ANSWER_CHARS for n in lengths_chars)
                                                    / max(1, len(lengths_chars)), 4),
            "mean_answer_sentences": round(sum(lengths_sents) / max(1, len(lengths_sents)), 2),
        })
    if negatives:
        result.answer["abstained_on_unanswerable"] = round(abstained_negative / negatives, 4)
    return result
