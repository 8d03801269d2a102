"""End to end against a real OpenAI-compatible server on loopback: llama-cpp-python's server running the
Gemma 3 270M GGUF from PyPI (rag/local_llm.py). A tiny base model: these tests check the plumbing, the
streaming and the citation checks on whatever it writes, not its prose."""

from __future__ import annotations

import pytest

import logging
import re
import socket

from rag.arabic import detect_language
from rag.citations import lookup_citation
from rag.local_llm import MODEL_ALIAS, LlamaServer, gguf_path
from rag.translate import ChatTranslator, translator_from_settings

Q = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"
DATE = "11 فبراير 2024"
SUNDAY = "تستأنف الأحد"  # what the extractive fallback quotes (one sentence, held to 400 characters)


@pytest.fixture(scope="module")
def llm_url(bundled_index, tmp_path_factory):
    log = tmp_path_factory.mktemp("llm") / "server.log"
    with LlamaServer(gguf_path(bundled_index), threads=2, log=log) as server:
        yield server.url


@pytest.fixture(scope="module")
def llm_settings(bundled_index, llm_url):
    # Short replies keep the suite quick; the plumbing is the same at any length.
    return bundled_index.model_copy(update={"llm_base_url": llm_url, "llm_model": MODEL_ALIAS,
                                            "llm_max_tokens": 48})


def check_answer(answer, store) -> None:
    """What must hold for any reply: a generated answer's citations are real and checked; otherwise the
    extractive answer stands in and says why."""
    if answer.mode == "generative":
        assert answer.citations and any(c.supported for c in answer.claims)
        numbers = {c.n for c in answer.citations}
        for c in answer.citations:
            assert f"[{c.n}]" in answer.answer
            assert lookup_citation(store, c.id).quote == c.quote
        for claim in answer.claims:
            assert set(claim.citations) <= numbers
            assert (claim.supported is None) == (not claim.citations)
            if claim.evidence:
                lookup_citation(store, claim.evidence)
    else:
        assert answer.notice, "a fallback must say why"
        assert not answer.claims
        assert SUNDAY in " ".join(c.quote for c in answer.citations)


def test_the_answer_streams_in_pieces_and_its_citations_are_checked(llm_settings, embedder):
    from rag.chain import Assistant

    assistant = Assistant(llm_settings, embedder=embedder)
    assert type(assistant.chat_model).__name__ == "ChatOpenAI"
    pieces, answer = [], None
    for event in assistant.stream(Q):
        if isinstance(event, str):
            pieces.append(event)
        else:
            answer = event
    assert len(pieces) >= 2, "the reply did not stream"  # the model wrote something, piece by piece
    check_answer(answer, assistant.store)
    if answer.mode == "generative":
        assert "".join(pieces).strip() == answer.answer
        assert 0 < answer.timings_ms["first_piece"] <= answer.timings_ms["generate"]
    else:
        assert "could be verified" in answer.notice


def test_cli_streams_against_the_server(llm_url, bundled_index, cli):
    result = cli("ask", Q, "--index-dir", bundled_index.index_dir, "--stream", "--llm-base-url", llm_url,
                 "--llm-model", MODEL_ALIAS)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "Sources:" in result.output
    assert "(generative," in result.output or "could be verified" in result.output


def test_a_request_that_times_out_falls_back(llm_settings, embedder):
    from rag.chain import Assistant

    # No reply comes back within 10 ms from this server: a real timeout, not a simulated one.
    settings = llm_settings.model_copy(update={"llm_timeout": 0.01, "llm_max_retries": 0})
    answer = Assistant(settings, embedder=embedder).ask(Q)
    assert answer.mode == "extractive" and "The language model failed" in answer.notice
    assert "within 0.01 s" in answer.notice or "Timeout" in answer.notice
    assert SUNDAY in " ".join(c.quote for c in answer.citations)


def test_the_api_streams_the_model_over_http(llm_settings, embedder, tmp_path, sse):
    import shutil

    import httpx

    from api.main import create_app
    from conftest import LiveServer

    shutil.copytree(llm_settings.index_dir, tmp_path / "index")
    server = LiveServer(create_app(llm_settings.model_copy(update={"index_dir": tmp_path / "index"}),
                                   embedder=embedder)).start()
    try:
        with httpx.stream("POST", server.url + "/chat", json={"message": Q, "stream": True}, timeout=300) as r:
            assert r.status_code == 200
            events = sse(r.iter_lines())
        names = [e for e, _ in events]
        assert names[-1] == "answer" and "citations" in names and "error" not in names
        answer = events[-1][1]
        tokens = [d["text"] for e, d in events if e == "token"]
        assert len(tokens) >= 2
        if answer["mode"] == "generative":
            assert names.index("citations") > max(i for i, e in enumerate(names) if e == "token")
            assert "".join(tokens).strip() == answer["answer"]
        else:
            assert "could be verified" in answer["notice"]
        r = httpx.post(server.url + "/ask", json={"question": "ما هي عاصمة أستراليا؟"}, timeout=300)
        assert r.status_code == 200 and r.json()["abstained"] is True
    finally:
        server.stop()


