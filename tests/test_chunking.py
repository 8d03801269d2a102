
import pytest

from rag.chunking import ChunkingConfig, chunk_document
from rag.config import BUNDLED_ARTICLES
from rag.documents import clean, load_paths
from rag.types import Document, Span


def words(texts: list[str]) -> list[int]:
    """A stand-in token counter: one token per whitespace word (the real one is the model's tokenizer)."""
    return [len(t.split()) for t in texts]


def make_doc(text: str) -> Document:
    return Document(id="d", text=text, title="")


def test_chunks_are_exact_slices_of_the_original_text():
    text = "الجملة الأولى هنا. الجملة الثانية هنا؟ الجملة الثالثة هنا! الجملة الرابعة هنا."
    doc = make_doc(text)
    chunks = chunk_document(doc, [Span(0, len(text))], words, ChunkingConfig(max_tokens=16, overlap_tokens=0))
    assert chunks
    for c in chunks:
        assert c.text == text[c.start:c.end]
        assert c.id == f"d:{c.start}-{c.end}"
        for s in c.sentences:
            assert c.start <= s.start < s.end <= c.end


def test_budget_is_respected_and_overlap_repeats_trailing_sentences():
    sentences = [f"جملة رقم {i} فيها أربع كلمات." for i in range(20)]
    text = " ".join(sentences)
    doc = make_doc(text)
    cfg = ChunkingConfig(max_tokens=20, overlap_tokens=6)  # one 6-word sentence of overlap
    chunks = chunk_document(doc, [Span(0, len(text))], words, cfg)
    assert len(chunks) > 3
    for c in chunks:
        assert sum(words([text[s.start:s.end] for s in c.sentences])) <= cfg.max_tokens
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive chunks share their boundary sentence"
        assert b.start > a.start, "every chunk advances"
    covered = {s for c in chunks for s in c.sentences}
    assert len(covered) == len(sentences)


def test_an_over_long_sentence_is_cut_at_word_boundaries():
    text = " ".join(["كلمة"] * 100)
    doc = make_doc(text)
    chunks = chunk_document(doc, [Span(0, len(text))], words, ChunkingConfig(max_tokens=30, overlap_tokens=0))
    assert len(chunks) >= 4
    assert all(c.text.startswith("كلمة") and c.text.endswith("كلمة") for c in chunks)
    assert all(words([c.text])[0] <= 30 for c in chunks)


def test_chunks_do_not_cross_dropped_boilerplate():
    text = "فقرة أولى عن المحادثات.\nAd\nفقرة ثانية عن العقوبات."
    doc = make_doc(text)
    kept = [Span(0, text.index("\nAd")), Span(text.index("فقرة ثانية"), len(text))]
    chunks = chunk_document(doc, kept, words, ChunkingConfig(max_tokens=100, overlap_tokens=0))
    assert len(chunks) == 2
    assert all("Ad" not in c.text for c in chunks)


def test_a_headline_only_section_makes_no_chunk_when_every_chunk_carries_the_title():
    title = "العراق يعلن موعد استئناف المحادثات"
    text = f"{title}\nتاريخ النشر: 9 فبراير\nأعلنت بغداد أن المحادثات تستأنف الأحد."
    doc = Document(id="d", text=text, title=title)
    kept = [Span(0, len(title)), Span(text.index("أعلنت"), len(text))]
    cfg = ChunkingConfig(max_tokens=100, overlap_tokens=0)
    assert [c.text for c in chunk_document(doc, kept, words, cfg, skip_title=True)] == [text[kept[1].start:]]
    assert [c.text for c in chunk_document(doc, kept, words, cfg)] == [title, text[kept[1].start:]]
    # An article that is nothing but its title keeps it: it would not be found otherwise.
    alone = Document(id="t", text=title, title=title)
    assert [c.text for c in chunk_document(alone, [Span(0, len(title))], words, cfg, skip_title=True)] == [title]


def test_bundled_articles_chunk_without_boilerplate():
    report = load_paths([BUNDLED_ARTICLES])
    for doc in report.documents:
        chunks = chunk_document(doc, clean(doc), words, ChunkingConfig(max_tokens=120, overlap_tokens=20))
        assert chunks, doc.id
        joined = " ".join(c.text for c in chunks)
        assert "اشترك فى النشرة البريدية" not in joined
        assert [c.ordinal for c in chunks] == list(range(len(chunks)))


@pytest.mark.parametrize("max_tokens,overlap", [(8, 0), (10, 10), (10, 12)])
def test_bad_config_is_refused(max_tokens, overlap):
    with pytest.raises(ValueError):
        ChunkingConfig(max_tokens=max_tokens, overlap_tokens=overlap)
