"""The HTTP API: FastAPI over rag.chain. `create_app()` builds it; `rag serve` runs it with uvicorn."""

from api.main import create_app

__all__ = ["create_app"]
