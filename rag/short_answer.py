"""The short answer: the phrase of a quoted sentence that answers the question, and the clause of a long
sentence that holds it.

The question's type decides what is looked for: متى / when -> a date, كم / how many -> a number with what it
counts, من / who -> a name, أين / where -> a place, anything else -> a phrase. Candidates are runs of words
inside one clause of the sentence (clauses end at ، , ؛ ; : and brackets or quotes) that the question does not
already say; each is scored by how close it sits to the words the question does say, whether it is of the type
asked for, and its length (`SpanConfig`). Words are matched to the question by stem (rag.arabic.stem, so
الجنود = جنود = جندي) or, for a question in another language, by the contextual token vectors the index keeps
(a sentence word matches when one of its tokens' best cosine with a question token is high). Offsets are
into the article's original text, so a short answer is a citation span like a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.arabic import ARABIC_STOPWORDS, ENGLISH_STOPWORDS, normalize, stem
from rag.types import Span

# ---- question types -----------------------------------------------------------------------------------------
_QUANTITY = "عدد|نسبة|نسبه|طول|مساحة|مساحه|عمر|ارتفاع|عمق|قيمة|قيمه|سعر|حجم|وزن|متوسط|مدة|مده|سرعة|سرعه|درجة حرارة"
_TYPES = (
    ("date", re.compile(r"(^|\s)(متى|متي|منذ متى|(في|فى) (أي|اي|أية|اية|أى|اى) (عام|سنة|سنه|تاريخ|يوم|شهر|قرن|عصر|وقت)|"
                        r"ما (هو )?تاريخ|when|what year|which year|what date|in what year|since when)(\s|؟|\?|$)", re.I)),
    ("number", re.compile(r"(^|\s)(كم|بكم|لكم|how many|how much|how long|how old|how far|how big|how large|"
                          r"what percentage|what proportion|what is the number|what number|"
                          rf"ما (هو |هي )?({_QUANTITY})|(?:what is|what was|what's) the (number|percentage|"
                          r"length|area|population|height|size|age|value|price|weight|duration|depth))(\s|؟|\?|$)", re.I)),
    ("place", re.compile(r"(^|\s)(أين|اين|الى أين|إلى أين|where|in which country|in which city|in what country|"
                         r"in what city|(في|فى) (أي|اي|أى|اى) (مدينة|مدينه|دولة|دوله|بلد|منطقة|منطقه|مكان|قارة|قاره))"
                         r"(\s|؟|\?|$)", re.I)),
)
# "who": the question opens with من / لمن / who (or a preposition and من: "ضد من", "مع من"); elsewhere من is
# the preposition "from".
_PERSON = re.compile(r"^(و?(من|لمن|بمن|ممن)|(ضد|مع|عن|إلى|الى|على|علي|من) من|who|whom|whose|by whom|to whom)(\s|؟|\?|$)",
                     re.I)


def question_type(question: str) -> str:
    """"date", "number", "person", "place" or "other", from the question word (the first type found)."""
    q = " ".join(question.replace("؟", " ؟").replace("?", " ?").split()).lstrip("-– ").strip()
    for name, pattern in _TYPES:
        if pattern.search(q):
            return name
    return "person" if _PERSON.search(q) else "other"


# ---- words of a sentence ------------------------------------------------------------------------------------
_WORD = re.compile(r"[^\s،,؛;:.!?؟()\[\]{}«»\"“”„'‘’<>/|–—]+")
_CLAUSE_END = re.compile(r"[،,؛;:()\[\]{}«»\"“”–—]")
_MONTHS = frozenset(normalize(m) for m in (
    "يناير فبراير مارس أبريل ابريل مايو يونيو يوليو أغسطس اغسطس سبتمبر أكتوبر اكتوبر نوفمبر ديسمبر "
    "كانون شباط آذار اذار نيسان أيار ايار حزيران تموز آب أيلول ايلول تشرين محرم صفر ربيع جمادى رجب شعبان "
    "رمضان شوال القعدة الحجة").split())
_DATE_WORDS = frozenset(normalize(w) for w in (
    "هـ ه م ق.م ميلادي ميلادية هجري هجرية ميلاديا الأحد الاثنين الإثنين الثلاثاء الأربعاء الخميس الجمعة السبت "
    "ثلاثاء أربعاء خميس").split())
_NUMBER_WORDS = frozenset(normalize(w) for w in (
    "واحد واحدة اثنان اثنين اثنتان اثنتين ثلاث ثلاثة أربع أربعة خمس خمسة ست ستة سبع سبعة ثمان ثماني ثمانية "
    "تسع تسعة عشر عشرة عشرون عشرين ثلاثون ثلاثين أربعون أربعين خمسون خمسين ستون ستين سبعون سبعين ثمانون "
    "ثمانين تسعون تسعين مائة مئة مائتان مائتين مئتان مئتين ألف آلاف ألفين مليون ملايين مليار مليارات نصف ربع ثلث "
    "عشرات مئات").split())
_UNITS_BLOCKED = ARABIC_STOPWORDS | ENGLISH_STOPWORDS | frozenset({"و", "ف", "ب", "ل"})
_DIGITS = re.compile(r"\d")


@dataclass
class Word:
    start: int
    end: int
    key: str  # normalised form
    stem: str
    stop: bool
    clause: int  # index of the clause it is in
    number: bool = False
    date: bool = False
    asked: bool = False  # the question says it


def _bare(key: str) -> str:
    """The word without a leading conjunction or preposition letter (وفي -> في, بعام -> عام, و1990 -> 1990)."""
    if len(key) > 1 and key[0] in "وفبلك" and (key[1:] in ARABIC_STOPWORDS or key[1:] in _MONTHS
                                             or key[1].isdigit() or key[1:] in _DATE_WORDS):
        return key[1:]
    return key


def sentence_words(text: str, span: Span) -> list[Word]:
    """The words of text[span], with their clause index and number/date flags (offsets into `text`)."""
    words: list[Word] = []
    clause = 0
    pos = span.start
    for m in _WORD.finditer(text, span.start, span.end):
        if _CLAUSE_END.search(text, pos, m.start()):
            clause += 1
        pos = m.end()
        key = normalize(m.group())
        bare = _bare(key)
        digits = bool(_DIGITS.search(bare))
        stop = key in ARABIC_STOPWORDS or key in ENGLISH_STOPWORDS or bare in ARABIC_STOPWORDS
        w = Word(m.start(), m.end(), key, stem(bare) if not digits else bare, stop, clause)
        w.number = digits or bare in _NUMBER_WORDS or stem(bare) in _NUMBER_STEMS
        w.date = (digits and bool(re.fullmatch(r"\d{1,4}(م|هـ|ه)?", bare))) or bare in _MONTHS or bare in _DATE_WORDS
        words.append(w)
    return words


_NUMBER_STEMS = frozenset(stem(w) for w in _NUMBER_WORDS)


def clause_spans(text: str, span: Span) -> list[Span]:
    """The clauses of one sentence: text[span] cut after ، , ؛ ; : (the punctuation stays with the clause before
    it), each trimmed of spaces; exact offsets into `text`."""
    out, start = [], span.start
    for m in re.finditer(r"[،,؛;:]+(?=\s)", text[span.start:span.end]):
        end = span.start + m.end()
        out.append((start, end))
        start = end
    out.append((start, span.end))
    spans = []
    for a, b in out:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            spans.append(Span(a, b))
    return spans


# ---- picking ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpanConfig:
    max_words: int = 6
    near_weight: float = 1.0  # + near_weight / (1 + distance in words to the nearest word the question says)
    clause_weight: float = 0.5  # + clause_weight x share of the question's matched words in the span's clause
    type_weight: float = 1.5  # a span of the type asked for (date, number)
    length_weight: float = 0.1  # per word beyond the first (longer names and phrases)
    after_weight: float = 0.3  # the span follows a word the question says (ولد في X, قائد X)
    min_score: float = 0.8  # below it, no short answer (the rules)
    min_probability: float = 0.0  # below it, no short answer (the learned picker: its softmax over the candidates)


def mark_asked(words: list[Word], question_stems: set[str], token_match: np.ndarray | None = None) -> None:
    """Mark the words the question says: by stem, or (another language) by `token_match`, one bool per word."""
    for i, w in enumerate(words):
        w.asked = (not w.stop and w.stem in question_stems) or bool(token_match is not None and token_match[i])


def pick(words: list[Word], kind: str, config: SpanConfig = SpanConfig()) -> tuple[int, int, float] | None:
    """The best span of `words` (first, last word index, score) for a question of type `kind`, or None."""
    asked = [i for i, w in enumerate(words) if w.asked]
    if not asked or not words:
        return None
    per_clause: dict[int, int] = {}
    for i in asked:
        per_clause[words[i].clause] = per_clause.get(words[i].clause, 0) + 1
    best: tuple[int, int, float] | None = None
    n = len(words)
    for i in range(n):
        if words[i].asked or words[i].stop:
            continue
        for j in range(i, min(n, i + config.max_words)):
            w = words[j]
            if w.clause != words[i].clause or w.asked:
                break
            if w.stop:
                continue
            span_words = words[i:j + 1]
            score = _typed(span_words, words, i, j, kind, config)
            if score is None:
                continue
            distance = min(min(abs(a - i), abs(a - j)) for a in asked)
            score += config.near_weight / (1 + distance)
            score += config.clause_weight * per_clause.get(words[i].clause, 0) / len(asked)
            score += config.length_weight * (j - i)
            if i > 0 and (words[i - 1].asked or (words[i - 1].stop and i > 1 and words[i - 2].asked)):
                score += config.after_weight
            if best is None or score > best[2]:
                best = (i, j, score)
    if best is None or best[2] < config.min_score:
        return None
    if kind == "number":
        best = (best[0], extend_number(words, best[0], best[1]), best[2])
    return best


def _typed(span: list[Word], words: list[Word], i: int, j: int, kind: str, config: SpanConfig) -> float | None:
    """The type part of a span's score; None when the span cannot answer this kind of question."""
    if kind == "date":
        if not all(w.date or w.number for w in span) or not any(w.date for w in span):
            return None
        return config.type_weight
    if kind == "number":
        return config.type_weight if all(w.number for w in span) else None
    if kind in ("person", "place") and (span[0].number or span[0].date):
        return None
    return 0.0


