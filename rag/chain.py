"""The assistant, assembled in one place. Read top to bottom, it is the flow of one question:

    question -> query vector (e5, "query: "; the runtime of rag/runtime/)
             -> HybridRetriever: FAISS + BM25, scores fused              (as a LangChain BaseRetriever: rag/runnables.py)
                then the first 20 re-scored (sentences, late interaction; another language: rag/crosslingual.py)
             -> ExtractiveAnswerer: best-supporting sentences, each cited  (a LangChain runnable step there)
                or GenerativeAnswerer: a chat model writes from the numbered passages; each citation
                checked against its passages, the extractive answer as fallback (rag/generate.py)
             -> Answer (the JSON contract of the design note)

Building the index (files -> clean -> chunks -> vectors -> index/) lives in rag/indexer.py. `Assistant.ask` runs
the two steps directly; `Assistant.chain` is the same as a LangChain runnable, built (and LangChain imported) on
first use, which keeps a cold `rag ask` from paying for LangChain's import.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from functools import cached_property
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from rag import limit_numpy_blas
from rag.answer import AnswerConfig, ExtractiveAnswerer
from rag.chunking import ChunkingConfig
from rag.config import BUNDLED_ARTICLES, Settings, get_settings
from rag.crosslingual import CrossLingualEncoder
from rag.embeddings import Embedder
from rag.errors import IndexMissing, InvalidInput
from rag.retrieval import HybridRetriever
from rag.store import IndexStore
from rag.store.base import backend_for
from rag.translate import translator_from_settings
from rag.types import Answer, Hit

# Cold start: generative answers (langchain's chat models, jinja2 prompts) and indexing are imported when used,
# so an extractive `rag ask` on a built index loads neither.
if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable

    from rag.generate import GenerativeAnswerer
    from rag.indexer import IndexReport, IndexSpec, Progress
    from rag.reader import Reader
    from rag.selector import SentenceSelector


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


Answerer = Union[ExtractiveAnswerer, "GenerativeAnswerer"]


def answer_step(answerer: Answerer, encode_query: QueryEncoder, question: str, hits: list[Hit],
                retrieve_ms: float) -> Answer:
    """The second step of the chain: the answer from the retrieved passages, with the steps' timings."""
    t0 = time.perf_counter()
    result = answerer.answer(question, encode_query(question), hits)
    result.timings_ms = {"retrieve": round(retrieve_ms, 2), "answer": round((time.perf_counter() - t0) * 1000, 2),
                         **result.timings_ms}
    return result


