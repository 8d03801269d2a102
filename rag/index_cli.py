"""`rag rm DOC_ID...` and `rag index --compact / --check`: the index changes and checks that need no model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.config import Settings


def rm(
    doc_ids: Annotated[list[str], typer.Argument(help="ids of the documents to remove (`rag docs` lists them)")],
    index_dir: Annotated[Optional[Path], typer.Option("--index-dir", help="index directory [env RAG_INDEX_DIR; default index/]")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON for programs")] = False,
) -> None:
    """Remove documents from the index by id (a tombstone: writes a few hundred bytes, embeds nothing)."""
    from rag import cli
    from rag.indexer import remove_documents

    settings = cli._settings(index_dir)

    def run():
        report = remove_documents(settings.index_dir, doc_ids)
        if json_output:
            cli.out.print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), markup=False)
            return
        for doc_id in report.removed:
            cli.out.print(f"{'removed':>9}  {doc_id}", markup=False)
        cli.out.print(f"{len(report.removed)} removed; index: {report.documents} documents, {report.chunks} passages "
                      f"in {settings.index_dir}", markup=False)

    cli._run(run)


def maintain(settings: Settings, compact: bool, check: bool, json_output: bool, paths, rebuild: bool) -> None:
    """`rag index --compact` (merge everything into one segment) and / or `--check` (exit 1 on any problem)."""
    from rag import cli
    from rag.errors import InvalidInput
    from rag.indexer import compact_index
    from rag.store import check_index, index_exists, read_manifest

    def run():
        if paths or rebuild:
            raise InvalidInput("--compact and --check take no PATH and no --rebuild; run them on their own")
        result: dict = {}
        if compact:
            report = compact_index(settings.index_dir)
            result["compact"] = report.to_dict()
            if not json_output:
                cli.out.print(f"merged {report.merged}" if report.merged else "nothing to merge (one segment, "
                              "no removed passages)", markup=False)
        if check:
            if not index_exists(settings.index_dir):
                raise InvalidInput(f"no index in {settings.index_dir}")
            problems = check_index(settings.index_dir)
            manifest = read_manifest(settings.index_dir) if not problems or "manifest" not in problems[0] else None
            result["check"] = {"ok": not problems, "problems": problems,
                               "generation": manifest.generation if manifest else None,
                               "segments": len(manifest.segments) if manifest else None}
            if not json_output:
                for line in problems:
                    cli.err.print(line, markup=False, soft_wrap=True)  # one line each, however long
                if not problems:
                    cli.out.print(f"ok: generation {manifest.generation}, {len(manifest.segments)} segments, "
                                  f"{manifest.documents} documents, {manifest.chunks} passages, every file matches "
                                  "its checksum", markup=False)
        if json_output:
            cli.out.print(json.dumps(result, ensure_ascii=False, indent=2), markup=False)
        if check and result["check"]["problems"]:
            raise typer.Exit(1)

    cli._run(run)