def extend_number(words: list[Word], i: int, j: int) -> int:
    """A number's span takes the word it counts when that follows (2500 -> 2500 جندي), asked or not."""
    k = j
    while k + 1 < len(words) and words[k + 1].number and words[k + 1].clause == words[i].clause:
        k += 1
    if k + 1 < len(words) and words[k + 1].clause == words[i].clause and not words[k + 1].number \
            and words[k + 1].key not in _UNITS_BLOCKED and not words[k + 1].date:
        k += 1
    return k


def word_matches(words: list[Word], similarities: np.ndarray, token_spans: np.ndarray, margin: float) -> np.ndarray:
    """Per word: whether its best token cosine with a question token is within `margin` of the sentence's best
    word (`similarities`: question tokens x the sentence's tokens; `token_spans`: their document offsets).
    Across languages the cosines run flat (0.6-0.9), so only the sentence's closest words count."""
    best_token = similarities.max(axis=0) if similarities.size else np.zeros(len(token_spans))
    best = np.full(len(words), -1.0)
    for i, w in enumerate(words):
        inside = (token_spans[:, 1] > w.start) & (token_spans[:, 0] < w.end)
        if inside.any() and not w.stop:
            best[i] = best_token[inside].max()
    return best >= best.max() - margin if len(best) else np.zeros(0, dtype=bool)


