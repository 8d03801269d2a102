"""What the chat page needs from the API, over HTTP: the page itself, an article cut at its cited spans, and the
readers' feedback (stored, read back by GET /feedback and `rag feedback`)."""

from __future__ import annotations

import json

import httpx
import pytest

from rag.citations import split_by_spans
from rag.types import Span

TALKS_DOC = "002_f7322d59d6e02373"


@pytest.fixture(scope="module")
def http(live_server):
    with httpx.Client(base_url=live_server.url, timeout=120) as client:
        yield client


def test_the_page_and_its_files_are_served_with_a_strict_policy(http):
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="ar" dir="rtl">' in page.text and 'data-testid="message-input"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for name in ("app.js", "core.js", "answer.js", "panels.js", "stream.js", "strings.js", "app.css"):
        r = http.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff", name
    assert "javascript" in http.get("/static/app.js").headers["content-type"]
    assert "/" not in http.get("/openapi.json").json()["paths"]  # not part of the API


def test_an_article_cut_at_its_cited_spans(http):
    cited = http.post("/ask", json={"question": "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"}).json()
    ids = [c["id"] for c in cited["citations"] if c["doc_id"] == TALKS_DOC]
    assert ids
    doc = http.get(f"/documents/{TALKS_DOC}", params=[("cite", i) for i in ids]).json()
    assert "".join(s["text"] for s in doc["segments"]) == doc["text"]
    for cid in ids:
        inside = "".join(s["text"] for s in doc["segments"] if cid in s["citations"])
        assert inside == http.get(f"/citations/{cid}").json()["quote"]
    assert http.get(f"/documents/{TALKS_DOC}").json()["segments"] is None  # only when asked


def test_overlapping_spans_and_characters_beyond_the_bmp():
    text = "a😀b«c»d"
    pieces = split_by_spans(text, {"x:1-4": Span(1, 4), "x:3-6": Span(3, 6)})
    assert "".join(p for p, _ in pieces) == text
    assert pieces == [("a", []), ("😀b", ["x:1-4"]), ("«", ["x:1-4", "x:3-6"]), ("c»", ["x:3-6"]), ("d", [])]


@pytest.mark.parametrize("cite, status", [("001_5ff42c8ba2e3807b:0-10", 422), ("not an id", 422),
                                          (f"{TALKS_DOC}:0-999999", 404)])
def test_bad_cited_spans_are_refused_with_a_message(http, cite, status):
    r = http.get(f"/documents/{TALKS_DOC}", params={"cite": cite})
    assert r.status_code == status and r.json()["detail"]


def test_feedback_is_stored_and_read_back(http, live_server, cli):
    body = {"rating": "up", "question": "متى تستأنف المحادثات؟", "answer": "تستأنف الأحد [1].",
            "citations": [f"{TALKS_DOC}:111-363"], "session_id": "abc_123", "mode": "extractive"}
    made = http.post("/feedback", json=body)
    assert made.status_code == 201
    row = made.json()
    assert row["id"] > 0 and row["created"].endswith("Z") and row["rating"] == "up"
    http.post("/feedback", json={**body, "rating": "down", "comment": "ناقصة"})
    rows = http.get("/feedback").json()
    assert [r["rating"] for r in rows[:2]] == ["down", "up"] and rows[0]["comment"] == "ناقصة"
    assert http.get("/feedback", params={"limit": 1}).json() == rows[:1]

    index_dir = live_server.app.state.settings.index_dir
    listed = json.loads(cli("feedback", "--index-dir", index_dir, "--json").output)
    assert listed[:2] == rows[:2]
    downs = json.loads(cli("feedback", "--index-dir", index_dir, "--json", "--rating", "down").output)
    assert downs and all(r["rating"] == "down" for r in downs)
    readable = cli("feedback", "--index-dir", index_dir)
    assert readable.exit_code == 0 and "-1 down" in readable.output and "متى تستأنف المحادثات؟" in readable.output
    assert cli("feedback", "--index-dir", index_dir, "--rating", "sideways").exit_code == 1


@pytest.mark.parametrize("change", [{"rating": "meh"}, {"question": ""}, {"session_id": "../x"},
                                    {"citations": ["x"] * 101}, {"extra": 1}])
def test_bad_feedback_is_a_422(http, change):
    body = {"rating": "up", "question": "q", "answer": "a", **change}
    r = http.post("/feedback", json=body)
    assert r.status_code == 422 and r.json()["error"] == "ValidationError"


def test_no_feedback_yet(cli, tmp_path):
    result = cli("feedback", "--index-dir", tmp_path, "--json")
    assert result.exit_code == 0 and json.loads(result.output) == []
