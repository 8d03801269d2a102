"""Names across scripts: an English question names the people and places of an Arabic article in Latin letters
("Quds", "Iran", "Araghchi"), which share no token with القدس, إيران, عراقجي. Both sides are reduced to a
consonant key (the letters' rough sound classes, vowels and the long-vowel letters dropped, repeats collapsed):
Quds = القدس -> "kds", Iran = إيران -> "rn", Trump = ترامب -> "trmb", Araghchi = عراقجي -> "rkj". The keys of a
question's capitalised words count as its terms, and the keys of an Arabic sentence's words as the sentence's
(rag.retrieval.term_weights / sentence_terms), so rare-term coverage, the second stage and the short answer see
the names an English question shares with an Arabic article.
"""

from __future__ import annotations

import re
from functools import lru_cache

KEY_PREFIX = "~"  # a name key, never a BM25 token

_ARABIC = {
    "ب": "b", "ت": "t", "ث": "t", "ط": "t", "ج": "j", "ح": "h", "ه": "h", "خ": "k", "د": "d", "ذ": "d", "ض": "d",
    "ظ": "z", "ز": "z", "س": "s", "ش": "s", "ص": "s", "غ": "k", "ق": "k", "ك": "k", "ف": "f", "ل": "l", "م": "m",
    "ن": "n", "ر": "r",
}
_DIGRAPHS = (("sh", "s"), ("kh", "k"), ("th", "t"), ("dh", "d"), ("gh", "k"), ("ph", "f"), ("ch", "j"), ("ck", "k"))
_LATIN = {"b": "b", "p": "b", "c": "k", "d": "d", "f": "f", "v": "f", "g": "k", "h": "h", "j": "j", "k": "k", "q": "k",
          "l": "l", "m": "m", "n": "n", "r": "r", "s": "s", "t": "t", "x": "ks", "z": "z"}


def _collapse(letters: str) -> str:
    return re.sub(r"(.)\1+", r"\1", letters)


_ARTICLE = re.compile(r"^(?:[وفبلك]?ال|لل)(?=..)")
_WORDS = re.compile(r"[\u0621-\u064a]{2,}")


@lru_cache(maxsize=1 << 16)
def arabic_keys(word: str) -> tuple[str, ...]:
    """The consonant keys of one normalised Arabic word: without its article (القدس, والقدس -> قدس), and also
    without a leading و ب ل ف ك when 4 letters remain (لإيران -> إيران; a root letter just gives a second key)."""
    w = _ARTICLE.sub("", word)
    forms = [w] + ([w[1:]] if len(w) >= 5 and w[0] in "وبلفك" else [])
    return tuple(_collapse("".join(_ARABIC.get(c, "") for c in f)) for f in forms)


def latin_key(word: str) -> str:
    w = re.sub(r"c(?=[eiy])", "s", word.lower().removesuffix("'s"))
    for digraph, sound in _DIGRAPHS:
        w = w.replace(digraph, sound)
    return _collapse("".join(_LATIN.get(c, "") for c in w))


def question_names(question: str, stopwords: frozenset[str]) -> set[str]:
    """The keys of the capitalised words of a question in Latin letters (its names), two consonants or more."""
    return set().union(*question_name_runs(question, stopwords))


_RUN = re.compile(r"\b[A-Z][a-z]+(?:'s)?\b(?:[ -]+[A-Z][a-z]+(?:'s)?\b)*")


def question_name_runs(question: str, stopwords: frozenset[str], consonants: int = 2) -> list[set[str]]:
    """The question's names as runs of adjacent capitalised words, each the set of its words' keys of `consonants`
    or more: "Who refused to meet the Quds Force commander Esmail Qaani?" -> [{kds, frs}, {sml}] at three. A run
    is one name: "Quds Force" is found where القدس is, though no Arabic word has the key of "Force"."""
    runs = []
    for run in _RUN.findall(question):
        keys = {KEY_PREFIX + k for w in re.split(r"[ -]+", run) if w.lower() not in stopwords
                and len(k := latin_key(w)) >= consonants}
        if keys:
            runs.append(keys)
    return runs


def sentence_names(normalised: str) -> set[str]:
    """The keys of the Arabic words of a normalised sentence (rag.arabic.normalize), two consonants or more."""
    return {KEY_PREFIX + key for word in _WORDS.findall(normalised) for key in arabic_keys(word) if len(key) >= 2}
