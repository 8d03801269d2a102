"""The chat page at / in a real Chromium (Debian's, driven by Playwright), against a real server with the real
model on a copy of the bundled index. Each test opens a fresh browser context: empty storage, a new session.

What the answers must hold was read from data/articles/: 002_* says Baghdad announced (its spokesman يحيى رسول
quoted) that the talks with the United States resume on Sunday 11 February 2024.
"""

from __future__ import annotations

import re

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

# the module's browser, server and pages fixtures
from browser_support import ANSWER, CHIP, PANEL, SPAN, ask, browser, pages, server, shot, wait_ready  # noqa: F401

TALKS_DOC = "002_f7322d59d6e02373"
RESUME_Q = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def chip_ids(answer) -> list[str]:
    return [c.get_attribute("data-citation-id") for c in answer.locator(CHIP).all()]


def test_an_arabic_answer_streams_and_every_chip_opens_its_exact_span(pages, http):
    page = pages.new()
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == ["ar", "rtl"]
    wait_ready(page)
    answer = ask(page, RESUME_Q)
    expect(answer).to_have_attribute("data-status", "done")
    expect(answer).to_have_attribute("data-abstained", "false")
    expect(answer).to_have_attribute("aria-busy", "false")
    assert answer.get_attribute("dir") == "rtl"
    # the reader saw text while it was still streaming, before `done`
    seen = page.evaluate("window.__seen")
    streaming = [e for e in seen if e[0] == 0 and e[1] == "streaming" and e[2] > 0]
    done = [e for e in seen if e[0] == 0 and e[1] == "done"]
    assert streaming and done and streaming[0][3] < done[0][3]
    ids = chip_ids(answer)
    assert ids and any(i.startswith(TALKS_DOC) for i in ids)
    expect(answer.locator(".searched")).to_have_count(0)  # an Arabic question is searched as asked
    # the chips are the server's citations, in order, each a button in its own <bdi>
    assert ids == [c["id"] for c in page.evaluate("JSON.parse(localStorage['rag-news.chat']).turns[0].answer.citations")]
    assert answer.locator(f"bdi > {CHIP}").count() == len(ids)
    for i, cid in enumerate(ids):
        chip = answer.locator(CHIP).nth(i)
        chip.hover()  # the preview: the quoted sentence with the article's title and date
        tooltip = page.locator("#tooltip")
        expect(tooltip).to_be_visible()
        quote = http.get(f"/citations/{cid}").json()
        expect(tooltip.locator(".quote")).to_have_text(quote["quote"])
        expect(tooltip.locator(".date")).to_contain_text(quote["date"])
        chip.click()
        panel = page.locator(PANEL)
        expect(panel).to_be_visible()
        mark = panel.locator(SPAN)
        expect(mark).to_have_attribute("data-citation-id", cid)
        assert mark.text_content() == quote["quote"]  # exactly the cited characters, cut by the server
        expect(mark).to_be_in_viewport()
        expect(panel.locator("#panel-cid")).to_have_text(cid)
        assert panel.locator("#panel-title").text_content() == quote["title"]
        # the answer's other spans of the same article are marked too
        others = [o for o in ids if o != cid and o.split(":")[0] == cid.split(":")[0]]
        marked = " ".join(m.get_attribute("data-citation-ids") for m in panel.locator("mark.other-span").all())
        assert all(o in marked for o in others)
        if i == len(ids) - 1:
            shot(page, "arabic-answer-panel")
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()


