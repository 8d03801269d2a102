"""Citation ids `<doc_id>:<start>-<end>` and their lookup: the exact span, its article, the text around it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.errors import DocumentNotFound, InvalidCitationId, InvalidSpan
from rag.store import IndexStore
from rag.types import Document, Span

# doc ids are letters (any script), digits, _ - . ; offsets are plain integers
_CITATION = re.compile(r"^(?P<doc>[\w.\-]+):(?P<start>\d{1,9})-(?P<end>\d{1,9})$")


def format_citation_id(doc_id: str, span: Span) -> str:
    return f"{doc_id}:{span.start}-{span.end}"


def parse_citation_id(citation_id: str) -> tuple[str, Span]:
    m = _CITATION.match(citation_id.strip())
    if not m or ".." in m["doc"]:
        raise InvalidCitationId(f"malformed citation id {citation_id!r}: expected <doc_id>:<start>-<end>, "
                                "e.g. 002_f7322d59d6e02373:812-1034")
    start, end = int(m["start"]), int(m["end"])
    if start >= end:
        raise InvalidCitationId(f"malformed citation id {citation_id!r}: start must be smaller than end")
    return m["doc"], Span(start, end)


@dataclass(frozen=True)
class CitationView:
    id: str
    document: Document
    span: Span
    quote: str
    before: str
    after: str

    def to_dict(self) -> dict:
        d = self.document
        return {"id": self.id, "doc_id": d.id, "title": d.title, "date": d.date, "source": d.source, "url": d.url,
                "start": self.span.start, "end": self.span.end, "quote": self.quote,
                "context_before": self.before, "context_after": self.after}


def lookup_citation(store: IndexStore, citation_id: str, context_chars: int = 300) -> CitationView:
    doc_id, span = parse_citation_id(citation_id)
    doc = store.document(doc_id)
    if doc is None:
        raise DocumentNotFound(f"no document {doc_id!r} in the index (see `rag docs`)")
    if span.end > len(doc.text):
        raise InvalidSpan(f"range {span.start}-{span.end} is outside {doc_id!r}, which has {len(doc.text)} characters")
    before = doc.text[max(0, span.start - context_chars):span.start]
    after = doc.text[span.end:span.end + context_chars]
    return CitationView(id=format_citation_id(doc_id, span), document=doc, span=span,
                        quote=doc.text[span.start:span.end], before=before, after=after)


def split_by_spans(text: str, spans: dict[str, Span]) -> list[tuple[str, list[str]]]:
    """`text` cut at every boundary of `spans` (citation id -> span): (piece, ids of the spans covering it),
    in order, joining back to `text`. The chat page marks cited characters from these pieces, so offsets are
    only ever counted here, in Python's code points (a browser would count UTF-16 units)."""
    for cid, span in spans.items():
        if span.end > len(text):
            raise InvalidSpan(f"range {span.start}-{span.end} of {cid!r} is outside the document, which has "
                              f"{len(text)} characters")
    cuts = sorted({0, len(text), *(s.start for s in spans.values()), *(s.end for s in spans.values())})
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        if a < b:
            pieces.append((text[a:b], [cid for cid, s in spans.items() if s.start <= a and b <= s.end]))
    return pieces
