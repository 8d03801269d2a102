"""Route tests through FastAPI's TestClient, with the real model, FAISS and SQLite, on copies of the bundled index.

The expected answers were checked by reading data/articles/ (002_*: بغداد announced, through its spokesman
يحيى رسول, that the talks resume on Sunday 11 February 2024).
"""

from __future__ import annotations

import contextlib
import json
import shutil

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from rag.citations import lookup_citation

RESUME_Q = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"
TALKS_DOC = "002_f7322d59d6e02373"


@contextlib.contextmanager
def running(settings, embedder=None, ready: bool = True):
    """A TestClient with the lifespan run and the background load finished."""
    app = create_app(settings, embedder=embedder)
    with TestClient(app) as client:
        assert app.state.loader.done.wait(120), "loading did not finish"
        if ready:
            assert app.state.loader.engine is not None, app.state.loader.error
        yield client


@pytest.fixture(scope="module", params=["local", "milvus"])
def client(request, embedder, tmp_path_factory):
    """The API on a copy of the bundled index, in each passage store (RAG_STORE) in turn."""
    from conftest import store_copy

    with running(store_copy(request, request.param, tmp_path_factory.mktemp("api")), embedder) as c:
        yield c


def assert_error(response, status: int, *words: str) -> dict:
    """A 4xx JSON error that says what is wrong (and never a traceback)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["detail"] and body["error"], body
    text = json.dumps(body, ensure_ascii=False)
    assert "Traceback" not in text
    for w in words:
        assert w in text, text
    return body


# -- answers --------------------------------------------------------------------------------------------------
def test_ask_returns_the_answer_object_of_the_cli(client, assistant):
    r = client.post("/ask", json={"question": RESUME_Q})
    assert r.status_code == 200, r.text
    got = r.json()
    expected = assistant.ask(RESUME_Q).model_dump()
    assert set(got) == set(expected)
    for key in ("question", "answer", "abstained", "mode", "citations"):
        assert got[key] == expected[key], key
    assert any(c["doc_id"] == TALKS_DOC and "الأحد" in c["quote"] for c in got["citations"])
    assert set(got["timings_ms"]) >= {"retrieve", "answer", "total"}


def test_ask_takes_k(client):
    r = client.post("/ask", json={"question": RESUME_Q, "k": 1})
    assert r.status_code == 200 and r.json()["citations"][0]["doc_id"] == TALKS_DOC


def test_a_follow_up_is_made_standalone_and_the_reply_carries_the_session(client):
    first = client.post("/chat", json={"message": RESUME_Q}).json()
    assert first["session_id"] and first["standalone_question"] == RESUME_Q
    second = client.post("/chat", json={"message": "ومن أعلن ذلك؟", "session_id": first["session_id"]}).json()
    assert second["question"] == "ومن أعلن ذلك؟"  # the user's words stay the question
    assert second["session_id"] == first["session_id"]
    assert "المحادثات" in second["standalone_question"] and "أعلن" in second["standalone_question"]
    quotes = " ".join(c["quote"] for c in second["citations"])
    assert {c["doc_id"] for c in second["citations"]} == {TALKS_DOC}
    assert "بغداد" in quotes or "يحيى رسول" in quotes
    # a new session has no earlier turn to lean on
    alone = client.post("/chat", json={"message": "ومن أعلن ذلك؟"}).json()
    assert alone["session_id"] != first["session_id"] and alone["standalone_question"] == "ومن أعلن ذلك؟"


def test_sessions_survive_a_restart(index_copy, embedder):
    with running(index_copy, embedder) as c:
        session = c.post("/chat", json={"message": RESUME_Q}).json()["session_id"]
    with running(index_copy, embedder) as c:  # a new app on the same sessions file
        reply = c.post("/chat", json={"message": "ومن أعلن ذلك؟", "session_id": session}).json()
    assert "المحادثات" in reply["standalone_question"]
    assert (index_copy.index_dir / "sessions.sqlite").is_file()


def test_chat_streams_citations_then_tokens_then_the_answer(client, sse):
    with client.stream("POST", "/chat", json={"message": RESUME_Q, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse(r.iter_lines())
    names = [name for name, _ in events]
    assert names[0] == "citations" and names[-1] == "answer" and set(names[1:-1]) == {"token"}
    answer = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "token") == answer["answer"]
    assert events[0][1] == answer["citations"] and answer["session_id"]


# -- search, citations, documents -----------------------------------------------------------------------------
def test_search_ranks_passages_with_scores_and_citation_ids(client, assistant):
    hits = client.get("/search", params={"q": "عين الأسد", "k": 3}).json()
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    for h in hits:
        doc = assistant.store.document(h["doc_id"])
        assert h["id"] == f"{h['doc_id']}:{h['start']}-{h['end']}"
        assert doc.text[h["start"]:h["end"]] == h["text"] and h["title"] == doc.title
        assert set(h["scores"]) <= {"dense", "bm25"} and h["scores"]
    assert hits[0]["doc_id"] == "000_3ec499f8665a1831"


def test_citation_lookup_is_the_same_as_rag_cite(client, assistant):
    cited = client.post("/ask", json={"question": RESUME_Q}).json()["citations"][0]
    view = client.get(f"/citations/{cited['id']}", params={"context": 50}).json()
    assert view == lookup_citation(assistant.store, cited["id"], 50).to_dict()
    assert view["quote"] == cited["quote"] and len(view["context_before"]) <= 50


@pytest.mark.parametrize("path,status,words", [
    ("/citations/nope:1-2", 404, ["nope"]),
    (f"/citations/{TALKS_DOC}:10-999999", 404, ["outside"]),
    ("/citations/not-an-id", 422, ["malformed"]),
    (f"/citations/{TALKS_DOC}:20-10", 422, ["start must be smaller"]),
    ("/citations/a%2Fb:1-2", 422, ["malformed"]),
    ("/documents/nope", 404, ["nope"]),
    ("/documents/..%2F..%2Fetc%2Fpasswd", 422, ["path character"]),
    ("/documents/a..b", 422, ["path character"]),
    ("/documents/bad%20id", 422, ["letters, digits"]),
])
def test_lookups_of_unknown_or_malformed_ids(client, path, status, words):
    assert_error(client.get(path), status, *words)


def test_documents_are_listed_and_read(client, assistant):
    listed = client.get("/documents").json()
    assert [d["id"] for d in listed] == [d.id for d in assistant.store.documents()]
    assert all("path" not in d for d in listed)  # server paths are not exposed
    doc = client.get(f"/documents/{TALKS_DOC}").json()
    assert doc["text"] == assistant.store.document(TALKS_DOC).text and doc["chars"] == len(doc["text"])


def test_health_reports_the_model_and_the_index(client, assistant):
    h = client.get("/health").json()
    assert h["ready"] and h["status"] == "ready"
    assert h["model"] == assistant.embedder.model_id
    assert (h["documents"], h["passages"]) == (assistant.store.document_count(), len(assistant.store))


# -- changing the corpus --------------------------------------------------------------------------------------
WHEAT = {"id": "wheat_2024", "title": "محصول القمح", "source": "test",
         "text": "أعلنت وزارة الزراعة المغربية أن محصول القمح بلغ سبعة ملايين طن هذا الموسم."}


def test_add_answer_and_delete_an_article(any_store_copy, embedder):
    with running(any_store_copy, embedder) as c:
        r = c.post("/documents", json=WHEAT)
        assert r.status_code == 201 and r.json()["added"] == ["wheat_2024"] and r.json()["documents"] == 6
        assert c.post("/documents", json=WHEAT).json()["unchanged"] == ["wheat_2024"]
        answer = c.post("/ask", json={"question": "كم بلغ محصول القمح في المغرب؟"}).json()
        assert [x["doc_id"] for x in answer["citations"]][:1] == ["wheat_2024"]
        assert c.get("/documents/wheat_2024").json()["text"] == WHEAT["text"]
        md = "# تقرير\n\nافتتحت المدينة مكتبة عامة جديدة تضم عشرين ألف كتاب.\n".encode()
        r = c.post("/documents", files={"file": ("library.md", md, "text/markdown")})
        assert r.status_code == 201 and r.json()["added"] == ["library"]
        assert c.get("/health").json()["documents"] == 7
        assert c.delete("/documents/wheat_2024").json()["removed"] == ["wheat_2024"]
        assert_error(c.get("/documents/wheat_2024"), 404)
        assert_error(c.delete("/documents/wheat_2024"), 404, "wheat_2024")
        assert c.get("/health").json()["documents"] == 6


def test_an_english_question_finds_an_article_just_added_and_every_version_shares_one_cross_language_model(
        index_copy, embedder):
    with running(index_copy, embedder) as c:
        engine = c.app.state.loader.engine
        shared, translator = engine.cross_lingual, engine.translator
        before = engine.assistant
        assert shared is not None and before.extractive.cross_lingual is shared
        assert before.hybrid.translate is translator and before.extractive.translate is translator
        # both warmed when the server started, not by its first English question
        assert shared._model is not None and translator._model is not None
        assert c.post("/documents", json=WHEAT).status_code == 201
        answer = c.post("/ask", json={"question": "How big was Morocco's wheat harvest this season?"}).json()
        assert not answer["abstained"] and answer["citations"][0]["doc_id"] == "wheat_2024"
        assert "سبعة ملايين طن" in answer["citations"][0]["quote"]
        new = engine.assistant
        assert new is not before and new.extractive.cross_lingual is shared and new.hybrid.cross_lingual is shared
        assert new.hybrid.translate is translator and "How big was Morocco's wheat harvest this season?" in \
            translator._cache


def test_a_version_written_by_another_process_is_picked_up(any_store_copy, embedder, tmp_path):
    from rag.chain import build_index

    article = tmp_path / "bridge.txt"
    article.write_text("افتتاح جسر\nافتتحت البلدية جسرا جديدا فوق النهر يربط ضفتي المدينة.\n", encoding="utf-8")
    with running(any_store_copy, embedder) as c:
        assert c.get("/health").json()["documents"] == 5
        build_index([article], any_store_copy, embedder)  # as `rag index` would, beside the server
        assert c.get("/health").json()["documents"] == 6
        assert "bridge" in {d["id"] for d in c.get("/documents").json()}


def test_a_jsonl_upload_reports_the_lines_it_skipped(index_copy, embedder):
    lines = json.dumps({"id": "ok_1", "text": "نص مقال صالح للفهرسة."}, ensure_ascii=False) + "\n{broken\n"
    with running(index_copy, embedder) as c:
        r = c.post("/documents", files={"file": ("batch.jsonl", lines.encode())})
    assert r.status_code == 201 and r.json()["added"] == ["ok_1"]
    assert r.json()["skipped"][0]["line"] == 2 and "malformed JSON" in r.json()["skipped"][0]["reason"]


@pytest.mark.parametrize("kwargs,status,words", [
    ({"files": {"file": ("report.pdf", b"%PDF-1.4")}}, 415, [".pdf"]),
    ({"files": {"file": ("noext", b"text")}}, 415, ["(none)"]),
    ({"files": {"file": ("../../etc/evil.txt", b"text")}}, 422, ["path characters"]),
    ({"files": {"file": ("empty.txt", b"   \n")}}, 422, ["empty file"]),
    ({"files": {"file": ("bin.txt", b"abc\x00def")}}, 422, ["binary"]),
    ({"files": {"file": ("latin.txt", "café".encode("latin-1"))}}, 422, ["not UTF-8"]),
    ({"files": {"other": ("a.txt", b"text")}}, 422, ["'file'"]),
    ({"json": {**WHEAT, "id": "../etc/passwd"}}, 422, ["id"]),
    ({"json": {**WHEAT, "id": "a..b"}}, 422, [".."]),
    ({"json": {**WHEAT, "text": "   "}}, 422, ["text"]),
    ({"json": {**WHEAT, "extra": 1}}, 422, ["extra"]),
    ({"json": {**WHEAT, "title": 5}}, 422, ["title"]),
    ({"content": b"id=1", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415, ["application/json"]),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, ["JSON"]),
])
def test_bad_uploads_are_refused_with_the_reason(client, kwargs, status, words):
    assert_error(client.post("/documents", **kwargs), status, *words)
    assert client.get("/health").json()["documents"] == 5


# -- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path,body,status,words", [
    ("/ask", {"question": ""}, 422, ["question"]),
    ("/ask", {"question": " \n\t "}, 422, ["empty"]),
    ("/ask", {"question": "س" * 2001}, 422, ["2001", "2000"]),
    ("/ask", {"question": 42}, 422, ["string"]),
    ("/ask", {"question": None}, 422, ["question"]),
    ("/ask", {"question": ["a"]}, 422, ["string"]),
    ("/ask", {}, 422, ["question"]),
    ("/ask", {"question": "q", "k": 0}, 422, ["k"]),
    ("/ask", {"question": "q", "k": "many"}, 422, ["k"]),
    ("/ask", {"question": "q", "top": 3}, 422, ["top"]),
    ("/ask", [RESUME_Q], 422, []),
    ("/chat", {"message": "   "}, 422, ["empty"]),
    ("/chat", {"message": "q", "session_id": "../x"}, 422, ["session_id"]),
    ("/chat", {"message": "q", "stream": "sometimes"}, 422, ["stream"]),
    ("/chat", {"message": "q", "\ud800": 1}, 422, ["unicode"]),
])
def test_bad_questions_get_a_4xx_that_says_what_is_wrong(client, path, body, status, words):
    assert_error(client.post(path, content=json.dumps(body), headers={"content-type": "application/json"}),
                 status, *words)


def test_a_lone_surrogate_is_refused_not_a_500(client):
    r = client.post("/ask", content=b'{"question": "\\ud800 \\u0645\\u062a\\u0649"}',
                    headers={"content-type": "application/json"})
    assert_error(r, 422, "unicode")


def test_search_validates_its_query(client):
    assert_error(client.get("/search", params={"q": "  "}), 422, "empty")
    assert_error(client.get("/search"), 422, "q")
    assert_error(client.get("/search", params={"q": "x", "k": 0}), 422, "k")
    assert_error(client.get("/nowhere"), 404)


def test_over_large_bodies_get_413(index_copy, embedder):
    small = index_copy.model_copy(update={"max_upload_bytes": 1_000})
    with running(small, embedder) as c:
        assert_error(c.post("/ask", json={"question": "س" * 600}), 413, "1000")
        # no Content-Length (chunked): the limit is enforced while reading
        chunks = (b'{"question": "' + b"x" * 400, b"x" * 400, b"x" * 400 + b'"}')
        assert_error(c.post("/ask", content=iter(chunks), headers={"content-type": "application/json"}), 413)
        assert_error(c.post("/documents", files={"file": ("big.txt", b"x" * 5_000)}), 413)
        assert c.post("/ask", json={"question": RESUME_Q}).status_code == 200


# -- security and readiness -----------------------------------------------------------------------------------
def test_an_api_key_is_required_when_configured(index_copy, embedder):
    keyed = index_copy.model_copy(update={"api_key": SecretStr("s3cret")})
    with running(keyed, embedder) as c:
        r = c.post("/ask", json={"question": RESUME_Q})
        assert_error(r, 401, "Bearer")
        assert r.headers["www-authenticate"] == "Bearer"
        assert_error(c.get("/documents", headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(c.get("/citations/x:1-2", headers={"Authorization": "s3cret"}), 401)
        assert c.get("/documents", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/health").status_code == 200  # probes need no key
        assert "HTTPBearer" in c.get("/openapi.json").json()["components"]["securitySchemes"]


def test_cors_is_off_by_default_and_configurable(index_copy, embedder):
    preflight = {"Origin": "https://news.example", "Access-Control-Request-Method": "POST"}
    with running(index_copy, embedder) as c:
        assert "access-control-allow-origin" not in c.options("/ask", headers=preflight).headers
    with running(index_copy.model_copy(update={"cors_origins": "https://news.example"}), embedder) as c:
        r = c.options("/ask", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://news.example"
        other = c.options("/ask", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_health_says_loading_before_the_lifespan_has_loaded(index_copy):
    c = TestClient(create_app(index_copy))  # no `with`: the lifespan has not run
    assert c.get("/health").status_code == 503 and c.get("/health").json()["status"] == "loading"
    assert_error(c.post("/ask", json={"question": RESUME_Q}), 503, "not ready")


def test_a_failed_load_is_reported_not_a_crash(index_copy):
    wrong_model = index_copy.model_copy(update={"embedding_model": "/no/such/model"})
    with running(wrong_model, ready=False) as c:
        h = c.get("/health")
        assert h.status_code == 503 and h.json()["status"] == "failed" and "/no/such/model" in h.json()["error"]
        assert_error(c.post("/ask", json={"question": RESUME_Q}), 503, "/no/such/model")


def test_rag_serve_refuses_a_public_address_without_an_api_key(cli, monkeypatch):
    monkeypatch.delenv("RAG_API_KEY", raising=False)
    result = cli("serve", "--host", "0.0.0.0", "--port", "8765")
    assert result.exit_code == 1 and "RAG_API_KEY" in result.stderr and "Traceback" not in result.output


def test_the_openapi_schema_documents_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/ask", "/chat", "/search", "/citations/{citation_id}", "/documents", "/documents/{doc_id}",
            "/health"} <= set(paths)
    assert set(paths["/documents"]["post"]["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "text/event-stream" in paths["/chat"]["post"]["responses"]["200"]["content"]
    assert client.get("/docs").status_code == 200
