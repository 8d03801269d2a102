"""The assistant, assembled in one place. Read top to bottom, it is the flow of one question:

    question -> query vector (e5, "query: ")
             -> HybridRetriever: FAISS + BM25, scores fused              (a LangChain BaseRetriever)
             -> ExtractiveAnswerer: best-supporting sentences, each cited  (a LangChain runnable step)
                or GenerativeAnswerer: a chat model writes from the numbered passages; each citation
                checked against its passages, the extractive answer as fallback (rag/generate.py)
             -> Answer (the JSON contract of the design note)

Building the index (files -> clean -> chunks -> vectors -> index/) lives in rag/indexer.py.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import ConfigurableField, Runnable, RunnableLambda
from pydantic import ConfigDict

from rag.answer import AnswerConfig, ExtractiveAnswerer
from rag.chunking import ChunkingConfig
from rag.config import BUNDLED_ARTICLES, Settings, get_settings
from rag.embeddings import Embedder
from rag.errors import IndexMissing, InvalidInput
from rag.generate import GenerativeAnswerer, chat_model_from_settings
from rag.indexer import IndexReport, IndexSpec, Progress, index_paths
from rag.retrieval import HybridRetriever
from rag.store import IndexStore, current_version
from rag.types import Answer, Hit
from rag.verify import SupportChecker


class CitedRetriever(BaseRetriever):
    """Hybrid retrieval as a LangChain retriever: each Document is one passage, its metadata the citation."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    hybrid: Any
    k: int = 5

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        return [hit_to_document(h) for h in self.hybrid.search(query, self.k)]


def hit_to_document(hit: Hit) -> LCDocument:
    c = hit.chunk
    return LCDocument(page_content=c.text, id=c.id, metadata={
        "citation_id": c.id, "doc_id": c.doc_id, "start": c.start, "end": c.end, "score": hit.score,
        "rank": hit.rank, "scores": hit.scores, "hit": hit})


