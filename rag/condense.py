"""Make a chat follow-up standalone before retrieval, without an LLM.

"ومن أعلن ذلك؟" after "متى تستأنف المحادثات بين العراق والولايات المتحدة؟" retrieves nothing useful on its
own: its only content word is أعلن. A follow-up is recognised by what it lacks (few content tokens) or by
what points back (a demonstrative or pronoun: ذلك، هذا، هو، it, that, they ...); it is then extended with
the content words of the previous standalone question, written as the user wrote them (the embedding model
reads words, not our stemmed BM25 tokens). A self-contained message is left as it is.

### Usage example
    condense("ومن أعلن ذلك؟", ["متى تستأنف المحادثات بين العراق والولايات المتحدة؟"]).query
    # -> "ومن أعلن ذلك تستأنف المحادثات العراق والولايات المتحدة؟"
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.arabic import normalize, tokenize

# Words that point back to an earlier turn, in matching form (rag.arabic.normalize: ة -> ه, ى -> ي, أ -> ا).
REFERENCES = frozenset(normalize(w) for w in (
    "ذلك تلك ذاك هذا هذه هذان هاتان هؤلاء أولئك هناك هنالك هنا حينها حينئذ حينذاك آنذاك عندها وقتها "
    "هو هي هم هما هن إياه إياها إياهم "
    "it its that this these those they them their he him his she her there then"
).split())
# Arabic conjunctions glued to the first letter ("وهو", "فذلك", "وهل"): stripped before the lookup.
_CONJUNCTION = re.compile(r"^[وف](?=..)")
# "ما هي عاصمة منغوليا؟", "من هو قائد فيلق القدس؟": after ما / من / ماذا the pronoun is the copula of a new
# question, not a reference to an earlier turn ("وهل هو متأكد؟" still refers back).
_COPULA = frozenset(normalize(w) for w in "هو هي هم هما هن".split())
_ASKING = frozenset(normalize(w) for w in "ما من ماذا".split())
_WORD = re.compile(r"[^\W\d_]+|\d+(?:[.,]\d+)*")
# At most this many content tokens: too little to retrieve with alone ("ومتى؟", "and why?"). Kept at 1 so a
# short new question ("ما عاصمة أستراليا؟", 2 tokens) is not glued to an unrelated earlier topic.
FEW_CONTENT_TOKENS = 1
# A message that points back and has at most this many is a follow-up. Kept small because English "that"
# is also a conjunction: "What did Araghchi say about the missiles that Iran has?" (4) stays as it is.
REFERRING_CONTENT_TOKENS = 3
MAX_CONTEXT_WORDS = 24  # keeps a long chain of follow-ups from growing the query without bound


@dataclass(frozen=True)
class Condensed:
    """The query to retrieve with, and why it differs from the message (if it does)."""

    query: str
    rewritten: bool = False
    reason: str = ""  # "" | "short" | "refers back"


def refers_back(message: str) -> bool:
    """Whether the message holds a demonstrative or pronoun that needs an earlier turn to resolve."""
    before = ""
    for word in _WORD.findall(normalize(message)):
        bare = _CONJUNCTION.sub("", word)
        if (word in REFERENCES or bare in REFERENCES) and not (bare in _COPULA and before in _ASKING):
            return True
        before = bare
    return False


def content_words(text: str) -> list[str]:
    """The words of `text` as written that carry content (those rag.arabic.tokenize keeps), in order, once."""
    seen: set[str] = set()
    out = []
    for word in _WORD.findall(text):
        keys = tuple(tokenize(word))
        if keys and keys not in seen:
            seen.add(keys)
            out.append(word)
    return out


def condense(message: str, previous: Sequence[str]) -> Condensed:
    """A standalone query for `message` given the earlier standalone questions of the session (oldest first)."""
    message = message.strip()
    if not previous:
        return Condensed(message)
    n = len(tokenize(message))
    if n <= REFERRING_CONTENT_TOKENS and refers_back(message):
        reason = "refers back"
    elif n <= FEW_CONTENT_TOKENS:
        reason = "short"
    else:
        return Condensed(message)
    own = set(tokenize(message))
    context = [w for w in content_words(previous[-1]) if not set(tokenize(w)) <= own][:MAX_CONTEXT_WORDS]
    if not context:
        return Condensed(message)
    body = message.rstrip(" ?؟")
    mark = message[len(body):].strip()[:1]  # the message's own question mark, kept at the end
    return Condensed(f"{body} {' '.join(context)}{mark}", rewritten=True, reason=reason)
