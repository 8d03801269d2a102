"""GET /citations/{id}: the cited span with its article's metadata and the text around it (as `rag cite`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.dependencies import EngineDep
from api.schemas import CitationView, ErrorOut
from rag.citations import lookup_citation

router = APIRouter(tags=["citations"], responses={
    404: {"model": ErrorOut, "description": "unknown document, or a range outside it"},
    422: {"model": ErrorOut, "description": "not a citation id"}})


@router.get("/citations/{citation_id:path}", response_model=CitationView)
def citation(engine: EngineDep,
             citation_id: Annotated[str, Path(description="<doc_id>:<start>-<end>, e.g. 002_f7322d59d6e02373:812-1034")],
             context: Annotated[int, Query(ge=0, le=5000, description="characters of context on each side")] = 300,
             ) -> CitationView:
    # `:path` lets ids with "/" reach the parser, which names the problem, instead of a bare 404
    return CitationView(**lookup_citation(engine.assistant.store, citation_id, context).to_dict())
