"""The chain's LangChain face: hybrid retrieval as a LangChain retriever, and the two steps as a runnable chain.
`Assistant.retriever` / `Assistant.chain` build them on first use; `Assistant.ask` runs the same steps without
importing LangChain (rag/chain.py), so a cold `rag ask` does not pay for it.
"""

from __future__ import annotations

import time
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import ConfigurableField, Runnable, RunnableLambda
from pydantic import ConfigDict

from rag.chain import Answerer, QueryEncoder, answer_step
from rag.types import Answer, Hit


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


def build_chain(retriever: CitedRetriever, answerer: Answerer, encode_query: QueryEncoder) -> Runnable:
    """{"question": str} -> Answer; `k` is configurable per call: config={"configurable": {"k": 8}}."""

    def timed_retrieve(inputs: dict, config) -> dict:
        t0 = time.perf_counter()
        docs = configurable_retriever.invoke(inputs["question"], config)
        return {**inputs, "documents": docs, "retrieve_ms": (time.perf_counter() - t0) * 1000}

    def answer(inputs: dict) -> Answer:
        hits = [d.metadata["hit"] for d in inputs["documents"]]
        return answer_step(answerer, encode_query, inputs["question"], hits, inputs["retrieve_ms"])

    configurable_retriever = retriever.configurable_fields(
        k=ConfigurableField(id="k", name="passages", description="how many passages to retrieve"))
    return RunnableLambda(timed_retrieve) | RunnableLambda(answer)
