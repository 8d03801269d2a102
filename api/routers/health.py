"""GET /health: ready or not, with the model, the index size and the document count. No API key needed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "not ready"}})
def health(request: Request):
    loader = request.app.state.loader
    engine = loader.engine
    if engine is None:
        status = "failed" if loader.error else "loading"
        return JSONResponse(Health(ready=False, status=status, error=loader.error).model_dump(), status_code=503)
    store = engine.assistant.store
    return Health(ready=True, status="ready", model=store.manifest.model_id, documents=store.document_count(),
                  passages=len(store), index_version=store.version)
