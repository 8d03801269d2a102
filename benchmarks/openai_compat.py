"""Latency of the OpenAI-compatible route against POST /ask, for the same questions, in one run.

A real `rag serve` subprocess on a free 127.0.0.1 port over a copy of the ARCD eval index (built once into the
cache, as benchmarks/api_load.py does). One client, one request at a time, so the figure is the cost per
request and not queueing. Each question is asked once through every route first (so the query vector cache
holds it for every route alike and the rounds compare the routes, not who embedded first); then each round
asks every question through each route, the routes' order rotating per question. Per round and route, the
median latency over the questions; reported: the median over rounds, and the ratio to /ask per round
(its median, min and max).

    /ask                            the answer object (the baseline)
    /v1 chat.completion             the same question as an OpenAI chat completion
    /v1 streamed                    the same, streamed, to `data: [DONE]`
    /v1 with a 2-turn history       after an earlier user/assistant exchange (its Sources block stripped,
                                    the earlier question condensed), the question itself standalone

    .venv/bin/python benchmarks/openai_compat.py [--questions 20] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api_load import ARCD, TIMEOUT, start_server  # noqa: E402
from rag.config import get_settings  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import prepare  # noqa: E402

EARLIER = ("متى تأسست جامعة القاهرة؟", "تأسست الجامعة عام 1908. [1]\n\nالمصادر:\n- [1] جامعة القاهرة — `x:0-10`")


def routes(client: httpx.Client) -> dict:
    def ask(q: str) -> bool:
        r = client.post("/ask", json={"question": q})
        return r.status_code == 200 and "answer" in r.json()

    def completion(q: str, history: tuple = ()) -> bool:
        messages = [*history, {"role": "user", "content": q}]
        r = client.post("/v1/chat/completions", json={"model": "rag-news", "messages": messages})
        return r.status_code == 200 and r.json()["choices"][0]["message"]["content"] != ""

    def streamed(q: str) -> bool:
        body = {"model": "rag-news", "stream": True, "messages": [{"role": "user", "content": q}]}
        with client.stream("POST", "/v1/chat/completions", json=body) as r:
            last = [line for line in r.iter_lines() if line.startswith("data: ")][-1]
        return r.status_code == 200 and last == "data: [DONE]"

    earlier = ({"role": "user", "content": EARLIER[0]}, {"role": "assistant", "content": EARLIER[1]})
    return {"/ask": ask, "/v1 chat.completion": completion, "/v1 streamed": streamed,
            "/v1 with a 2-turn history": lambda q: completion(q, earlier)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    settings = get_settings()
    assistant = prepare([ARCD / "corpus.jsonl"], settings, Embedder(settings))  # cached eval index (or built now)
    work = Path(tempfile.mkdtemp(prefix="rag-openai-"))
    index_dir = work / "index"
    shutil.copytree(assistant.settings.index_dir, index_dir)
    passages = len(assistant.store)
    del assistant
    questions: list[str] = []
    for line in (ARCD / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)["question"].strip()
        if q and q not in questions:
            questions.append(q)
        if len(questions) == args.questions:
            break

    proc, url = start_server(index_dir, work / "serve.log")
    errors = 0
    try:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
            calls = routes(client)
            names = list(calls)
            for q in questions:  # warm-up: every route sees every question once
                for name in names:
                    errors += not calls[name](q)
            per_round: dict[str, list[float]] = {name: [] for name in names}
            for _ in range(args.rounds):
                latencies: dict[str, list[float]] = {name: [] for name in names}
                for i, q in enumerate(questions):
                    for name in names[i % len(names):] + names[:i % len(names)]:
                        t0 = time.perf_counter()
                        errors += not calls[name](q)
                        latencies[name].append((time.perf_counter() - t0) * 1000)
                for name in names:
                    per_round[name].append(statistics.median(latencies[name]))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    shutil.rmtree(work, ignore_errors=True)

    base = per_round["/ask"]
    rows = []
    for name in names:
        ratios = [m / b for m, b in zip(per_round[name], base)]
        rows.append({"route": name, "median_ms": round(statistics.median(per_round[name]), 2),
                     "ratio_to_ask": round(statistics.median(ratios), 3),
                     "ratio_min": round(min(ratios), 3), "ratio_max": round(max(ratios), 3)})
    report = {"questions": len(questions), "rounds": args.rounds, "passages": passages, "errors": errors,
              "routes": rows}
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    print(f"{len(questions)} ARCD questions x {args.rounds} rounds, one at a time, {passages} passages, "
          f"loopback; errors: {errors}")
    print(f"{'route':<28} {'median ms':>10} {'ratio to /ask':>14} {'min':>6} {'max':>6}")
    for r in rows:
        print(f"{r['route']:<28} {r['median_ms']:>10} {r['ratio_to_ask']:>14} {r['ratio_min']:>6} {r['ratio_max']:>6}")
    print("median ms: the median over rounds of each round's median; ratio: per round, route / /ask (median, range)")


if __name__ == "__main__":
    main()
