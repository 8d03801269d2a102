"""Load articles (txt, md, jsonl, html) into `Document`s, and find the spans of their text that carry content.

`load_paths` keeps each document's text as read (only the BOM is removed and line endings become "\\n"):
that text is the reference for citation offsets. `clean` never edits it; it returns the `Span`s worth
chunking, leaving out boilerplate lines (ads, newsletter and follow-us prompts, "read also" labels, tags,
date/source lines, a repeated title, a trailing "next article" link).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser, LexborNode

from rag.types import Document, Skipped, Span

SUPPORTED_SUFFIXES = (".txt", ".md", ".jsonl", ".html", ".htm")
JSONL_FIELDS = ("id", "text", "title", "date", "source", "url")
META_TOP_LINES = 10  # a date line counts as metadata only among the first lines


@dataclass
class LoadReport:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every supported file looked at, loaded or not


class _Skip(Exception):
    """Internal: this input cannot be used, for the reason given."""


# ---------------------------------------------------------------------------------------------- loading


def load_paths(paths: list[Path]) -> LoadReport:
    """Load files and folders (walked recursively, sorted, hidden entries ignored) into documents.

    Every input that cannot be used becomes a `Skipped` with its reason; one bad input never stops the rest.
    A document id seen twice keeps its first document; the later one is skipped.
    """
    files, skipped = list_files(paths)
    return gather(files, [load_file(f) for f in files], skipped)


def list_files(paths: list[Path]) -> tuple[list[Path], list[Skipped]]:
    """The supported files `paths` name (folders walked), each once, in order; and the inputs that are not."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        if path.is_dir():
            candidates = _walk(path)
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
                kind = path.suffix or "(no extension)"
                skipped.append(Skipped(str(path), f"unsupported file type {kind} (supported: {supported})"))
                continue
            candidates = [path]
        else:
            reason = "not a regular file or folder" if path.exists() else "no such file or folder"
            skipped.append(Skipped(str(path), reason))
            continue
        for file in candidates:
            file = file.resolve()
            if file not in seen:
                seen.add(file)
                files.append(file)
    return files, skipped


def gather(files: list[Path], loaded: list[tuple[list[tuple[Document, int | None]], list[Skipped]]],
           skipped: list[Skipped] = ()) -> LoadReport:
    """The report of `files` loaded (in the same order) as `loaded`: a duplicate id keeps its first document."""
    report = LoadReport(skipped=list(skipped))
    first_seen: dict[str, str] = {}  # doc id -> where it came from
    for file, (docs, bad) in zip(files, loaded):
        report.files.append(str(file))
        report.skipped.extend(bad)
        for doc, line in docs:
            if doc.id in first_seen:
                reason = f"duplicate id {doc.id!r} (first seen in {first_seen[doc.id]})"
                report.skipped.append(Skipped(str(file), reason, line))
                continue
            first_seen[doc.id] = str(file) if line is None else f"{file}:{line}"
            report.documents.append(doc)
    return report


def _walk(root: Path) -> list[Path]:
    """Supported files under `root`, sorted, skipping hidden files and folders; symlinked folders not followed."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES:
                found.append(Path(folder) / name)
    return found


def load_file(path: Path) -> tuple[list[tuple[Document, int | None]], list[Skipped]]:
    """One file's documents, each with its line number (jsonl) or None, and what of it was skipped: the unit of
    work `rag index --ray` hands to a Ray task."""
    try:
        text = _read_text(path)
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            return _load_jsonl(path, text)
        loader = {".txt": _parse_plain, ".md": _parse_markdown, ".html": _parse_html, ".htm": _parse_html}[suffix]
        meta = loader(text)
        body = meta.pop("text", text)
        if not body.strip():
            raise _Skip("no text content")
        return [(_document(_safe_stem(path), body, str(path), **meta), None)], []
    except _Skip as e:
        return [], [Skipped(str(path), str(e))]


def _read_text(path: Path) -> str:
    """Strict UTF-8 (BOM removed), line endings normalised to "\\n"; raises _Skip saying what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _Skip(f"cannot read: {e.strerror or e}") from None
    if b"\x00" in data:
        raise _Skip("binary file (contains NUL bytes)")
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = bom + e.start
        raise _Skip(f"not UTF-8 (invalid byte 0x{data[offset]:02x} at offset {offset})") from None
    if not text.strip():
        raise _Skip("empty file" if not text else "empty file (whitespace only)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _document(doc_id: str, text: str, path: str, title: str = "", date: str = "", source: str = "",
              url: str = "") -> Document:
    digest = hashlib.sha256("\x1f".join((text, title, date, source, url)).encode("utf-8")).hexdigest()
    return Document(id=doc_id, text=text, title=title, date=date, source=source, url=url, path=path,
                    content_hash=digest)


# ------------------------------------------------------------------------------------------------- ids

_ID_OK = re.compile(r"[\w.-]+")  # letters of any script, digits, "_", "." and "-"


def _safe_stem(path: Path) -> str:
    """The file name without extension, with characters unsafe in a citation id replaced by "_"."""
    stem = re.sub(r"[^\w.-]|\.{2,}", "_", path.stem)
    return stem or "_"


