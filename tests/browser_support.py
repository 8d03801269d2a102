"""What the browser tests share: Debian's Chromium driven by Playwright, a page that fails on any request
off the server or any script error, and a replay server that feeds the page recorded /chat streams chunk by
chunk (so a marker or an Arabic character can be split across network reads on purpose)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parent.parent / ".cache" / "screenshots"  # git-ignored

ANSWER = "[data-testid=answer]"
CHIP = "[data-testid=citation]"
PANEL = "[data-testid=source-panel]"
SPAN = "mark[data-testid=cited-span]"

# Records, per answer element, each change of (status, text length) as it happens: the test reads it to see
# what a reader saw before `done`. Added before the page's own script runs.
OBSERVER = """
window.__seen = [];
new MutationObserver(() => {
  document.querySelectorAll('[data-testid=answer]').forEach((a, i) => {
    const body = a.querySelector('.answer-body');
    const entry = [i, a.dataset.status, body ? body.textContent.length : 0, performance.now()];
    const last = window.__seen.filter((e) => e[0] === i).pop();
    if (!last || last[1] !== entry[1] || last[2] !== entry[2]) window.__seen.push(entry);
  });
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true,
                      attributeFilter: ['data-status']});
"""


@pytest.fixture(scope="module")
def server(bundled_index, embedder, tmp_path_factory, request):
    """The API and the page on the module's own copy of the bundled index, with the real model."""
    from api.main import create_app
    from conftest import LiveServer

    settings = copy_index(bundled_index, tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1])
    live = LiveServer(create_app(settings, embedder=embedder)).start()
    yield live
    live.stop()


@pytest.fixture
def pages(browser, server):
    """Pages on the module's server; the test fails on a script error or a request off the server."""
    pages = Pages(browser, server.url)
    yield pages
    pages.close()
    assert not pages.errors, f"script errors on the page: {pages.errors}"
    assert not pages.external, f"requests off the server: {pages.external}"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium fonts-noto-core (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Pages:
    """New pages on fresh contexts (empty storage), each watched for external requests and script errors."""

    def __init__(self, browser, url: str):
        self.browser, self.url = browser, url
        self.contexts, self.external, self.errors = [], [], []

    def new(self, path: str = "/", **context) -> "object":
        ctx = self.browser.new_context(base_url=self.url, **{"viewport": {"width": 1280, "height": 900}, **context})
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.add_init_script(OBSERVER)
        page.on("request", lambda r: None if r.url.startswith((self.url, "data:")) else self.external.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.goto(path)
        return page

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()
        self.contexts.clear()


def wait_ready(page, timeout: float = 120_000) -> None:
    page.locator("[data-testid=send]:not([disabled])").wait_for(timeout=timeout)


def ask(page, text: str, timeout: float = 120_000):
    """Type `text`, press Enter, wait until the new answer is no longer streaming; the answer's locator."""
    answers = page.locator(ANSWER)
    before = answers.count()
    box = page.locator("[data-testid=message-input]")
    box.fill(text)
    box.press("Enter")
    expect(answers).to_have_count(before + 1)
    answer = answers.nth(before)
    expect(answer).not_to_have_attribute("data-status", "streaming", timeout=timeout)
    return answer


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def sse_event(event: str, data) -> bytes:
    return f"event: {event}\r\ndata: {json.dumps(data, ensure_ascii=False)}\r\n\r\n".encode()


class ReplayServer:
    """Serves POST /replay/<name> with the byte chunks registered under that name, one write (and a short pause)
    per chunk, and waits for the script's event before the chunk at `hold`: a test looks at the page
    mid-stream, then releases it. The page's own /chat is sent here by page.route()."""

    def __init__(self):
        self.scripts: dict[str, tuple[list[bytes], int | None, threading.Event, float]] = {}
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chunks, hold, release, pause = replay.scripts[self.path.rsplit("/", 1)[-1]]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                try:
                    for i, chunk in enumerate(chunks):
                        if i == hold:
                            release.wait(60)
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        time.sleep(pause)  # separate network reads, not one coalesced packet
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the page stopped reading (Stop): what a real client does

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, name: str, chunks: list[bytes], hold: int | None = None, pause: float = 0.03) -> threading.Event:
        release = threading.Event()
        self.scripts[name] = (chunks, hold, release, pause)
        return release

    def route(self, page, name: str) -> None:
        page.route("**/chat", lambda route: route.continue_(url=f"{self.url}/replay/{name}"))

    def close(self) -> None:
        for _, _, release, _ in self.scripts.values():
            release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def copy_index(bundled_index, tmp_path_factory, name: str, **settings):
    index_dir = tmp_path_factory.mktemp(name) / "index"
    shutil.copytree(bundled_index.index_dir, index_dir)
    return bundled_index.model_copy(update={"index_dir": index_dir, **settings})
