"""Generative answers: a LangChain chat model writes the answer from numbered passages; every citation is checked.

    passages (the retriever's top k) -> prompts/answer.<lang>.txt -> chat model (streamed)
      -> CitationStream: markers parsed as they arrive, rewritten to [n], numbers naming no passage dropped
      -> SupportChecker: each cited sentence checked against its passages (supported true/false, evidence)
      -> Answer(mode="generative")

The extractive answerer stays in the loop as the safety net. Its calibrated confidence decides first whether
the corpus holds an answer at all (so the model is not asked to answer from passages that cannot answer, and
abstention behaves the same in both modes). And when the model fails (an error, a timeout, an empty reply)
or its answer is left with no supported citation, the extractive answer is returned instead, with a notice
saying why: an answer is never presented as cited when its citations do not hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from rag.answer import ExtractiveAnswerer
from rag.arabic import detect_language
from rag.config import Settings
from rag.errors import RagError
from rag.markers import CitationStream
from rag.prompts import format_passages, load_prompt
from rag.store import IndexStore
from rag.types import Answer, Citation, ClaimCheck, Hit
from rag.verify import SupportChecker

log = logging.getLogger(__name__)

NOTICES = {
    "failed": "The language model failed ({error}); this is the extractive answer.",
    "empty": "The language model returned nothing; this is the extractive answer.",
    "unsupported": "No citation in the language model's answer could be verified; this is the extractive answer.",
}


# A reply that starts a passage of its own is making things up; stop it there.
STOP = ["<passage", "</passage>"]


class ConfigError(RagError):
    pass


def chat_model_from_settings(settings: Settings) -> BaseChatModel | None:
    """ChatOpenAI for RAG_LLM_MODEL (at RAG_LLM_BASE_URL, else OpenAI's own); None without a model."""
    if not settings.llm_model:
        if settings.llm_base_url:
            raise ConfigError("RAG_LLM_BASE_URL is set but RAG_LLM_MODEL is not: name the model to ask for "
                              "(--llm-model)")
        return None
    from langchain_openai import ChatOpenAI

    key = settings.llm_api_key.get_secret_value() or "not-needed"  # local servers take any key
    # ChatOpenAI sends the limit as OpenAI's newer `max_completion_tokens`, which llama.cpp's server ignores
    # (it then writes until its context is full); other servers get the older name too.
    extra = {"max_tokens": settings.llm_max_tokens} if settings.llm_base_url else None
    return ChatOpenAI(model=settings.llm_model, base_url=settings.llm_base_url or None, api_key=key,
                      temperature=settings.llm_temperature, max_tokens=settings.llm_max_tokens,
                      timeout=settings.llm_timeout, max_retries=settings.llm_max_retries, extra_body=extra)


def piece_text(chunk) -> str:
    """The text of a streamed message chunk (content may be a string or a list of content blocks)."""
    content = chunk.content
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)


@dataclass
class Draft:
    """What the model wrote, canonicalised and checked, before deciding whether to answer with it."""

    text: str
    cited: dict[int, Hit] = field(default_factory=dict)  # answer citation number -> passage
    checks: list[ClaimCheck] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # marker numbers that named no passage
    error: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)


