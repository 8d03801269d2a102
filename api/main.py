"""The app: `create_app(settings)` wires routers, error handlers and middleware; `lifespan` loads the model and
the index once.

Loading (model ~10 s, plus indexing the bundled articles on a fresh clone) runs in a background thread the
lifespan starts, so the port opens at once and GET /health can say "loading" (503) until it is ready; the
other routes answer 503 meanwhile.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import Depends, FastAPI, HTTPException, Request
from langchain_core.language_models import BaseChatModel
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import openai_errors
from api.dependencies import require_api_key
from api.engine import Engine
from api.routers import chat, citations, documents, feedback, health, openai_compat, page, search
from rag.config import Settings, get_settings
from rag.embeddings import Embedder
from rag.errors import (DocumentNotFound, IndexIncompatible, IndexMissing, InvalidCitationId, InvalidInput,
                        InvalidSpan, ModelUnavailable, RagError)

log = logging.getLogger("api")

# One table from the library's errors to HTTP: library code never imports FastAPI.
STATUS = {DocumentNotFound: 404, InvalidSpan: 404, InvalidCitationId: 422, InvalidInput: 422,
          IndexMissing: 503, ModelUnavailable: 503, IndexIncompatible: 503}


class Loader:
    """Builds the Engine once, in a thread; `engine` is None until then, `error` says why if it failed."""

    def __init__(self, settings: Settings, embedder: Embedder | None, chat_model=None):
        self.settings, self.embedder, self.chat_model = settings, embedder, chat_model
        self.engine: Engine | None = None
        self.error = ""
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._load, name="rag-load", daemon=True)

    def start(self) -> "Loader":
        self._thread.start()
        return self

    def _load(self) -> None:
        try:
            self.engine = Engine(self.settings, self.embedder or Embedder(self.settings), self.chat_model)
            log.info("ready: %s", self.engine.assistant.store.path)
        except RagError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - reported by /health instead of killing the server
            log.exception("loading failed")
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.done.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout) and self.engine is not None


@asynccontextmanager
async def lifespan(app: FastAPI):
    loader = app.state.loader = Loader(app.state.settings, app.state.embedder, app.state.chat_model).start()
    yield
    if loader.engine is not None:
        loader.engine.close()


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413: by Content-Length before reading, and while reading
    (chunked uploads have none), so an over-large upload is never held in memory."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        detail = f"the request body is over the limit of {self.limit} bytes (RAG_MAX_UPLOAD_BYTES)"
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            too_big = length.isdigit()
            response = JSONResponse({"detail": detail if too_big else "bad Content-Length",
                                     "error": "PayloadTooLarge" if too_big else "BadRequest"},
                                    status_code=413 if too_big else 400)
            return await response(scope, receive, send)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, detail)  # raised inside the route: FastAPI answers it as JSON
            return message

        await self.app(scope, counted, send)


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None,
               chat_model: BaseChatModel | None = None) -> FastAPI:
    """The app for `settings` (default: the RAG_* environment). Pass an already loaded `embedder` to share it
    (the tests do: loading takes ~10 s), and any LangChain chat model for generative answers (default: the
    one RAG_LLM_MODEL names, if any)."""
    settings = settings or get_settings()
    app = FastAPI(title="rag-news", version="0.1.0", lifespan=lifespan,
                  description="Cited answers over Arabic news articles. Every citation id "
                              "`<doc_id>:<start>-<end>` opens with GET /citations/{id}.")
    app.state.settings, app.state.embedder, app.state.chat_model = settings, embedder, chat_model
    app.state.loader = Loader(settings, embedder, chat_model)  # replaced by the lifespan's; reads "loading" before it runs

    protected = [Depends(require_api_key)]
    for module in (chat, search, citations, documents, feedback, openai_compat):
        app.include_router(module.router, dependencies=protected)
    app.include_router(health.router)
    page.mount(app)  # the chat page at / (no key needed to load it; it asks for one)

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        return JSONResponse({"detail": _printable(str(exc)), "error": type(exc).__name__}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes each bad `input` back: a lone surrogate in it cannot be encoded (a 500),
        # and a 2 MB question would come back whole. Say where and what, not the input.
        errors = [{"loc": [_printable(x) if isinstance(x, str) else x for x in e.get("loc", ())],
                   "msg": _printable(str(e.get("msg", ""))), "type": e.get("type", "")} for e in exc.errors()]
        return JSONResponse({"detail": errors, "error": "ValidationError"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # the same shape as the other errors: {"detail": ..., "error": ...}
        return JSONResponse({"detail": _printable(str(exc.detail)), "error": HTTPStatus(exc.status_code).phrase},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # the traceback goes to the server log, never to the client
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error", "error": "InternalError"}, status_code=500)

    openai_errors.install(app)  # on /v1 paths, the errors above in OpenAI's shape

    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # off unless configured: a browser page elsewhere cannot call the API by default
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    return app
