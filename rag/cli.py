"""`rag`: a thin command line over rag.chain. Readable output for people, `--json` for programs.

Exit codes: 0 ok; 1 error (a one-line message, no traceback); 3 indexed, but some inputs were skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rag.cli_display import err, out, show, show_answer, visual_bidi
from rag.cli_options import IndexDir, JsonOut, LlmBaseUrl, LlmModel, RuntimeOpt, TopK
from rag.config import BUNDLED_ARTICLES, Settings, get_settings
from rag.errors import RagError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Arabic-first question answering over news articles, with citations you can open.")


def _where(settings: Settings) -> str:
    """Where the index is: its directory, or the Milvus collection (RAG_STORE)."""
    from rag.store.base import backend_for

    return backend_for(settings).describe()


def _settings(index_dir: Path | None, runtime: str | None = None) -> Settings:
    s = get_settings()
    if runtime is not None:
        from rag.runtime import RUNTIMES

        if runtime not in RUNTIMES:
            _fail(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
        s = s.model_copy(update={"runtime": runtime})
    return s.model_copy(update={"index_dir": index_dir}) if index_dir else s


def _with_llm(settings: Settings, base_url: str | None, model: str | None) -> Settings:
    llm = {k: v for k, v in (("llm_base_url", base_url), ("llm_model", model)) if v is not None}
    return settings.model_copy(update=llm) if llm else settings


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]Error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def _run(fn):
    """Turn the errors a user can cause into one line and exit 1; keep tracebacks for RAG_DEBUG=1."""
    try:
        return fn()
    except RagError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except (typer.Exit, typer.Abort):
        raise
    except Exception as e:  # noqa: BLE001 - the one place unknown errors become a message
        if os.environ.get("RAG_DEBUG"):
            raise
        _fail(f"{type(e).__name__}: {e} (set RAG_DEBUG=1 for the traceback)")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=True)


_embedders: dict = {}


def _embedder(settings: Settings):
    """One loaded model per process (the tests call the CLI in-process many times)."""
    from rag.embeddings import Embedder

    key = (settings.embedding_model, str(settings.cache_dir), settings.runtime, settings.device)
    if key not in _embedders:
        _embedders[key] = Embedder(settings)
    return _embedders[key]


def _index_with_progress(paths: list[Path], settings: Settings, embedder, rebuild: bool = False,
                         ray: str | None = None):
    from rag.chain import build_index

    with _progress() as bar:
        task = bar.add_task("embedding" if ray is None else f"embedding on Ray ({ray})", total=None)
        return build_index(paths, settings, embedder, rebuild=rebuild, ray=ray,
                           progress=lambda done, total: bar.update(task, completed=done, total=total))


def _assistant(settings: Settings):
    embedder = _embedder(settings)
    embedder.preload()  # the model loads while the chain is imported and the index opened
    from rag.chain import Assistant, ensure_index

    with _progress() as bar:
        task = bar.add_task("indexing the bundled articles", total=None)
        report = ensure_index(settings, embedder,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
    if report is not None:
        err.print(f"No index yet: indexed {report.documents} bundled articles ({report.chunks} passages) "
                  f"into {_where(settings)}")
    return Assistant(settings, embedder=embedder)


# -- commands -------------------------------------------------------------------------------------------------
@app.command()
def index(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="files or folders (.txt .md .jsonl .html); default: the bundled articles")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="re-embed everything (e.g. after changing the model)")] = False,
    index_dir: IndexDir = None,
    json_output: JsonOut = False,
    runtime: RuntimeOpt = None,
    compact: Annotated[bool, typer.Option("--compact", help="merge every segment into one, dropping removed passages")] = False,
    check: Annotated[bool, typer.Option("--check", help="verify every file of the live commit against its checksums")] = False,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="read and embed on Ray: `local` starts one here (RAG_RAY_WORKERS CPUs), else a cluster's address (RAG_RAY_ADDRESS)")] = None,
) -> None:
    """Add, update or remove articles in the index. Unchanged files are not re-embedded."""
    settings = _settings(index_dir, runtime)
    ray = ray or settings.ray_address
    if compact or check:
        from rag.index_cli import maintain

        return maintain(settings, compact=compact, check=check, json_output=json_output, paths=paths, rebuild=rebuild)

    def run():
        report = _index_with_progress(paths or [BUNDLED_ARTICLES], settings, _embedder(settings), rebuild, ray)
        if json_output:
            out.print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), markup=False)
        else:
            for label, ids in (("added", report.added), ("updated", report.updated), ("removed", report.removed)):
                for doc_id in ids:
                    out.print(f"{label:>9}  {doc_id}", markup=False)
            for doc_id in report.kept_unreadable:
                out.print(f"{'kept':>9}  {doc_id} (its file is unreadable now; the indexed version stays)", markup=False)
            for s in report.skipped:
                out.print(f"{'skipped':>9}  {s}", markup=False)
            for line in (report.notice, report.merged and f"merged {report.merged}"):
                if line:
                    err.print(line, markup=False)
            summary = (f"{len(report.added)} added, {len(report.updated)} updated, {len(report.removed)} removed, "
                       f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped; "
                       f"{report.chunks_embedded} passages embedded; index: {report.documents} documents, "
                       f"{report.chunks} passages in {_where(settings)}")
            out.print(summary, markup=False)
        if report.skipped:
            raise typer.Exit(3)

    _run(run)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question, in Arabic or English")],
    k: TopK = None,
    index_dir: IndexDir = None,
    json_output: JsonOut = False,
    stream: Annotated[bool, typer.Option("--stream", help="print a generated answer as it is written")] = False,
    llm_base_url: LlmBaseUrl = None,
    llm_model: LlmModel = None,
    runtime: RuntimeOpt = None,
) -> None:
    """Answer a question with citations (builds an index of the bundled articles if there is none)."""
    settings = _with_llm(_settings(index_dir, runtime), llm_base_url, llm_model)

    def run():
        assistant = _assistant(settings)
        if json_output:
            out.print(assistant.ask(question, k=k).model_dump_json(indent=2), markup=False)
            return
        if not stream:
            show_answer(assistant.ask(question, k=k), settings)
            return
        streamed = False
        for event in assistant.stream(question, k=k):
            if isinstance(event, str):
                # Pieces go out as they come, in logical order: reordering for display needs whole lines.
                out.file.write(event)
                out.file.flush()
                streamed = True
                continue
            if streamed:
                out.print()
            show_answer(event, settings, text=not streamed or event.mode != "generative")

    _run(run)


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="the query")],
    k: TopK = None,
    index_dir: IndexDir = None,
    json_output: JsonOut = False,
    runtime: RuntimeOpt = None,
) -> None:
    """List the ranked passages with their scores and citation ids."""
    settings = _settings(index_dir, runtime)

    def run():
        hits = _assistant(settings).search(question, k=k)
        if json_output:
            rows = [{"rank": h.rank, "id": h.chunk.id, "doc_id": h.chunk.doc_id, "score": round(h.score, 6),
                     "scores": {n: round(v, 4) for n, v in h.scores.items()}, "ranks": h.ranks, "text": h.chunk.text}
                    for h in hits]
            out.print(json.dumps(rows, ensure_ascii=False, indent=2), markup=False)
            return
        for h in hits:
            detail = "  ".join(f"{n} #{h.ranks[n]} {v:.3f}" for n, v in h.scores.items())
            out.print(f"{h.rank:>2}. {h.chunk.id}  fused {h.score:.4f}  ({detail})", markup=False, style="cyan")
            snippet = h.chunk.text if len(h.chunk.text) <= 300 else h.chunk.text[:300] + "…"
            show(snippet, settings, indent="    ")

    _run(run)


@app.command()
def cite(
    citation_id: Annotated[str, typer.Argument(metavar="ID", help="a citation id, <doc_id>:<start>-<end>")],
    context: Annotated[int, typer.Option(help="characters of context on each side", min=0, max=5000)] = 300,
    index_dir: IndexDir = None,
    json_output: JsonOut = False,
) -> None:
    """Show the exact cited span with its article's title, date, source and surrounding text."""
    settings = _settings(index_dir)

    def run():
        from rag.citations import lookup_citation, parse_citation_id
        from rag.store.base import backend_for

        parse_citation_id(citation_id)  # a malformed id fails before anything is loaded
        view = lookup_citation(backend_for(settings).open(older_format=True), citation_id, context)
        if json_output:
            out.print(json.dumps(view.to_dict(), ensure_ascii=False, indent=2), markup=False)
            return
        d = view.document
        show(d.title or d.id, settings)
        meta = "  ".join(x for x in (d.date, d.source, d.url or d.path) if x)
        if meta:
            out.print(meta, style="dim", markup=False)
        out.print(f"{view.id}", style="cyan", markup=False)
        out.print()
        if visual_bidi(settings) or not out.is_terminal:  # no colours to mark the span with: bracket it
            show(f"…{view.before}【{view.quote}】{view.after}…", settings)
        else:
            out.print("…" + view.before, end="", markup=False, style="dim")
            out.print(view.quote, end="", markup=False, style="bold yellow")
            out.print(view.after + "…", markup=False, style="dim")

    _run(run)


