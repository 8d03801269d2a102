"""Ray ingest throughput: `rag index --ray local` with 1 and 2 workers against the single-process `rag index` of the
same ARCD paragraphs, each a fresh process into a fresh index, wall time including start-up (Ray's own start
included: on one machine that is the price of the cluster path). Ratios against the single process measured in
the same run, medians of --repeats, interleaved so the machine's load falls on every side alike.

    .venv/bin/python benchmarks/ray_ingest.py [--paragraphs 200] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "eval" / "arcd" / "corpus.jsonl"


def _index(corpus: Path, index_dir: Path, ray_workers: int | None) -> tuple[float, int]:
    args = [sys.executable, "-m", "rag.cli", "index", str(corpus), "--index-dir", str(index_dir), "--json"]
    env = {**os.environ}
    if ray_workers:
        args += ["--ray", "local"]
        env["RAG_RAY_WORKERS"] = str(ray_workers)
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=3600)
    seconds = time.perf_counter() - t0
    if done.returncode not in (0, 3):
        raise SystemExit(f"rag index failed ({done.returncode}): {done.stderr[-1000:]}")
    report = json.loads(done.stdout)
    return seconds, report["chunks_embedded"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(CORPUS.read_text(encoding="utf-8").splitlines(keepends=True)[:a.paragraphs]),
                          encoding="utf-8")
        sides = {"single process": None, "ray, 1 worker": 1, "ray, 2 workers": 2}
        times: dict[str, list[float]] = {k: [] for k in sides}
        passages = 0
        for r in range(a.repeats):
            for name, workers in sides.items():
                seconds, passages = _index(corpus, Path(tmp) / f"index-{r}-{workers}", workers)
                times[name].append(seconds)
    base = statistics.median(times["single process"])
    rows = [{"side": k, "median_s": round(statistics.median(v), 1), "runs_s": [round(x, 1) for x in v],
             "throughput_ratio": round(base / statistics.median(v), 2)} for k, v in times.items()]
    result = {"paragraphs": a.paragraphs, "passages": passages, "repeats": a.repeats,
              "load_average": os.getloadavg(), "rows": rows}
    if a.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{a.paragraphs} ARCD paragraphs ({passages} passages), median of {a.repeats}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for row in rows:
        print(f"  {row['side']:<16} {row['median_s']:>7.1f} s   {row['throughput_ratio']:.2f}x the single process")


if __name__ == "__main__":
    main()
