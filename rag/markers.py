"""Citation markers in a model's reply: parsed as the reply streams in, rewritten to one canonical form.

Models write a citation many ways: `[1]`, `[1][3]`, `[1, 3]`, `[1-3]`, `[١]` (Arabic-Indic digits), `［1］`
or `【1】` (full-width brackets), `[Passage 2]`, `[المقطع 2]`, and a streamed reply may cut a marker in two
("[" then "2]"). `CitationStream` takes the pieces as they come and gives back text in which every marker
is `[n]`, numbered by first appearance in the answer (the answer's citation list uses the same numbers);
a number that names no passage given to the model is dropped, and so is a marker left with none. Both the
streamed text and the final answer come from this one parser, so what a reader saw streaming is what the
answer object holds.

Sentences (claims) are cut at . ! ? ؟ followed by a space, or a line break; markers that follow a sentence's
full stop still belong to it ("... 2024. [1]").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.arabic import normalize

_OPEN = "[［【"
_NUM = r"[0-9٠-٩۰-۹０-９]+"
_LABEL = r"(?:passages?|sources?|المقاطع|المقطع|مقطع|المصدر|مصدر)?"
_MARKER = re.compile(
    rf"[\[［【]\s*{_LABEL}\s*({_NUM}(?:\s*(?:[,،;؛]|-|–|and|و)\s*{_LABEL}\s*{_NUM})*)\s*[\]］】]", re.IGNORECASE)
_NUMBER = re.compile(_NUM)
_RANGE = re.compile(rf"({_NUM})\s*[-–]\s*({_NUM})")
# An unclosed marker is held back at most this long before it is let through as text.
_MAX_MARKER = 40
_SENTENCE_END = re.compile(r"[.!?؟…](?=\s)|\n")


def marker_numbers(inner: str) -> list[int]:
    """The passage numbers of a marker's inside: "1, 3" -> [1, 3]; "1-3" -> [1, 2, 3]; "١" -> [1]."""
    inner = normalize(inner)  # Arabic-Indic, Persian and full-width digits -> ASCII
    numbers: list[int] = []
    for m in _RANGE.finditer(inner):
        lo, hi = int(m.group(1)), int(m.group(2))
        if 0 < hi - lo <= 10:
            numbers.extend(range(lo, hi + 1))
    if not numbers:
        numbers = [int(n) for n in _NUMBER.findall(inner)]
    return list(dict.fromkeys(numbers))


@dataclass
class Claim:
    """One sentence of the answer and the citations (answer numbers, as in its `[n]` markers) it carries."""

    text: str
    citations: list[int] = field(default_factory=list)


@dataclass
class CitationStream:
    """Feed the reply's pieces; get back canonical text. `passages` is how many passages the prompt held."""

    passages: int
    order: list[int] = field(default_factory=list)  # prompt passage numbers, in order of first citation
    dropped: list[int] = field(default_factory=list)  # numbers that named no passage
    text: str = ""  # everything given back so far
    _pending: str = ""

    def feed(self, piece: str) -> str:
        self._pending += piece
        out = []
        while self._pending:
            i = min((j for j in (self._pending.find(c) for c in _OPEN) if j >= 0), default=-1)
            if i < 0:
                # Hold trailing spaces back until we know whether a dropped marker follows them.
                text = self._pending.rstrip()
                out.append(text)
                self._pending = self._pending[len(text):]
                break
            before, rest = self._pending[:i], self._pending[i:]
            space = before[len(before.rstrip()):]
            out.append(before.rstrip())
            m = _MARKER.match(rest)
            if m:
                marker = self._marker(m.group(1))
                out.append(space + marker if marker else "")  # a dropped marker takes its space with it
                self._pending = rest[m.end():]
                continue
            if not any(c in rest for c in "]］】") and len(rest) < _MAX_MARKER:
                self._pending = space + rest  # maybe a marker cut by the stream: wait for the next piece
                break
            # Not a marker ("[see above]"): let the bracket through as text.
            out.append(space + rest[0])
            self._pending = rest[1:]
        return self._give("".join(out))

    def close(self) -> str:
        rest, self._pending = self._pending, ""
        return self._give(rest)

    def number(self, passage: int) -> int:
        """The answer's citation number of a prompt passage."""
        return self.order.index(passage) + 1

    @property
    def claims(self) -> list[Claim]:
        return split_claims(self.text)

    def _give(self, text: str) -> str:
        self.text += text
        return text

    def _marker(self, inner: str) -> str:
        out = []
        for p in marker_numbers(inner):
            if not 1 <= p <= self.passages:
                self.dropped.append(p)
                continue
            if p not in self.order:
                self.order.append(p)
            out.append(f"[{self.number(p)}]")
        return "".join(out)


_CANONICAL = re.compile(r"\[(\d+)\]")
_TRAILING_MARKERS = re.compile(r"(?:\s*\[\d+\])+")


def split_claims(text: str) -> list[Claim]:
    """Sentences of canonical text with their `[n]` numbers; markers after a full stop stay with its sentence."""
    claims, start = [], 0
    for m in _SENTENCE_END.finditer(text + "\n"):
        end = m.end()
        tail = _TRAILING_MARKERS.match(text, end)
        if tail:
            end = tail.end()
        if end <= start:
            continue
        raw = text[start:end]
        sentence = re.sub(r"\s+([.!?؟،,:;])", r"\1", re.sub(r"\s+", " ", _CANONICAL.sub("", raw))).strip()
        if sentence and not re.fullmatch(r"[\W_]*", sentence):
            claims.append(Claim(sentence, list(dict.fromkeys(int(n) for n in _CANONICAL.findall(raw)))))
        start = end
    return claims


def parse_reply(reply: str, passages: int) -> CitationStream:
    """The whole reply at once (the same parser the stream uses)."""
    stream = CitationStream(passages)
    stream.feed(reply)
    stream.close()
    return stream
