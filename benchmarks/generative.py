"""Generative answers against a real local model: speed of the stream, and how many citations survive the checks.

    .venv/bin/python benchmarks/generative.py [--runs 5] [--questions 20] [--max-tokens 96] [--json]

Starts llama-cpp-python's server on 127.0.0.1 with Gemma 3 270M (rag/local_llm.py), then:
1. Speed, on the seed question over the bundled articles, `--runs` times each, alternating:
   - ours: `Assistant.stream` (retrieve, gate, prompt, stream through the marker parser, check citations);
   - bare: the same prompt messages streamed straight from the same ChatOpenAI client (the baseline: the
     model's own time, nothing of ours). Both see the same prompt, so llama.cpp's prefix cache helps both alike.
   Reported: median time to the first streamed piece and to the end, and ours / bare as ratios.
2. Citations, on the first questions of ARCD and MLQA (half each) against the pooled eval corpus: every
   passage number the model wrote, how many named a passage it was given, and how many sit in a sentence
   the check found supported; and how many answers were returned as generated rather than falling back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.chain import Assistant, ensure_index  # noqa: E402
from rag.config import BUNDLED_ARTICLES, get_settings  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import load_questions, prepare  # noqa: E402
from rag.generate import STOP, Draft, chat_model_from_settings, piece_text  # noqa: E402
from rag.local_llm import MODEL_ALIAS, LlamaServer, gguf_path  # noqa: E402
from rag.types import Answer  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
SETS = {"arcd": EVAL / "arcd", "mlqa": EVAL / "mlqa_ar_dev"}
SEED = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"


def time_ours(assistant: Assistant, question: str) -> tuple[float, float, Answer]:
    t0 = time.perf_counter()
    first = None
    for event in assistant.stream(question):
        if isinstance(event, str) and first is None:
            first = time.perf_counter() - t0
        answer = event
    total = time.perf_counter() - t0
    return (first if first is not None else total), total, answer


def time_bare(model, messages) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    for chunk in model.stream(messages, stop=STOP):
        if piece_text(chunk) and first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return (first if first is not None else total), total


def speed(assistant: Assistant, runs: int) -> dict:
    messages = assistant.answerer.messages(SEED, assistant.search(SEED))
    ours, bare = [], []
    time_bare(assistant.chat_model, messages)  # warm the server's prompt cache for both
    for _ in range(runs):
        first, total, answer = time_ours(assistant, SEED)
        ours.append((first, total))
        bare.append(time_bare(assistant.chat_model, messages))
    med = lambda xs, i: statistics.median(x[i] for x in xs) * 1000  # noqa: E731
    return {"runs": runs, "mode": answer.mode, "notice": answer.notice, "answer": answer.answer[:300],
            "ours_first_ms": round(med(ours, 0), 1), "ours_total_ms": round(med(ours, 1), 1),
            "bare_first_ms": round(med(bare, 0), 1), "bare_total_ms": round(med(bare, 1), 1),
            "first_ratio": round(med(ours, 0) / med(bare, 0), 3), "total_ratio": round(med(ours, 1) / med(bare, 1), 3)}


def citations(assistant: Assistant, questions) -> dict:
    rows = []
    for q in questions:
        hits = assistant.search(q.question)
        t0 = time.perf_counter()
        *_, draft = assistant.answerer.generate(q.question, hits)
        assert isinstance(draft, Draft)
        written = sum(len(c.citations) for c in draft.checks) + len(draft.dropped)
        rows.append({"id": q.id, "seconds": round(time.perf_counter() - t0, 2), "reply": draft.text[:200],
                     "error": draft.error, "markers_written": written,
                     "naming_a_given_passage": sum(len(c.citations) for c in draft.checks),
                     "in_supported_sentences": sum(len(c.citations) for c in draft.checks if c.supported),
                     "answered_generatively": not draft.error and any(c.supported for c in draft.checks)})
    total = lambda key: sum(r[key] for r in rows)  # noqa: E731
    written = total("markers_written")
    return {"questions": len(rows), "markers_written": written,
            "naming_a_given_passage": total("naming_a_given_passage"),
            "in_supported_sentences": total("in_supported_sentences"),
            "surviving_share": round(total("in_supported_sentences") / written, 3) if written else None,
            "answered_generatively": total("answered_generatively"),
            "replies_with_text": sum(1 for r in rows if r["reply"]),
            "median_seconds": statistics.median(r["seconds"] for r in rows), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    base = get_settings()
    embedder = Embedder(base)
    with LlamaServer(gguf_path(base), threads=2) as server:
        settings = base.model_copy(update={"llm_base_url": server.url, "llm_model": MODEL_ALIAS,
                                           "llm_max_tokens": args.max_tokens})
        ensure_index(settings, embedder)
        model = chat_model_from_settings(settings)
        result = {"model": MODEL_ALIAS, "max_tokens": args.max_tokens,
                  "speed": speed(Assistant(settings, embedder=embedder, chat_model=model), args.runs)}
        pooled = [SETS["arcd"] / "corpus.jsonl", SETS["mlqa"] / "corpus.jsonl", BUNDLED_ARTICLES]
        eval_assistant = prepare(pooled, settings, embedder)
        half = args.questions // 2
        qs = (load_questions(SETS["arcd"] / "questions.jsonl")[:half]
              + load_questions(SETS["mlqa"] / "questions.jsonl")[:args.questions - half])
        result["citations"] = citations(eval_assistant, qs)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    s, c = result["speed"], result["citations"]
    print(f"model {MODEL_ALIAS} on llama.cpp, 2 threads, max_tokens {args.max_tokens}; seed question, "
          f"median of {s['runs']} runs")
    print(f"{'':24}{'first piece ms':>16}{'total ms':>12}")
    print(f"{'ours (Assistant.stream)':24}{s['ours_first_ms']:>16.1f}{s['ours_total_ms']:>12.1f}")
    print(f"{'bare model stream':24}{s['bare_first_ms']:>16.1f}{s['bare_total_ms']:>12.1f}")
    print(f"{'ratio ours / bare':24}{s['first_ratio']:>16.3f}{s['total_ratio']:>12.3f}")
    print(f"seed answer: mode {s['mode']}{' (' + s['notice'] + ')' if s['notice'] else ''}")
    print(f"\n{c['questions']} eval questions ({half} ARCD + {c['questions'] - half} MLQA), median "
          f"{c['median_seconds']:.1f} s each: {c['replies_with_text']} replies with text, "
          f"{c['markers_written']} citation numbers written, {c['naming_a_given_passage']} naming a given "
          f"passage, {c['in_supported_sentences']} in supported sentences "
          f"(surviving share {c['surviving_share']}); {c['answered_generatively']} answered generatively")
    for r in c["rows"][:5]:
        print(f"  {r['id']}: {r['reply'][:100]!r}")


if __name__ == "__main__":
    main()
