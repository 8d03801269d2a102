"""Sentence-aware chunking with exact character offsets into the original text.

Chunks are packed from whole sentences up to `max_tokens` model tokens, with the trailing sentences of one
chunk (up to `overlap_tokens`) repeated at the start of the next. A chunk never crosses a stretch that cleaning
dropped (an ad line, a newsletter prompt), so its span quotes only article text. A sentence longer than the
budget is cut at word boundaries. With `skip_title`, a section that is only the article's title (a headline
line set apart by a dropped date line) makes no chunk of its own: every chunk carries the title already.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from rag.sentences import split_sentences
from rag.types import Chunk, Document, Span

TokenCounter = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class ChunkingConfig:
    max_tokens: int = 256
    overlap_tokens: int = 48

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError("max_tokens must be at least 16")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ValueError("overlap_tokens must be >= 0 and smaller than max_tokens")


def _sections(text: str, kept: Sequence[Span]) -> list[Span]:
    """Merge kept spans separated only by whitespace; a dropped line between them starts a new section."""
    sections: list[Span] = []
    for span in sorted(kept, key=lambda s: s.start):
        if sections and not text[sections[-1].end:span.start].strip():
            sections[-1] = Span(sections[-1].start, max(sections[-1].end, span.end))
        else:
            sections.append(span)
    return sections


_WORD = re.compile(r"\S+")


def _cut_long(text: str, span: Span, tokens: int, max_tokens: int) -> list[Span]:
    """Split an over-long sentence into word-aligned pieces of roughly max_tokens each."""
    words = [Span(span.start + m.start(), span.start + m.end()) for m in _WORD.finditer(text[span.start:span.end])]
    pieces = max(2, -(-tokens // max_tokens) + 1)  # ceil, plus one for tokenisation slack
    per_piece = max(1, -(-len(words) // pieces))
    return [Span(words[i].start, words[min(i + per_piece, len(words)) - 1].end) for i in range(0, len(words), per_piece)]


def chunk_document(doc: Document, kept: Sequence[Span], count_tokens: TokenCounter,
                   config: ChunkingConfig = ChunkingConfig(), skip_title: bool = False) -> list[Chunk]:
    """`skip_title`: the indexer prepends the title to each chunk (for embedding and BM25), so a headline-only
    chunk would add nothing but a passage that matches every question about the story while answering none."""
    text = doc.text
    chunks: list[Chunk] = []
    sections = _sections(text, kept)
    title = doc.title.strip()
    if skip_title and title and len(sections) > 1:
        sections = [s for s in sections if text[s.start:s.end].strip() != title]
    for section in sections:
        sentences = split_sentences(text, section.start, section.end)
        if not sentences:
            continue
        counts = count_tokens([text[s.start:s.end] for s in sentences])
        units: list[tuple[Span, int]] = []
        for span, n in zip(sentences, counts):
            if n > config.max_tokens:
                parts = _cut_long(text, span, n, config.max_tokens)
                units.extend(zip(parts, count_tokens([text[p.start:p.end] for p in parts])))
            else:
                units.append((span, n))
        chunks.extend(_pack(doc, units, config, ordinal=len(chunks)))
    return chunks


def _pack(doc: Document, units: list[tuple[Span, int]], config: ChunkingConfig, ordinal: int) -> list[Chunk]:
    out: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (j == i or total + units[j][1] <= config.max_tokens):
            total += units[j][1]
            j += 1
        spans = tuple(u[0] for u in units[i:j])
        start, end = spans[0].start, spans[-1].end
        out.append(Chunk(doc_id=doc.id, start=start, end=end, text=doc.text[start:end],
                         ordinal=ordinal + len(out), sentences=spans))
        if j >= len(units):
            break
        # Step back over trailing sentences that fit the overlap budget, but always advance.
        back, k = 0, j
        while k - 1 > i and back + units[k - 1][1] <= config.overlap_tokens:
            k -= 1
            back += units[k][1]
        i = k
    return out


def embedding_text(doc: Document, chunk: Chunk, embed_title: bool) -> tuple[str, int]:
    """The text embedded for a chunk (and tokenised for BM25) and the offset of the chunk inside it: the title
    may be prepended."""
    if embed_title and doc.title and not chunk.text.startswith(doc.title.strip()):
        prefix = doc.title.strip() + "\n"
        return prefix + chunk.text, len(prefix)
    return chunk.text, 0
