"""Load on the HTTP API: throughput and latency of POST /ask under bounded concurrent load on loopback, against
the same questions answered in-process by the chain alone (Assistant.ask), measured in the same run.

The server is a real `rag serve` subprocess on a free 127.0.0.1 port over a copy of the ARCD eval index (built
once into the cache by `rag eval` / benchmarks/quality.py, or here). For each concurrency level a fixed number
of distinct questions is sent (no question twice in a level, and each level its own questions, so the query
vector cache never answers). Right before, the in-process side answers the same questions with the same
concurrency in threads, and alone (one after another); the ratio HTTP / in-process at the same concurrency is
the cost of serving. Traffic goes to 127.0.0.1 only; every request has a timeout.

    .venv/bin/python benchmarks/api_load.py [--requests 192] [--levels 4 16 64] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import get_settings  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import prepare  # noqa: E402

ARCD = ROOT.parent / "shared" / "eval" / "arcd"
TIMEOUT = 120.0  # seconds, per request


def stats(latencies_ms: list[float], seconds: float, errors: int) -> dict:
    done = len(latencies_ms)
    return {"requests": done + errors, "errors": errors, "seconds": round(seconds, 2),
            "req_per_s": round(done / seconds, 2) if seconds else 0.0,
            "p50_ms": round(float(np.percentile(latencies_ms, 50)), 1) if done else None,
            "p95_ms": round(float(np.percentile(latencies_ms, 95)), 1) if done else None}


def in_process(assistant, questions: list[str], concurrency: int) -> dict:
    assistant.encode_query._cache.clear()  # every question embeds its query, as on the server

    def one(q: str) -> float:
        t0 = time.perf_counter()
        assistant.ask(q)
        return (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    if concurrency == 1:
        lat = [one(q) for q in questions]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            lat = list(pool.map(one, questions))
    return stats(lat, time.perf_counter() - t0, 0)


async def over_http(url: str, questions: list[str], concurrency: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=limits) as client:
        async def one(q: str) -> None:
            nonlocal errors
            async with gate:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/ask", json={"question": q})
                    ok = r.status_code == 200 and "answer" in r.json()
                except (httpx.HTTPError, ValueError):
                    ok = False
                if ok:
                    lat.append((time.perf_counter() - t0) * 1000)
                else:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one(q) for q in questions))
    return stats(lat, time.perf_counter() - t0, errors)


def start_server(index_dir: Path, log: Path, runtime: str | None = None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--index-dir",
           str(index_dir), *(["--runtime", runtime] if runtime else [])]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "RAG_API_KEY": "", "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rag serve exited: see {log}")
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("rag serve did not become ready in 300 s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=192, help="requests per concurrency level")
    ap.add_argument("--levels", type=int, nargs="+", default=[4, 16, 64], help="concurrent clients")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    settings = get_settings()
    embedder = Embedder(settings)
    assistant = prepare([ARCD / "corpus.jsonl"], settings, embedder)  # cached eval index (or built now)
    work = Path(tempfile.mkdtemp(prefix="rag-load-"))
    index_dir = work / "index"
    shutil.copytree(assistant.settings.index_dir, index_dir)  # the server writes sessions.sqlite beside it

    seen, questions = set(), []
    for line in (ARCD / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)["question"].strip()
        if q and q not in seen:
            seen.add(q)
            questions.append(q)
    need = 8 + args.requests * len(args.levels)
    if len(questions) < need:
        raise SystemExit(f"{len(questions)} distinct questions; {need} needed")
    warmup, sets = questions[:8], [questions[8 + i * args.requests: 8 + (i + 1) * args.requests]
                                   for i in range(len(args.levels))]

    # Per level, back to back so that both sides see the same machine: the chain alone in-process (one after
    # another, and with the level's concurrency in threads), then the same questions over HTTP to a real
    # server process (idle while the in-process side runs).
    proc, url = start_server(index_dir, work / "serve.log")
    try:
        for q in warmup:
            assistant.ask(q)
            httpx.post(url + "/ask", json={"question": q}, timeout=TIMEOUT)
        local: dict[str, list[dict]] = {"sequential": [], "concurrent": []}
        remote = []
        for qs, c in zip(sets, args.levels):
            local["sequential"].append(in_process(assistant, qs, 1))
            local["concurrent"].append(in_process(assistant, qs, c))
            remote.append(asyncio.run(over_http(url, qs, c)))
        healthy = httpx.get(url + "/health", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    shutil.rmtree(work, ignore_errors=True)

    rows = []
    for c, http, seq, conc in zip(args.levels, remote, local["sequential"], local["concurrent"]):
        rows.append({"clients": c, "http": http, "in_process_same_concurrency": conc, "in_process_sequential": seq,
                     "throughput_ratio": round(http["req_per_s"] / conc["req_per_s"], 3),
                     "p50_ratio": round(http["p50_ms"] / conc["p50_ms"], 3) if http["p50_ms"] else None,
                     "throughput_ratio_vs_sequential": round(http["req_per_s"] / seq["req_per_s"], 3)})
    report = {"requests_per_level": args.requests, "index_passages": len(assistant.store),
              "server_healthy_after": healthy, "levels": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"POST /ask on loopback, {args.requests} distinct ARCD questions per level, "
          f"{len(assistant.store)} passages; server healthy after: {healthy}")
    head = (f"{'clients':>7} | {'errors':>6} | {'http req/s':>10} {'p50 ms':>7} {'p95 ms':>7} | "
            f"{'in-proc req/s':>13} {'p50 ms':>7} {'p95 ms':>7} | {'ratio req/s':>11} {'ratio p50':>9} | "
            f"{'sequential req/s':>16} {'p50 ms':>7} | {'http/seq':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        h, cc, s = r["http"], r["in_process_same_concurrency"], r["in_process_sequential"]
        print(f"{r['clients']:>7} | {h['errors']:>6} | {h['req_per_s']:>10} {h['p50_ms']:>7} {h['p95_ms']:>7} | "
              f"{cc['req_per_s']:>13} {cc['p50_ms']:>7} {cc['p95_ms']:>7} | {r['throughput_ratio']:>11} "
              f"{r['p50_ratio']:>9} | {s['req_per_s']:>16} {s['p50_ms']:>7} | {r['throughput_ratio_vs_sequential']:>8}")
    print("ratio = over HTTP / in-process at the same concurrency (the cost of serving); "
          "http/seq = HTTP throughput / the chain alone one question at a time")


if __name__ == "__main__":
    main()
