"""Fit the learned short-answer picker (rag/span_scorer.py) on ARCD and report it on the sets it did not see.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/span_scorer.py [--train arcd] [--l2 1.0] [--write]

Over the pooled eval index (every ARCD and MLQA paragraph + the bundled articles, as benchmarks/quality.py builds
it; the shipped token codec), each question is answered as the assistant does up to its best sentence. The
training rows are the candidates of the best sentence and, when that one lacks the gold answer, of the first
of the top 12 sentences that holds it; the target is each candidate's token F1 against the gold answers
(rag.evaluate.token_f1, a number's span taken with the word it counts, as the answerer shows it). The model is
a softmax over one sentence's candidates, fitted by L-BFGS (scipy) with an L2 penalty. Reported per set, every
question answered, over the best sentence: token F1 / EM of the rules (rag.short_answer.pick) and of the model,
and the oracle (the best candidate). --write saves the model fitted on --train to rag/data/span_scorer.npz.

Measured (2026-12-02, the shipped pq eval index; token F1 / EM over the best sentence, every question answered, so
not the end-to-end figures of benchmarks/quality.py, which count an abstention as 0):

    fitted on ARCD, l2 1.0 (shipped)     rules            model            oracle F1
    ARCD (fitted on)                     0.292 / 0.084    0.339 / 0.124    0.605
    MLQA (held out)                      0.183 / 0.074    0.208 / 0.104    0.472
    English (held out)                   0.105 / 0.013    0.108 / 0.023    0.289
    l2 0.3 / 3.0: MLQA 0.209 / 0.215, English 0.105 / 0.112. No span starts or ends on a word without a letter or
    digit (a dash): the same fit before that rule, with the second stage's older late weight, 0.342 / 0.207 / 0.105.

No confidence floor (SpanConfig.min_probability 0): the picks the model is least sure of are not much worse (ARCD:
the 21% below probability 0.05 score F1 0.215, against 0.339 for all), and an absent short answer scores 0.
Base features alone (no token vectors), a scratch fit over int8 vectors: MLQA 0.20 against 0.23 with them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import ENGLISH, SETS, prime_cached  # noqa: E402
from rag.arabic import answer_contains, detect_language  # noqa: E402
from rag.config import BUNDLED_ARTICLES, get_settings  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import EvalQuestion, exact_match, load_questions, prepare, token_f1  # noqa: E402
from rag.short_answer import SpanConfig, extend_number, pick, question_type  # noqa: E402
from rag.span_scorer import BASE_FEATURES, KINDS, SpanScorer, candidates, word_means, word_rarity  # noqa: E402


def sentence_rows(assistant, q: EvalQuestion, train: bool) -> list[dict]:
    """The best sentence (and, for training, the first of the top 12 holding the gold answer when the best does
    not): its candidates' base features, word vectors, and each candidate's F1 / EM."""
    ex, store = assistant.extractive, assistant.store
    lang = detect_language(q.question)
    hits = assistant.hybrid.search(q.question, 10)[:assistant.settings.top_k]
    scored = ex.score_sentences(q.question, assistant.encode_query(q.question), hits)
    if not scored:
        return []
    picks = [0]
    if train:
        gold = next((i for i, s in enumerate(scored[:12]) if any(answer_contains(
            store.document(s.hit.chunk.doc_id).text[s.span.start:s.span.end], a) for a in q.answers)), None)
        if gold not in (None, 0):
            picks.append(gold)
    kind = question_type(q.question)
    q_tokens = assistant.encode_query.tokens(q.question)
    out = []
    for si in picks:
        s = scored[si]
        text = store.document(s.hit.chunk.doc_id).text
        words = ex.sentence_words(q.question, lang, s)
        sims, spans = store.token_similarities(s.hit.row, np.vstack([q_tokens, np.eye(q_tokens.shape[1], dtype=np.float32)]))
        per_word = word_means(sims, words, spans)
        similarity, vectors = per_word[:len(q_tokens)].max(axis=0), per_word[len(q_tokens):]  # (words,), (d, words)
        rarity = word_rarity(store, words)
        cands = candidates(words, kind, similarity, rarity)
        if not cands:
            continue

        def shown(first: int, last: int) -> str:
            last = extend_number(words, first, last) if kind == "number" else last
            return text[words[first].start:words[last].end]

        rule = pick(words, kind, SpanConfig())
        out.append({"kind": kind, "best": si == 0, "cands": cands, "vectors": vectors,
                    "f1": np.array([token_f1(shown(c.first, c.last), q.answers) for c in cands]),
                    "em": np.array([exact_match(shown(c.first, c.last), q.answers) for c in cands]),
                    "rule": (token_f1(shown(rule[0], rule[1]), q.answers), exact_match(shown(rule[0], rule[1]), q.answers))
                    if rule else (0.0, 0.0)})
    return out


def design(row: dict) -> np.ndarray:
    """Base features (shared + own type block), then the span's mean word vector and its first word's."""
    b, vec = len(BASE_FEATURES), row["vectors"]
    block = b * (1 + KINDS.index(row["kind"]))
    x = np.zeros((len(row["cands"]), b * (1 + len(KINDS)) + 2 * vec.shape[0]))
    for r, c in enumerate(row["cands"]):
        x[r, :b] = c.features
        x[r, block:block + b] = c.features
        x[r, b * (1 + len(KINDS)):-vec.shape[0]] = vec[:, c.first:c.last + 1].mean(axis=1)
        x[r, -vec.shape[0]:] = vec[:, c.first]
    return x


def fit(rows: list[dict], l2: float) -> np.ndarray:
    from scipy.optimize import minimize

    groups = [(design(r), r["f1"] / r["f1"].sum()) for r in rows if r["f1"].max() > 0]

    def loss(w):
        total, grad = 0.5 * l2 * w @ w, l2 * w
        for x, t in groups:
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            total -= t @ np.log(p + 1e-12)
            grad -= x.T @ (t - p)
        return total, grad

    return minimize(loss, np.zeros(groups[0][0].shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 300}).x


def to_scorer(w: np.ndarray, d: int, model_id: str) -> SpanScorer:
    nb = len(BASE_FEATURES) * (1 + len(KINDS))
    return SpanScorer(w[:nb], np.stack([w[nb:nb + d], w[nb + d:]]), model_id)


def report(name: str, rows: list[dict], n_questions: int, scorer: SpanScorer) -> dict:
    best = [r for r in rows if r["best"]]
    f1 = em = rule_f1 = rule_em = oracle = 0.0
    confidence = []
    for r in best:
        probe_words = scorer.probes @ r["vectors"]
        got = scorer.best(r["cands"], r["kind"], probe_words)
        k = r["cands"].index(got[0])
        confidence.append((got[1], r["f1"][k]))
        f1, em = f1 + r["f1"][k], em + r["em"][k]
        rule_f1, rule_em = rule_f1 + r["rule"][0], rule_em + r["rule"][1]
        oracle += r["f1"].max()
    n = n_questions
    return {"set": name, "questions": n, "rules F1/EM": (round(rule_f1 / n, 4), round(rule_em / n, 4)),
            "model F1/EM": (round(f1 / n, 4), round(em / n, 4)), "oracle F1": round(oracle / n, 4),
            "by confidence (share of picks, their F1)": {
                f"p<{t}": (round(len(below) / max(1, len(confidence)), 3), round(float(np.mean(below)) if below else 0.0, 3))
                for t in (0.05, 0.1, 0.2, 0.3) for below in [[f for p, f in confidence if p < t]]}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default="arcd", choices=list(SETS))
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--write", action="store_true", help="save the fitted model to rag/data/span_scorer.npz")
    args = ap.parse_args()
    settings = get_settings()
    embedder = Embedder(settings)
    pooled = prepare([SETS["arcd"] / "corpus.jsonl", SETS["mlqa"] / "corpus.jsonl", BUNDLED_ARTICLES], settings, embedder)
    sets = {n: load_questions(p / "questions.jsonl") for n, p in SETS.items()}
    english = [json.loads(line) for line in ENGLISH.read_text(encoding="utf-8").splitlines() if line.strip()]
    sets["en"] = [EvalQuestion(str(r["id"]), r["question"], tuple(r["answers"]), r["context_id"]) for r in english]
    pooled.encode_query.size = 10**6
    prime_cached(pooled, list(dict.fromkeys(q.question for qs in sets.values() for q in qs)), settings.cache_dir / "eval")
    rows = {n: [r for q in qs for r in sentence_rows(pooled, q, train=n == args.train)] for n, qs in sets.items()}
    w = fit(rows[args.train], args.l2)
    scorer = to_scorer(w, pooled.store.manifest.dimension, pooled.store.manifest.model_id)
    for n, qs in sets.items():
        print(json.dumps({**report(n, rows[n], len(qs), scorer), "fitted on": args.train}, ensure_ascii=False), flush=True)
    if args.write:
        scorer.save()
        print(f"wrote {Path('rag/data/span_scorer.npz')}")


if __name__ == "__main__":
    main()
