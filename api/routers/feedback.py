"""POST /feedback (a reader's thumbs up / down on an answer) and GET /feedback (read them back, newest first)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.dependencies import EngineDep
from api.schemas import FeedbackIn, FeedbackOut
from rag.feedback import Feedback

router = APIRouter(prefix="/feedback", tags=["feedback"])


@router.post("", status_code=201, response_model=FeedbackOut)
def add_feedback(body: FeedbackIn, engine: EngineDep) -> FeedbackOut:
    item = Feedback(rating=1 if body.rating == "up" else -1, **body.model_dump(exclude={"rating"}))
    return FeedbackOut(**engine.feedback.add(item).to_dict())


@router.get("", response_model=list[FeedbackOut])
def list_feedback(engine: EngineDep,
                  limit: Annotated[int, Query(ge=1, le=10_000, description="newest first")] = 1000) -> list[FeedbackOut]:
    return [FeedbackOut(**f.to_dict()) for f in engine.feedback.list(limit)]
