"""`rag feedback`: the readers' ratings from the chat page, newest first (readable, or --json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def feedback(
    index_dir: Annotated[Optional[Path], typer.Option("--index-dir", help="index directory [env RAG_INDEX_DIR; default index/]")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON for programs")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="newest N ratings", min=1)] = 100,
    rating: Annotated[Optional[str], typer.Option(help="only 'up' or only 'down'")] = None,
) -> None:
    """The thumbs up / down readers gave answers in the chat page (`rag serve`), newest first."""
    from rag import cli
    from rag.errors import InvalidInput
    from rag.feedback import FeedbackStore, database_path

    settings = cli._settings(index_dir)

    def run():
        if rating not in (None, "up", "down"):
            raise InvalidInput(f"--rating is 'up' or 'down', not {rating!r}")
        path = database_path(settings)
        store = FeedbackStore.read_only(path)
        rows = [f.to_dict() for f in store.list(limit)] if store else []
        if store:
            store.close()
        rows = [r for r in rows if rating is None or r["rating"] == rating]
        if json_output:
            cli.out.print(json.dumps(rows, ensure_ascii=False, indent=2), markup=False)
            return
        if not rows:
            cli.err.print(f"no feedback yet ({path})")
            return
        for r in rows:
            mark = "+1" if r["rating"] == "up" else "-1"
            cli.out.print(f"#{r['id']}  {r['created']}  {mark} {r['rating']}  {r['mode'] or '-'}  "
                          f"session {r['session_id'] or '-'}", style="bold", markup=False)
            cli.show(r["question"], settings, indent="  Q: ")
            answer = r["answer"] if len(r["answer"]) <= 300 else r["answer"][:300] + "…"
            cli.show(answer, settings, indent="  A: ")
            if r["citations"]:
                cli.out.print("  " + " ".join(r["citations"]), style="dim", markup=False)
            if r["comment"]:
                cli.show(r["comment"], settings, indent="  note: ")
        ups = sum(r["rating"] == "up" for r in rows)
        cli.out.print(f"{len(rows)} ratings: {ups} up, {len(rows) - ups} down", style="dim")

    cli._run(run)