def test_an_openai_client_gets_the_models_answer_with_its_citations(llm_settings, embedder, tmp_path):
    import re
    import shutil

    import httpx
    import openai

    from api.main import create_app
    from api.routers.openai_compat import strip_sources
    from conftest import LiveServer

    shutil.copytree(llm_settings.index_dir, tmp_path / "index")
    server = LiveServer(create_app(llm_settings.model_copy(update={"index_dir": tmp_path / "index"}),
                                   embedder=embedder)).start()
    try:
        with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=300) as client:
            assert [m.id for m in client.models.list().data] == ["rag-news", "rag-news-extractive",
                                                                 "rag-news-generative"]
            chunks = list(client.chat.completions.create(model="rag-news-generative", stream=True,
                                                         messages=[{"role": "user", "content": Q}]))
        assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
        content = "".join(c.choices[0].delta.content or "" for c in chunks)
        citations, results = chunks[-1].citations, chunks[-1].search_results
        assert len([c for c in chunks if c.choices[0].delta.content]) >= 3
        # whatever the tiny model wrote: every marker names a listed source, and every source resolves
        answer = strip_sources(content)
        if "this is the extractive answer" in content:  # replaced after it streamed: the replacement comes last
            answer = answer.rsplit("\n\n", 1)[-1]
            assert SUNDAY in " ".join(r["quote"] for r in results)
        assert {int(n) for n in re.findall(r"\[(\d+)\]", answer)} == set(range(1, len(citations) + 1))
        for n, r in enumerate(results, 1):
            assert f"- [{n}] {r['title']} — `{r['id']}`" in content
            assert httpx.get(f"{server.url}/citations/{r['id']}").json()["quote"] == r["quote"]
    finally:
        server.stop()


# -- the chat model as the question translator (RAG_TRANSLATOR=llm, rag/translate/chat.py) ---------------------
TALKS = "When do the Iraq-US talks resume?"


def test_the_chat_model_words_an_english_question_for_bm25(llm_settings, assistant):
    from rag.retrieval import HybridRetriever

    # A wait long enough for a loaded machine: the first request evaluates the 20 pairs (RAG_TRANSLATOR_TIMEOUT's
    # 10 s is a deployment's bound, and a timeout here would be a wall-clock assertion).
    translator = translator_from_settings(llm_settings.model_copy(update={"translator": "llm",
                                                                          "translator_timeout": 300}))
    assert isinstance(translator, ChatTranslator)
    wording = translator(TALKS)
    # One Arabic question, whatever the tiny model runs on to after it through the chat template.
    assert wording and detect_language(wording) == "ar" and wording.endswith("؟")
    assert not re.search("[A-Za-z\n]", wording)
    assert translator(TALKS) == wording and list(translator._cache) == [TALKS]
    s = assistant.settings
    ranked, evidence = HybridRetriever(assistant.store, assistant.encode_query, candidates=s.candidates,
                                       alpha=s.fusion_alpha, translate=translator).rank(TALKS, 5)
    assert any("bm25" in evidence.get(row, {}) for row in ranked.rows)


def test_a_translator_whose_server_is_down_is_asked_again_a_minute_later(assistant, caplog):
    from rag.chain import Assistant

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    translator = translator_from_settings(assistant.settings.model_copy(update={
        "translator": "llm", "llm_base_url": f"http://127.0.0.1:{port}/v1", "llm_model": "m"}))
    asked = []
    generate = translator.generate
    translator.generate = lambda question: asked.append(question) or generate(question)
    with caplog.at_level(logging.WARNING, logger="rag.translate"):
        assert translator(TALKS) is None and translator("Who commands Iran's Quds Force?") is None
    assert len(asked) == 1 and caplog.text.count("translator failed") == 1
    translator._failed_at -= translator.retry_after + 1  # a minute on
    assert translator("Who commands Iran's Quds Force?") is None and len(asked) == 2
    answer = Assistant(assistant.settings, embedder=assistant.embedder, store=assistant.store,
                       translator=translator).ask(TALKS)
    assert not answer.abstained and answer.citations[0].doc_id == "002_f7322d59d6e02373"  # the talks article
