"""What the cross-language stages cost a question: `Assistant.ask` over the pooled eval index with the stage on
against off, in the same run, rounds alternating (the machine is shared: only the ratios travel). English questions
(../shared/eval/crosslingual_en) go through them; Arabic ones must not pay for them.

--stage cross-lingual (RAG_CROSS_LINGUAL, rag/crosslingual.py): the cross-language model reads the sentences of the
second stage's 20 passages (unless they hold a name of the question) and those of the 5 passages read (for the
abstention). "cold": a new encoder each round, so no sentence vector is cached (a server's first questions); "warm":
the same questions again through that encoder, every vector cached (the bound on what its cache saves). Questions
are translated in every arm, from a filled cache.

--stage translation (RAG_TRANSLATOR, rag/translate/local.py): Gemma 3 270M writes the question's Arabic wording for BM25.
"cold": a new translator each round (the loaded model shared, its prompt already evaluated: a server's state after
`warm`), so each question is translated; "warm": the same questions again, from its cache. Every question is asked
once with and once without its wording before the rounds, so that the cross-language model's sentence vectors are
cached for every arm and only the translation differs.

--stage selector (RAG_SELECTOR, rag/selector.py): the sentence selector re-scores the 5 best-scored sentences of
every question, Arabic and English ("on" against "off"); the cross-language model and the translator read from
filled caches in both arms.

The question's e5 vector is cached in every case, so the figures are retrieval (+ translation) + answer.

    .venv/bin/python benchmarks/crosslingual_latency.py [--stage cross-lingual|translation] [--questions 60]
        [--repeats 5] [--json]
    .venv/bin/python benchmarks/crosslingual_latency.py --stage selector
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

from rag.config import BUNDLED_ARTICLES, get_settings  # noqa: E402
from rag.crosslingual import CrossLingualEncoder  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import load_questions, prepare  # noqa: E402
from rag.translate import LocalTranslator  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


def set_cross_lingual(assistant, encoder: CrossLingualEncoder | None) -> None:
    assistant.hybrid.cross_lingual = assistant.extractive.cross_lingual = encoder


def set_translator(assistant, translator: LocalTranslator | None) -> None:
    assistant.hybrid.translate = translator


def set_selector(assistant, selector) -> None:
    assistant.extractive.selector = selector


def per_question_ms(assistant, questions: list[str], setup, stage) -> float:
    setup(assistant, stage)
    t0 = time.perf_counter()
    for q in questions:
        assistant.ask(q)
    return (time.perf_counter() - t0) * 1000 / len(questions)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", choices=["cross-lingual", "translation", "selector"], default="cross-lingual")
    ap.add_argument("--questions", type=int, default=60, help="per language and round")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    settings = get_settings()
    corpus = [EVAL / "arcd" / "corpus.jsonl", EVAL / "mlqa_ar_dev" / "corpus.jsonl", BUNDLED_ARTICLES]
    assistant = prepare(corpus, settings, Embedder(settings))
    english = [json.loads(line)["question"] for line in (EVAL / "crosslingual_en" / "questions.jsonl")
               .read_text(encoding="utf-8").splitlines() if line.strip()]
    arabic = [q.question for q in load_questions(EVAL / "arcd" / "questions.jsonl")]
    assistant.encode_query.size = 10**6
    n = args.questions
    rounds = {lang: [qs[i * n:(i + 1) * n] for i in range(args.repeats)] for lang, qs in
              (("en", english), ("ar", arabic))}
    assistant.encode_query.prime([q for rs in rounds.values() for r in rs for q in r])
    warm_encoder = CrossLingualEncoder(cache_size=10**6 if args.stage == "translation" else 4096)
    warm_encoder.warm()  # loads aren't a question's cost
    warm_translator = LocalTranslator(settings, cache_size=10**6)
    warm_translator.warm()
    selector = assistant.extractive.selector
    if args.stage == "selector":  # every arm reads translations and sentence vectors from their caches
        set_cross_lingual(assistant, warm_encoder)
        set_translator(assistant, warm_translator)
        setup = set_selector
        for q in (q for rs in rounds.values() for r in rs for q in r):
            assistant.ask(q)
    elif args.stage == "cross-lingual":  # every arm translates from a filled cache
        for q in english[:n * args.repeats]:
            warm_translator(q)
        set_translator(assistant, warm_translator)
        setup = set_cross_lingual
    else:  # every arm reads the cross-language model's sentence vectors from its cache: only the translation differs
        set_cross_lingual(assistant, warm_encoder)
        setup = set_translator
        for q in (q for rs in rounds.values() for r in rs for q in r):
            for translator in (None, warm_translator):
                set_translator(assistant, translator)
                assistant.ask(q)
    times: dict[str, list[float]] = {}
    for i in range(args.repeats):
        for lang, rs in rounds.items():
            if args.stage == "selector":
                times.setdefault(f"{lang} off", []).append(per_question_ms(assistant, rs[i], setup, None))
                times.setdefault(f"{lang} on", []).append(per_question_ms(assistant, rs[i], setup, selector))
                continue
            if args.stage == "cross-lingual":
                cold = CrossLingualEncoder()
            else:
                cold = LocalTranslator(settings)
            cold._model = (warm_encoder if args.stage == "cross-lingual" else warm_translator)._model
            times.setdefault(f"{lang} off", []).append(per_question_ms(assistant, rs[i], setup, None))
            times.setdefault(f"{lang} cold", []).append(per_question_ms(assistant, rs[i], setup, cold))
            times.setdefault(f"{lang} warm", []).append(per_question_ms(assistant, rs[i], setup, cold))  # cached
    medians = {k: round(statistics.median(v), 1) for k, v in times.items()}
    report = {"ms_per_question": medians,
              "ratio_to_off": {k: round(v / medians[k.split()[0] + " off"], 2) for k, v in medians.items()},
              "stage": args.stage, "questions_per_round": n, "repeats": args.repeats}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for k, v in medians.items():
        print(f"{k:8} {v:7.1f} ms a question  x{report['ratio_to_off'][k]:.2f} of off")


if __name__ == "__main__":
    main()
