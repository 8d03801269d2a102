"""The chat page fed recorded /chat streams (page.route sends its /chat to a replay server that writes them chunk
by chunk, holding before the last event so the test sees the page mid-stream), and the faults of a real server:
one still loading (/health 503), one that needs an API key.

The page, /citations and /documents are the real server's; only the /chat stream is replayed.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from browser_support import (ANSWER, CHIP, SPAN, Pages, ReplayServer, browser, copy_index, pages, server,  # noqa: F401
                             sse_event, wait_ready)
from conftest import LiveServer

RESUME_Q = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"
# answered with two cited sentences (the synthetic streams below cite both)
TROOPS_Q = "كم عدد الجنود الأمريكيين في العراق؟"


@pytest.fixture(scope="module")
def replay():
    server = ReplayServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def recorded(server):
    """A real stream of the server's, as bytes, and its final answer object."""
    with httpx.stream("POST", server.url + "/chat", json={"message": TROOPS_Q, "stream": True}, timeout=120) as r:
        raw = b"".join(r.iter_raw())
    answer = [line for line in raw.decode().split("\r\n") if line.startswith("data: {\"question\"")][-1]
    import json

    answer = json.loads(answer[6:])
    assert len(answer["citations"]) >= 2, answer
    return raw, answer


def send(page, text: str = "سؤال"):
    page.locator("[data-testid=message-input]").fill(text)
    page.locator("[data-testid=send]").click()
    return page.locator(ANSWER).last


def shown(text: str) -> str:
    """What the answer body reads as text: each marker's chip shows its number."""
    return re.sub(r"\[(\d+)\]", r"\1", text)


def final_event(answer: dict) -> bytes:
    return sse_event("answer", answer)


def test_a_real_stream_cut_every_five_bytes_renders_the_same_text_and_chips(pages, replay, recorded):
    raw, answer = recorded
    head, tail = raw[:raw.rindex(b"event: answer")], raw[raw.rindex(b"event: answer"):]
    chunks = [head[i:i + 5] for i in range(0, len(head), 5)]  # splits markers, Arabic letters and "\r\n"
    release = replay.add("every5", chunks + [tail], hold=len(chunks), pause=0.002)
    page = pages.new()
    wait_ready(page)
    replay.route(page, "every5")
    article = send(page, RESUME_Q)
    body = article.locator(".answer-body")
    expect(body).to_have_text(shown(answer["answer"]), timeout=60_000)  # mid-stream: all tokens in, no answer yet
    expect(article).to_have_attribute("data-status", "streaming")
    expect(article).to_have_attribute("aria-busy", "true")
    assert "\ufffd" not in body.text_content()
    assert [c.get_attribute("data-citation-id") for c in article.locator(CHIP).all()] == \
        [c["id"] for c in answer["citations"]]
    article.locator(CHIP).first.click()  # a chip opens its span while the answer is still streaming
    expect(page.locator(SPAN)).to_have_text(answer["citations"][0]["quote"])
    page.keyboard.press("Escape")
    release.set()
    expect(article).to_have_attribute("data-status", "done")
    expect(body).to_have_text(shown(answer["answer"]))
    assert page.locator("#announcer").text_content().count(answer["answer"].split(" [")[0][:40]) == 1


def synthetic(recorded, tokens: list[str], text: str, cut: bytes | None = None, **answer):
    """A stream of `tokens` with the recording's citations first; the final answer says `text`. With `cut`,
    the bytes are split inside the first occurrence of it (between its first and second byte)."""
    raw, real = recorded
    final = {**real, "answer": text, **answer}
    body = sse_event("citations", real["citations"]) + b"".join(sse_event("token", {"text": t}) for t in tokens)
    chunks = [body]
    if cut is not None:
        at = body.index(cut) + 1
        chunks = [body[:at], body[at:]]
    return chunks, final_event(final)


def run(pages, replay, name, chunks, last):
    release = replay.add(name, chunks + [last], hold=len(chunks))
    page = pages.new()
    wait_ready(page)
    replay.route(page, name)
    return page, send(page), release