def fit_span(text: str, span: Span, limit: int, keep: Span | None, words: list[Word]) -> Span:
    """The part of sentence `span` to quote in at most `limit` characters: the whole sentence when it fits, else
    the clauses around `keep` (the short answer) or around the clause that says most of the question, grown
    clause by clause while they fit; a clause longer than the limit is cut at words the same way."""
    if len(span) <= limit:
        return span
    clauses = clause_spans(text, span)
    asked = [w for w in words if w.asked]

    def weight(s: Span) -> int:
        return sum(1 for w in asked if s.start <= w.start < s.end)

    def grow(units: list[Span], first: int, last: int) -> Span:
        lo, hi, centre = first, last, first
        while True:
            options = [i for i in (lo - 1, hi + 1) if 0 <= i < len(units)
                       and units[max(hi, i)].end - units[min(lo, i)].start <= limit]
            if not options:
                return Span(units[lo].start, units[hi].end)
            i = max(options, key=lambda i: (weight(units[i]), -abs(i - centre)))
            lo, hi = min(lo, i), max(hi, i)

    def centre_of(units: list[Span]) -> tuple[int, int]:
        if keep is not None:
            first = next((i for i, u in enumerate(units) if keep.start < u.end), 0)
            last = next((i for i in range(len(units) - 1, -1, -1) if units[i].start < keep.end), first)
            return first, max(first, last)
        best = max(range(len(units)), key=lambda i: (weight(units[i]), -i))
        return best, best

    first, last = centre_of(clauses)
    if clauses[last].end - clauses[first].start <= limit:
        return grow(clauses, first, last)
    # the clause is longer than the limit: cut it at words
    inside = Span(clauses[first].start, clauses[last].end)
    units = [Span(w.start, w.end) for w in words if inside.start <= w.start < inside.end]
    if not units:
        return Span(span.start, span.start + limit)
    first, last = centre_of(units)
    return grow(units, first, last)
