"""POST /ask (one question) and POST /chat (a turn of a conversation, optionally streamed as SSE)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import iterate_in_threadpool

from api.dependencies import EngineDep
from api.engine import Engine
from api.schemas import Answer, AskRequest, ChatRequest, ChatResponse, ErrorOut
from rag.errors import RagError
from rag.sessions import SessionStore

log = logging.getLogger(__name__)
router = APIRouter(tags=["answers"], responses={422: {"description": "a bad question or field"},
                                                 503: {"model": ErrorOut, "description": "not ready"}})


@router.post("/ask", response_model=Answer)
def ask(body: AskRequest, engine: EngineDep) -> Answer:
    """Answer one question with citations (no session)."""
    return engine.assistant.ask(body.question, k=body.k)


@router.post("/chat", response_model=ChatResponse, responses={200: {
    "description": "the answer object plus session_id; with `stream: true`, Server-Sent Events instead: "
                   "`token` ({\"text\": piece}, repeated), `citations` (JSON list), `answer` (this object, "
                   "final: its citations checked), or `error` ({\"detail\", \"error\"}) if something fails "
                   "midway. An extractive answer sends `citations` first, then its text as tokens; a generated "
                   "one sends the model's pieces as they come, then `citations`. If the model fails midway, "
                   "`answer` carries the extractive answer and a `notice`.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
def chat(body: ChatRequest, engine: EngineDep):
    """One turn of a conversation: a follow-up ("ومن أعلن ذلك؟") is made standalone before retrieval."""
    session_id = body.session_id or SessionStore.new_id()
    # Bad input is a 4xx before any stream starts; only what fails while answering becomes an `error` event.
    engine.assistant.check_question(body.message)
    if body.stream:
        return EventSourceResponse(_stream(engine, body, session_id), ping=15)
    answer, standalone = engine.chat(body.message, session_id, k=body.k)
    return ChatResponse(**answer.model_dump(), session_id=session_id, standalone_question=standalone)


PIECE = re.compile(r"\s*\S+\s*")  # a word with the spaces around it: the pieces join back to the exact text


async def _stream(engine: Engine, body: ChatRequest, session_id: str) -> AsyncIterator[ServerSentEvent]:
    def data(obj) -> str:
        return json.dumps(obj, ensure_ascii=False)

    events = iterate_in_threadpool(engine.chat_stream(body.message, session_id, body.k))
    streamed = False
    try:
        async for event in events:
            if isinstance(event, str):
                streamed = True
                yield ServerSentEvent(data({"text": event}), event="token")
                continue
            answer, standalone = event
    except RagError as e:
        yield ServerSentEvent(data({"detail": str(e), "error": type(e).__name__}), event="error")
        return
    except Exception:  # noqa: BLE001 - the stream has begun: report, don't tear the connection down
        log.exception("chat stream failed")
        yield ServerSentEvent(data({"detail": "internal error", "error": "InternalError"}), event="error")
        return
    reply = ChatResponse(**answer.model_dump(), session_id=session_id, standalone_question=standalone)
    yield ServerSentEvent(data([c.model_dump() for c in reply.citations]), event="citations")
    if not streamed:
        for piece in PIECE.findall(reply.answer):
            yield ServerSentEvent(data({"text": piece}), event="token")
    yield ServerSentEvent(reply.model_dump_json(), event="answer")
