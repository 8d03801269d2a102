"""Lexical postings per segment, scored with BM25 over the whole live index.

Each segment keeps raw counts, not scores (bm25s stores scores, which bake in one corpus's IDF and average length,
so it cannot add a document): a sorted term array, CSR postings (per term: local rows, term frequencies) and each
passage's length, all .npy files memory-mapped. A query scores with statistics summed over the live segments:
N = live passages, avgdl = their mean length, df = live passages holding the term.

Tombstoned passages: Lucene counts a deleted document in docFreq and the average length until a merge drops it,
so scores drift with deletes and change at the merge. Here a tombstoned passage counts nowhere: the postings of a
query term are masked by the segment's live rows anyway (to drop those hits), so its df comes for free, and the
live lengths are summed once per snapshot. Scores are then those of bm25s over exactly the live passages, before
and after a compaction (tests/test_segments.py checks both).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.store.arrays import load_array

K1, B = 1.5, 0.75  # bm25s's defaults, which the project has used since its first index
FILES = ("lex_terms.npy", "lex_indptr.npy", "lex_rows.npy", "lex_tfs.npy", "lex_lengths.npy")  # format 3


@dataclass
class Postings:
    terms: np.ndarray  # (V,) unicode, sorted
    indptr: np.ndarray  # (V + 1,) int64
    rows: np.ndarray  # (P,) int32, local rows, ascending within a term
    tfs: np.ndarray  # (P,) int32
    lengths: np.ndarray  # (n,) int32, tokens per passage

    @classmethod
    def build(cls, token_lists: list[list[str]]) -> "Postings":
        counts = [Counter(tokens) for tokens in token_lists]
        vocab = sorted({t for c in counts for t in c})
        ids = {t: i for i, t in enumerate(vocab)}
        term_ids, rows, tfs = [], [], []
        for row, c in enumerate(counts):
            for t, tf in c.items():
                term_ids.append(ids[t])
                rows.append(row)
                tfs.append(tf)
        return cls.from_triples(np.array(vocab, dtype=str) if vocab else np.zeros(0, "<U1"),
                                np.asarray(term_ids, np.int64), np.asarray(rows, np.int64), np.asarray(tfs, np.int64),
                                np.asarray([len(t) for t in token_lists], np.int32))

    @classmethod
    def from_triples(cls, terms, term_ids, rows, tfs, lengths) -> "Postings":
        order = np.lexsort((rows, term_ids))
        indptr = np.zeros(len(terms) + 1, np.int64)
        np.cumsum(np.bincount(term_ids, minlength=len(terms)), out=indptr[1:])
        return cls(terms, indptr, rows[order].astype(np.int32), tfs[order].astype(np.int32), lengths)

    @classmethod
    def merge(cls, parts: list[tuple["Postings", np.ndarray]]) -> "Postings":
        """One segment's postings from several, each with its row map (local row -> new row, -1: dropped)."""
        non_empty = [p.terms for p, _ in parts if len(p.terms)]
        terms = np.unique(np.concatenate(non_empty)) if non_empty else np.zeros(0, "<U1")
        term_ids, rows, tfs, lengths = [], [], [], []
        for p, row_map in parts:
            new_ids = np.searchsorted(terms, p.terms).astype(np.int64)
            ids = np.repeat(new_ids, np.diff(p.indptr))
            mapped = row_map[np.asarray(p.rows)]
            keep = mapped >= 0
            term_ids.append(ids[keep])
            rows.append(mapped[keep])
            tfs.append(np.asarray(p.tfs)[keep])
            lengths.append(np.asarray(p.lengths)[row_map >= 0])
        cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
        term_ids = cat(term_ids, np.int64)
        used = np.unique(term_ids)  # a term whose every passage was dropped goes
        return cls.from_triples(terms[used], np.searchsorted(used, term_ids), cat(rows, np.int64),
                                cat(tfs, np.int64), cat(lengths, np.int32))

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to store, by name (a segment's arrays.bin: rag/store/local/packed.py)."""
        return {name[:-4]: array for name, array in
                zip(FILES, (self.terms, self.indptr, self.rows, self.tfs, self.lengths))}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Postings":
        return cls(*(arrays[name[:-4]] for name in FILES))

    @classmethod
    def open(cls, directory: Path) -> "Postings":
        """A format-3 segment's postings, one .npy file each."""
        # plain ndarray views of the maps: np.memmap's own slicing costs more than the few rows a query reads
        return cls(*(np.asarray(load_array(directory / name)) for name in FILES))

    def lookup(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows and term frequencies of `term` (empty when the segment has no such term)."""
        i = int(np.searchsorted(self.terms, term))
        if i >= len(self.terms) or self.terms[i] != term:
            return np.zeros(0, np.int32), np.zeros(0, np.int32)
        a, b = int(self.indptr[i]), int(self.indptr[i + 1])
        return np.asarray(self.rows[a:b]), np.asarray(self.tfs[a:b])


def idf(n: int, df: int) -> float:
    """BM25's (Lucene's) IDF, as bm25s computes it."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


class LexicalIndex:
    """BM25 over a snapshot's segments: `segments` are (postings, live mask or None, global base row)."""

    def __init__(self, segments: list[tuple[Postings, np.ndarray | None, int]]):
        self.segments = segments
        self.n = sum(int(live.sum()) if live is not None else len(p.lengths) for p, live, _ in segments)
        total = sum(int(np.asarray(p.lengths, np.int64)[live].sum()) if live is not None
                    else int(np.asarray(p.lengths, np.int64).sum()) for p, live, _ in segments)
        self.avgdl = total / self.n if self.n else 1.0
        self.rows = max((base + len(p.lengths) for p, _, base in segments), default=0)
        self._df: dict[str, int] = {}
        self._norms: list[np.ndarray | None] = [None] * len(segments)

    def _norm(self, i: int) -> np.ndarray:
        """Segment i's per-passage BM25 length normalisation k1 * (1 - b + b * length / avgdl), made once per
        snapshot (avgdl is the snapshot's)."""
        if self._norms[i] is None:
            lengths = np.asarray(self.segments[i][0].lengths, np.float64)
            self._norms[i] = K1 * ((1 - B) + B * lengths / self.avgdl)
        return self._norms[i]

    def _postings(self, terms: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The live postings of every term in `terms` (distinct, sorted), over every segment at once: per posting,
        which term, its global row, its term frequency and its passage's length normalisation. A few numpy calls
        per segment however many terms (a per-term loop of small numpy calls cost more than the arithmetic)."""
        wanted = np.array(terms)
        term_of, rows, tfs, norms = [], [], [], []
        for i, (p, live, base) in enumerate(self.segments):
            if not len(p.terms):
                continue
            at = np.searchsorted(p.terms, wanted).tolist()
            which, runs = [], []
            for t, (j, term) in enumerate(zip(at, terms)):
                if j < len(p.terms) and p.terms[j] == term:
                    a, b = int(p.indptr[j]), int(p.indptr[j + 1])
                    which.append(t)
                    runs.append((a, b))
            if not which:
                continue
            r = np.concatenate([p.rows[a:b] for a, b in runs])
            f = np.concatenate([p.tfs[a:b] for a, b in runs])
            t = np.repeat(np.array(which), [b - a for a, b in runs])
            if live is not None:
                keep = live[r]
                r, f, t = r[keep], f[keep], t[keep]
            term_of.append(t)
            norms.append(self._norm(i)[r])
            rows.append(r.astype(np.int64) + base if base else r.astype(np.int64))
            tfs.append(f)
        if not term_of:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty, np.zeros(0)
        if len(term_of) == 1:
            return term_of[0], rows[0], tfs[0], norms[0]
        return np.concatenate(term_of), np.concatenate(rows), np.concatenate(tfs), np.concatenate(norms)

    def df(self, term: str) -> int:
        if term not in self._df:
            self._df[term] = len(self._postings([term])[0])
        return self._df[term]

    def idf(self, term: str) -> float:
        return idf(max(1, self.n), self.df(term))

    def search(self, tokens: list[str], k: int) -> tuple[list[float], list[int]]:
        """The top `k` passages for the query's tokens (a repeated token counts again, as in bm25s), scores > 0.
        Every posting of every query term is scored in one pass and summed per passage by one bincount."""
        if not tokens or k <= 0 or not self.n:
            return [], []
        repeats = Counter(tokens)
        terms = sorted(repeats)
        term_of, rows, tfs, norms = self._postings(terms)
        if not len(rows):
            return [], []
        n = self.n
        df = np.bincount(term_of, minlength=len(terms))
        weights = np.log(1 + (n - df + 0.5) / (df + 0.5)) * np.array([repeats[t] for t in terms])  # idf() each
        tf = tfs.astype(np.float32)
        impact = weights[term_of] * tf / (norms + tf)
        if len(rows) * 16 >= self.rows:  # dense: one slot per row of the snapshot
            scores = np.bincount(rows, weights=impact, minlength=self.rows).astype(np.float32)
            candidates = None
        else:
            candidates, inverse = np.unique(rows, return_inverse=True)
            scores = np.bincount(inverse, weights=impact).astype(np.float32)
        k = min(k, len(scores))
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th best score
        top = np.flatnonzero(scores >= max(kth, np.float32(1e-30)))  # every tie at the k-th too: cut by row below
        at = top if candidates is None else candidates[top]
        order = np.lexsort((at, -scores[top]))[:k]
        return scores[top[order]].astype(float).tolist(), at[order].tolist()