def test_a_follow_up_continues_the_conversation_and_a_reload_keeps_it(pages):
    page = pages.new()
    wait_ready(page)
    first = ask(page, RESUME_Q)
    second = ask(page, "ومن أعلن ذلك؟")
    expect(second).to_have_attribute("data-status", "done")
    turns = page.evaluate("JSON.parse(localStorage['rag-news.chat']).turns")
    assert turns[1]["answer"]["session_id"] == turns[0]["answer"]["session_id"]
    assert "المحادثات" in turns[1]["answer"]["standalone_question"]  # the server leaned on the first turn
    quotes = " ".join(c["quote"] for c in turns[1]["answer"]["citations"])
    assert "بغداد" in quotes or "يحيى رسول" in quotes
    texts = [first.locator(".answer-body").inner_text(), second.locator(".answer-body").inner_text()]
    ids = [chip_ids(first), chip_ids(second)]

    page.reload()
    answers = page.locator(ANSWER)
    expect(answers).to_have_count(2)
    assert [a.locator(".answer-body").inner_text() for a in answers.all()] == texts
    assert [chip_ids(a) for a in answers.all()] == ids
    expect(page.locator(".question").nth(1)).to_have_text("ومن أعلن ذلك؟")
    # the restored chips still open their spans
    answers.nth(1).locator(CHIP).first.click()
    expect(page.locator(SPAN)).to_have_attribute("data-citation-id", ids[1][0])
    page.keyboard.press("Escape")
    # and the restored session still carries the context to the server
    third = ask(page, "ومتى كان ذلك؟")
    expect(third).to_have_attribute("data-status", "done")
    assert page.evaluate("JSON.parse(localStorage['rag-news.chat']).turns[2].answer.session_id") == \
        turns[0]["answer"]["session_id"]

    page.locator("[data-testid=new-chat]").click()
    expect(answers).to_have_count(0)
    assert page.evaluate("JSON.parse(localStorage['rag-news.chat']).session_id") is None


def test_an_english_page_and_question(pages):
    page = pages.new("/?lang=en")
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == ["en", "ltr"]
    expect(page.locator("[data-testid=send]")).to_have_text("Send")
    wait_ready(page)
    answer = ask(page, "When do the talks between Iraq and the United States resume?")
    expect(answer).to_have_attribute("data-status", "done")
    assert page.locator(".question").get_attribute("dir") == "ltr"
    assert chip_ids(answer)
    assert answer.get_attribute("dir") == "rtl"  # it quotes the Arabic article: its block is RTL on an LTR page
    searched = answer.locator(".searched bdi")  # what its words were matched by, in Arabic, labelled in English
    expect(searched).to_have_attribute("dir", "rtl")
    expect(answer.locator(".searched")).to_have_attribute("dir", "ltr")
    assert re.search("[\u0600-\u06ff]", searched.inner_text())
    shot(page, "english-page")
    page.locator("#lang-toggle").click()  # the toggle, kept across a reload
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == ["ar", "rtl"]
    expect(page.locator("[data-testid=send]")).to_have_text("إرسال")
    page.goto("/")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    expect(page.locator(ANSWER)).to_have_count(1)


@pytest.mark.parametrize("question, words", [("ما هي عاصمة منغوليا؟", "لم أجد"),
                                             ("What is the boiling point of tungsten?", "could not find")])
def test_an_unanswerable_question_abstains_in_its_language_without_chips(pages, question, words):
    page = pages.new()
    wait_ready(page)
    answer = ask(page, question)
    expect(answer).to_have_attribute("data-abstained", "true")
    expect(answer).to_contain_text(words)
    expect(answer.locator(".badge.abstain")).to_be_visible()
    assert answer.locator(CHIP).count() == 0


def test_bad_input_shows_the_servers_message(pages, http):
    page = pages.new()
    wait_ready(page)
    empty = ask(page, "")
    expect(empty).to_have_attribute("data-status", "error")
    detail = http.post("/chat", json={"message": ""}).json()["detail"][0]["msg"]
    expect(empty.locator(".error")).to_contain_text(detail)
    long = ask(page, "ا" * 2001)
    detail = http.post("/chat", json={"message": "ا" * 2001}).json()["detail"]
    assert detail.startswith("the question is 2001 characters long")
    expect(long.locator(".error")).to_have_text(detail)
    assert long.locator(".retry").count() == 0  # nothing to retry: the question itself is wrong

    page.locator("#articles-open").click()
    page.locator("details.add summary").click()
    page.locator("#upload-file").set_input_files(files=[{"name": "notes.pdf", "mimeType": "application/pdf",
                                                         "buffer": b"%PDF-1.4"}])
    page.locator("#upload-form button").click()
    detail = http.post("/documents", files={"file": ("notes.pdf", b"%PDF-1.4")}).json()["detail"]
    expect(page.locator("#articles-status")).to_have_text(detail)
    expect(page.locator("#articles-status")).to_have_class(re.compile("error"))


