"""Sentence spans: where a sentence of an Arabic or English article ends, as offsets into the original text.

Citation spans, late chunking's sentence vectors and the quoted answer are all cut at these offsets, so the
text is never changed: ``text[s.start:s.end]`` is the sentence exactly.
"""

from __future__ import annotations

import re
import unicodedata

from rag.types import Span

# Not the Arabic semicolon "؛": like ";", it joins clauses of one sentence ("عندها شقيقان؛ أحمد ومحمد"), and
# quoting the clause before it alone cut the answer off (containment 0.779 -> 0.788 on ../shared/eval without it).
_TERMINATORS = ".!?؟…۔"
# a run of terminators, or a line break
_BOUNDARY_RE = re.compile(r"[.!?؟…۔]+|[\n\r\u2028\u2029]+")
# always closing when right after a terminator
_CLOSERS = "”»›’)]}"
# closing only when followed by space / end / another closer (else they open the next sentence)
_AMBIGUOUS_CLOSERS = "\"'“"
# abbreviations whose dot does not end a sentence (lowercase, without the dot)
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc inc ltd co corp fig gen col lt sgt capt gov sen rep"
    " e.g i.e u.s u.k u.n a.m p.m jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_WORD_BEFORE_DOT = re.compile(r"([^\W\d_]+(?:\.[^\W\d_]+)*)$")


def _is_edge_space(c: str) -> bool:
    return c.isspace() or unicodedata.category(c) == "Cf"


def _dot_is_boundary(text: str, i: int, j: int, lo: int, hi: int) -> bool:
    """The run of terminators text[i:j] consists of dots only: does it end a sentence?"""
    if j - i >= 2:  # "..." ellipsis
        return True
    prev = text[i - 1] if i > lo else ""
    nxt = text[j] if j < hi else ""
    # 2.5, 1.5 مليون, 10.000
    if prev.isdigit() and nxt.isdigit():
        return False
    m = _WORD_BEFORE_DOT.search(text, max(lo, i - 20), i)
    if m:
        word = m.group(1)
        before = text[m.start() - 1] if m.start() > lo else " "
        if before.isspace() or before in "(«\"'“":
            # one-letter word: initials, "U.S.", Arabic "د." (Dr), "م." (AD/Eng.), "ق.م."
            if len(word.replace(".", "")) == 1 or "." in word and all(len(p) == 1 for p in word.split(".")):
                return False
            if word.lower() in _ABBREVIATIONS:
                return False
    if not nxt or nxt.isspace():
        return True
    # glued: "لطهران.ويقال"; but not inside Latin words (example.com, U.S)
    if prev and "a" <= prev.lower() <= "z" and "a" <= nxt.lower() <= "z":
        return False
    return True


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of text[start:end], with absolute offsets into `text`.

    A sentence ends at a run of . ! ? ؟ … (ended once: "!!", "؟!", "..."), taken together with
    any closing quote or bracket right after it (”  »  )  "), and at every line break. It ends
    also when the next sentence follows with no space ("لطهران.ويقال"), but a dot does not end
    one inside a number ("2.5", "1.5 مليون"), after a one-letter word or initials ("U.S.",
    "د. محمد") or a common English abbreviation ("Dr.", "e.g."), between two Latin letters
    ("example.com"), or right after an opening bracket ("(…)"). Spans are trimmed of whitespace
    and invisible format characters, so ``text[s.start:s.end]`` is the sentence exactly; spans
    without any letter or digit are dropped.
    """
    n = len(text)
    lo = max(0, start)
    hi = n if end is None else min(end, n)
    if lo >= hi:
        return []
    spans: list[Span] = []

    def emit(a: int, b: int) -> None:
        while a < b and _is_edge_space(text[a]):
            a += 1
        while b > a and _is_edge_space(text[b - 1]):
            b -= 1
        if a < b:
            seg = text[a:b]
            if any(ch.isalnum() for ch in seg):
                spans.append(Span(a, b))

    sent_start = lo
    for m in _BOUNDARY_RE.finditer(text, lo, hi):
        i, j = m.start(), m.end()
        c = text[i]
        if c in "\n\r\u2028\u2029":
            emit(sent_start, i)
            sent_start = j
            continue
        if i > lo and text[i - 1] in "([{":  # "(…)", "(؟)"
            continue
        if set(m.group()) == {"."} and not _dot_is_boundary(text, i, j, lo, hi):
            continue
        # closing quotes/brackets stay with the sentence
        k = j
        while k < hi:
            ch = text[k]
            if ch in _CLOSERS:
                k += 1
            elif ch in _AMBIGUOUS_CLOSERS and (
                k + 1 >= hi or text[k + 1].isspace() or text[k + 1] in _CLOSERS or text[k + 1] in _TERMINATORS
            ):
                k += 1
            else:
                break
        emit(sent_start, k)
        sent_start = k
    emit(sent_start, hi)
    return spans
