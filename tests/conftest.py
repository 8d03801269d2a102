"""Shared fixtures."""

from __future__ import annotations

import pytest

from rag.config import get_settings
from rag.embeddings import Embedder
from rag.model_builder import ensure_model


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real model, built once per machine into the default cache (~/.cache/rag-news) and loaded once."""
    settings = get_settings()
    ensure_model(settings)
    return Embedder(settings)


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory, embedder):
    """An index of the bundled articles, built once per test run with the real model."""
    from rag.chain import build_index
    from rag.config import BUNDLED_ARTICLES

    settings = get_settings().model_copy(update={"index_dir": tmp_path_factory.mktemp("bundled") / "index"})
    report = build_index([BUNDLED_ARTICLES], settings, embedder)
    assert report.documents == 5 and not report.skipped
    return settings


@pytest.fixture(scope="session")
def milvus_index(tmp_path_factory, embedder):
    """The bundled articles indexed into Milvus Lite (RAG_STORE=milvus; the database is <index_dir>/milvus.db, so
    copying the index directory copies it), built once per test run with the real model."""
    from rag.chain import build_index
    from rag.config import BUNDLED_ARTICLES

    settings = get_settings().model_copy(update={"index_dir": tmp_path_factory.mktemp("milvus") / "index",
                                                 "store": "milvus", "milvus_uri": ""})
    report = build_index([BUNDLED_ARTICLES], settings, embedder)
    assert report.documents == 5 and not report.skipped
    return settings


def store_copy(request, store: str, tmp_path):
    """Settings on a private copy of the bundled articles' index in `store` ("local" or "milvus")."""
    import shutil

    source = request.getfixturevalue("bundled_index" if store == "local" else "milvus_index")
    shutil.copytree(source.index_dir, tmp_path / "index")
    return source.model_copy(update={"index_dir": tmp_path / "index"})


@pytest.fixture(params=["local", "milvus"])
def any_store_copy(request, tmp_path):
    """`index_copy` in each passage store in turn: the end-to-end tests that take it run against both."""
    return store_copy(request, request.param, tmp_path)


@pytest.fixture(scope="session")
def assistant(bundled_index, embedder):
    from rag.chain import Assistant

    return Assistant(bundled_index, embedder=embedder)


@pytest.fixture(scope="session")
def cli():
    """Run the real `rag` command in-process (the loaded model is reused across calls)."""
    from typer.testing import CliRunner

    from rag.cli import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run


# -- HTTP API -------------------------------------------------------------------------------------------------
@pytest.fixture
def index_copy(bundled_index, tmp_path):
    """Settings on a private copy of the bundled index, for tests that change the corpus or keep sessions."""
    import shutil

    shutil.copytree(bundled_index.index_dir, tmp_path / "index")
    return bundled_index.model_copy(update={"index_dir": tmp_path / "index"})


class LiveServer:
    """A real uvicorn server in a thread, on a free loopback port (the socket is bound first: no race)."""

    def __init__(self, app):
        import socket
        import threading

        import uvicorn

        self.app = app
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout: float = 120, ready: bool = True) -> "LiveServer":
        """Wait until /health says ready (or, with ready=False, only until the port answers)."""
        import time

        import httpx

        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code in ((200,) if ready else (200, 503)):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server at {self.url} did not become ready in {timeout} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture(scope="session")
def live_server(bundled_index, embedder, tmp_path_factory):
    """The API on a copy of the bundled index, served by uvicorn on 127.0.0.1 for the whole session. The body
    limit is lowered to 200 kB so that the over-large upload test stays small."""
    yield from _serve_copy(bundled_index, embedder, tmp_path_factory, "live")


def _serve_copy(bundled_index, embedder, tmp_path_factory, name: str):
    import shutil

    from api.main import create_app

    index_dir = tmp_path_factory.mktemp(name) / "index"
    shutil.copytree(bundled_index.index_dir, index_dir)
    settings = bundled_index.model_copy(update={"index_dir": index_dir, "max_upload_bytes": 200_000})
    server = LiveServer(create_app(settings, embedder=embedder)).start()
    yield server
    server.stop()


def parse_sse(lines) -> list[tuple[str, object]]:
    """(event, decoded JSON data) pairs, in order, from an iterable of text lines of a text/event-stream."""
    import json

    events, name, data = [], "message", []
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        events.append((name, json.loads("\n".join(data))))
    return events


@pytest.fixture(scope="session")
def sse():
    """The Server-Sent Events parser above (a fixture, so test modules need not import conftest)."""
    return parse_sse


@pytest.fixture(scope="session")
def fuzz_server(bundled_index, embedder, tmp_path_factory):
    """A second live server on its own index copy: fuzzing adds and deletes documents at random."""
    yield from _serve_copy(bundled_index, embedder, tmp_path_factory, "fuzz")
