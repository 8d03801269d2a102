"""OpenAI-compatible endpoints: GET /v1/models, POST /v1/chat/completions (optionally streamed).

Any OpenAI client or chat front end (Open WebUI, LibreChat, editors' plugins, the OpenAI SDKs) can pick the
assistant as a model. The chain is the one /chat runs, without a server-side session: the last user message
is the question, the earlier user and assistant messages are the conversation, and a follow-up is made
standalone from them as /chat does (rag/condense.py; with a chat model, the model rewrites the last one).
The reply's content is the answer with its [n] markers followed by a short list of its sources, so that a
client that shows only text still shows them; the same sources come as Perplexity returns them, in
top-level `citations` (ids) and `search_results`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import iterate_in_threadpool

from api.dependencies import EngineDep
from api.engine import Engine
from api.openai_errors import OpenAIHTTPError, error_body
from api.openai_schemas import (AssistantMessage, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest,
                                ChatMessage, Choice, ChunkChoice, Delta, ModelCard, ModelList, OpenAIErrorBody,
                                SearchResult, Usage)
from api.routers.chat import PIECE
from rag.arabic import detect_language
from rag.condense import condense
from rag.errors import InvalidInput, RagError
from rag.types import Answer

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], responses={
    400: {"model": OpenAIErrorBody, "description": "a bad request body"},
    401: {"model": OpenAIErrorBody, "description": "a missing or wrong API key"},
    404: {"model": OpenAIErrorBody, "description": "an unknown model"},
    503: {"model": OpenAIErrorBody, "description": "not ready"}})

MODEL = "rag-news"  # the configured mode: generative with a chat model, else extractive
EXTRACTIVE, GENERATIVE = "rag-news-extractive", "rag-news-generative"
STARTED = int(time.time())
SOURCES = {"ar": "المصادر:", "en": "Sources:"}
# The sources list of one of our earlier replies, sent back in the history: cut before condensing.
_SOURCES_BLOCK = re.compile(r"\n\n(?:%s)\n- \[\d+\] .*\Z" % "|".join(map(re.escape, SOURCES.values())), re.S)


def model_names(engine: Engine) -> list[str]:
    return [MODEL, EXTRACTIVE, GENERATIVE] if engine.chat_model is not None else [MODEL]


def check_model(engine: Engine, name: str) -> None:
    if name not in model_names(engine):
        shown = name[:100].encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate cannot be sent
        raise OpenAIHTTPError(404, f"The model `{shown}` does not exist; this server serves "
                                   f"{', '.join(model_names(engine))} (GET /v1/models).",
                              param="model", code="model_not_found")


@router.get("/models", response_model=ModelList)
def list_models(engine: EngineDep) -> ModelList:
    """The assistant as OpenAI models: `rag-news`, plus `rag-news-extractive` and `rag-news-generative` to
    choose the mode when a chat model is configured."""
    return ModelList(data=[ModelCard(id=name, created=STARTED) for name in model_names(engine)])


@router.get("/models/{model}", response_model=ModelCard)
def retrieve_model(model: str, engine: EngineDep) -> ModelCard:
    check_model(engine, model)
    return ModelCard(id=model, created=STARTED)


# -- the conversation -----------------------------------------------------------------------------------------
def text_of(message: ChatMessage) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content if part.type == "text" and part.text)


def strip_sources(reply: str) -> str:
    """One of our replies without its sources list (and the notice after it)."""
    return _SOURCES_BLOCK.sub("", reply).strip()


def conversation(messages: Sequence[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """(the question: the last user message; the earlier turns as (standalone question, answer) pairs).
    Earlier questions are made standalone by the rules alone, one after another, as /chat did when they were
    asked (a chat model rewrites only the last one: one model call per request, not one per turn)."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        raise OpenAIHTTPError(400, "messages must include a user message: the last one is the question",
                              param="messages", code="missing_user_message")
    turns: list[list[str]] = []
    for m in messages[:users[-1]]:
        if m.role == "user" and text_of(m).strip():
            turns.append([text_of(m).strip(), ""])
        elif m.role == "assistant" and turns:
            turns[-1][1] = f"{turns[-1][1]} {strip_sources(text_of(m))}".strip()
    standalone: list[str] = []
    for question, _ in turns:
        standalone.append(condense(question, standalone).query)
    return text_of(messages[users[-1]]), [(q, a) for q, (_, a) in zip(standalone, turns)]


# -- the reply ------------------------------------------------------------------------------------------------
def content_of(answer: Answer) -> str:
    """The answer, its sources (title and citation id per marker), and a notice if the answer has one."""
    text = answer.answer
    if answer.citations:
        lines = [f"- [{c.n}] {c.title or c.doc_id} — `{c.id}`" for c in answer.citations]
        text += f"\n\n{SOURCES[detect_language(answer.question)]}\n" + "\n".join(lines)
    if answer.notice:
        text += f"\n\n({answer.notice})"
    return text


