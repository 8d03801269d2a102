"""Fit the sentence selector (rag/selector.py) on ARCD and report it on MLQA and the English questions.

    .venv/bin/python benchmarks/train_selector.py [--epochs 2] [--limit N] [--out rag/data/selector.npz]

The selector is the project's own e5 model read as a cross-encoder, like the extractive reader
(benchmarks/train_reader.py): a question and one sentence in one sequence, scored by a head over the last
hidden states (the first token's, plus the mean of every token's). Only low-rank adapters on the top layers'
linear weights and the head are trained, and what ships is their deltas (rag/data/selector.npz).

Data: every ARCD question's candidate sentences as the shipped pipeline scores them (benchmarks/quality.py's
configuration, every question answered, without the selector): the 10 best-scored sentences of the passages it
reads. The loss is listwise (a softmax over one question's candidates; the sentences holding a gold answer its
target), so the selector learns what sets the sentence that answers apart from the ones retrieval put beside it.
Questions with no such sentence among the ten are left out. The bottom layers, which carry no adapter, run once
per candidate and are kept; each step runs the top layers only. MLQA and the English questions are held out: the
share whose sentence quoted first holds the gold answer, by the sentence scores alone and with the selector's pick
(rag.answer.ExtractiveAnswerer.select), is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import quality as Q  # noqa: E402
from rag.answer import AnswerConfig  # noqa: E402
from rag.arabic import answer_contains  # noqa: E402
from rag.evaluate import EvalQuestion, load_questions, prepare  # noqa: E402
from rag.model_builder import ensure_model  # noqa: E402
from rag.selector import CANDIDATES, MAX_LENGTH  # noqa: E402
from train_reader import lora, save_deltas  # noqa: E402


TRAIN_CANDIDATES = 10  # per question; the answerer re-scores fewer (rag.selector.CANDIDATES)


def candidates(limit: int | None) -> dict[str, list[tuple[str, list[str], list[bool], list[float]]]]:
    """Per set: (question, its TRAIN_CANDIDATES best-scored sentences, whether each holds a gold answer, their scores)."""
    settings = Q.get_settings()
    embedder = Q.Embedder(settings)
    sets = {n: load_questions(p / "questions.jsonl")[:limit] for n, p in Q.SETS.items()}
    rows = [json.loads(line) for line in Q.ENGLISH.read_text(encoding="utf-8").splitlines() if line.strip()]
    sets["english"] = [EvalQuestion(str(r["id"]), r["question"], tuple(r["answers"]), r["context_id"])
                       for r in rows][:limit]
    pooled = [Q.SETS["arcd"] / "corpus.jsonl", Q.SETS["mlqa"] / "corpus.jsonl", Q.BUNDLED_ARTICLES]
    assistant = prepare(pooled, settings, embedder)
    assistant.encode_query.size = 10**6
    every = [q for qs in sets.values() for q in qs]
    Q.prime_cached(assistant, list(dict.fromkeys(q.question for q in every)), settings.cache_dir / "eval")
    row = replace(Q.EVERY_ANSWERED, selector=False)
    hybrid, answerer = Q.configure(assistant, row, None)
    out = {}
    for name, qs in sets.items():
        out[name] = []
        for q in qs:
            hits = hybrid.search(q.question, 10)[:settings.top_k]
            scored = answerer.score_sentences(q.question, assistant.encode_query(q.question), hits)[:TRAIN_CANDIDATES]
            texts = [assistant.store.document(s.hit.chunk.doc_id).text[s.span.start:s.span.end] for s in scored]
            out[name].append((q.question, texts, [any(answer_contains(t, a) for a in q.answers) for t in texts],
                              [s.score for s in scored]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--first-layer", type=int, default=6, help="adapters on this layer and those above it")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--questions-per-step", type=int, default=4)
    ap.add_argument("--limit", type=int, default=None, help="first N questions of each set (a quick trial)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "rag" / "data" / "selector.npz")
    args = ap.parse_args()

    import torch
    from transformers import AutoModel, AutoTokenizer

    from rag.runtime.torch import _offline

    data = candidates(args.limit)
    _offline()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    rng = random.Random(args.seed)
    model_dir = Path(ensure_model(Q.get_settings()))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32, attn_implementation="eager",
                                      local_files_only=True)
    for p in model.parameters():
        p.requires_grad = False
    layers = range(args.first_layer, model.config.num_hidden_layers)
    wrapped = lora(model, layers, args.rank, 2.0 * args.rank)
    head = torch.nn.Linear(model.config.hidden_size, 2)  # column 0 read at the first token, column 1 averaged
    torch.nn.init.normal_(head.weight, std=0.02)
    torch.nn.init.zeros_(head.bias)

    def encode(question: str, texts: list[str]):
        enc = tokenizer([question] * len(texts), texts, truncation="only_second", max_length=MAX_LENGTH,
                        padding=True, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]

    def run(h, mask, first: int, last: int):
        extended, _ = model._create_attention_masks(attention_mask=mask, encoder_attention_mask=None,
                                                    embedding_output=h, encoder_hidden_states=None,
                                                    past_key_values=None)
        for layer in model.encoder.layer[first:last]:
            h = layer(h, attention_mask=extended)
            h = h[0] if isinstance(h, tuple) else h
        return h

    def score(h, mask):
        logits = head(h)
        m = mask.float()
        return logits[:, 0, 0] + (logits[..., 1] * m).sum(1) / m.sum(1)

    train = [(q, t, y) for q, t, y, _ in data["arcd"] if any(y)]
    started = time.perf_counter()
    cache = []
    with torch.no_grad():
        for question, texts, labels in train:
            ids, mask = encode(question, texts)
            h = run(model.embeddings(input_ids=ids), mask, 0, args.first_layer)
            cache.append((h.half(), mask, torch.tensor(labels, dtype=torch.bool)))
    print(f"{len(cache)} ARCD questions, {sum(len(t) for _, t, _ in train)} sentences; bottom layers in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    params = [p for m in wrapped.values() for p in (m.A, m.B)] + list(head.parameters())
    steps = int(args.epochs * math.ceil(len(cache) / args.questions_per_step))
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    step, losses = 0, []
    model.train()
    while step < steps:
        order = list(range(len(cache)))
        rng.shuffle(order)
        for i in range(0, len(order), args.questions_per_step):
            if step >= steps:
                break
            batch = order[i:i + args.questions_per_step]
            loss = 0.0
            for j in batch:
                h, mask, labels = cache[j]
                z = torch.log_softmax(score(run(h.float(), mask, args.first_layer, len(model.encoder.layer)), mask), 0)
                loss = loss - torch.logsumexp(z[labels], 0)
            loss = loss / len(batch)
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            losses.append(loss.item())
            if step % 50 == 0 or step == steps:
                print(f"step {step}/{steps} loss {np.mean(losses[-50:]):.3f} {time.perf_counter() - started:.0f} s",
                      flush=True)
    seconds = time.perf_counter() - started

    model.eval()
    weight, lead = AnswerConfig().selector_weight, AnswerConfig().selector_lead
    held_out = {}
    with torch.no_grad():
        for name in ("mlqa", "english"):
            before = after = 0
            for question, texts, labels, scores in data[name]:
                if texts:
                    ids, mask = encode(question, texts)
                    z = score(run(model.embeddings(input_ids=ids), mask, 0, len(model.encoder.layer)), mask).numpy()
                    before += labels[0]  # as the answerer picks (ExtractiveAnswerer.select)
                    total = np.array(scores[:CANDIDATES]) + weight * z[:CANDIDATES]
                    pick = int(np.argmax(total))
                    after += labels[pick if total[pick] >= total[0] + lead else 0]
            n = len(data[name])
            held_out[name] = {"questions": n, "best_sentence_holds_answer": [round(before / n, 4), round(after / n, 4)]}
    print(f"held out, the sentence quoted first holds the gold answer (sentence scores -> with the selector): "
          f"{held_out}")
    save_deltas(args.out, head, wrapped, model_dir, {
        "rank": args.rank, "alpha": 2.0 * args.rank, "layers": [layers.start, layers.stop], "epochs": args.epochs,
        "lr": args.lr, "train": "ARCD (../shared/eval/arcd): each question's 10 best-scored sentences, listwise",
        "train_questions": len(cache), "train_seconds": round(seconds), "held_out": held_out})

if __name__ == "__main__":
    main()