def test_markers_at_a_paragraph_start_after_a_latin_word_and_in_arabic_indic_digits(pages, replay, recorded):
    tokens = ["قال حلف NATO", "[", "1", "] إن المحادثات ", "تستأنف في 2024[٢].", "\n\n", "[1", "] وأضاف البيان ذلك."]
    text = "قال حلف NATO[1] إن المحادثات تستأنف في 2024[2].\n\n[1] وأضاف البيان ذلك."
    chunks, last = synthetic(recorded, tokens, text, cut="[".encode())
    page, article, release = run(pages, replay, "markers", chunks, last)
    paragraphs = article.locator(".answer-body p")
    expect(paragraphs).to_have_count(2, timeout=30_000)
    expect(article.locator(CHIP)).to_have_count(3)
    expect(article).to_have_attribute("data-status", "streaming")

    def check():
        assert [p.get_attribute("dir") for p in paragraphs.all()] == ["rtl", "rtl"]
        assert [c.get_attribute("data-n") for c in article.locator(CHIP).all()] == ["1", "2", "1"]
        cites = recorded[1]["citations"]
        assert [c.get_attribute("data-citation-id") for c in article.locator(CHIP).all()] == \
            [cites[0]["id"], cites[1]["id"], cites[0]["id"]]
        # the second paragraph starts with its chip; no "[" or "]" is left in the text
        assert paragraphs.nth(1).evaluate("p => p.firstElementChild.tagName + '/' + p.firstChild.nodeName") == "BDI/BDI"
        assert "[" not in article.locator(".answer-body").text_content()
        # in an RTL paragraph the chip after "NATO" sits on its left (read after it), not glued on its right
        nato = paragraphs.first.evaluate("""p => { const t = p.firstChild; const r = document.createRange();
            r.setStart(t, t.data.indexOf('NATO')); r.setEnd(t, t.data.indexOf('NATO') + 4);
            const b = r.getBoundingClientRect(); return [b.left, b.right]; }""")
        chip = article.locator(CHIP).first.bounding_box()
        assert chip["x"] + chip["width"] <= nato[0] + 1
        # and after "2024" likewise
        year = paragraphs.first.evaluate("""p => { const t = [...p.childNodes].find(n => n.nodeType === 3 && n.data.includes('2024'));
            const r = document.createRange(); r.setStart(t, t.data.indexOf('2024')); r.setEnd(t, t.data.indexOf('2024') + 4);
            return r.getBoundingClientRect().left; }""")
        chip2 = article.locator(CHIP).nth(1).bounding_box()
        assert chip2["x"] + chip2["width"] <= year + 1

    check()  # as streamed
    release.set()
    expect(article).to_have_attribute("data-status", "done")
    check()  # as rendered from the final answer


def test_an_english_answer_on_the_arabic_page_is_ltr_with_its_chip_after_the_word(pages, replay, recorded):
    tokens = ["The talks resume on ", "Sunday [", "1]", " after a ", "strike [2]."]
    chunks, last = synthetic(recorded, tokens, "The talks resume on Sunday [1] after a strike [2].")
    page, article, release = run(pages, replay, "english", chunks, last)
    expect(article.locator(CHIP)).to_have_count(2, timeout=30_000)
    release.set()
    expect(article).to_have_attribute("data-status", "done")
    assert article.get_attribute("dir") == "ltr" and page.evaluate("document.documentElement.dir") == "rtl"
    assert article.locator(".answer-body p").get_attribute("dir") == "ltr"
    sunday = article.locator(".answer-body p").evaluate("""p => { const t = p.firstChild; const r = document.createRange();
        r.setStart(t, t.data.indexOf('Sunday')); r.setEnd(t, t.data.indexOf('Sunday') + 6);
        return r.getBoundingClientRect().right; }""")
    assert article.locator(CHIP).first.bounding_box()["x"] >= sunday - 1