def _check_id(doc_id: str) -> None:
    if any(bad in doc_id for bad in ("/", "\\", "..")):
        raise _Skip(f"id {doc_id!r} contains a path character (/, \\ or ..)")
    if ":" in doc_id:
        raise _Skip(f"id {doc_id!r} contains ':', which separates the id from the span in a citation id")
    if not _ID_OK.fullmatch(doc_id):
        raise _Skip(f"id {doc_id!r} has characters other than letters, digits, '_', '-' and '.'")


# --------------------------------------------------------------------------------------------- formats


def _parse_plain(text: str) -> dict[str, str]:
    """Plain text: the first non-empty line is the title; "label: value" lines give date and source."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    meta = {"title": lines[0] if lines else "", "date": "", "source": ""}
    for i, line in enumerate(lines):
        norm = _norm(line)
        for name, (pattern, most) in _META_LINES.items():
            if not meta[name] and (name != "date" or i < META_TOP_LINES) and _label_line(norm, pattern, most):
                meta[name] = re.split(r"[:：]", line, maxsplit=1)[1].strip()  # as written after the label
    return meta


def _parse_markdown(text: str) -> dict[str, str]:
    meta = _parse_plain(text)
    heading = re.search(r"^[ \t]*#[ \t]+(.+?)[ \t#]*$", text, re.MULTILINE)
    if heading:
        meta["title"] = heading.group(1).strip()
    return meta


def _load_jsonl(path: Path, text: str) -> tuple[list[tuple[Document, int | None]], list[Skipped]]:
    docs, skipped = [], []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise _Skip(f"malformed JSON: {e.msg} (column {e.colno})") from None
            if not isinstance(record, dict):
                raise _Skip(f"expected a JSON object, got {type(record).__name__}")
            fields = {}
            for name in JSONL_FIELDS:
                value = record.get(name)
                if value is not None and not isinstance(value, str):
                    raise _Skip(f"field {name!r} must be a string, got {type(value).__name__}")
                fields[name] = value or ""
            for name in ("id", "text"):
                if not fields[name].strip():
                    raise _Skip(f"missing or empty {name!r}")
            _check_id(fields["id"])
        except _Skip as e:
            skipped.append(Skipped(str(path), str(e), line=n))
            continue
        body = fields.pop("text").replace("\r\n", "\n").replace("\r", "\n")
        meta = {k: v.strip() for k, v in fields.items()}
        docs.append((_document(meta.pop("id"), body, str(path), **meta), n))
    return docs, skipped


_DROP_TAGS = "script, style, noscript, template, iframe, svg, nav, header, footer, aside, form"
_BLOCK_TAGS = frozenset(
    "address article blockquote br dd details dialog div dl dt fieldset figcaption figure h1 h2 h3 h4 h5 h6 "
    "hr li main ol p pre section summary table tbody td th thead tr ul".split()
)


def _parse_html(html: str) -> dict[str, str]:
    """Body text (one line per block) with metadata from the head; nav, header, footer, scripts... dropped."""
    tree = LexborHTMLParser(html)

    def attr(selector: str, name: str) -> str:
        node = tree.css_first(selector)
        return ((node.attributes.get(name) if node else None) or "").strip()

    def text_of(selector: str) -> str:
        node = tree.css_first(selector)
        return " ".join(node.text().split()) if node else ""

    meta = {
        "title": attr('meta[property="og:title"]', "content") or text_of("title") or text_of("h1"),
        "date": attr('meta[property="article:published_time"]', "content") or attr("time[datetime]", "datetime"),
        "url": attr('link[rel="canonical"]', "href") or attr('meta[property="og:url"]', "content"),
        "source": attr('meta[property="og:site_name"]', "content"),
    }
    for node in reversed(tree.css(_DROP_TAGS)):  # document order reversed: inner nodes go before their parents
        node.decompose()
    lines = (" ".join(line.split()) for line in _block_text(tree.body).split("\n")) if tree.body else ()
    meta["text"] = "\n".join(line for line in lines if line)
    return meta


def _block_text(root: LexborNode) -> str:
    """The text under `root`, with a line break around every block element (iterative: deep pages are fine)."""
    parts: list[str] = []
    stack: list[LexborNode | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif item.is_text_node:
            parts.append(item.text_content or "")
        elif item.is_element_node:
            brk = "\n" if item.tag in _BLOCK_TAGS else ""
            stack.append(brk)
            stack.extend(reversed(list(item.iter(include_text=True))))
            stack.append(brk)
    return "".join(parts)


# -------------------------------------------------------------------------------------------- cleaning

# Boilerplate: (pattern matched at the start of the normalised line, most words such a line may have).
# Normalised = `_norm`: no diacritics or tatweel, أ إ آ ٱ -> ا, ى -> ي, ة -> ه, lower case, single spaces.
# The word limits keep real paragraphs that merely start like a label ("المصدر أكد ...") out of reach.
_SOCIAL = (r"(مواقع|منصات|التواصل|حساب|صفح|قنا[هت]|فيسبوك|فيس بوك|تويتر|تلغرام|تليجرام|تيليجرام|يوتيوب|انستغرام"
           r"|انستجرام|واتساب|تيك توك|social|facebook|twitter|telegram|youtube|instagram|whatsapp|tiktok|\bx\b)")
_BOILERPLATE = [(re.compile(p), n) for p, n in [
    # ad markers: the whole line
    (r"[\W_]*(ads?|advertisement|sponsored( content)?|اعلان(ات)?|مساحه اعلانيه|محتوي (مدعوم|ممول))[\W_]*$", 4),
    # share / print buttons
    (r"[\W_]*(share( this( article| story| post)?| on \w+)?|شارك(وا)?( الخبر| المقال| علي \w+)?|مشاركه|طباعه|print)"
     r"[\W_]*$", 5),
    # newsletter / subscription prompts
    (r"(اشترك\w*|سجل|subscribe|sign up)\b.*(نشر|newsletter|بريد|قنا[هت]|channel)", 15),
    # follow-us prompts: the bare label, or naming a platform
    (r"(تابعنا|تابعونا|follow us)( (علي|عبر|في|on))?[\W_]*$", 3),
    (rf"(تابعنا|تابعونا|تابعوا|follow)\b.*{_SOCIAL}", 12),
    # "read also" / related-articles labels (what follows them on the next lines is kept)
    (r"[\W_]*(اقرا|اقراوا)\s+(ايضا|كذلك|المزيد)\b|(read (also|more)|see also)\b", 12),
    (r"(related( articles| stories| news| posts)?|(اخبار|مواضيع|مقالات) (ذات صله|متعلقه))\s*([:：]|$)", 4),
    # tags lines
    (r"(كلمات دلاليه|كلمات مفتاحيه|الكلمات (الدلاليه|المفتاحيه)|الوسوم|وسوم|tags|keywords|topics)\s*[:：]", 40),
    (r"(#\w+\s*)+$", 40),
]]
# metadata "label: value" lines: dropped from the content, and their value fills Document.date / .source
_META_LINES = {
    "date": (re.compile(r"(تاريخ (النشر|الاضافه|التحديث)|التاريخ|اخر تحديث|نشر (في|بتاريخ)|تم النشر"
                        r"|published( on)?|updated( on)?|last updated|date)\s*[:：]"), 12),
    "source": (re.compile(r"(المصدر|مصدر الخبر|source)\s*[:：]\s*\S"), 8),
}
_BOILERPLATE += list(_META_LINES.values())
_MOST_WORDS = max(most for _, most in _BOILERPLATE)
# a link to the next/previous article: only among the last lines
_NEXT = re.compile(r"((المقال|الخبر|الموضوع) )?(التالي|السابق)\b|(next|previous)( (article|story|post))?\s*([:：»›>]|$)")

_DIACRITICS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ی": "ي", "ک": "ك"})
_EDGE = r"(?:[^\S\n]|[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff])*"  # blanks, zero-width and bidi marks
_LINE = re.compile(rf"^{_EDGE}(?:#{{1,6}}[ \t]+)?(.*?){_EDGE}$", re.MULTILINE)


def _norm(line: str) -> str:
    """A line as the boilerplate patterns see it (matching only; never stored)."""
    return " ".join(_DIACRITICS.sub("", line).translate(_LETTERS).lower().split())


def _label_line(norm: str, pattern: re.Pattern[str], most: int) -> bool:
    return len(norm.split()) <= most and bool(pattern.match(norm))


def is_boilerplate(line: str) -> bool:
    """Whether one line (anywhere in an article) is page furniture rather than article content."""
    if len(line.split()) > _MOST_WORDS:
        return False  # a paragraph
    norm = _norm(line)
    return any(_label_line(norm, pattern, most) for pattern, most in _BOILERPLATE)


def _is_next_link(line: str) -> bool:
    return _label_line(_norm(line), _NEXT, 15)


def clean(doc: Document) -> list[Span]:
    """The spans of `doc.text` that carry article content, one per kept line, in order.

    Each span is a non-empty line trimmed of surrounding whitespace (and of a Markdown heading marker), so
    `doc.text[span.start:span.end]` is exactly the kept text. Dropped: boilerplate lines (`is_boilerplate`),
    repeats of the title that directly follow it, and "next/previous article" links at the very end.
    """
    lines = []  # (start, end, text) of every non-empty line
    for m in _LINE.finditer(doc.text):
        if m.end(1) > m.start(1):
            lines.append((m.start(1), m.end(1), m.group(1)))
    end = len(lines)
    while end and (_is_next_link(lines[end - 1][2]) or is_boilerplate(lines[end - 1][2])):
        end -= 1
    spans: list[Span] = []
    title_key = "".join(lines[0][2].split()) if lines else ""
    at_top = True  # nothing kept yet but the title
    for i, (start, stop, text) in enumerate(lines[:end]):
        if is_boilerplate(text):
            continue
        if i > 0 and at_top and "".join(text.split()) == title_key:
            continue  # the title again, before any content
        at_top = at_top and i == 0
        spans.append(Span(start, stop))
    return spans