LUNAR = """# A greenhouse on the Moon grows its first tomatoes

The Selene Garden experiment, run by the Lunar Agriculture Agency, harvested its first tomatoes on 3 March 2026.
The greenhouse sits inside the Shackleton crater and is lit by mirrors that follow the Sun.
Engineers said the tomatoes were smaller than on Earth but tasted the same.
"""


def test_upload_ask_and_remove_an_article(pages, http):
    page = pages.new()
    wait_ready(page)
    page.locator("#articles-open").click()
    articles = page.locator("#articles-panel")
    expect(articles).to_be_visible()
    expect(articles.locator("#articles-list li")).to_have_count(5)
    articles.locator("details.add summary").click()
    articles.locator("#upload-file").set_input_files(files=[{"name": "lunar-garden.md", "mimeType": "text/markdown",
                                                             "buffer": LUNAR.encode()}])
    articles.locator("#upload-form button").click()
    expect(articles.locator("#articles-status")).to_contain_text("lunar-garden")
    expect(articles.locator("#articles-list li")).to_have_count(6)
    articles.locator(".link[data-doc-id='lunar-garden']").click()  # open it: the whole text, nothing marked
    panel = page.locator(PANEL)
    expect(panel.locator("#panel-title")).to_have_text("A greenhouse on the Moon grows its first tomatoes")
    expect(panel.locator("#panel-text")).to_contain_text("Shackleton crater")
    assert panel.locator("#panel-text").get_attribute("dir") == "ltr" and panel.locator("mark").count() == 0
    page.keyboard.press("Escape")

    answer = ask(page, "When did the greenhouse on the Moon harvest its first tomatoes?")
    assert any(i.startswith("lunar-garden:") for i in chip_ids(answer))
    # an English answer on the Arabic page: its block and its paragraph are LTR
    assert answer.get_attribute("dir") == "ltr"
    assert answer.locator(".answer-body p").first.get_attribute("dir") == "ltr"
    expect(answer).to_contain_text("3 March 2026")
    answer.locator(CHIP).first.click()
    cid = answer.locator(CHIP).first.get_attribute("data-citation-id")
    assert page.locator(SPAN).text_content() == http.get(f"/citations/{cid}").json()["quote"]
    page.keyboard.press("Escape")

    # pasted text with a title, then both removed
    page.locator("#articles-open").click()
    articles.locator("#add-title").fill("مقال تجريبي عن الحدائق")
    articles.locator("#add-text").fill("زرعت بلدية المدينة ألف شجرة زيتون في الحديقة الكبرى يوم الجمعة.")
    articles.locator("#add-id").fill("trial-garden")
    articles.locator("#add-form button").click()
    expect(articles.locator("#articles-status")).to_contain_text("trial-garden")
    expect(articles.locator("#articles-list li")).to_have_count(7)
    assert "trial-garden" in [d["id"] for d in http.get("/documents").json()]
    for doc_id in ("lunar-garden", "trial-garden"):
        remove = articles.locator(f".remove[data-doc-id='{doc_id}']")
        remove.click()
        expect(remove).to_have_text("تأكيد الحذف")  # a second press confirms
        remove.click()
        expect(articles.locator("#articles-status")).to_contain_text("حُذف")
        expect(articles.locator(f".remove[data-doc-id='{doc_id}']")).to_have_count(0)
    assert len(http.get("/documents").json()) == 5