def __getattr__(name: str):
    """The LangChain side (CitedRetriever, hit_to_document, build_chain) lives in rag/runnables.py, imported on
    first use: importing langchain-core costs a cold `rag ask` about a second."""
    if name in ("CitedRetriever", "hit_to_document", "build_chain"):
        from rag import runnables

        return getattr(runnables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The second stage's late-interaction weight per token codec. Product quantisation reconstructs each token as
# its cells' mean, which narrows the spread of the MaxSim scores between passages, so the weight set on int8's
# (near-exact) cosines counts for less over a pq index: on the pooled dev set (every question) R@1 / R@5 were
# int8 at 5: 0.7521 / 0.9252; pq at 5: 0.7458 / 0.9247, at 6: 0.7490 / 0.9263, at 7: 0.7495 / 0.9268 (int8 at 6 / 7:
# 0.7474 / 0.7484); benchmarks/quality.py docstring.
LATE_WEIGHT_BY_CODEC = {"int8": 5.0, "pq": 6.0}


def late_weight(settings: Settings, store) -> float:
    """RAG_RERANK_LATE_WEIGHT when set, else the weight for the index's token codec."""
    if settings.rerank_late_weight is not None:
        return settings.rerank_late_weight
    codec = getattr(store, "codec", None)
    return LATE_WEIGHT_BY_CODEC.get(getattr(codec, "name", "int8"), LATE_WEIGHT_BY_CODEC["int8"])


class Assistant:
    """Loads the model and the index once; answers, searches and looks up citations."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None,
                 store: IndexStore | None = None, chat_model: BaseChatModel | None = None,
                 reader: Reader | None = None, cross_lingual: CrossLingualEncoder | None = None,
                 translator: Callable[[str], str | None] | None = None, selector: SentenceSelector | None = None):
        """`chat_model`: any LangChain chat model for generative answers; by default the one the settings
        name (RAG_LLM_MODEL), else none, and answers are extractive. `reader`, `cross_lingual`, `translator`,
        `selector`: the extractive reader, the cross-language model, the question translator and the sentence
        selector to share (a server keeps them across index versions); by default made here when RAG_READER /
        RAG_CROSS_LINGUAL / RAG_TRANSLATOR / RAG_SELECTOR is on."""
        limit_numpy_blas()  # before the first product: its threads would spin on the model's cores
        self.settings = settings or get_settings()
        self.embedder = embedder or Embedder(self.settings)
        self.store = store or backend_for(self.settings).open(model_id=self.embedder.model_id,
                                                              runtime=self.embedder.runtime_name)
        self.encode_query = QueryEncoder(self.embedder)
        s = self.settings
        if cross_lingual is None and s.cross_lingual:
            cross_lingual = CrossLingualEncoder()  # its model loads on the first question in another language
        if translator is None:
            translator = translator_from_settings(s)  # its model loads on the first question in another language
        self.hybrid = HybridRetriever(self.store, self.encode_query, candidates=s.candidates, fusion=s.fusion,
                                      alpha=s.fusion_alpha, rrf_k=s.rrf_k, rerank_depth=s.rerank_depth,
                                      rerank_weight=s.rerank_weight, rerank_coverage=s.rerank_coverage,
                                      late_weight=late_weight(s, self.store), one_per_document=s.one_per_document,
                                      tie_margin=s.rerank_tie_margin, cross_lingual=cross_lingual,
                                      translate=translator, translated_lexical_weight=s.translated_lexical_weight)
        if reader is None and s.reader:  # its graph loads on the first question that needs it (another language)
            from rag.reader import load_reader

            reader = load_reader(s)
        if selector is None and s.selector:
            from rag.selector import load_selector

            selector = load_selector(s)
        self.extractive = ExtractiveAnswerer(self.store, AnswerConfig(
            max_sentences=s.answer_sentences, abstain_threshold=s.abstain_threshold),
            query_tokens=self.encode_query.tokens, reader=reader, cross_lingual=cross_lingual, translate=translator,
            selector=selector)
        self.chat_model = chat_model
        if chat_model is None and (s.llm_model or s.llm_base_url):
            from rag.generate import chat_model_from_settings

            self.chat_model = chat_model_from_settings(s)
        self.answerer: Answerer = self.extractive
        if self.chat_model is not None:
            from rag.generate import GenerativeAnswerer
            from rag.verify import SupportChecker

            checker = SupportChecker(self.store, self.embedder.encode_queries)
            self.answerer = GenerativeAnswerer(self.chat_model, self.store, self.extractive, checker,
                                               timeout=s.llm_timeout)
        # Warm up now (Haystack's warm_up): load the model, run one forward pass, read the BM25 arrays, so no
        # question pays for them.
        self.encode_query("warm-up")
        self.store.warm()

    @cached_property
    def retriever(self):
        """Hybrid retrieval as a LangChain retriever (rag.runnables.CitedRetriever)."""
        from rag.runnables import CitedRetriever

        return CitedRetriever(hybrid=self.hybrid, k=self.settings.top_k)

    @cached_property
    def chain(self) -> Runnable:
        """The same steps as `ask` as a LangChain runnable: {"question": str} -> Answer, `k` configurable."""
        from rag.runnables import build_chain

        return build_chain(self.retriever, self.answerer, self.encode_query)

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
        hits = self.hybrid.search(q, k)  # what `chain` runs, without importing LangChain (see `__getattr__`)
        answer = answer_step(self.answerer, self.encode_query, q, hits, (time.perf_counter() - t0) * 1000)
        answer.timings_ms["total"] = round((time.perf_counter() - t0) * 1000, 2)
        answer.searched_as = self.hybrid.wording(q)
        return answer

    def stream(self, question: str, k: int | None = None, extractive: bool = False) -> Iterator[str | Answer]:
        """The generated answer's text in pieces as the model writes them, then the Answer. An extractive
        answer (the default mode, `extractive`, or a fallback after the model failed) comes only as the Answer."""
        q = self.check_question(question)
        k = self.check_k(k)
        t0 = time.perf_counter()
        hits = self.hybrid.search(q, k)
        retrieve_ms = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        query_vector = self.encode_query(q)
        if self.answerer is not self.extractive and not extractive:  # generative
            events = self.answerer.stream(q, query_vector, hits)
        else:
            events = iter([self.extractive.answer(q, query_vector, hits)])
        for event in events:
            if isinstance(event, Answer):
                event.searched_as = self.hybrid.wording(q)
                event.timings_ms = {"retrieve": round(retrieve_ms, 2),
                                    "answer": round((time.perf_counter() - t1) * 1000, 2), **event.timings_ms,
                                    "total": round((time.perf_counter() - t0) * 1000, 2)}
            yield event

    def search(self, question: str, k: int | None = None) -> list[Hit]:
        k = self.check_k(k)
        return self.hybrid.search(self.check_question(question), k)


def build_index(paths: list[Path], settings: Settings | None = None, embedder: Embedder | None = None,
                rebuild: bool = False, progress: Progress | None = None, ray: str | None = None) -> IndexReport:
    """Index `paths` into the configured index; `ray`: load and embed on the Ray at that address (rag/ray_ingest.py)."""
    from rag.indexer import index_paths

    s = settings or get_settings()
    spec = index_spec(s, embedder or Embedder(s))
    if ray is None:
        return index_paths(paths, backend_for(s), spec, rebuild=rebuild, progress=progress)
    from rag.ray_ingest import RayIngest, on_ray

    with RayIngest(s, ray, s.ray_workers) as ingest:
        return index_paths(paths, backend_for(s), on_ray(spec, ingest), rebuild=rebuild, progress=progress)


def index_spec(settings: Settings, embedder: Embedder) -> IndexSpec:
    from rag.indexer import IndexSpec

    return IndexSpec(embedder, ChunkingConfig(settings.chunk_tokens, settings.chunk_overlap_tokens),
                     embed_title=settings.embed_title, batch_size=settings.batch_size,
                     token_codec=settings.token_codec)


def ensure_index(settings: Settings, embedder: Embedder, progress: Progress | None = None) -> IndexReport | None:
    """With no index yet, build one over the bundled articles (so `rag ask` works on a fresh clone)."""
    if backend_for(settings).exists():
        return None
    if not BUNDLED_ARTICLES.is_dir():
        raise IndexMissing(f"no index in {settings.index_dir} and no bundled articles; run `rag index PATH`")
    return build_index([BUNDLED_ARTICLES], settings, embedder, progress=progress)
