"""Quality on ../shared/eval, in one run: dense-only, BM25-only and hybrid retrieval; extractive answers;
abstention calibrated on negatives (each set's questions asked against the other set's corpus).

    .venv/bin/python benchmarks/quality.py [--limit N] [--json]

Pooled corpus = every ARCD and MLQA paragraph + the bundled articles. Prints recall@1/5/10 and MRR@10 per
retriever and answer containment per set and pooled, then the abstention threshold that best separates
answerable from unanswerable questions, with the rates it gives.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer import CONFIDENCE_MODELS  # noqa: E402
from rag.config import BUNDLED_ARTICLES, get_settings  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import EvalQuestion, evaluate_set, load_questions, prepare  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
SETS = {"arcd": EVAL / "arcd", "mlqa": EVAL / "mlqa_ar_dev"}


FEATURES = ("cos", "coverage")


def features(assistant, questions: list[EvalQuestion], k: int) -> np.ndarray:
    """The features the abstention model reads, of the answerer's best sentence, one row per question."""
    rows = []
    for q in questions:
        qv = assistant.encode_query(q.question)
        scored = assistant.answerer.score_sentences(q.question, qv, assistant.hybrid.search(q.question, k))
        rows.append([scored[0].cos, scored[0].coverage] if scored else [0.0, 0.0])
    return np.array(rows)


def fit_confidence(pos: np.ndarray, neg: np.ndarray, columns: list[int]) -> dict[str, float]:
    """Logistic regression of answerable (1) vs unanswerable (0) (sklearn comes with sentence-transformers)."""
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([pos, neg])[:, columns]
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    model = LogisticRegression(C=10.0, max_iter=1000).fit(x, y)
    return {"bias": round(float(model.intercept_[0]), 3),
            **{FEATURES[c]: round(float(w), 3) for c, w in zip(columns, model.coef_[0])}}


def probabilities(x: np.ndarray, weights: dict[str, float]) -> np.ndarray:
    z = weights.get("bias", 0.0) + sum(weights.get(n, 0.0) * x[:, i] for i, n in enumerate(FEATURES))
    return 1 / (1 + np.exp(-z))


def pool(results: list[dict]) -> dict:
    """Question-weighted mean of the per-set figures."""
    n = sum(r["questions"] for r in results)

    def mean(get):
        return round(sum(get(r) * r["questions"] for r in results) / n, 4)

    first = results[0]
    return {"set": "pooled", "questions": n,
            "retrieval": {ret: {m: mean(lambda r: r["retrieval"][ret][m]) for m in ms}
                          for ret, ms in first["retrieval"].items()},
            "answer": {m: mean(lambda r: r["answer"][m]) for m in first["answer"]}}


def calibrate(pos: np.ndarray, neg: np.ndarray) -> dict:
    """The threshold with the best balanced accuracy (answer the answerable, refuse the rest)."""
    best = None
    for t in np.unique(np.concatenate([pos, neg])):
        answered = float((pos >= t).mean())
        refused = float((neg < t).mean())
        score = (answered + refused) / 2
        if best is None or score > best["balanced"]:
            best = {"threshold": round(float(t), 4), "answered": round(answered, 4), "refused": round(refused, 4),
                    "balanced": round(score, 4)}
    return best


def threshold_for_answered(pos: np.ndarray, neg: np.ndarray, share: float) -> dict:
    """The highest threshold that still answers `share` of the answerable questions, and what it refuses."""
    t = float(np.quantile(pos, 1 - share))
    return {"threshold": round(t, 4), "answered": round(float((pos >= t).mean()), 4),
            "refused": round(float((neg < t).mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="first N questions of each set")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    settings = get_settings()
    embedder = Embedder(settings)
    report: dict = {"settings": {k: v for k, v in settings.model_dump(mode="json").items()
                             if k not in ("index_dir", "cache_dir", "api_key", "sessions_path")}}

    t0 = time.perf_counter()
    pooled = prepare([SETS["arcd"] / "corpus.jsonl", SETS["mlqa"] / "corpus.jsonl", BUNDLED_ARTICLES], settings, embedder)
    report["pooled_index"] = {"chunks": len(pooled.store), "documents": pooled.store.document_count(),
                              "seconds_incl_cache": round(time.perf_counter() - t0, 1)}
    questions = {name: load_questions(path / "questions.jsonl")[: args.limit] for name, path in SETS.items()}

    results = []
    t0 = time.perf_counter()
    for name, qs in questions.items():
        results.append(evaluate_set(pooled, name, qs).to_dict())
    results.append(pool(results))
    report["seconds_per_question"] = round((time.perf_counter() - t0) / sum(len(q) for q in questions.values()), 4)
    report["sets"] = results

    # Negatives: each set's questions against the other set's corpus (+ the bundled articles).
    k = settings.top_k
    pos = features(pooled, [q for qs in questions.values() for q in qs], k)
    negs = []
    for name, other in (("arcd", "mlqa"), ("mlqa", "arcd")):
        wrong = prepare([SETS[other] / "corpus.jsonl", BUNDLED_ARTICLES], settings, embedder)
        negs.append(features(wrong, questions[name], k))
    neg = np.concatenate(negs)
    current = CONFIDENCE_MODELS["same_language"]
    fitted = fit_confidence(pos, neg, [0, 1])
    p_pos, p_neg = probabilities(pos, current), probabilities(neg, current)
    f_pos, f_neg = probabilities(pos, fitted), probabilities(neg, fitted)
    report["abstention"] = {
        "current": {"weights": current, "threshold": settings.abstain_threshold,
                    "answered": round(float((p_pos >= settings.abstain_threshold).mean()), 4),
                    "refused": round(float((p_neg < settings.abstain_threshold).mean()), 4)},
        "refit": {"weights": fitted, **calibrate(f_pos, f_neg),
                  "at_95_answered": threshold_for_answered(f_pos, f_neg, 0.95)},
        "cos_only_refit (the cross-language model's base)": fit_confidence(pos, neg, [0]),
        "positives": len(pos), "negatives": len(neg),
    }

    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    print(f"pooled index: {report['pooled_index']}")
    print(f"{'set':8} {'retriever':8} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7}")
    for r in results:
        for ret, m in r["retrieval"].items():
            print(f"{r['set']:8} {ret:8} {m['recall@1']:6.3f} {m['recall@5']:6.3f} {m['recall@10']:6.3f} {m['mrr@10']:7.3f}")
        print(f"{r['set']:8} answers  {r['answer']}")
    print(f"abstention: {report['abstention']}")


if __name__ == "__main__":
    main()
