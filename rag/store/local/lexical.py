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
SEED_POSTINGS, SEED_ROWS = 20_000, 1000  # MaxScore's floor (LexicalIndex.search): postings read, rows scored
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

    # Below this many postings for a query, reading them all costs less than MaxScore's floor (at 100k passages
    # MaxScore took 3.8 / 9.9 ms p50 / p95 against 3.1 / 7.1; at 1M 16 / 59 against 23 / 77).
    maxscore_postings = 200_000

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

    def dfs(self, terms) -> dict[str, int]:
        """The live document frequency of each term. A segment without tombstones holds it in its offsets
        (indptr[j + 1] - indptr[j]): one searchsorted for all the terms, no posting read. A segment with
        tombstones counts the live rows of the term's postings (a boolean gather: Lucene would count the dead
        ones until a merge, see the module docstring). Cached per snapshot."""
        missing = sorted({t for t in terms if t not in self._df})
        if missing:
            counts = np.zeros(len(missing), np.int64)
            for (p, live, _), runs in zip(self.segments, self._runs(missing)):
                if live is None:
                    counts += runs[:, 1] - runs[:, 0]
                else:
                    counts += np.array([np.count_nonzero(live[p.rows[x:y]]) for x, y in runs], np.int64)
            self._df.update(zip(missing, counts.tolist()))
        return {t: self._df[t] for t in terms}

    def df(self, term: str) -> int:
        return self.dfs([term])[term]

    def idf(self, term: str) -> float:
        return idf(max(1, self.n), self.df(term))

    def idfs(self, terms) -> dict[str, float]:
        n = max(1, self.n)
        return {t: idf(n, df) for t, df in self.dfs(list(terms)).items()}

    def search(self, tokens: list[str], k: int) -> tuple[list[float], list[int]]:
        """The top `k` passages for the query's tokens (a repeated token counts again, as in bm25s), scores > 0.

        MaxScore (Turtle and Flood 1995; Lucene's and PISA's): a term adds less than its weight (idf x repeats) to
        any passage, since tf / (norm + tf) < 1. A few hundred passages of the rarest terms, scored exactly, give
        a floor under the k-th best score; the commonest terms whose weights sum below it cannot lift a passage
        that has none of the others into the top k, so only the other terms' postings are read whole, and the
        commonest terms are looked up (binary search) for the passages that can still make it. At 1M passages a
        common word is in a tenth to a half of them. Without such a floor every posting is scored
        (`_full_search`). Either way the scores are the same floats, summed in the same term order."""
        if not tokens or k <= 0 or not self.n:
            return [], []
        repeats = Counter(tokens)
        terms = sorted(repeats)
        df = np.array([self.dfs(terms)[t] for t in terms], np.int64)
        weights = np.log(1 + (self.n - df + 0.5) / (df + 0.5)) * np.array([repeats[t] for t in terms])  # idf() each
        order = [t for t in sorted(range(len(terms)), key=lambda t: (-weights[t], t)) if df[t]]  # rarest first
        if len(order) < 2 or df.sum() < self.maxscore_postings:
            return self._full_search(terms, weights, k)  # nothing to skip, or less to read than the floor costs
        runs, impacts = self._runs(terms), {}
        for t in order:  # the floor: the best of the rarest terms' passages by their share, scored exactly
            impacts[t] = self._impacts(runs, t, weights)
            if sum(len(r) for r, _ in impacts.values()) >= SEED_POSTINGS:
                break
        rows, partial = self._summed(list(impacts.values()))
        if len(rows) < k:
            return self._full_search(terms, weights, k)
        seed = np.sort(rows[np.argpartition(-partial, min(SEED_ROWS, len(rows)) - 1)[:SEED_ROWS]])
        exact = self._score(seed, runs, weights, len(terms))
        floor = float(np.partition(exact, len(exact) - k)[len(exact) - k]) * (1 - 1e-6)  # the margin: float32
        bound = np.cumsum(weights[order[::-1]])  # the commonest terms' summed weights
        skipped = int(np.searchsorted(bound, floor))  # how many of them sum below the floor
        if not skipped:
            return self._full_search(terms, weights, k)
        read = order[:len(order) - skipped]
        rows, partial = self._summed([impacts.get(t) or self._impacts(runs, t, weights) for t in read])
        keep = rows[partial + bound[skipped - 1] >= floor]  # those the skipped terms could still lift to the floor
        return self._top(self._score(keep, runs, weights, len(terms)), keep, k)

    def _summed(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """The distinct rows of (rows, impacts) parts, ascending, and their impacts summed (in any order: a bound)."""
        rows = np.concatenate([r for r, _ in parts])
        impact = np.concatenate([i for _, i in parts])
        if len(rows) * 16 >= self.rows:  # dense: sum into one slot per row of the snapshot, then keep the rows hit
            summed = np.bincount(rows, weights=impact, minlength=self.rows)
            hit = np.flatnonzero(summed)  # every impact is > 0: the rows some posting reached, ascending
            return hit, summed[hit]
        hit, inverse = np.unique(rows, return_inverse=True)
        return hit, np.bincount(inverse, weights=impact)

    def _runs(self, terms: list[str]) -> list[np.ndarray]:
        """Per segment: each term's [start, end) in its postings (start == end when the segment lacks it)."""
        out, wanted = [], np.array(terms)
        for p, _, _ in self.segments:
            runs = np.zeros((len(terms), 2), np.int64)
            if len(p.terms):
                at = np.searchsorted(p.terms, wanted)
                found = np.flatnonzero(p.terms[np.minimum(at, len(p.terms) - 1)] == wanted)
                runs[found, 0], runs[found, 1] = p.indptr[at[found]], p.indptr[at[found] + 1]
            out.append(runs)
        return out

    def _impacts(self, runs: list[np.ndarray], t: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The global rows of the live passages holding term t, and what the term adds to each one's score."""
        rows, impacts = [], []
        for i, ((p, live, base), r) in enumerate(zip(self.segments, runs)):
            local = np.asarray(p.rows[r[t, 0]:r[t, 1]])
            tf = np.asarray(p.tfs[r[t, 0]:r[t, 1]]).astype(np.float32)
            if live is not None:
                keep = live[local]
                local, tf = local[keep], tf[keep]
            rows.append(local.astype(np.int64) + base)
            impacts.append(weights[[t]] * tf / (self._norm(i)[local] + tf))
        return np.concatenate(rows), np.concatenate(impacts)

    def _score(self, rows: np.ndarray, runs: list[np.ndarray], weights: np.ndarray, terms: int) -> np.ndarray:
        """The exact scores of the live global `rows` (ascending), as _full_search sums them: float64, term by
        term in sorted order, then float32."""
        summed = np.zeros(len(rows))
        for (p, _, base), r, i in zip(self.segments, runs, range(len(self.segments))):
            a, b = np.searchsorted(rows, [base, base + len(p.lengths)])
            if a == b:
                continue
            local = rows[a:b] - base
            norm = self._norm(i)[local]
            for t in range(terms):
                postings = p.rows[r[t, 0]:r[t, 1]]
                if not len(postings):
                    continue
                at = np.minimum(np.searchsorted(postings, local), len(postings) - 1)
                hit = np.flatnonzero(np.asarray(postings[at]) == local)
                tf = np.asarray(p.tfs[r[t, 0]:r[t, 1]])[at[hit]].astype(np.float32)
                summed[a + hit] += weights[[t]] * tf / (norm[hit] + tf)
        return summed.astype(np.float32)

    @staticmethod
    def _top(scores: np.ndarray, candidates: np.ndarray, k: int) -> tuple[list[float], list[int]]:
        """The best k of `candidates` by score, ties by row, scores > 0 (every tie at the k-th goes to the sort)."""
        k = min(k, len(scores))
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        top = np.flatnonzero(scores >= max(kth, np.float32(1e-30)))
        at = candidates[top]
        order = np.lexsort((at, -scores[top]))[:k]
        return scores[top[order]].astype(float).tolist(), at[order].tolist()

    def _full_search(self, terms: list[str], weights: np.ndarray, k: int) -> tuple[list[float], list[int]]:
        """Every posting of every query term scored in one pass and summed per passage by one bincount."""
        term_of, rows, tfs, norms = self._postings(terms)
        if not len(rows):
            return [], []
        tf = tfs.astype(np.float32)
        impact = weights[term_of] * tf / (norms + tf)
        candidates, summed = self._summed([(rows, impact)])
        scores = summed.astype(np.float32)
        # Rank only the passages that score (at 1M a common term reaches a fraction of the rows; partitioning
        # all of them cost more than the scoring): the same top k as over every row, zeros never reach it.
        return self._top(scores, candidates, k)
