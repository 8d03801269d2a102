"""Request and response models. Requests forbid unknown fields (a typo is a 422, not silently ignored);
the answer is rag.types.Answer itself, the contract the CLI's --json prints too."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rag.sessions import SESSION_ID
from rag.types import Answer, Citation

__all__ = ["Answer", "Citation"]  # re-exported: the routes answer with them


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"), which no tokenizer, database or response can encode
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (it holds a lone surrogate)") from None
    return value


Text = Annotated[str, AfterValidator(_encodable)]
TopK = Annotated[int, Field(ge=1, le=50, description="passages to read (default: the configured top_k)")]
# Letters of any script, digits, "_", "." and "-" (as rag.documents accepts); ".." is refused by the route.
DOC_ID = r"^[\w.\-]{1,200}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskRequest(Strict):
    question: Text = Field(min_length=1, description="the question, in Arabic or English")
    k: TopK | None = None


class ChatRequest(Strict):
    message: Text = Field(min_length=1, description="the user's message; a follow-up may lean on earlier turns")
    session_id: str | None = Field(None, pattern=SESSION_ID.pattern,
                                   description="continue this session; omitted: a new session starts")
    stream: bool = Field(False, description="reply with Server-Sent Events: citations, token..., answer")
    k: TopK | None = None


class ChatResponse(Answer):
    """The answer object plus the conversation: `question` is the message as sent, `standalone_question` what
    was retrieved with."""

    session_id: str
    standalone_question: str


class SearchHit(BaseModel):
    rank: int
    id: str = Field(description="citation id of the passage, <doc_id>:<start>-<end>")
    doc_id: str
    title: str
    start: int
    end: int
    score: float = Field(description="fused (reciprocal-rank) score")
    scores: dict[str, float] = Field(description="per retriever: dense cosine, BM25 score")
    ranks: dict[str, int]
    text: str


class CitationView(BaseModel):
    id: str
    doc_id: str
    title: str
    date: str
    source: str
    url: str
    start: int
    end: int
    quote: str = Field(description="exactly the cited characters")
    context_before: str
    context_after: str


class DocumentSummary(BaseModel):
    id: str
    title: str
    date: str
    source: str
    url: str
    chars: int


class Segment(BaseModel):
    text: str
    citations: list[str] = Field(description="the ids of the requested citations whose span covers this piece")


class DocumentOut(DocumentSummary):
    text: str
    segments: list[Segment] | None = Field(None, description="with ?cite=ID...: the text cut at every boundary "
                                                              "of those citations' spans, in order")


class DocumentIn(Strict):
    """One article as JSON (the fields of a .jsonl line)."""

    id: str = Field(pattern=DOC_ID, description="document id: letters, digits, '_', '.', '-'")
    text: Text = Field(min_length=1, description="the article's text, stored and quoted as given")
    title: Text = ""
    date: Text = ""
    source: Text = ""
    url: Text = ""


class SkippedInput(BaseModel):
    path: str
    line: int | None = None
    reason: str


class ChangeReport(BaseModel):
    added: list[str]
    updated: list[str]
    removed: list[str]
    unchanged: list[str]
    skipped: list[SkippedInput] = []
    documents: int = Field(description="documents in the index after the change")
    chunks: int = Field(description="passages in the index after the change")
    seconds: float


class Health(BaseModel):
    ready: bool
    status: str = Field(description="ready | loading | failed")
    model: str = ""
    documents: int = 0
    passages: int = Field(0, description="the index size: passages (vectors) searched")
    index_version: str = ""
    error: str = ""


class FeedbackIn(Strict):
    rating: Literal["up", "down"]
    question: Text = Field(min_length=1, max_length=10_000, description="the question as asked")
    answer: Text = Field(max_length=50_000, description="the answer text that was rated")
    citations: list[Annotated[Text, Field(max_length=300)]] = Field([], max_length=100,
                                                                  description="its citation ids")
    session_id: str = Field("", pattern=r"^[A-Za-z0-9_-]{0,64}$")
    mode: Literal["", "extractive", "generative"] = ""
    comment: Text = Field("", max_length=2000)


class FeedbackOut(BaseModel):
    id: int
    created: str = Field(description="UTC, ISO 8601")
    rating: str
    question: str
    answer: str
    citations: list[str]
    session_id: str
    mode: str
    comment: str


class ErrorOut(BaseModel):
    detail: str
    error: str = Field(description="the kind of error, e.g. DocumentNotFound")
