"""rag.documents: loading every format from real files, skipping bad inputs with reasons, cleaning boilerplate."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rag.config import BUNDLED_ARTICLES
from rag.documents import SUPPORTED_SUFFIXES, LoadReport, clean, is_boilerplate, load_paths
from rag.types import Document

BUNDLED_IDS = [
    "000_3ec499f8665a1831",
    "001_5ff42c8ba2e3807b",
    "002_f7322d59d6e02373",
    "003_4d31ec5fb27880ad",
    "004_8c9efbd2f6262e81",
]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def load_one(path: Path) -> Document:
    report = load_paths([path])
    assert report.skipped == [], report.skipped
    assert len(report.documents) == 1
    return report.documents[0]


def kept_lines(doc: Document) -> list[str]:
    spans = clean(doc)
    for span in spans:
        quote = doc.text[span.start : span.end]
        assert quote and quote == quote.strip(), (span, quote)
    assert [s.start for s in spans] == sorted(s.start for s in spans)
    return [doc.text[s.start : s.end] for s in spans]


def reasons(report: LoadReport) -> list[str]:
    return [s.reason for s in report.skipped]


@pytest.fixture(scope="module")
def bundled() -> dict[str, Document]:
    report = load_paths([BUNDLED_ARTICLES])
    assert report.skipped == []
    return {d.id: d for d in report.documents}


# ----------------------------------------------------------------------------------------- formats


def test_txt_title_date_source_and_exact_text(tmp_path: Path) -> None:
    text = "\n  عنوان الخبر  \nتاريخ النشر: 3rd, March 2024 GMT\nنص الخبر الأول.\nالمصدر: رويترز\n"
    path = write(tmp_path / "my_article.txt", text)
    doc = load_one(path)
    assert doc.id == "my_article"
    assert doc.text == text
    assert (doc.title, doc.date, doc.source, doc.url) == ("عنوان الخبر", "3rd, March 2024 GMT", "رويترز", "")
    assert doc.path == str(path.resolve())
    expected = hashlib.sha256("\x1f".join((text, doc.title, doc.date, doc.source, "")).encode()).hexdigest()
    assert doc.content_hash == expected
    assert load_one(path).content_hash == expected  # stable


def test_txt_without_labels_has_empty_metadata(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "a.txt", "العنوان\nفقرة تذكر المصدر والتاريخ دون أي تسمية.\n"))
    assert (doc.title, doc.date, doc.source) == ("العنوان", "", "")


def test_md_title_from_heading_else_first_line(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "story.md", "مقدمة قصيرة\n\n# العنوان الحقيقي #\n\nالفقرة الأولى.\n"))
    assert doc.id == "story"
    assert doc.title == "العنوان الحقيقي"
    plain = load_one(write(tmp_path / "plain.md", "\nسطر أول\nسطر ثان\n"))
    assert plain.title == "سطر أول"


def test_md_heading_marker_is_not_part_of_the_span(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "h.md", "# العنوان\n\nالفقرة.\n"))
    assert kept_lines(doc) == ["العنوان", "الفقرة."]


def test_jsonl_loads_fields(tmp_path: Path) -> None:
    rows = [
        {"id": "a1", "text": "نص أ\r\nسطر ثان", "title": "عنوان أ", "date": "2024-02-09",
         "source": "الحرة", "url": "https://example.com/a1"},
        {"id": "خبر-٢.v2", "text": "نص ب"},
    ]
    path = write(tmp_path / "feed.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    report = load_paths([path])
    assert report.skipped == []
    a, b = report.documents
    assert (a.id, a.title, a.date, a.source) == ("a1", "عنوان أ", "2024-02-09", "الحرة")
    assert a.url == "https://example.com/a1"
    assert a.text == "نص أ\nسطر ثان"
    assert a.path == str(path.resolve())
    assert (b.id, b.text, b.title, b.date) == ("خبر-٢.v2", "نص ب", "", "")
    assert report.files == [str(path.resolve())]


def test_jsonl_bad_lines_are_reported_with_line_numbers(tmp_path: Path) -> None:
    lines = [
        '{"id": "ok1", "text": "نص صالح"}',  # 1
        '{"id": "broken", "text": ',  # 2
        '["not", "an", "object"]',  # 3
        '{"text": "بلا معرف"}',  # 4
        '{"id": "empty", "text": "   "}',  # 5
        '{"id": 7, "text": "معرف رقمي"}',  # 6
        '{"id": "t", "text": "نص", "title": ["x"]}',  # 7
        "",  # 8: blank lines are ignored
        '{"id": "ok2", "text": "نص صالح آخر", "date": null}',  # 9
    ]
    path = write(tmp_path / "mixed.jsonl", "\n".join(lines))
    report = load_paths([path])
    assert [d.id for d in report.documents] == ["ok1", "ok2"]
    by_line = {s.line: s.reason for s in report.skipped}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7]
    assert by_line[2].startswith("malformed JSON")
    assert "object" in by_line[3]
    assert "'id'" in by_line[4] and "missing" in by_line[4]
    assert "'text'" in by_line[5]
    assert "'id'" in by_line[6] and "int" in by_line[6]
    assert "'title'" in by_line[7] and "list" in by_line[7]
    assert all(s.path == str(path.resolve()) for s in report.skipped)
    assert str(report.skipped[0]) == f"{path.resolve()}:2: {by_line[2]}"


def test_html_extraction(tmp_path: Path) -> None:
    html = """<!doctype html><html><head>
      <meta charset="utf-8"><title>عنوان الصفحة | الموقع</title>
      <meta property="og:title" content="عنوان الخبر">
      <meta property="og:site_name" content="الموقع">
      <meta property="article:published_time" content="2024-02-09T10:00:00Z">
      <link rel="canonical" href="https://example.com/news/1">
      <style>p { color: red }</style><script>var tracking = "سكربت";</script>
    </head><body>
      <header><nav><a href="/">الرئيسية</a> <a href="/x">قائمة</a></nav></header>
      <article><h1>عنوان الخبر</h1>
        <p>الفقرة   الأولى <b>بخط عريض</b> تستمر.</p>
        <p>الفقرة الثانية<br>سطر بعد فاصل.</p>
        <ul><li>بند أول</li><li>بند ثان</li></ul>
        <script>document.write("إعلان مدسوس")</script>
      </article>
      <aside>أخبار جانبية</aside><form><input value="بحث"></form>
      <footer>حقوق النشر</footer>
    </body></html>"""
    doc = load_one(write(tmp_path / "page.html", html))
    assert doc.id == "page"
    assert (doc.title, doc.date, doc.source, doc.url) == (
        "عنوان الخبر", "2024-02-09T10:00:00Z", "الموقع", "https://example.com/news/1")
    assert doc.text.split("\n") == [
        "عنوان الخبر",
        "الفقرة الأولى بخط عريض تستمر.",
        "الفقرة الثانية",
        "سطر بعد فاصل.",
        "بند أول",
        "بند ثان",
    ]
    for gone in ("tracking", "سكربت", "مدسوس", "color", "الرئيسية", "قائمة", "جانبية", "حقوق", "بحث"):
        assert gone not in doc.text


def test_html_fallbacks_title_tag_time_and_og_url(tmp_path: Path) -> None:
    html = """<html><head><title>عنوان من الوسم</title><meta property="og:url" content="https://e.com/2"></head>
      <body><header><time datetime="2023-12-01">١ ديسمبر</time></header><p>نص.</p></body></html>"""
    doc = load_one(write(tmp_path / "p2.htm", html))
    assert (doc.title, doc.date, doc.url, doc.source, doc.text) == (
        "عنوان من الوسم", "2023-12-01", "https://e.com/2", "", "نص.")
    h1_only = load_one(write(tmp_path / "p3.html", "<body><h1>عنوان فقط</h1><p>نص.</p></body>"))
    assert h1_only.title == "عنوان فقط"


def test_supported_suffixes() -> None:
    assert set(SUPPORTED_SUFFIXES) == {".txt", ".md", ".jsonl", ".html", ".htm"}


# ------------------------------------------------------------------------------------- bundled corpus


def test_bundled_articles_load(bundled: dict[str, Document]) -> None:
    assert sorted(bundled) == BUNDLED_IDS
    for doc_id, doc in bundled.items():
        path = BUNDLED_ARTICLES / f"{doc_id}.txt"
        assert doc.text == path.read_text(encoding="utf-8")
        assert doc.path == str(path.resolve())
        assert doc.title and doc.text.lstrip().startswith(doc.title)
        assert len(doc.content_hash) == 64
    d2 = bundled["002_f7322d59d6e02373"]
    assert d2.title == "العراق يعلن موعد استئناف المحادثات مع واشنطن لمناقشة مستقبل التحالف الدولي"
    assert (d2.date, d2.source) == ("9th, February 2024 GMT", "الحرة")
    assert bundled["000_3ec499f8665a1831"].title == "معركة الإرادات تستمر برفض إيران المحادثات الأمريكية"
    assert bundled["001_5ff42c8ba2e3807b"].source == ""


def test_clean_drops_ad_lines(bundled: dict[str, Document]) -> None:
    doc = bundled["001_5ff42c8ba2e3807b"]
    kept = kept_lines(doc)
    assert "Ad" not in kept
    non_empty = [line.strip() for line in doc.text.split("\n") if line.strip()]
    assert kept == [line for line in non_empty if line != "Ad"]


def test_clean_drops_metadata_tags_and_read_also_but_keeps_second_story(bundled: dict[str, Document]) -> None:
    doc = bundled["002_f7322d59d6e02373"]
    kept = kept_lines(doc)
    text = "\n".join(kept)
    for gone in ("تاريخ النشر", "المصدر: الحرة", "كلمات دلالية", "إقرأ أيضاً"):
        assert gone not in text
    assert kept[0] == doc.title
    assert kept[1].startswith("أعلنت بغداد، الخميس")
    # what follows "إقرأ أيضاً:" is another real story: it stays searchable
    assert "أكدوا مواصلة إيران للتخصيب.. قلق أوروبي من انهيار جهود استئناف المفاوضات النووية" in kept
    assert "البلاد (بروكسل)" in kept
    assert kept[-1].startswith("وفي ظل هذه التطورات")
    assert len(kept) == len([line for line in doc.text.split("\n") if line.strip()]) - 4


def test_clean_drops_repeated_title_prompts_and_next_link(bundled: dict[str, Document]) -> None:
    doc = bundled["003_4d31ec5fb27880ad"]
    kept = kept_lines(doc)
    assert doc.text.count(doc.title) == 3
    assert kept.count(doc.title) == 1 and kept[0] == doc.title
    assert kept[1].startswith("شكّل إطلاق المعتقلين")
    text = "\n".join(kept)
    for gone in ("النشرة البريدية", "تابعنا على", "التالى", "أوكرانيا"):
        assert gone not in text
    assert kept[-1].startswith("وتلفت المصادر إلى أن ما يحصل")
    assert "\xa0" not in kept  # the non-breaking-space lines between paragraphs
    assert len(kept) == 12


def test_clean_keeps_articles_without_boilerplate(bundled: dict[str, Document]) -> None:
    for doc_id in ("000_3ec499f8665a1831", "004_8c9efbd2f6262e81"):
        doc = bundled[doc_id]
        assert kept_lines(doc) == [line.strip() for line in doc.text.split("\n") if line.strip()]
    assert "الحفاظ على الضغط" in kept_lines(bundled["004_8c9efbd2f6262e81"])  # a short subheading is content


# ---------------------------------------------------------------------------------------- cleaning rules


@pytest.mark.parametrize("line", [
    "Ad", "إعلان", "Advertisement", "- إعلان -", "Share", "شارك", "Follow us", "Follow us on:",
    "تابعونا عبر تلغرام", "تابعنا على فيسبوك وتويتر", "اشترك في النشرة البريدية", "Subscribe to our newsletter",
    "اقرأ أيضا:", "اقرأ أيضاً: عنوان خبر آخر", "Read more:", "Related articles",
    "كلمات دلالية: العراق، إيران", "Tags: Iraq, Iran", "#العراق #إيران",
    "تاريخ النشر: 2024-02-09", "Published: 9 February 2024", "المصدر: الحرة", "Source: Reuters",
])
def test_boilerplate_lines(line: str) -> None:
    assert is_boilerplate(line)


@pytest.mark.parametrize("line", [
    "اقرأ النص الكامل للبيان الذي أصدرته وزارة الخارجية العراقية يوم الخميس حول مستقبل التحالف الدولي في البلاد",
    "وقال الوزير: اقرأ أيضاً ما كتبناه سابقاً، فالموقف لم يتغير منذ بداية الأزمة.",
    "المصدر أكد أن المحادثات ستستأنف الأحد.",
    "وأضاف المصدر: إن المحادثات مع الولايات المتحدة ستستأنف الأحد المقبل في بغداد بحضور وفد عسكري رفيع.",
    "اشترك أكثر من مئة شخص في المظاهرة أمام السفارة.",
    "تابعنا التطورات عن كثب طوال الليل.",
    "Related to this, the minister said talks would resume.",
    "Adam Smith said the talks would resume.",
    "إعلان بغداد استئناف المحادثات",
    "الحفاظ على الضغط",
])
def test_content_lines_are_not_boilerplate(line: str) -> None:
    assert not is_boilerplate(line)


def test_clean_next_link_only_at_the_end(tmp_path: Path) -> None:
    text = "العنوان\nالتالي سيكون اجتماع الوزراء الأحد.\nالفقرة الأخيرة.\nالتالي: عنوان مقال آخر\n"
    kept = kept_lines(load_one(write(tmp_path / "n.txt", text)))
    assert kept == ["العنوان", "التالي سيكون اجتماع الوزراء الأحد.", "الفقرة الأخيرة."]


def test_clean_title_repeat_dropped_only_at_the_top(tmp_path: Path) -> None:
    text = "العنوان  المكرر\n\n العنوان المكرر\nتاريخ النشر: اليوم\nالعنوان المكرر \nفقرة.\nالعنوان المكرر\n"
    kept = kept_lines(load_one(write(tmp_path / "t.txt", text)))
    assert kept == ["العنوان  المكرر", "فقرة.", "العنوان المكرر"]


def test_clean_offsets_are_exact_with_crlf_and_bidi_marks(tmp_path: Path) -> None:
    raw = "العنوان\r\n\r\n\u200f  فقرة أولى.  \r\nAd\rفقرة ثانية.\r\n".encode()
    doc = load_one(write(tmp_path / "crlf.txt", raw))
    assert doc.text == "العنوان\n\n\u200f  فقرة أولى.  \nAd\nفقرة ثانية.\n"
    assert kept_lines(doc) == ["العنوان", "فقرة أولى.", "فقرة ثانية."]


# ------------------------------------------------------------------------------------ reading problems


def test_bom_is_removed(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "bom.txt", "\ufeffالعنوان\nنص.\n".encode()))
    assert doc.text == "العنوان\nنص.\n"
    assert doc.title == "العنوان"


def test_unreadable_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    write(tmp_path / "a_empty.txt", b"")
    write(tmp_path / "b_blank.md", " \n\t\n")
    write(tmp_path / "c_binary.txt", b"abc\x00def")
    write(tmp_path / "d_latin1.txt", "caf\xe9 au lait".encode("latin-1"))
    write(tmp_path / "e_good.txt", "العنوان\nنص.\n")
    write(tmp_path / "f_empty_body.html", "<html><body><script>x()</script></body></html>")
    report = load_paths([tmp_path])
    assert [d.id for d in report.documents] == ["e_good"]
    got = {Path(s.path).name: s.reason for s in report.skipped}
    assert got["a_empty.txt"] == "empty file"
    assert got["b_blank.md"].startswith("empty file")
    assert got["c_binary.txt"] == "binary file (contains NUL bytes)"
    assert got["d_latin1.txt"] == "not UTF-8 (invalid byte 0xe9 at offset 3)"
    assert got["f_empty_body.html"] == "no text content"
    assert len(report.files) == 6  # every supported file looked at, loaded or not


def test_missing_and_unsupported_explicit_paths(tmp_path: Path) -> None:
    pdf = write(tmp_path / "report.pdf", b"%PDF-1.4")
    report = load_paths([tmp_path / "nope.txt", pdf])
    assert report.documents == [] and report.files == []
    missing, unsupported = report.skipped
    assert missing.path == str(tmp_path / "nope.txt") and "no such file" in missing.reason
    assert unsupported.path == str(pdf) and "unsupported file type .pdf" in unsupported.reason


# ------------------------------------------------------------------------------------------------ ids


def test_file_stems_are_sanitised(tmp_path: Path) -> None:
    doc = load_one(write(tmp_path / "خبر عاجل: اليوم.txt", "العنوان\nنص.\n"))
    assert doc.id == "خبر_عاجل__اليوم"
    assert load_one(write(tmp_path / "a..b.v1.md", "نص\n")).id == "a_b.v1"


def test_bad_jsonl_ids_are_skipped(tmp_path: Path) -> None:
    ids = ["../etc", "a/b", "a\\b", "doc:1", "has space", "good_one"]
    path = write(tmp_path / "ids.jsonl", "\n".join(json.dumps({"id": i, "text": "نص"}) for i in ids))
    report = load_paths([path])
    assert [d.id for d in report.documents] == ["good_one"]
    by_line = {s.line: s.reason for s in report.skipped}
    assert "path character" in by_line[1] and "path character" in by_line[2] and "path character" in by_line[3]
    assert "':'" in by_line[4]
    assert "characters other than" in by_line[5]


def test_duplicate_ids_keep_the_first(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "same.txt", "الأول\n")
    second = write(tmp_path / "b" / "same.md", "الثاني\n")
    feed = write(tmp_path / "c" / "feed.jsonl",
                 '{"id": "same", "text": "ثالث"}\n{"id": "x", "text": "س"}\n{"id": "x", "text": "ص"}\n')
    report = load_paths([tmp_path])
    assert [(d.id, d.text) for d in report.documents] == [("same", "الأول\n"), ("x", "س")]
    dup_md, dup_line1, dup_line3 = report.skipped
    assert dup_md.path == str(second.resolve()) and dup_md.line is None
    assert dup_md.reason == f"duplicate id 'same' (first seen in {first.resolve()})"
    assert (dup_line1.path, dup_line1.line) == (str(feed.resolve()), 1)
    assert dup_line3.line == 3 and dup_line3.reason == f"duplicate id 'x' (first seen in {feed.resolve()}:2)"


# ------------------------------------------------------------------------------------------ folder walk


def test_folder_walk(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "ب\n")
    write(tmp_path / "a.md", "# أ\n")
    write(tmp_path / "nested" / "deeper" / "c.html", "<p>ج</p>")
    write(tmp_path / "nested" / "d.jsonl", '{"id": "d1", "text": "د"}\n')
    write(tmp_path / "notes.pdf", b"%PDF")  # unsupported inside a folder: ignored silently
    write(tmp_path / "image.png", b"\x89PNG\x00")
    write(tmp_path / ".hidden.txt", "مخفي\n")
    write(tmp_path / ".git" / "e.txt", "مخفي\n")
    report = load_paths([tmp_path])
    assert report.skipped == []
    assert [d.id for d in report.documents] == ["a", "b", "d1", "c"]
    root = tmp_path.resolve()
    assert report.files == [str(root / "a.md"), str(root / "b.txt"), str(root / "nested" / "d.jsonl"),
                            str(root / "nested" / "deeper" / "c.html")]
    # the same file reached twice (folder and explicit path) is loaded once
    again = load_paths([tmp_path, tmp_path / "b.txt"])
    assert [d.id for d in again.documents] == ["a", "b", "d1", "c"] and again.skipped == []


def test_upper_case_suffix_is_supported(tmp_path: Path) -> None:
    assert load_one(write(tmp_path / "LOUD.TXT", "عنوان\n")).id == "LOUD"