def test_keyboard_only(pages):
    page = pages.new()
    wait_ready(page)
    box = page.locator("[data-testid=message-input]")
    box.fill("سطر")
    box.press("Shift+Enter")  # a new line, not a send
    assert box.input_value() == "سطر\n" and page.locator(ANSWER).count() == 0
    box.fill("")
    answer = ask(page, RESUME_Q)
    page.locator("[data-testid=new-chat]").focus()
    for _ in range(10):  # Tab from the top bar until a chip has focus: the answer's first one
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.testid") == "citation":
            break
    cid = page.evaluate("document.activeElement.dataset.citationId")
    assert cid == chip_ids(answer)[0]
    expect(page.locator("#tooltip")).to_be_visible()  # focus previews like hover
    page.keyboard.press("Enter")
    expect(page.locator(PANEL)).to_be_visible()
    expect(page.locator(SPAN)).to_have_attribute("data-citation-id", cid)
    assert page.evaluate("document.activeElement.id") == "source-panel"
    page.keyboard.press("Escape")
    expect(page.locator(PANEL)).to_be_hidden()
    assert page.evaluate("document.activeElement.dataset.citationId") == cid  # focus back on its chip


def test_feedback_and_copy(pages, http):
    page = pages.new(permissions=["clipboard-read", "clipboard-write"])
    wait_ready(page)
    answer = ask(page, RESUME_Q)
    answer.locator(".rate.down").click()
    expect(answer.locator(".rate.down")).to_have_attribute("aria-pressed", "true")
    rows = http.get("/feedback").json()
    assert rows[0]["rating"] == "down" and rows[0]["question"] == RESUME_Q
    assert rows[0]["citations"] == chip_ids(answer) and rows[0]["session_id"]
    answer.locator(".copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert RESUME_Q in copied and all(cid in copied for cid in chip_ids(answer))
    answer.locator(CHIP).first.click()
    expect(page.locator(SPAN)).to_be_visible()
    page.locator("#copy-cid").click()
    assert page.evaluate("navigator.clipboard.readText()") == chip_ids(answer)[0]


def test_narrow_and_dark(pages):
    page = pages.new(viewport={"width": 375, "height": 760}, color_scheme="dark")
    wait_ready(page)
    answer = ask(page, RESUME_Q)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    bg = page.evaluate("getComputedStyle(document.querySelector('.answer')).backgroundColor")
    assert sum(int(x) for x in re.findall(r"\d+", bg)[:3]) < 3 * 80, bg  # a dark card
    shot(page, "narrow-dark")
    answer.locator(CHIP).first.click()
    expect(page.locator(SPAN)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.locator(PANEL).bounding_box()["width"] <= 375
    shot(page, "narrow-dark-panel")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations(pages, scheme):
    page = pages.new(color_scheme=scheme)
    wait_ready(page)
    ask(page, RESUME_Q)
    ask(page, "ما هي عاصمة منغوليا؟")
    axe = Axe()
    for state in ("answers", "panel", "articles"):
        if state == "panel":
            page.locator(CHIP).first.click()
            expect(page.locator(SPAN)).to_be_visible()
        if state == "articles":
            page.keyboard.press("Escape")
            page.locator("#articles-open").click()
            page.locator("details.add summary").click()
        if state == "panel":
            shot(page, f"panel-{scheme}")
        results = axe.run(page)
        bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
        assert not bad, f"{state}: {bad}"


def test_the_page_is_small_and_self_contained(pages, server):
    sizes = {}
    page = pages.browser.new_page()
    pages.contexts.append(page.context)
    page.on("response", lambda r: sizes.__setitem__(r.url, len(r.body())))
    page.goto(server.url + "/")
    wait_ready(page)
    page.wait_for_load_state("networkidle")
    assets = {u: n for u, n in sizes.items() if "/static/" in u or u.endswith("/")}
    assert any(u.endswith("app.js") for u in assets) and any(u.endswith("app.css") for u in assets)
    assert sum(assets.values()) < 100_000, assets  # the budget, uncompressed
    assert all(u.startswith(server.url) for u in sizes), sizes
    csp = httpx.get(server.url + "/").headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
