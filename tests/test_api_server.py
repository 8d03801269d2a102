"""End to end over HTTP: a real uvicorn server on a free 127.0.0.1 port, talked to with httpx.

The answers were checked by reading data/articles/: 002_* says بغداد announced (its spokesman يحيى رسول
quoted) that the talks with the United States resume on Sunday 11 February 2024.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from rag.arabic import normalize

TALKS_DOC = "002_f7322d59d6e02373"
RESUME_Q = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"


@pytest.fixture(scope="module")
def http(live_server):
    with httpx.Client(base_url=live_server.url, timeout=120) as client:
        yield client


def test_health_is_ready_with_the_model_and_the_index(http, embedder):
    h = http.get("/health").json()
    assert h["ready"] and h["model"] == embedder.model_id
    assert h["documents"] == 5 and h["passages"] > 5 and h["index_version"].startswith("gen-")


# -- conversation ---------------------------------------------------------------------------------------------
def test_a_two_turn_conversation_whose_second_turn_needs_the_first(http):
    first = http.post("/chat", json={"message": RESUME_Q}).json()
    assert any(c["doc_id"] == TALKS_DOC and "الأحد" in c["quote"] for c in first["citations"])
    second = http.post("/chat", json={"message": "ومن أعلن ذلك؟", "session_id": first["session_id"]}).json()
    assert second["question"] == "ومن أعلن ذلك؟" and second["session_id"] == first["session_id"]
    assert not second["abstained"] and {c["doc_id"] for c in second["citations"]} == {TALKS_DOC}
    quotes = " ".join(c["quote"] for c in second["citations"])
    # who announced the resumption: Baghdad, through its spokesman
    assert ("بغداد" in quotes or "يحيى رسول" in quotes) and "تستأنف" in quotes
    # the same words without the first turn do not find that announcement
    alone = http.post("/chat", json={"message": "ومن أعلن ذلك؟"}).json()
    assert "تستأنف" not in " ".join(c["quote"] for c in alone["citations"])


def test_an_english_follow_up(http):
    first = http.post("/chat", json={"message": "When do the talks between Iraq and the United States resume?"}).json()
    second = http.post("/chat", json={"message": "and who announced that?", "session_id": first["session_id"]}).json()
    assert "Iraq" in second["standalone_question"] and "announced" in second["standalone_question"]
    assert second["citations"] and all(c["doc_id"] == TALKS_DOC for c in second["citations"])


def test_streamed_events_arrive_in_order(http, sse):
    with http.stream("POST", "/chat", json={"message": RESUME_Q, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse(r.iter_lines())
    names = [n for n, _ in events]
    assert names[0] == "citations" and names[-1] == "answer"
    assert names.count("token") >= 3 and set(names[1:-1]) == {"token"}
    answer = events[-1][1]
    assert "".join(d["text"] for n, d in events if n == "token") == answer["answer"]
    assert events[0][1] == answer["citations"] and answer["citations"][0]["doc_id"] == TALKS_DOC
    # the streamed turn is part of its session: a follow-up leans on it
    follow = http.post("/chat", json={"message": "ومن أعلن ذلك؟", "session_id": answer["session_id"]}).json()
    assert "المحادثات" in follow["standalone_question"]


def test_clients_that_disconnect_midway_leave_the_server_healthy(live_server, http):
    for _ in range(5):
        with httpx.Client(base_url=live_server.url, timeout=60) as c:
            with c.stream("POST", "/chat", json={"message": RESUME_Q, "stream": True}) as r:
                next(r.iter_lines())  # read the first line, then drop the connection
    with socket.create_connection(("127.0.0.1", int(live_server.url.rsplit(":", 1)[1]))) as s:  # half a request
        s.sendall(b'POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mes')
    assert http.get("/health").json()["ready"]
    with http.stream("POST", "/chat", json={"message": RESUME_Q, "stream": True}) as r:
        assert [line for line in r.iter_lines() if line.startswith("event:")][-1] == "event: answer"
    assert live_server.thread.is_alive()


# -- citations ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("question,doc_id,expected", [
    (RESUME_Q, TALKS_DOC, "الأحد"),
    ("كم صاروخا استهدف القاعدة العسكرية في غرب العراق؟", "000_3ec499f8665a1831", "10 صواريخ"),
    ("أين جرت الجولة الأولى من المناقشات بين الولايات المتحدة وإيران؟", "004_8c9efbd2f6262e81", "عمان"),
], ids=["resume", "rockets", "first-round"])
def test_citation_lookups_return_text_containing_the_answer(http, question, doc_id, expected):
    answer = http.post("/ask", json={"question": question}).json()
    assert any(c["doc_id"] == doc_id for c in answer["citations"])
    looked_up = [http.get(f"/citations/{c['id']}").json() for c in answer["citations"]]
    for c, view in zip(answer["citations"], looked_up):
        assert view["quote"] == c["quote"] and (view["start"], view["end"]) == (c["start"], c["end"])
        assert view["context_before"] or view["context_after"]
    assert normalize(expected) in normalize(" ".join(v["quote"] for v in looked_up))
    text = http.get(f"/documents/{doc_id}").json()["text"]
    assert all(text[v["start"]:v["end"]] == v["quote"] for v in looked_up if v["doc_id"] == doc_id)


# -- writes while serving -------------------------------------------------------------------------------------
WHEAT = {"id": "wheat_2024", "title": "محصول القمح",
         "text": "أعلنت وزارة الزراعة المغربية أن محصول القمح بلغ سبعة ملايين طن هذا الموسم."}


def test_an_ingest_during_a_burst_of_concurrent_queries_fails_none(http):
    calls = [("POST", "/ask", {"json": {"question": RESUME_Q}}),
             ("GET", "/search", {"params": {"q": "عين الأسد", "k": 3}}),
             ("POST", "/chat", {"json": {"message": "كم صاروخا استهدف القاعدة العسكرية في غرب العراق؟"}}),
             ("GET", "/documents", {}),
             ("POST", "/ask", {"json": {"question": "Where was the first round of talks held?"}})] * 10
    finished: list[float] = []
    lock = threading.Lock()

    def call(method, path, kwargs):
        r = http.request(method, path, **kwargs)
        with lock:
            finished.append(time.monotonic())
        return r.status_code

    with ThreadPoolExecutor(16) as pool:
        queries = [pool.submit(call, *c) for c in calls]
        while len(finished) < 5:
            time.sleep(0.01)
        t0 = time.monotonic()
        ingest = http.post("/documents", json=WHEAT)  # from this thread, while the pool keeps querying
        t1 = time.monotonic()
        statuses = [q.result() for q in queries]
    assert ingest.status_code == 201 and ingest.json()["added"] == ["wheat_2024"]
    assert statuses == [200] * len(calls)  # zero failures
    assert any(t0 < t < t1 for t in finished), "no query was answered while the ingest ran"
    # the new version is live: the new article answers, and it goes away again
    answer = http.post("/ask", json={"question": "كم بلغ محصول القمح في المغرب؟"}).json()
    assert answer["citations"][0]["doc_id"] == "wheat_2024"
    assert http.delete("/documents/wheat_2024").status_code == 200
    assert http.get("/health").json()["documents"] == 5


def test_concurrent_writes_are_serialised(http):
    docs = [{"id": f"w{i}", "text": f"خبر رقم {i} عن افتتاح جسر جديد في المدينة."} for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        added = list(pool.map(lambda d: http.post("/documents", json=d), docs))
    assert [r.status_code for r in added] == [201] * 4
    assert sorted(r.json()["documents"] for r in added) == [6, 7, 8, 9]  # each write saw the one before
    with ThreadPoolExecutor(4) as pool:
        removed = list(pool.map(lambda d: http.delete(f"/documents/{d['id']}"), docs))
    assert [r.status_code for r in removed] == [200] * 4
    assert {d["id"] for d in http.get("/documents").json()}.isdisjoint({d["id"] for d in docs})


# -- bad input ------------------------------------------------------------------------------------------------
BAD = [
    ("POST", "/ask", {"json": {"question": ""}}, 422),
    ("POST", "/ask", {"json": {"question": "   "}}, 422),
    ("POST", "/ask", {"json": {"question": "ق" * 5000}}, 422),
    ("POST", "/ask", {"json": {"question": {"nested": 1}}}, 422),
    ("POST", "/ask", {"json": {"question": "q", "unknown": True}}, 422),
    ("POST", "/ask", {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}}, 400),
    ("POST", "/chat", {"json": {"message": "q", "session_id": "a/b"}}, 422),
    ("POST", "/chat", {"json": {"message": "", "stream": True}}, 422),
    ("POST", "/documents", {"files": {"file": ("big.txt", b"x" * 300_000)}}, 413),
    ("POST", "/documents", {"files": {"file": ("page.docx", b"PK\x03\x04")}}, 415),
    ("POST", "/documents", {"json": {"id": "../../x", "text": "t"}}, 422),
    ("GET", "/documents/..%2F..%2Fetc%2Fpasswd", {}, 422),
    ("DELETE", "/documents/a..b", {}, 422),
    ("GET", "/citations/../../etc/passwd", {}, 404),
    ("GET", "/citations/nope", {}, 422),
    ("GET", f"/citations/{TALKS_DOC}:0-99999999", {}, 404),
    ("GET", "/search", {"params": {"q": "x", "k": 10_000}}, 422),
]


@pytest.mark.parametrize("method,path,kwargs,status", BAD, ids=[f"{m} {p} {s}" for m, p, _, s in BAD])
def test_bad_inputs_get_a_json_4xx(http, method, path, kwargs, status):
    r = http.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["detail"] and "Traceback" not in r.text


# -- fuzzing --------------------------------------------------------------------------------------------------
@pytest.fixture
def fuzz_schema(fuzz_server):
    return schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_fuzzing_the_openapi_schema_finds_no_server_error(case):
    response = case.call(timeout=120)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"


# -- the command ----------------------------------------------------------------------------------------------
def test_rag_serve_starts_on_the_bundled_articles_when_there_is_no_index(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rag = Path(sys.executable).parent / "rag"
    log = open(tmp_path / "serve.log", "w+")
    proc = subprocess.Popen([str(rag), "serve", "--port", str(port), "--index-dir", str(tmp_path / "index")],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RAG_API_KEY": ""})
    try:
        seen, deadline = set(), time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                seen.add(r.json()["status"])
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.seek(0) or log.read()
            time.sleep(0.5)
        assert r.status_code == 200 and r.json()["documents"] == 5, r.text
        assert seen <= {"loading", "ready"}
        answer = httpx.post(f"http://127.0.0.1:{port}/ask", json={"question": RESUME_Q}, timeout=120).json()
        assert answer["citations"][0]["doc_id"] == TALKS_DOC
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    log.seek(0)
    output = log.read()
    assert code == 0 and "Traceback" not in output, output
