"""The store's BM25 (rag/store/local/lexical.py): ranking only the passages that score gives the same top k as
ranking every row, ties included; document frequencies read from the offsets match the live postings."""

from collections import Counter

import numpy as np
import pytest

from rag.store.local.lexical import B, K1, LexicalIndex, Postings

WORDS = ["قدس", "جند", "نفط", "غزة", "سلام", "حرب", "مصر", "سوق"]


def corpus(rng, n: int) -> list[list[str]]:
    """Passages from a small vocabulary, a third of them copies of earlier ones (equal scores: ties)."""
    out = []
    for i in range(n):
        if i > 3 and rng.random() < 0.33:
            out.append(list(out[int(rng.integers(0, i))]))
        else:
            out.append([WORDS[j] for j in rng.integers(0, len(WORDS), int(rng.integers(1, 12)))])
    return out


def full_ranking(segments, live_masks, query: list[str], k: int) -> tuple[list[float], list[int]]:
    """Every live row scored (a zero for the rest), all of them sorted by score then row: the reference."""
    docs = [(base + r, toks) for (toks_list, base), live in zip(segments, live_masks)
            for r, toks in enumerate(toks_list) if live is None or live[r]]
    n, avgdl = len(docs), np.mean([len(t) for _, t in docs])
    rows = max(base + len(t) for t, base in segments)
    scores = np.zeros(rows)
    for term, repeat in Counter(query).items():
        df = sum(term in toks for _, toks in docs)
        if not df:
            continue
        w = np.log(1 + (n - df + 0.5) / (df + 0.5)) * repeat
        for row, toks in docs:
            tf = np.float32(toks.count(term))
            if tf:
                scores[row] += w * tf / (K1 * ((1 - B) + B * len(toks) / avgdl) + tf)
    scores = scores.astype(np.float32)
    order = np.lexsort((np.arange(rows), -scores))
    order = order[scores[order] > 0][:k]
    return scores[order].astype(float).tolist(), order.tolist()


@pytest.mark.parametrize("sizes, query, dead", [
    ([400], ["قدس"], 0),  # one term, many rows: the dense branch (a slot per row)
    ([400], ["قدس", "جند", "جند"], 0),  # a repeated term counts again
    ([300, 120, 40], ["نفط", "مصر", "كلمة"], 25),  # segments, tombstones, a term no passage holds
    ([3000], ["سوق"], 0),
])
def test_nonzero_ranking_matches_a_full_ranking(sizes, query, dead):
    rng = np.random.default_rng(sum(sizes) + dead)
    segments, live_masks, base = [], [], 0
    for size in sizes:
        segments.append((corpus(rng, size), base))
        live = None
        if dead:
            live = np.ones(size, bool)
            live[rng.choice(size, dead, replace=False)] = False
        live_masks.append(live)
        base += size + 5  # gaps between segments, as a compaction leaves
    index = LexicalIndex([(Postings.build(t), live, b) for (t, b), live in zip(segments, live_masks)])
    for k in (1, 5, 20, 50, 10_000):
        got = index.search(query, k)
        want = full_ranking(segments, live_masks, query, k)
        assert got[1] == want[1]
        assert np.allclose(got[0], want[0], rtol=1e-6)
    scores, rows = index.search(query, 50)
    assert len(set(scores)) < len(scores)  # ties were there to break (by row)


def test_sparse_branch_ranks_the_same():
    """Few postings among many rows: the other branch (the unique rows only); the same order, ties by row."""
    rng = np.random.default_rng(3)
    tokens = [["حرب"] for _ in range(2000)]
    for r in rng.choice(2000, 60, replace=False):
        tokens[r] = ["سلام"] * int(rng.integers(1, 3))
    index = LexicalIndex([(Postings.build(tokens), None, 0)])
    for k in (1, 7, 60, 100):
        got = index.search(["سلام"], k)
        want = full_ranking([(tokens, 0)], [None], ["سلام"], k)
        assert got[1] == want[1] and np.allclose(got[0], want[0], rtol=1e-6)