@app.command()
def docs(index_dir: IndexDir = None, json_output: JsonOut = False) -> None:
    """List the indexed documents."""
    settings = _settings(index_dir)

    def run():
        from rag.store.base import backend_for

        store = backend_for(settings).open(older_format=True)
        documents = store.documents()
        if json_output:
            rows = [{"id": d.id, "title": d.title, "date": d.date, "source": d.source, "url": d.url, "path": d.path,
                     "chars": len(d.text)} for d in documents]
            out.print(json.dumps(rows, ensure_ascii=False, indent=2), markup=False)
            return
        table = Table("id", "title", "date", "source", "chars", box=None)
        for d in documents:
            title = d.title if len(d.title) <= 60 else d.title[:60] + "…"
            table.add_row(d.id, title, d.date, d.source, str(len(d.text)))
        out.print(table)
        out.print(f"{len(documents)} documents, {len(store)} passages", style="dim")

    _run(run)


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="address to listen on [env RAG_HOST; default 127.0.0.1]")] = None,
    port: Annotated[Optional[int], typer.Option(help="port [env RAG_PORT; default 8000]", min=1, max=65535)] = None,
    index_dir: IndexDir = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="listen beyond loopback without RAG_API_KEY")] = False,
    llm_base_url: LlmBaseUrl = None,
    llm_model: LlmModel = None,
    runtime: RuntimeOpt = None,
) -> None:
    """Serve the HTTP API (docs at /docs); indexes the bundled articles first when there is no index."""
    settings = _with_llm(_settings(index_dir, runtime), llm_base_url, llm_model)
    host, port = host or settings.host, port or settings.port

    def run():
        # Anyone who reaches the server can change the corpus: without a key, stay on this machine.
        if not _loopback(host) and not settings.api_key.get_secret_value() and not insecure:
            raise RagError(f"refusing to listen on {host} without an API key: set RAG_API_KEY (clients send "
                           "Authorization: Bearer <key>), listen on 127.0.0.1, or pass --insecure")
        import uvicorn

        from api.main import create_app
        from rag.generate import chat_model_from_settings
        from rag.translate import check_settings

        chat_model = chat_model_from_settings(settings)  # a bad LLM setting fails here, not on the first request
        check_settings(settings)
        answers = f"generative ({settings.llm_model})" if chat_model else "extractive"
        err.print(f"serving on http://{host}:{port} (API docs at /docs); index: {_where(settings)}; "
                  f"answers: {answers}")
        uvicorn.run(create_app(settings, embedder=_embedder(settings), chat_model=chat_model), host=host, port=port,
                    log_level="info")

    _run(run)


from rag.feedback_cli import feedback  # noqa: E402 - registered here, kept in its own module

app.command("feedback")(feedback)
from rag.index_cli import rm  # noqa: E402 - registered here, kept in its own module

app.command("rm")(rm)
from rag.eval_cli import eval_command  # noqa: E402

app.command("eval")(eval_command)
from rag.model_cli import model_app  # noqa: E402

app.add_typer(model_app, name="model")

if __name__ == "__main__":
    from rag.__main__ import run

    run(app)