class QueryEncoder:
    """Embeds a question once per call chain: the retriever and the answerer share its vector and its token
    vectors (late interaction), both from one forward pass."""

    def __init__(self, embedder: Embedder, size: int = 256):
        self.embedder, self.size = embedder, size
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, question: str) -> np.ndarray:
        return self._encoded(question)[0]

    def tokens(self, question: str) -> np.ndarray:
        return self._encoded(question)[1]

    def prime(self, questions: list[str]) -> None:
        """Encode many questions in batches ahead of time (benchmarks; grow `size` to keep them all)."""
        vectors, tokens = self.embedder.encode_queries_with_tokens(questions)
        with self._lock:
            for q, v, t in zip(questions, vectors, tokens):
                self._remember(q, (v, t))

    def _remember(self, question: str, encoded: tuple[np.ndarray, np.ndarray]) -> None:
        self._cache[question] = encoded
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)

    def _encoded(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        # The API calls this from many threads: guard the LRU bookkeeping (a get + move_to_end racing an
        # eviction raises KeyError), but not the encoding itself.
        with self._lock:
            hit = self._cache.get(question)
            if hit is not None:
                self._cache.move_to_end(question)
                return hit
        vectors, tokens = self.embedder.encode_queries_with_tokens([question])
        with self._lock:
            self._remember(question, (vectors[0], tokens[0]))
        return vectors[0], tokens[0]


Answerer = ExtractiveAnswerer | GenerativeAnswerer


def build_chain(retriever: CitedRetriever, answerer: Answerer, encode_query: QueryEncoder) -> Runnable:
    """{"question": str} -> Answer; `k` is configurable per call: config={"configurable": {"k": 8}}."""

    def timed_retrieve(inputs: dict, config) -> dict:
        t0 = time.perf_counter()
        docs = configurable_retriever.invoke(inputs["question"], config)
        return {**inputs, "documents": docs, "retrieve_ms": (time.perf_counter() - t0) * 1000}

    def answer(inputs: dict) -> Answer:
        t0 = time.perf_counter()
        hits = [d.metadata["hit"] for d in inputs["documents"]]
        result = answerer.answer(inputs["question"], encode_query(inputs["question"]), hits)
        result.timings_ms = {"retrieve": round(inputs["retrieve_ms"], 2),
                             "answer": round((time.perf_counter() - t0) * 1000, 2), **result.timings_ms}
        return result

    configurable_retriever = retriever.configurable_fields(
        k=ConfigurableField(id="k", name="passages", description="how many passages to retrieve"))
    return RunnableLambda(timed_retrieve) | RunnableLambda(answer)


class Assistant:
    """Loads the model and the index once; answers, searches and looks up citations."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None,
                 store: IndexStore | None = None, chat_model: BaseChatModel | None = None):
        """`chat_model`: any LangChain chat model for generative answers; by default the one the settings
        name (RAG_LLM_MODEL), else none, and answers are extractive."""
        self.settings = settings or get_settings()
        self.embedder = embedder or Embedder(self.settings)
        self.store = store or IndexStore.open(self.settings.index_dir, model_id=self.embedder.model_id,
                                              runtime=self.embedder.runtime_name)
        self.encode_query = QueryEncoder(self.embedder)
        s = self.settings
        self.hybrid = HybridRetriever(self.store, self.encode_query, candidates=s.candidates, fusion=s.fusion,
                                      alpha=s.fusion_alpha, rrf_k=s.rrf_k, rerank_depth=s.rerank_depth,
                                      rerank_weight=s.rerank_weight, rerank_coverage=s.rerank_coverage,
                                      late_weight=s.rerank_late_weight, one_per_document=s.one_per_document)
        self.extractive = ExtractiveAnswerer(self.store, AnswerConfig(
            max_sentences=s.answer_sentences, abstain_threshold=s.abstain_threshold),
            query_tokens=self.encode_query.tokens)
        self.chat_model = chat_model if chat_model is not None else chat_model_from_settings(s)
        self.answerer: Answerer = self.extractive
        if self.chat_model is not None:
            checker = SupportChecker(self.store, self.embedder.encode_queries)
            self.answerer = GenerativeAnswerer(self.chat_model, self.store, self.extractive, checker,
                                               timeout=s.llm_timeout)
        self.retriever = CitedRetriever(hybrid=self.hybrid, k=s.top_k)
        self.chain = build_chain(self.retriever, self.answerer, self.encode_query)
        # Warm up now (Haystack's warm_up): load the model, run one forward pass, read the BM25 arrays, so no
        # question pays for them.
        self.encode_query("warm-up")
        self.store.bm25

    def check_question(self, question: str) -> str:
        q = (question or "").strip()
        limit = self.settings.max_question_chars
        if not q:
            raise InvalidInput("the question is empty")
        if len(q) > limit:
            raise InvalidInput(f"the question is {len(q)} characters long; the limit is {limit}")
        return q

    def check_k(self, k: int | None) -> int:
        k = k or self.settings.top_k
        if k < 1:
            raise InvalidInput("k must be at least 1")
        return k

    def ask(self, question: str, k: int | None = None) -> Answer:
        q = self.check_question(question)
        k = self.check_k(k)
        t0 = time.perf_counter()
        answer = self.chain.invoke({"question": q}, config={"configurable": {"k": k}})
        answer.timings_ms["total"] = round((time.perf_counter() - t0) * 1000, 2)
        return answer

    def stream(self, question: str, k: int | None = None) -> Iterator[str | Answer]:
        """The generated answer's text in pieces as the model writes them, then the Answer. An extractive
        answer (the default mode, or a fallback after the model failed) comes only as the Answer."""
        q = self.check_question(question)
        k = self.check_k(k)
        t0 = time.perf_counter()
        hits = self.hybrid.search(q, k)
        retrieve_ms = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        query_vector = self.encode_query(q)
        if isinstance(self.answerer, GenerativeAnswerer):
            events = self.answerer.stream(q, query_vector, hits)
        else:
            events = iter([self.answerer.answer(q, query_vector, hits)])
        for event in events:
            if isinstance(event, Answer):
                event.timings_ms = {"retrieve": round(retrieve_ms, 2),
                                    "answer": round((time.perf_counter() - t1) * 1000, 2), **event.timings_ms,
                                    "total": round((time.perf_counter() - t0) * 1000, 2)}
            yield event

    def search(self, question: str, k: int | None = None) -> list[Hit]:
        k = self.check_k(k)
        return self.hybrid.search(self.check_question(question), k)


def build_index(paths: list[Path], settings: Settings | None = None, embedder: Embedder | None = None,
                rebuild: bool = False, progress: Progress | None = None) -> IndexReport:
    s = settings or get_settings()
    return index_paths(paths, s.index_dir, index_spec(s, embedder or Embedder(s)), rebuild=rebuild, progress=progress)


def index_spec(settings: Settings, embedder: Embedder) -> IndexSpec:
    return IndexSpec(embedder, ChunkingConfig(settings.chunk_tokens, settings.chunk_overlap_tokens),
                     embed_title=settings.embed_title, batch_size=settings.batch_size)


def ensure_index(settings: Settings, embedder: Embedder, progress: Progress | None = None) -> IndexReport | None:
    """With no index yet, build one over the bundled articles (so `rag ask` works on a fresh clone)."""
    if current_version(settings.index_dir) is not None:
        return None
    if not BUNDLED_ARTICLES.is_dir():
        raise IndexMissing(f"no index in {settings.index_dir} and no bundled articles; run `rag index PATH`")
    return build_index([BUNDLED_ARTICLES], settings, embedder, progress=progress)