def test_document_frequencies_count_only_live_passages():
    rng = np.random.default_rng(5)
    a, b = corpus(rng, 200), corpus(rng, 80)
    live = np.ones(80, bool)
    live[::3] = False
    index = LexicalIndex([(Postings.build(a), None, 0), (Postings.build(b), live, 200)])
    for term in WORDS + ["غائب"]:
        want = sum(term in t for t in a) + sum(term in t for t, alive in zip(b, live) if alive)
        assert index.df(term) == want
        assert index.dfs([term, "غائب"]) == {term: want, "غائب": 0}
    idfs = index.idfs(WORDS)
    assert idfs == {t: index.idf(t) for t in WORDS}
    assert idfs["قدس"] == pytest.approx(np.log(1 + (index.n - index.df("قدس") + 0.5) / (index.df("قدس") + 0.5)))


@pytest.mark.parametrize("dead", [0, 40])
def test_maxscore_stops_early_and_scores_the_same(monkeypatch, dead):
    """A rare term among common ones: the passages holding it decide the top k without the common terms'
    postings being scored whole, and the result is the full scoring's to the last bit (ties by row)."""
    rng = np.random.default_rng(11 + dead)
    tokens = corpus(rng, 3000)
    for r in rng.choice(3000, 30, replace=False):
        tokens[r] = tokens[r] + ["نادر"] * int(rng.integers(1, 3))
    tokens[7] = tokens[8] = ["نادر"] * 3 + ["قدس"]  # an exact tie, at the top
    live = None
    if dead:
        live = np.ones(3000, bool)
        live[rng.choice(np.arange(9, 3000), dead, replace=False)] = False
    index = LexicalIndex([(Postings.build(tokens[:1000]), None if live is None else live[:1000], 0),
                          (Postings.build(tokens[1000:]), None if live is None else live[1000:], 1000)])
    index.maxscore_postings = 0  # MaxScore however few the postings (it pays from a million passages)
    query = ["قدس", "نادر", "حرب", "سوق"]
    full = index._full_search(sorted(set(query)), *_weights(index, query), 5)
    monkeypatch.setattr(index, "_full_search", lambda *a: pytest.fail("scored every posting"))
    got = index.search(query, 5)
    assert got == full
    want = full_ranking([(tokens[:1000], 0), (tokens[1000:], 1000)],
                        [None, None] if live is None else [live[:1000], live[1000:]], query, 5)
    assert got[1] == want[1]
    assert got[1][:2] == [7, 8]


def _weights(index: LexicalIndex, query: list[str]) -> tuple[np.ndarray]:
    terms = sorted(set(query))
    df = np.array([index.df(t) for t in terms])
    return (np.log(1 + (index.n - df + 0.5) / (df + 0.5)) * np.array([query.count(t) for t in terms]),)


def test_maxscore_matches_full_scoring_over_random_queries():
    """Zipf-like word frequencies, passages of varied length, queries of 1-5 words: MaxScore's top k is the full
    scoring's, bit for bit, whether it stopped early (most queries here) or not."""
    rng = np.random.default_rng(17)
    vocab = [f"w{i}" for i in range(80)]
    p = 1 / np.arange(1, 81) ** 1.1
    tokens = [list(rng.choice(vocab, int(rng.integers(1, 60)), p=p / p.sum())) for _ in range(3000)]
    live = np.ones(2000, bool)
    live[rng.choice(2000, 100, replace=False)] = False
    index = LexicalIndex([(Postings.build(tokens[:1000]), None, 0), (Postings.build(tokens[1000:]), live, 1000)])
    index.maxscore_postings = 0
    full, fallbacks = index._full_search, []
    index._full_search = lambda *a: fallbacks.append(1) or full(*a)
    for q in range(120):
        query = list(rng.choice(vocab, int(rng.integers(1, 6)), p=np.sqrt(p) / np.sqrt(p).sum()))
        k = int(rng.choice([1, 5, 20, 50]))
        got = index.search(query, k)
        assert got == full(sorted(set(query)), *_weights(index, query), k), (query, k)
    assert 0 < len(fallbacks) < 100  # both paths were taken