def search_results(engine: Engine, answer: Answer) -> list[SearchResult]:
    store = engine.assistant.store
    out = []
    for c in answer.citations:
        doc = store.document(c.doc_id)  # None if a write removed it since: the citation still says what it quoted
        out.append(SearchResult(id=c.id, title=c.title or (doc.title if doc else ""), date=doc.date if doc else "",
                                url=doc.url if doc else "", quote=c.quote))
    return out


def usage(engine: Engine, body: ChatCompletionRequest, content: str) -> Usage:
    prompt = sum(engine.embedder.count_tokens([text_of(m) for m in body.messages]))
    completion = sum(engine.embedder.count_tokens([content]))
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _prepare(body: ChatCompletionRequest, engine: Engine) -> tuple[str, list[tuple[str, str]]]:
    """Everything that can be wrong with the request, checked before any answer (or stream) begins."""
    check_model(engine, body.model)
    question, history = conversation(body.messages)
    try:
        question = engine.assistant.check_question(question)
    except InvalidInput as e:
        raise OpenAIHTTPError(400, f"the last user message: {e}", param="messages", code="invalid_value") from None
    return question, history


@router.post("/chat/completions", response_model=ChatCompletion, responses={200: {
    "description": "a chat.completion; with `stream: true`, Server-Sent Events instead: chat.completion.chunk "
                   "objects (the role first, then content deltas, then one with finish_reason, citations and "
                   "search_results; with stream_options.include_usage, one with usage), then `data: [DONE]`",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
def chat_completions(body: ChatCompletionRequest, engine: EngineDep):
    """Answer the last user message, with citations, in OpenAI's chat-completions format."""
    question, history = _prepare(body, engine)
    extractive = body.model == EXTRACTIVE
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        return EventSourceResponse(_stream(engine, body, question, history, completion_id, created), ping=15)
    *_, (answer, _) = engine.converse(question, history, extractive=extractive)
    content = content_of(answer)
    return ChatCompletion(id=completion_id, created=created, model=body.model,
                          choices=[Choice(message=AssistantMessage(content=content))],
                          usage=usage(engine, body, content), citations=[c.id for c in answer.citations],
                          search_results=search_results(engine, answer))


async def _stream(engine: Engine, body: ChatCompletionRequest, question: str, history: list[tuple[str, str]],
                  completion_id: str, created: int) -> AsyncIterator[ServerSentEvent]:
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(choices: list[ChunkChoice], **fields) -> ServerSentEvent:
        event = ChatCompletionChunk(id=completion_id, created=created, model=body.model, choices=choices, **fields)
        # As OpenAI writes them: a delta holds only what it sets; `usage` is null until its own chunk (when
        # asked for); citations and search_results come once, with finish_reason.
        data = event.model_dump(exclude_none=True)
        data["choices"] = [{**c.model_dump(), "delta": c.delta.model_dump(exclude_none=True)} for c in event.choices]
        if include_usage:
            data.setdefault("usage", None)
        return ServerSentEvent(json.dumps(data, ensure_ascii=False))

    def delta(text: str) -> ServerSentEvent:
        return chunk([ChunkChoice(delta=Delta(content=text))])

    yield chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])
    streamed, pending = [], ""  # whitespace held back: the answer's text is stripped at both ends
    try:
        async for event in iterate_in_threadpool(engine.converse(question, history,
                                                                 extractive=body.model == EXTRACTIVE)):
            if isinstance(event, str):
                text = pending + event if streamed else event.lstrip()
                piece = text.rstrip()
                pending = text[len(piece):]
                if piece:
                    streamed.append(piece)
                    yield delta(piece)
                continue
            answer, _ = event
    except Exception as e:  # noqa: BLE001 - the stream has begun: report in OpenAI's way, don't drop the connection
        if not isinstance(e, RagError):
            log.exception("chat completion stream failed")
        message = str(e) if isinstance(e, RagError) else "internal error"
        yield ServerSentEvent(json.dumps(error_body(message, "server_error"), ensure_ascii=False))
        return
    content, sent = content_of(answer), "".join(streamed)
    # A generated answer streams as written, then its sources follow. Should the model's answer be replaced by
    # the extractive one (it failed, or none of its citations held), the stream cannot take back what it
    # sent: it goes on with the replacement, whose notice says why.
    rest = content[len(sent):] if content.startswith(sent) else f"\n\n{content}"
    for piece in PIECE.findall(rest):
        yield delta(piece)
    yield chunk([ChunkChoice(delta=Delta(), finish_reason="stop")], citations=[c.id for c in answer.citations],
                search_results=search_results(engine, answer))
    if include_usage:
        yield chunk([], usage=usage(engine, body, sent + rest))
    yield ServerSentEvent("[DONE]")
