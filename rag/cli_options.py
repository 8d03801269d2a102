"""The options several `rag` commands share (rag/cli.py and the commands kept in their own modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

IndexDir = Annotated[Optional[Path], typer.Option("--index-dir", help="index directory [env RAG_INDEX_DIR; default index/]")]
JsonOut = Annotated[bool, typer.Option("--json", help="print JSON for programs")]
TopK = Annotated[Optional[int], typer.Option("-k", "--top-k", help="passages to retrieve", min=1, max=100)]
LlmBaseUrl = Annotated[Optional[str], typer.Option("--llm-base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 [env RAG_LLM_BASE_URL]")]
RuntimeOpt = Annotated[Optional[str], typer.Option("--runtime", help="embedding runtime: openvino-int8, openvino, onnx-int8, onnx or torch [env RAG_RUNTIME; default openvino]")]
LlmModel = Annotated[Optional[str], typer.Option("--llm-model", help="chat model to answer with; none = extractive [env RAG_LLM_MODEL]")]
