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