def test_an_arabic_character_split_between_chunks_and_crlf_split(pages, replay, recorded):
    word = "المحادثات"
    tokens = [f"تستأنف {word} ", "الأحد [1]."]
    chunks, last = synthetic(recorded, tokens, f"تستأنف {word} الأحد [1].", cut=word.encode()[2:])
    # cut at byte 3 of the word: inside its second letter's two UTF-8 bytes; then split a "\r\n" too
    first, second = chunks
    crlf = second.index(b"\r\n")
    chunks = [first, second[:crlf + 1], second[crlf + 1:]]
    assert not first.decode("utf-8", "ignore").endswith(word[:2])  # really a split inside a character
    page, article, release = run(pages, replay, "utf8", chunks, last)
    body = article.locator(".answer-body")
    expect(body).to_have_text(f"تستأنف {word} الأحد 1.", timeout=30_000)
    assert "\ufffd" not in body.text_content()
    release.set()
    expect(article).to_have_attribute("data-status", "done")


def test_a_generated_answer_binds_its_chips_when_the_citations_arrive_and_shows_its_notice(pages, replay, recorded):
    raw, real = recorded
    tokens = b"".join(sse_event("token", {"text": t}) for t in ["تستأنف المحادثات ", "الأحد [1]", "."])
    cites = sse_event("citations", real["citations"][:1])
    final = final_event({**real, "answer": "تستأنف المحادثات الأحد [1].", "citations": real["citations"][:1],
                         "mode": "extractive", "notice": "the model timed out; this is the extractive answer"})
    release = replay.add("generated", [tokens, cites, final], hold=1)
    page = pages.new()
    wait_ready(page)
    replay.route(page, "generated")
    article = send(page)
    chip = article.locator(CHIP)
    expect(chip).to_have_count(1, timeout=30_000)
    expect(chip).to_have_class(re.compile("pending"))  # the number is known, its citation not yet
    assert chip.get_attribute("data-citation-id") is None
    release.set()
    expect(article).to_have_attribute("data-status", "done")
    expect(chip).to_have_attribute("data-citation-id", real["citations"][0]["id"])
    expect(article.locator(".notice")).to_contain_text("the model timed out")
    expect(article.locator(".badge.mode")).to_have_text("اقتباس من المقالات")
    chip.click()
    expect(page.locator(SPAN)).to_have_text(real["citations"][0]["quote"])


def test_stop_ends_the_stream_and_keeps_what_came(pages, replay, recorded):
    chunks, last = synthetic(recorded, ["تستأنف ", "المحادثات "], "تستأنف المحادثات الأحد [1].")
    page, article, release = run(pages, replay, "stop", chunks, last)
    stop = page.locator("[data-testid=stop]")
    expect(article.locator(".answer-body")).to_have_text("تستأنف المحادثات", timeout=30_000)
    expect(stop).to_be_visible()
    stop.click()
    expect(article).to_have_attribute("data-status", "done")
    expect(article).to_have_attribute("aria-busy", "false")
    expect(article.locator(".notice")).to_have_text("أُوقفت الإجابة.")
    expect(stop).to_be_hidden()
    expect(page.locator("[data-testid=send]")).to_be_visible()
    release.set()  # the rest would come now: the page no longer reads it
    page.wait_for_timeout(300)
    expect(article.locator(".answer-body")).to_have_text("تستأنف المحادثات")


def test_a_broken_stream_says_so_and_retry_asks_again(pages, replay, recorded, server):
    chunks, _ = synthetic(recorded, ["تستأنف ", "المحادثات"], "")
    replay.add("broken", chunks)  # ends without its answer event
    page = pages.new()
    wait_ready(page)
    replay.route(page, "broken")
    article = send(page, RESUME_Q)
    expect(article).to_have_attribute("data-status", "error", timeout=30_000)
    expect(article.locator(".error")).to_have_text("انقطع البث قبل أن تكتمل الإجابة.")
    page.unroute("**/chat")  # the real server again
    article.locator(".retry").click()
    expect(article).to_have_attribute("data-status", "done", timeout=120_000)
    assert article.locator(CHIP).count() > 0


def test_a_server_that_is_gone_is_said_so(pages):
    page = pages.new()
    wait_ready(page)
    page.route("**/chat", lambda route: route.abort("connectionrefused"))
    article = send(page)
    expect(article).to_have_attribute("data-status", "error")
    expect(article.locator(".error")).to_have_text("تعذّر الوصول إلى الخادم.")
    expect(article.locator(".retry")).to_be_visible()


