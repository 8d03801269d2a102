"""The OpenAI-compatible API, end to end: the official `openai` client against a real uvicorn server on a free
127.0.0.1 port (the session's live server, over a copy of the bundled index).

The answers were checked by reading data/articles/: 002_* says بغداد announced (its spokesman يحيى رسول
quoted) that the talks with the United States resume on Sunday 11 February 2024.
"""

from __future__ import annotations

import re

import httpx
import openai
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from pydantic import SecretStr

from api.routers.openai_compat import strip_sources
from rag.arabic import normalize
from test_generate import ScriptedChatModel, passage_number

TALKS_DOC = "002_f7322d59d6e02373"
RESUME_Q = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"
FOLLOW_UP = "ومن أعلن ذلك؟"


@pytest.fixture(scope="module")
def client(live_server):
    # any key: the server has none configured; retries off, so an error is seen as it is
    with openai.OpenAI(base_url=live_server.url + "/v1", api_key="anything", max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def http(live_server):
    with httpx.Client(base_url=live_server.url, timeout=120) as c:
        yield c


def ask(client, *messages, **kwargs):
    turns = [m if isinstance(m, dict) else {"role": "user", "content": m} for m in messages]
    return client.chat.completions.create(model="rag-news", messages=turns, **kwargs)


def answer_part(content: str) -> str:
    return strip_sources(content)


def markers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


# -- models ---------------------------------------------------------------------------------------------------
def test_the_models_are_listed_in_openais_format(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["rag-news"]  # extractive only: no chat model is configured
    assert models.data[0].object == "model" and models.data[0].owned_by == "rag-news"
    assert client.models.retrieve("rag-news").id == "rag-news"
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("rag-news-generative")
    assert e.value.code == "model_not_found"


def test_an_unknown_model_is_openais_404_model_not_found(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": RESUME_Q}])
    assert e.value.code == "model_not_found" and e.value.param == "model" and "rag-news" in e.value.message


# -- answers --------------------------------------------------------------------------------------------------
def test_an_answer_carries_markers_sources_and_citations_that_resolve(client, http):
    completion = ask(client, RESUME_Q)
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "rag-news" and completion.choices[0].finish_reason == "stop"
    message = completion.choices[0].message
    assert message.role == "assistant"
    answer = answer_part(message.content)
    numbers = markers(answer)
    citations, results = completion.citations, completion.search_results  # Perplexity's extra fields
    assert numbers and sorted(set(numbers)) == list(range(1, len(citations) + 1))
    assert [r["id"] for r in results] == citations
    # the text alone shows the sources: one line per marker, with the title and the citation id
    sources = message.content[len(answer):]
    assert sources.startswith("\n\nالمصادر:\n")
    for n, r in enumerate(results, 1):
        assert f"- [{n}] {r['title']} — `{r['id']}`" in sources
    for r in results:
        view = http.get(f"/citations/{r['id']}").json()
        assert view["quote"] == r["quote"] and view["title"] == r["title"] and view["date"] == r["date"]
    assert any(r["id"].startswith(TALKS_DOC) and "الأحد" in r["quote"] for r in results)
    # the same passages /ask cites, in the same order
    assert citations == [c["id"] for c in http.post("/ask", json={"question": RESUME_Q}).json()["citations"]]
    u = completion.usage
    assert u.prompt_tokens > 5 and u.completion_tokens > u.prompt_tokens
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_an_english_question_gets_an_english_sources_heading(client):
    completion = ask(client, "When do the talks between Iraq and the United States resume?")
    assert "\n\nSources:\n- [1] " in completion.choices[0].message.content
    assert completion.citations[0].startswith(TALKS_DOC)


def test_the_streamed_deltas_join_to_the_content(client):
    whole = ask(client, RESUME_Q)
    chunks = list(ask(client, RESUME_Q, stream=True, stream_options={"include_usage": True}))
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    first, *middle, last, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert len(middle) >= 5 and all(c.choices[0].finish_reason is None for c in middle)
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == whole.choices[0].message.content
    assert last.choices[0].finish_reason == "stop"
    assert last.citations == whole.citations and last.search_results == whole.search_results
    assert usage.choices == [] and usage.usage == whole.usage


def test_a_stream_without_usage_ends_with_finish_reason_and_citations(client, live_server):
    body = {"model": "rag-news", "stream": True, "messages": [{"role": "user", "content": RESUME_Q}]}
    with httpx.stream("POST", live_server.url + "/v1/chat/completions", json=body, timeout=120) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        data = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [openai.types.chat.ChatCompletionChunk.model_validate_json(d) for d in data[:-1]]
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].citations
    assert all(c.usage is None for c in chunks)


def test_a_two_turn_conversation_whose_second_turn_needs_the_first(client):
    first = ask(client, RESUME_Q)
    reply = {"role": "assistant", "content": first.choices[0].message.content}  # with its Sources block
    second = ask(client, RESUME_Q, reply, FOLLOW_UP)
    assert second.citations and all(c.startswith(TALKS_DOC) for c in second.citations)
    quotes = " ".join(r["quote"] for r in second.search_results)
    # who announced the resumption: Baghdad, through its spokesman
    assert ("بغداد" in quotes or "يحيى رسول" in quotes) and "تستأنف" in quotes
    # the Sources block of our earlier reply is not part of the conversation: without it, the same answer
    bare = ask(client, RESUME_Q, {"role": "assistant", "content": answer_part(reply["content"])}, FOLLOW_UP)
    assert bare.citations == second.citations
    # the same words without the first turn do not find that announcement
    alone = ask(client, FOLLOW_UP)
    assert "تستأنف" not in " ".join(r["quote"] for r in alone.search_results)


def test_system_messages_and_content_parts_are_read_as_openai_clients_send_them(client):
    plain = ask(client, RESUME_Q)
    parts = ask(client, {"role": "system", "content": "You are a helpful assistant. Answer in Arabic."},
                {"role": "user", "content": [{"type": "text", "text": RESUME_Q},
                                             {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}}]},
                n=1, stop=["\n\n\n"], temperature=0.3, max_tokens=50, user="u-1", seed=7, top_p=0.9,
                extra_body={"logit_bias": {}, "some_future_field": {"x": 1}})
    assert parts.citations == plain.citations
    assert parts.choices[0].message.content == plain.choices[0].message.content


@pytest.mark.parametrize("question,lang", [("ما هي عاصمة أستراليا؟", "ar"), ("Who painted the Mona Lisa?", "en")])
def test_an_unanswerable_question_is_a_normal_reply_without_sources(client, question, lang):
    completion = ask(client, question)
    content = completion.choices[0].message.content
    assert content.startswith("لم أجد" if lang == "ar" else "I could not find")
    assert completion.citations == [] and completion.search_results == [] and not markers(content)
    assert "Sources" not in content and "المصادر" not in content
    assert completion.choices[0].finish_reason == "stop"
    streamed = list(ask(client, question, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == content
    assert streamed[-1].citations == []


# -- bad requests ---------------------------------------------------------------------------------------------
USER_Q = [{"role": "user", "content": "q"}]
BAD = [  # (body, the exception the client raises, param)
    ({"model": "rag-news"}, openai.BadRequestError, "messages"),
    ({"model": "rag-news", "messages": []}, openai.BadRequestError, "messages"),
    ({"model": "rag-news", "messages": [{"role": "system", "content": "be nice"}]}, openai.BadRequestError,
     "messages"),
    ({"model": "rag-news", "messages": "hello"}, openai.BadRequestError, "messages"),
    ({"model": "rag-news", "messages": [{"role": "user", "content": 5}]}, openai.BadRequestError,
     "messages[0].content"),
    ({"model": "rag-news", "messages": [{"role": "wizard", "content": "q"}]}, openai.BadRequestError,
     "messages[0].role"),
    ({"model": "rag-news", "messages": [{"content": "q"}]}, openai.BadRequestError, "messages[0].role"),
    ({"model": "rag-news", "messages": [{"role": "user", "content": "  "}]}, openai.BadRequestError, "messages"),
    ({"model": "rag-news", "messages": [{"role": "user", "content": "ق" * 5000}]}, openai.BadRequestError,
     "messages"),
    ({"model": "rag-news", "stream": "yes", "messages": USER_Q}, openai.BadRequestError, "stream"),
    ({"model": 3, "messages": USER_Q}, openai.BadRequestError, "model"),
    ({"messages": USER_Q}, openai.BadRequestError, "model"),
    ({"model": "rag-news", "temperature": 9, "messages": USER_Q}, openai.BadRequestError, "temperature"),
    ({"model": "nope", "messages": USER_Q}, openai.NotFoundError, "model"),
]


@pytest.mark.parametrize("body,error,param", BAD, ids=[f"{e.__name__}-{p}-{i}" for i, (_, e, p) in enumerate(BAD)])
def test_bad_requests_raise_the_clients_own_errors_with_openai_shaped_bodies(client, body, error, param):
    with pytest.raises(error) as e:
        client.post("/chat/completions", body=body, cast_to=object)
    shaped = e.value.response.json()
    assert set(shaped) == {"error"} and set(shaped["error"]) == {"message", "type", "param", "code"}
    assert shaped["error"]["type"] == "invalid_request_error" and shaped["error"]["message"]
    assert e.value.param == param and e.value.code and "Traceback" not in e.value.response.text


def test_a_body_that_is_not_json_is_a_bad_request(live_server):
    r = httpx.post(live_server.url + "/v1/chat/completions", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


def test_unknown_v1_paths_are_openai_shaped_and_the_rest_of_the_api_keeps_its_shape(http):
    r = http.get("/v1/embeddings")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = http.post("/ask", json={})
    assert r.status_code == 422 and set(r.json()) == {"detail", "error"}


def test_the_api_key_guards_the_v1_routes_with_an_openai_shaped_401(index_copy, embedder):
    from api.main import create_app

    from conftest import LiveServer

    server = LiveServer(create_app(index_copy.model_copy(update={"api_key": SecretStr("s3cret")}),
                                   embedder=embedder)).start()
    try:
        for key in ("wrong", "s3cret-and-more"):
            with openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0) as wrong:
                with pytest.raises(openai.AuthenticationError) as e:
                    wrong.models.list()
                assert e.value.code == "invalid_api_key" and e.value.response.headers["www-authenticate"] == "Bearer"
                with pytest.raises(openai.AuthenticationError):
                    ask(wrong, RESUME_Q)
        with openai.OpenAI(base_url=server.url + "/v1", api_key="s3cret", max_retries=0, timeout=120) as right:
            assert [m.id for m in right.models.list().data] == ["rag-news"]
            assert ask(right, RESUME_Q).citations[0].startswith(TALKS_DOC)
            assert list(ask(right, RESUME_Q, stream=True))[-1].citations
        assert httpx.get(server.url + "/health").status_code == 200
    finally:
        server.stop()


# -- with a chat model ---------------------------------------------------------------------------------------
DATE = "11 فبراير 2024"


class FailingMidway(ScriptedChatModel):
    """A scripted model whose reply may break off: an exception among the pieces is raised there."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        for piece in self._next(messages):
            if isinstance(piece, Exception):
                raise piece
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


@pytest.fixture
def generative_server(index_copy, embedder):
    from api.main import create_app
    from rag.chain import Assistant

    from conftest import LiveServer

    n = passage_number(Assistant(index_copy, embedder=embedder), RESUME_Q, DATE)
    model = FailingMidway(replies=[])
    server = LiveServer(create_app(index_copy, embedder=embedder, chat_model=model)).start()
    with openai.OpenAI(base_url=server.url + "/v1", api_key="anything", max_retries=0, timeout=120) as c:
        yield c, model, n
    server.stop()


def test_with_a_chat_model_the_generated_answer_streams_and_equals_the_unstreamed_one(generative_server, client):
    extractive_only = client
    client, model, n = generative_server
    assert [m.id for m in client.models.list().data] == ["rag-news", "rag-news-extractive", "rag-news-generative"]
    reply = [" تستأنف ", "المحادثات الأحد ", DATE, " [", str(n), "]. "]  # the model's spaces at both ends
    model.replies += [list(reply), list(reply)]
    whole = client.chat.completions.create(model="rag-news-generative",
                                           messages=[{"role": "user", "content": RESUME_Q}])
    content = whole.choices[0].message.content
    assert content.startswith(f"تستأنف المحادثات الأحد {DATE} [1].\n\nالمصادر:\n- [1] ")
    assert len(whole.citations) == 1 and DATE in whole.search_results[0]["quote"]
    chunks = list(client.chat.completions.create(model="rag-news", stream=True,
                                                 messages=[{"role": "user", "content": RESUME_Q}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == content
    assert chunks[-1].citations == whole.citations
    # rag-news-extractive does not ask the model
    calls = len(model.calls)
    extractive = client.chat.completions.create(model="rag-news-extractive",
                                                messages=[{"role": "user", "content": RESUME_Q}])
    assert len(model.calls) == calls
    assert extractive.choices[0].message.content == ask(extractive_only, RESUME_Q).choices[0].message.content


def test_a_follow_up_is_condensed_by_the_model_from_the_history_without_our_sources_block(generative_server):
    client, model, n = generative_server
    model.replies += [["من أعلن أن المحادثات مع واشنطن تستأنف الأحد؟"],  # the condensed question
                      [f"أعلن ذلك يحيى رسول [1]."]]
    earlier = f"تستأنف المحادثات الأحد {DATE} [1].\n\nالمصادر:\n- [1] العراق يعلن — `{TALKS_DOC}:364-625`"
    reply = client.chat.completions.create(model="rag-news", messages=[
        {"role": "system", "content": "Answer briefly."}, {"role": "user", "content": RESUME_Q},
        {"role": "assistant", "content": earlier}, {"role": "user", "content": FOLLOW_UP}])
    condense_prompt = " ".join(m.content for m in model.calls[-2])
    assert f"تستأنف المحادثات الأحد {DATE} [1]." in condense_prompt and "المصادر" not in condense_prompt
    answer_prompt = " ".join(m.content for m in model.calls[-1])
    assert "من أعلن أن المحادثات مع واشنطن تستأنف الأحد؟" in answer_prompt  # retrieved and answered standalone
    assert reply.citations and reply.citations[0].startswith(TALKS_DOC)


def test_a_generated_answer_replaced_midway_says_so_and_goes_on_with_the_extractive_one(generative_server):
    client, model, n = generative_server
    model.replies += [["تستأنف ", "المحادثات", ConnectionError("the model server went away")],
                      ["تستأنف ", "المحادثات", ConnectionError("the model server went away")]]
    whole = client.chat.completions.create(model="rag-news", messages=[{"role": "user", "content": RESUME_Q}])
    content = whole.choices[0].message.content
    assert content.endswith("(The language model failed (ConnectionError: the model server went away); "
                            "this is the extractive answer.)")
    assert whole.citations and "تستأنف الأحد" in whole.search_results[0]["quote"] and "\n\nالمصادر:\n" in content
    chunks = list(client.chat.completions.create(model="rag-news", stream=True,
                                                 messages=[{"role": "user", "content": RESUME_Q}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "تستأنف المحادثات\n\n" + content
    assert chunks[-1].citations == whole.citations


# -- fuzzing --------------------------------------------------------------------------------------------------
@pytest.fixture
def v1_schema(live_server):
    return schemathesis.openapi.from_url(live_server.url + "/openapi.json")


v1 = schemathesis.pytest.from_fixture("v1_schema").include(path_regex="^/v1/")


@v1.parametrize()
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_fuzzing_the_v1_routes_finds_no_server_error(case, live_server):
    responses = [case.call(timeout=120)]
    body = case.body
    if case.path == "/v1/chat/completions" and isinstance(body, dict) and isinstance(body.get("messages"), list):
        # Random bodies rarely name the model and end with a user message: steer a copy into the chain, so
        # that what the fuzzer wrote in the messages (and the other fields) is also answered, not only refused.
        history = [m for m in body["messages"] if isinstance(m, dict) and isinstance(m.get("content"), str)
                   and m.get("role") in ("system", "user", "assistant")]
        question = next((m["content"] for m in history if m["content"].strip()), RESUME_Q)
        steered = {"model": "rag-news", "messages": [*history, {"role": "user", "content": question}],
                   "stream": body.get("stream") is True}
        responses.append(httpx.post(live_server.url + case.path, json=steered, timeout=120))
    for r in responses:
        assert r.status_code < 500, f"{case.method} {case.formatted_path}: {r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            assert set(r.json()["error"]) == {"message", "type", "param", "code"}, r.text[:300]


def test_a_sources_block_is_stripped_only_at_the_end():
    answer = "قالت بغداد إن المحادثات تستأنف الأحد. [1]"
    sent = f"{answer}\n\nالمصادر:\n- [1] عنوان — `d:0-10`\n\n(a notice)"
    assert strip_sources(sent) == answer
    assert strip_sources("Sources:\n- [1] not ours, mid-text, kept") == "Sources:\n- [1] not ours, mid-text, kept"
    assert normalize(strip_sources("no sources at all")) == normalize("no sources at all")