class GenerativeAnswerer:
    def __init__(self, model: BaseChatModel, store: IndexStore, fallback: ExtractiveAnswerer,
                 checker: SupportChecker, timeout: float | None = None):
        """`timeout`: seconds for the whole reply. (An HTTP client's timeout only bounds the wait between two
        bytes, which a model streaming slowly never exceeds.)"""
        self.model, self.store, self.fallback, self.checker = model, store, fallback, checker
        self.timeout = timeout

    def messages(self, question: str, hits: Sequence[Hit]) -> list[BaseMessage]:
        passages = [(self.store.document(h.chunk.doc_id).title, h.chunk.text) for h in hits]
        prompt = load_prompt("answer", detect_language(question))
        return prompt.format_messages(passages=format_passages(passages), question=question)

    def answer(self, question: str, query_vector: np.ndarray, hits: list[Hit]) -> Answer:
        *_, final = self.stream(question, query_vector, hits)
        return final

    def stream(self, question: str, query_vector: np.ndarray, hits: list[Hit]) -> Iterator[str | Answer]:
        """The answer's text pieces as the model writes them (markers already canonical), then the Answer."""
        extractive = self.fallback.answer(question, query_vector, hits)
        if extractive.abstained:
            yield extractive
            return
        for event in self.generate(question, hits):
            if isinstance(event, str):
                yield event
        draft: Draft = event
        if draft.error:
            yield self._fallback(extractive, "failed", error=draft.error)
        elif not draft.text:
            yield self._fallback(extractive, "empty")
        elif not any(c.supported for c in draft.checks):
            yield self._fallback(extractive, "unsupported")
        else:
            citations = []
            for n, hit in sorted(draft.cited.items()):
                doc = self.store.document(hit.chunk.doc_id)
                citations.append(Citation(n=n, id=hit.chunk.id, doc_id=doc.id, title=doc.title,
                                          quote=doc.text[hit.chunk.start:hit.chunk.end], start=hit.chunk.start,
                                          end=hit.chunk.end, score=round(hit.score, 4)))
            yield Answer(question=question, answer=draft.text, mode="generative", citations=citations,
                         claims=draft.checks, timings_ms=draft.timings_ms)

    def generate(self, question: str, hits: list[Hit]) -> Iterator[str | Draft]:
        """Ask the model (no gate, no fallback): its canonical pieces, then the checked Draft."""
        parser = CitationStream(len(hits))
        t0 = time.perf_counter()
        first_piece_ms = None
        try:
            for chunk in self.model.stream(self.messages(question, hits), stop=STOP):
                if self.timeout is not None and time.perf_counter() - t0 > self.timeout:
                    raise TimeoutError(f"no complete reply within {self.timeout:g} s")
                piece = parser.feed(piece_text(chunk))
                if piece:
                    if first_piece_ms is None:
                        first_piece_ms = (time.perf_counter() - t0) * 1000
                    yield piece
            tail = parser.close()
            if tail:
                yield tail
        except Exception as e:  # noqa: BLE001 - any failure of the model (timeout, HTTP, parsing) falls back
            # An empty stream is how LangChain reports a reply with no chunk: not a failure, an empty reply.
            if parser.text.strip() or "No generation chunks" not in str(e):
                log.warning("chat model failed: %s", e)
                yield Draft(text=parser.text.strip(), error=_short(e))
                return
        generate_ms = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        cited = {parser.number(p): hits[p - 1] for p in parser.order}
        checks = self.checker.check(parser.claims, cited, hits) if parser.text.strip() else []
        timings = {"first_piece": round(first_piece_ms or generate_ms, 2), "generate": round(generate_ms, 2),
                   "verify": round((time.perf_counter() - t1) * 1000, 2)}
        yield Draft(text=parser.text.strip(), cited=cited, checks=checks, dropped=parser.dropped,
                    timings_ms=timings)

    @staticmethod
    def _fallback(extractive: Answer, why: str, **fields) -> Answer:
        return extractive.model_copy(update={"notice": NOTICES[why].format(**fields)})


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = type(error).__name__
    return f"{name}: {text[:200]}" if text else name


def condense_with_model(model: BaseChatModel, message: str, history: Sequence[tuple[str, str]]) -> str | None:
    """A standalone question for a follow-up, written by the model from (question, answer) turns; None when
    the model fails or writes something unusable (the caller keeps the rule-based rewrite)."""
    lines = []
    for q, a in history[-3:]:
        lines.append(f"- {q}\n  {a[:300]}")
    prompt = load_prompt("condense", detect_language(message))
    try:
        reply = model.invoke(prompt.format_messages(history="\n".join(lines), message=message))
    except Exception as e:  # noqa: BLE001
        log.warning("condensing with the chat model failed: %s", e)
        return None
    lines = piece_text(reply).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if not text or len(text) > 3 * len(message) + 200:
        return None
    return text
