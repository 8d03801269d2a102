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
    from rag.store.base import backend_for

    settings = cli._settings(index_dir)

    def run():
        backend = backend_for(settings)
        report = remove_documents(backend, doc_ids)
        if json_output:
            cli.out.print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), markup=False)
            return
        for doc_id in report.removed:
            cli.out.print(f"{'removed':>9}  {doc_id}", markup=False)
        cli.out.print(f"{len(report.removed)} removed; index: {report.documents} documents, {report.chunks} passages "
                      f"in {backend.describe()}", markup=False)

    cli._run(run)


def maintain(settings: Settings, compact: bool, check: bool, json_output: bool, paths, rebuild: bool) -> None:
    """`rag index --compact` (merge everything into one segment) and / or `--check` (exit 1 on any problem)."""
    from rag import cli
    from rag.errors import InvalidInput
    from rag.indexer import compact_index
    from rag.store import read_manifest
    from rag.store.base import backend_for

    def run():
        if paths or rebuild:
            raise InvalidInput("--compact and --check take no PATH and no --rebuild; run them on their own")
        backend = backend_for(settings)
        result: dict = {}
        if compact:
            report = compact_index(backend)
            result["compact"] = report.to_dict()
            if not json_output and backend.name == "local":
                cli.out.print(f"merged {report.merged}" if report.merged else "nothing to merge (one segment, "
                              "no removed passages)", markup=False)
            elif not json_output:  # Milvus merges its own segments; what is ours to clean is a half-done write's
                cli.out.print(report.merged or "nothing an interrupted write left; document frequencies match",
                              markup=False)
        if check:
            if not backend.exists():
                raise InvalidInput(f"no index in {backend.describe()}")
            problems = backend.check()
            ok = not problems or "manifest" not in problems[0]
            manifest = read_manifest(settings.index_dir) if backend.name == "local" and ok else None
            documents, passages = backend.counts() if ok else (None, None)
            result["check"] = {"ok": not problems, "problems": problems,
                               "generation": backend.generation() if ok else None,
                               "segments": len(manifest.segments) if manifest else None}
            if not json_output:
                for line in problems:
                    cli.err.print(line, markup=False, soft_wrap=True)  # one line each, however long
                if not problems:
                    layout = (f"{len(manifest.segments)} segments, " if manifest else "")
                    cli.out.print(f"ok: generation {result['check']['generation']}, {layout}{documents} documents, "
                                  f"{passages} passages, " + ("every file matches its checksum" if manifest else
                                                              "every passage belongs to a live document"), markup=False)
        if json_output:
            cli.out.print(json.dumps(result, ensure_ascii=False, indent=2), markup=False)
        if check and result["check"]["problems"]:
            raise typer.Exit(1)

    cli._run(run)
