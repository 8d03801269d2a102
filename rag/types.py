"""Shared types passed between stages. Plain dataclasses; the answer object is pydantic (it is the JSON contract)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, Field


@dataclass(frozen=True)
class Span:
    """Half-open character range [start, end) into a document's original text."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"bad span {self.start}-{self.end}")

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Document:
    """One article: its ORIGINAL text (never altered, so offsets stay exact) and metadata."""

    id: str
    text: str
    title: str = ""
    date: str = ""
    source: str = ""
    url: str = ""
    path: str = ""  # the file it came from ("" when added otherwise)
    content_hash: str = ""  # sha256 of text + metadata; decides whether to re-embed


@dataclass(frozen=True)
class Skipped:
    """An input that was not indexed, and why (shown to the user)."""

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Chunk:
    """A sentence-aligned passage of one document; `start`/`end` index the original text."""

    doc_id: str
    start: int
    end: int
    text: str
    ordinal: int = 0  # position within its document
    sentences: tuple[Span, ...] = ()  # absolute spans of the sentences inside the chunk

    @property
    def id(self) -> str:
        return f"{self.doc_id}:{self.start}-{self.end}"


@dataclass
class Hit:
    """A retrieved chunk with its fused score and the per-retriever evidence behind it."""

    chunk: Chunk
    score: float
    rank: int = 0
    row: int = -1  # row in the index's vector arrays
    scores: dict[str, float] = field(default_factory=dict)  # e.g. {"dense": 0.83, "bm25": 7.1}
    ranks: dict[str, int] = field(default_factory=dict)


class Citation(BaseModel):
    n: int
    id: str
    doc_id: str
    title: str = ""
    quote: str
    start: int
    end: int
    score: float = 0.0


class ShortAnswer(BaseModel):
    """The phrase that answers the question, a citation span inside the quoted passage of citation `n`."""

    text: str = Field(description="exactly the cited characters, article[start:end]")
    id: str = Field(description="citation id of the phrase, <doc_id>:<start>-<end>")
    doc_id: str
    start: int
    end: int
    n: int = Field(description="the citation whose quote holds it")
    kind: str = Field("other", description="what the question asks for: date, number, person, place or other")


class ClaimCheck(BaseModel):
    """One sentence of a generated answer, the citations it carries, and whether their passages back it."""

    text: str
    citations: list[int] = Field(default_factory=list, description="the answer's citation numbers it carries")
    supported: bool | None = Field(None, description="null when the sentence carries no citation")
    lexical: float = Field(0.0, description="IDF-weighted share of its terms found in the cited passages")
    semantic: float = Field(0.0, description="best cosine to a cited sentence")
    evidence: str = Field("", description="citation id of the cited sentence that backs it best")
    missing_numbers: list[str] = Field(default_factory=list, description="numbers it states that the passages lack")


class Answer(BaseModel):
    """The answer object of the design note: the CLI's --json and the API return exactly this."""

    question: str
    answer: str
    abstained: bool = False
    mode: str = "extractive"  # "extractive" (sentences quoted) or "generative" (a chat model wrote it)
    citations: list[Citation] = Field(default_factory=list)
    # The phrase that answers the question, inside one of the quotes; None when none is picked with confidence.
    short_answer: ShortAnswer | None = None
    # Generative answers: each sentence checked against the passages it cites (rag/verify.py).
    claims: list[ClaimCheck] = Field(default_factory=list)
    notice: str = ""  # why the answer is not what was asked for, e.g. the model failed and this is extractive
    # A question in another language than Arabic: the Arabic wording BM25 ranked for it (rag/translate/), shown
    # so that a reader can see what was searched, as search engines show the query they ran.
    searched_as: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
