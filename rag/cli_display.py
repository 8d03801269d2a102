"""What `rag` prints for people: Arabic reordered for terminals that need it, and an answer laid out (the short
answer first, the quotes with it in bold, the sources, what an English question was searched as). `--json`
output does not come through here."""

from __future__ import annotations

import os
import sys
import textwrap

from rich.console import Console

from rag.config import Settings

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, highlight=False)


# -- right-to-left display ------------------------------------------------------------------------------------
def visual_bidi(settings: Settings) -> bool:
    mode = settings.bidi.lower()
    if mode in ("visual", "logical"):
        return mode == "visual"
    # Terminals that implement the Unicode bidi algorithm themselves (VTE, Konsole, mlterm) must get logical
    # order; others show Arabic reversed unless we reorder. Pipes and files always get logical order.
    if not sys.stdout.isatty():
        return False
    return not any(os.environ.get(v) for v in ("VTE_VERSION", "KONSOLE_VERSION", "MLTERM"))


def show(text: str, settings: Settings, indent: str = "", bold: tuple[int, int] | None = None) -> None:
    """Print text, reordered for display when the terminal needs it; `bold`: a character range to embolden
    (a terminal that needs reordering gets it without)."""
    if not visual_bidi(settings):
        if bold is None:
            out.print(textwrap.indent(text, indent), markup=False)
        else:
            from rich.text import Text

            styled = Text(textwrap.indent(text, indent))
            styled.stylize("bold", bold[0] + len(indent), bold[1] + len(indent))
            out.print(styled)
        return
    from arabic_reshaper import reshape
    from bidi import get_display

    width = max(20, out.width - len(indent))
    for para in text.splitlines() or [""]:
        for line in textwrap.wrap(para, width) or [""]:
            out.print(indent + get_display(reshape(line)), markup=False)


# -- an answer ------------------------------------------------------------------------------------------------
def show_answer(answer, settings: Settings, text: bool = True) -> None:
    if answer.notice:
        err.print(f"[yellow]Note:[/yellow] {answer.notice}", markup=True, highlight=False)
    if text:
        short = answer.short_answer
        if short is not None:  # the phrase that answers first, then the quotes it stands in (emboldened there)
            show(f"{short.text} [{short.n}]", settings, bold=(0, len(short.text)))
            out.print()
        show(answer.answer, settings, bold=short_in_answer(answer))
    unsupported = [c for c in answer.claims if c.supported is False]
    for c in unsupported:
        err.print(f"[yellow]Unsupported by its citation:[/yellow] {c.text}", markup=True, highlight=False)
    if answer.citations:
        out.print()
        out.print("Sources:", style="bold")
        for c in answer.citations:
            out.print(f"[{c.n}] {c.id}", markup=False, style="cyan")
            show(c.title, settings, indent="    ")
    if answer.searched_as:
        out.print("Searched in Arabic as:", style="dim")
        show(answer.searched_as, settings, indent="    ")
    out.print(f"({answer.mode}, {answer.timings_ms.get('total', 0):.0f} ms)", style="dim")


def short_in_answer(answer) -> tuple[int, int] | None:
    """Where the short answer is in the answer's text ("quote [1] quote [2]"), or None."""
    short = answer.short_answer
    if short is None:
        return None
    at = 0
    for c in answer.citations:
        if c.n == short.n:
            a = at + short.start - c.start
            return (a, a + len(short.text)) if answer.answer[a:a + len(short.text)] == short.text else None
        at += len(c.quote) + len(f" [{c.n}] ")
    return None
