"""The chat page's cost over the bare stream: time from Send to the first visible token and to `done` in a real
browser, against the same /chat stream read by httpx, in the same run; and what the page transfers.

A real `rag serve` subprocess on a free 127.0.0.1 port over a fresh index of the bundled articles; Debian's
chromium driven by Playwright. Each question is asked twice, once by httpx (POST /chat, stream: true, a new
session) and once by the page (New chat, type, Send), alternating which goes first, in `--rounds` rounds. Every
question is asked once before measuring, so both sides always find its query vector in the server's cache (else
whichever asks second saves the embedding). The machine's load moves single timings by hundreds of ms, so the
figures are medians, and the median of the per-question ratios is printed too. With --cold nothing is cached
beforehand (one round): whichever side asks a question first also embeds it, which alternates. Browser times are taken in the page (performance.now() from the
click to the first token text in the answer's DOM, then to the next animation frame = painted; and to
data-status=done); httpx times from the request to the first `token` event and to the `answer` event.

    .venv/bin/python benchmarks/chat_page.py [--questions 20] [--rounds 2] [--cold] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from api_load import start_server  # noqa: E402 - a real `rag serve` on a free loopback port

QUESTIONS = [
    "متى تستأنف المحادثات بين العراق والولايات المتحدة؟", "من أعلن موعد استئناف المحادثات مع واشنطن؟",
    "ما هدف المحادثات بين العراق والولايات المتحدة؟", "من هو المتحدث باسم القائد الأعلى للقوات المسلحة العراقية؟",
    "أين جرت الجولة الأولى من المناقشات بين الولايات المتحدة وإيران؟", "من هو رئيس الدبلوماسية الإيرانية؟",
    "لماذا رفضت إيران المحادثات الأمريكية؟", "ما مضمون الرسالة الأميركية إلى طهران؟",
    "هل تنوي الولايات المتحدة الانسحاب من العراق؟", "ماذا قالت وزارة الخارجية الإيرانية عن الرسالة الأميركية؟",
    "متى كانت الجولة الأولى من المفاوضات في عمان؟", "ما الفصيل المرتبط بإيران الذي قتل قيادي فيه؟",
    "When do the talks between Iraq and the United States resume?", "Who announced the resumption of the talks?",
    "Where did the first round of US-Iran discussions take place?", "Why did Iran reject the American talks?",
    "What did the American message to Tehran say?", "Who is Iran's foreign minister?",
    "Will the United States withdraw from Iraq?", "What is the capital of Mongolia?",
]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

# In the page: New chat, type, Send; resolve with the times (ms from the click) of the first token text in the
# answer, of the frame after it (painted), and of data-status=done.
ASK_IN_PAGE = """async (question) => {
  document.querySelector('[data-testid=new-chat]').click();
  const log = document.querySelector('#log');
  return await new Promise((resolve) => {
    let t0 = 0, first = null, painted = null;
    const observer = new MutationObserver(() => {
      const a = log.querySelector('[data-testid=answer]');
      if (!a) return;
      const text = a.querySelector('.answer-body').textContent;
      if (first === null && text.length) {
        first = performance.now() - t0;
        requestAnimationFrame(() => { painted = performance.now() - t0; });
      }
      if (a.dataset.status !== 'streaming') {
        observer.disconnect();
        const done = performance.now() - t0;
        requestAnimationFrame(() => resolve({first, painted: painted ?? done, done, status: a.dataset.status}));
      }
    });
    observer.observe(log, {subtree: true, childList: true, characterData: true, attributes: true});
    document.querySelector('[data-testid=message-input]').value = question;
    t0 = performance.now();
    document.querySelector('[data-testid=send]').click();
  });
}"""


def over_httpx(client: httpx.Client, question: str) -> dict:
    t0 = time.perf_counter()
    first = None
    with client.stream("POST", "/chat", json={"message": question, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("event: token") and first is None:
                first = (time.perf_counter() - t0) * 1000
            if line.startswith("event: answer"):
                break
        done = (time.perf_counter() - t0) * 1000
    return {"first": first if first is not None else done, "done": done}


def page_weight(browser, url: str) -> dict:
    sizes, external = {}, []
    page = browser.new_page()
    page.on("response", lambda r: sizes.__setitem__(r.url, len(r.body())))
    page.on("request", lambda r: None if r.url.startswith((url, "data:")) else external.append(r.url))
    page.goto(url + "/")
    page.wait_for_load_state("networkidle")
    page.close()
    assets = {u.removeprefix(url): n for u, n in sizes.items() if u.endswith("/") or "/static/" in u}
    return {"files": assets, "bytes": sum(assets.values()), "requests": len(sizes), "external_requests": external}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="no query vector cached beforehand; one round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    questions = QUESTIONS[:args.questions]
    with tempfile.TemporaryDirectory(prefix="rag-bench-page-") as tmp:
        proc, url = start_server(Path(tmp) / "index", Path(tmp) / "serve.log")
        try:
            with sync_playwright() as p, httpx.Client(base_url=url, timeout=120) as client:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                weight = page_weight(browser, url)
                page = browser.new_page()
                page.goto(url + "/")
                page.locator("[data-testid=send]:not([disabled])").wait_for(timeout=120_000)
                if args.cold:  # warm the code paths only, on a question not measured
                    over_httpx(client, "سؤال للتحمية")
                    page.evaluate(ASK_IN_PAGE, "question to warm up")
                else:
                    for q in questions:  # warm: every query vector cached, both paths run once
                        over_httpx(client, q)
                    page.evaluate(ASK_IN_PAGE, questions[0])
                rows = []
                for i, q in enumerate(questions * (1 if args.cold else args.rounds)):
                    if i % 2 == 0:
                        b = page.evaluate(ASK_IN_PAGE, q)
                        h = over_httpx(client, q)
                    else:
                        h = over_httpx(client, q)
                        b = page.evaluate(ASK_IN_PAGE, q)
                    if b["status"] != "done":
                        raise SystemExit(f"the page ended {q!r} with status {b['status']}")
                    rows.append({"question": q, "httpx": h, "browser": b})
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)

    def p50(side: str, key: str) -> float:
        return float(np.percentile([r[side][key] for r in rows], 50))

    def ratio(key_b: str, key_h: str) -> float:
        return round(float(np.median([r["browser"][key_b] / r["httpx"][key_h] for r in rows])), 3)

    result = {
        "questions": len(questions), "samples": len(rows),
        "httpx_ms": {"first_token_p50": round(p50("httpx", "first"), 1), "done_p50": round(p50("httpx", "done"), 1)},
        "browser_ms": {"first_token_p50": round(p50("browser", "first"), 1),
                       "first_painted_p50": round(p50("browser", "painted"), 1),
                       "done_p50": round(p50("browser", "done"), 1)},
        "ratio_first_token": round(p50("browser", "painted") / p50("httpx", "first"), 3),
        "ratio_done": round(p50("browser", "done") / p50("httpx", "done"), 3),
        "median_of_ratios": {"first_token": ratio("painted", "first"), "done": ratio("done", "done")},
        "page": weight,
    }
    if args.json:
        print(json.dumps({**result, "rows": rows}, ensure_ascii=False, indent=2))
        return
    rounds = "cold, 1 round" if args.cold else f"x {args.rounds} rounds"
    print(f"{len(questions)} questions {rounds}, p50 (ms)   first token   done")
    print(f"  httpx /chat stream                {result['httpx_ms']['first_token_p50']:>11.1f} {result['httpx_ms']['done_p50']:>7.1f}")
    print(f"  browser (painted)                 {result['browser_ms']['first_painted_p50']:>11.1f} {result['browser_ms']['done_p50']:>7.1f}")
    print(f"  ratio browser / httpx at p50      {result['ratio_first_token']:>11.3f} {result['ratio_done']:>7.3f}   (goal <= 1.1)")
    m = result["median_of_ratios"]
    print(f"  median of per-question ratios     {m['first_token']:>11.3f} {m['done']:>7.3f}")
    print(f"page: {weight['bytes']} bytes uncompressed in {len(weight['files'])} files (goal < 100 KB); "
          f"{weight['requests']} requests, {len(weight['external_requests'])} external")


if __name__ == "__main__":
    main()