def test_while_the_server_loads_a_banner_says_so_and_the_input_waits(browser, bundled_index, tmp_path_factory):
    from api.main import create_app

    # no embedder given: this server really loads the model, answering 503 meanwhile; the torch runtime (which
    # reads this index's vectors too) takes seconds to import and load, the ONNX one too little to be seen
    settings = copy_index(bundled_index, tmp_path_factory, "loading").model_copy(update={"runtime": "torch"})
    loading = LiveServer(create_app(settings)).start(ready=False)
    pages = Pages(browser, loading.url)
    try:
        if httpx.get(loading.url + "/health").status_code != 503:
            pytest.fail("the server loaded before the page could see it loading")
        page = pages.new()
        banner = page.locator("#banner")
        expect(banner).to_be_visible()
        expect(banner).to_have_attribute("data-status", "loading")
        expect(page.locator("[data-testid=send]")).to_be_disabled()
        expect(page.locator("[data-testid=message-input]")).to_have_attribute("aria-disabled", "true")
        expect(banner).to_be_hidden(timeout=180_000)  # polled until /health says ready
        expect(page.locator("[data-testid=send]")).to_be_enabled()
    finally:
        pages.close()
        loading.stop()
    assert not pages.errors and not pages.external


def test_with_an_api_key_the_page_asks_for_it_once(browser, bundled_index, embedder, tmp_path_factory):
    from pydantic import SecretStr

    from api.main import create_app

    settings = copy_index(bundled_index, tmp_path_factory, "keyed", api_key=SecretStr("s3cret-key"))
    keyed = LiveServer(create_app(settings, embedder=embedder)).start()
    pages = Pages(browser, keyed.url)
    try:
        page = pages.new()
        wait_ready(page)
        article = send(page, RESUME_Q)
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()
        page.locator("#key-input").fill("wrong")
        page.locator("#key-form button[value=ok]").click()
        expect(dialog).to_be_visible()  # asked again, with the server's words
        expect(page.locator("#key-why")).to_contain_text("missing or wrong API key")
        page.locator("#key-input").fill("s3cret-key")
        page.locator("#key-form button[value=ok]").click()
        expect(article).to_have_attribute("data-status", "done", timeout=120_000)
        assert article.locator(CHIP).count() > 0
        page.reload()  # kept: no second prompt
        wait_ready(page)
        second = send(page, "ومن أعلن ذلك؟")
        expect(second).to_have_attribute("data-status", "done", timeout=120_000)
        expect(dialog).to_be_hidden()
    finally:
        pages.close()
        keyed.stop()
    assert not pages.errors and not pages.external


def test_auto_scroll_follows_only_while_the_reader_is_at_the_bottom(pages, replay, recorded):
    words = [f"كلمة{i} " for i in range(400)]
    for name in ("follow", "stay"):
        chunks, last = synthetic(recorded, words[:200], "".join(words))
        release = replay.add(name, chunks + [sse_event("token", {"text": "".join(words[200:])}), last],
                             hold=len(chunks))
        page = pages.new(viewport={"width": 800, "height": 500})
        wait_ready(page)
        replay.route(page, name)
        article = send(page)
        expect(article.locator(".answer-body")).to_contain_text("كلمة199", timeout=30_000)
        bottom = "window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 48"
        assert page.evaluate(bottom)  # the reader just asked: the page follows
        if name == "stay":
            page.mouse.wheel(0, -2000)  # the reader scrolls up to read
            page.wait_for_timeout(200)
        top = page.evaluate("window.scrollY")
        release.set()
        expect(article).to_have_attribute("data-status", "done")
        page.wait_for_timeout(300)  # the page follows on the next frame
        if name == "follow":
            assert page.evaluate(bottom) and page.evaluate("window.scrollY") > top
        else:
            assert page.evaluate("window.scrollY") == top  # left where the reader is
        # and no live region reads the tokens: the answer is no part of one; one message says it is done
        assert article.evaluate("a => a.closest('[aria-live]')") is None
        expect(page.locator("#announcer")).to_contain_text("كلمة399")
