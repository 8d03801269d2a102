"""The translator for a deployment with a capable chat model: the OpenAI-compatible one of the generative answers
(RAG_LLM_MODEL at RAG_LLM_BASE_URL; rag.generate.chat_model_from_settings), shown an instruction
(prompts/translate.chat.txt) and the same question pairs as the local model, as turns of the conversation (the
English question the user's, its Arabic wording the model's), the form chat models follow best.

A server answers questions side by side, so translations are not serialised; a failure (the server down, a
timeout) leaves questions untranslated for `retry_after` seconds, so a dead server costs one timeout a minute,
not one per question.
"""

from __future__ import annotations

from rag.config import PROJECT_ROOT, Settings
from rag.translate import PROMPT, CachedTranslator

INSTRUCTION = PROJECT_ROOT / "prompts" / "translate.chat.txt"


class ChatTranslator(CachedTranslator):
    serial = False
    retry_after = 60.0

    def __init__(self, settings: Settings, cache_size: int = 1024):
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        from rag.generate import chat_model_from_settings

        super().__init__(cache_size)
        # A wording is one line: a short reply, and a question waits on it for at most translator_timeout.
        self.model = chat_model_from_settings(settings.model_copy(update={
            "llm_max_tokens": 64, "llm_timeout": settings.translator_timeout, "llm_max_retries": 0,
            "llm_temperature": 0.0}))
        self.shots = [SystemMessage(INSTRUCTION.read_text(encoding="utf-8").strip())]
        for english, arabic in pairs(PROMPT.read_text(encoding="utf-8")):
            self.shots += [HumanMessage(english), AIMessage(arabic)]

    def generate(self, question: str) -> str:
        from langchain_core.messages import HumanMessage

        from rag.generate import piece_text

        return piece_text(self.model.invoke([*self.shots, HumanMessage(question)]))


def pairs(prompt: str) -> list[tuple[str, str]]:
    """The (English, Arabic) pairs of the local model's prompt ("English: ..." then "Arabic: ..." lines)."""
    lines = [x.strip() for x in prompt.splitlines() if x.strip()]
    return [(e.removeprefix("English:").strip(), a.removeprefix("Arabic:").strip())
            for e, a in zip(lines, lines[1:]) if e.startswith("English:") and a.startswith("Arabic:")]
