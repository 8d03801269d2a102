"""Shared `Depends` callables: the settings the app was built with, the API key check, the live engine."""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.engine import Engine
from rag.config import Settings

_bearer = HTTPBearer(auto_error=False, description="the server's RAG_API_KEY, when one is configured")


def get_settings(request: Request) -> Settings:
    """The app's settings (create_app binds them; tests may override this with app.dependency_overrides)."""
    return request.app.state.settings


def require_api_key(settings: Annotated[Settings, Depends(get_settings)],
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    expected = settings.api_key.get_secret_value()
    if not expected:
        return
    given = credentials.credentials if credentials else ""
    # constant-time comparison: response timing must not reveal how much of a guess was right
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong API key: send Authorization: Bearer <RAG_API_KEY>",
                            headers={"WWW-Authenticate": "Bearer"})


def get_engine(request: Request) -> Engine:
    """The engine, or 503 while the model and index are still loading (or failed to load)."""
    loader = request.app.state.loader
    if loader.engine is None:
        raise HTTPException(503, f"the assistant is not ready: {loader.error or 'loading the model and index'}")
    return loader.engine


_DOC_ID = re.compile(r"[\w.\-]{1,200}")


def doc_id_param(doc_id: Annotated[str, Path(description="document id, e.g. 002_f7322d59d6e02373")]) -> str:
    """A document id from the path: the characters rag.documents allows, and never a path ("/", "\\", "..")."""
    if any(bad in doc_id for bad in ("/", "\\", "..")):
        raise HTTPException(422, f"document id {doc_id!r} contains a path character (/, \\ or ..)")
    if not _DOC_ID.fullmatch(doc_id):
        raise HTTPException(422, f"document id {doc_id!r} may only hold letters, digits, '_', '.' and '-' "
                                 "(at most 200)")
    return doc_id


EngineDep = Annotated[Engine, Depends(get_engine)]
DocId = Annotated[str, Depends(doc_id_param)]
