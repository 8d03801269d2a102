"""GET /search: the ranked passages behind an answer, with their scores and citation ids."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.dependencies import EngineDep
from api.schemas import SearchHit

router = APIRouter(tags=["search"])


@router.get("/search", response_model=list[SearchHit])
def search(engine: EngineDep,
           q: Annotated[str, Query(min_length=1, description="the query, in Arabic or English")],
           k: Annotated[int | None, Query(ge=1, le=50, description="passages to return")] = None) -> list[SearchHit]:
    """Hybrid retrieval (dense + BM25, fused by reciprocal rank), best first."""
    assistant = engine.assistant  # one index version for the hits and their titles
    return [SearchHit(rank=h.rank, id=h.chunk.id, doc_id=h.chunk.doc_id, start=h.chunk.start, end=h.chunk.end,
                      title=(assistant.store.document(h.chunk.doc_id)).title, score=round(h.score, 6),
                      scores={n: round(v, 4) for n, v in h.scores.items()}, ranks=h.ranks, text=h.chunk.text)
            for h in assistant.search(q, k=k)]
