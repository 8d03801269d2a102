"""`rag eval`: retrieval and answer quality on QA sets, over a cached index of their corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from rag.cli_options import JsonOut, RuntimeOpt, TopK
from rag.errors import RagError


def eval_command(
    questions: Annotated[list[Path], typer.Argument(help="questions.jsonl files (one set each)")],
    corpus: Annotated[list[Path], typer.Option("--corpus", help="corpus.jsonl files or folders to index (repeatable)")],
    negatives: Annotated[Optional[list[Path]], typer.Option("--negatives", help="questions this corpus cannot answer (repeatable)")] = None,
    limit: Annotated[Optional[int], typer.Option(help="first N questions of each set", min=1)] = None,
    k: TopK = None,
    json_output: JsonOut = False,
    runtime: RuntimeOpt = None,
) -> None:
    """Score retrieval (recall@1/5/10, MRR@10) and answers (containment, abstention) on QA sets."""
    from rag import cli

    settings = cli._settings(None, runtime)

    def run():
        from rag.evaluate import evaluate_set, load_questions, prepare

        for p in [*questions, *corpus, *(negatives or [])]:
            if not p.exists():
                raise RagError(f"{p} does not exist")
        embedder = cli._embedder(settings)
        with cli._progress() as bar:
            task = bar.add_task("indexing the corpus", total=None)
            assistant = prepare(corpus, settings, embedder,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
        sets = [(p.parent.name + "/" + p.stem, load_questions(p)) for p in questions]
        sets += [(p.parent.name + "/" + p.stem + " (negatives)", load_questions(p, answerable=False))
                 for p in negatives or []]
        results = []
        with cli._progress() as bar:
            for name, qs in sets:
                qs = qs[:limit] if limit else qs
                task = bar.add_task(name, total=len(qs))
                results.append(evaluate_set(assistant, name, qs, k=k,
                                            on_question=lambda t=task: bar.advance(t)))
        if json_output:
            cli.out.print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2), markup=False)
            return
        for r in results:
            table = Table(title=f"{r.name} ({r.questions} questions)", title_justify="left")
            table.add_column("retriever")
            for m in ("recall@1", "recall@5", "recall@10", "mrr@10"):
                table.add_column(m, justify="right")
            for name, m in r.retrieval.items():
                table.add_row(name, *(f"{m[x]:.3f}" for x in ("recall@1", "recall@5", "recall@10", "mrr@10")))
            if r.retrieval:
                cli.out.print(table)
            cli.out.print("answers: " + ", ".join(f"{key} {v}" for key, v in r.answer.items()), markup=False)

    cli._run(run)
