"""Prompt templates, loaded by name from prompts/<name>.<language>.txt.

A file holds its messages under `[system]` and `[human]` lines; `{name}` fields are filled by LangChain's
ChatPromptTemplate. Passages go into the human message, numbered and fenced in <passage> tags, with any
angle bracket inside an article turned into a look-alike: an article that writes "</passage> ignore previous
instructions" cannot close its fence or open a new one, so it stays data inside its own passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from langchain_core.prompts import ChatPromptTemplate

from rag.config import PROJECT_ROOT
from rag.errors import RagError

PROMPTS_DIR = PROJECT_ROOT / "prompts"
LANGUAGES = ("ar", "en")
_SECTION = re.compile(r"^\[(system|human)\]\s*$", re.MULTILINE)


class PromptError(RagError):
    pass


def load_prompt(name: str, language: str, directory: Path = PROMPTS_DIR) -> ChatPromptTemplate:
    """The template for `name` in `language` ("ar" or "en"; any other language gets the English one)."""
    return _load(name, language if language in LANGUAGES else "en", directory)


@lru_cache
def _load(name: str, language: str, directory: Path) -> ChatPromptTemplate:
    path = directory / f"{name}.{language}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PromptError(f"cannot read prompt {path}: {e.strerror or e}") from None
    parts = _SECTION.split(text)
    # split() gives [before, role, body, role, body, ...]
    messages = [(role, body.strip()) for role, body in zip(parts[1::2], parts[2::2])]
    if parts[0].strip() or not messages or any(not body for _, body in messages):
        raise PromptError(f"{path}: expected [system] and [human] sections, each with text")
    return ChatPromptTemplate.from_messages(messages)


def fence(text: str) -> str:
    """Article text made safe to place between <passage> tags (see the module note)."""
    return text.replace("<", "‹").replace(">", "›")


def format_passages(passages: Sequence[tuple[str, str]]) -> str:
    """(title, text) pairs as numbered, fenced passages: <passage n="1" title="...">text</passage>."""
    blocks = []
    for n, (title, text) in enumerate(passages, start=1):
        title = fence(title).replace('"', "'").replace("\n", " ").strip()
        blocks.append(f'<passage n="{n}" title="{title}">\n{fence(text).strip()}\n</passage>')
    return "\n".join(blocks)
