"""Whether the answer is in what was retrieved: the abstention's logistic models, and the features they read.

The answerer (rag/answer.py, `ExtractiveAnswerer.features`) computes the features; benchmarks/quality.py fits the
weights on ../shared/eval and prints them; the assistant abstains under RAG_ABSTAIN_THRESHOLD.
"""

from __future__ import annotations

import math

# Logistic models of "the answer is in what was retrieved", fitted by benchmarks/quality.py on ../shared/eval:
# answerable questions against the pooled corpus vs the same questions asked of the other set's corpus.
# Arabic questions read every feature of CONFIDENCE_FEATURES (see `ExtractiveAnswerer.features`): the best
# sentence's similarity, share of the question's rare terms and late interaction (token-level match), that
# share over its whole passage, the best passage cosine and its lead over the next passage, the best BM25
# score per unit of question IDF and its lead. A question in another language shares few terms with Arabic
# articles and its e5 similarities run lower and flatter, so it has its own model (CROSS_LANGUAGE_FEATURES),
# fitted on the English translations of dev questions (../shared/eval/crosslingual_en) against the same
# questions asked of the other set's corpus: the best late interaction over the passages read (`late_top`),
# the share of the question's terms and names (rag.names) the best sentence holds, the best similarity of the
# passages' sentences to the question by the cross-language model (`crosslingual_top`, rag/crosslingual.py), and
# the share of the question's names that some passage read names (`names_found`, rag.retrieval.names_found: a
# question about a person or place the retrieved passages never name is likely one the corpus cannot answer). Its
# bias is set so that English questions are answered as often as the same questions asked in Arabic (87.2% on
# the 304 pairs): on this dev data no feature of the answerer separates English answerable from unanswerable
# questions well enough to also refuse 90% of the negatives at that rate (65.5% with `names_found`, 65.1% 5-fold;
# 60.5% without it; 63.2% before the questions' Arabic wording in retrieval, 57.2% before `crosslingual_top` too:
# benchmarks/quality.py docstring, seventh, thirteenth, fourteenth and fifteenth rounds).
# same_language and cross_language_e5 were last fitted over the pq index with its own late-interaction weight
# (rag.chain.LATE_WEIGHT_BY_CODEC; eighth round): late interaction through pq codes runs on a narrower scale than
# int8's, hence the larger `late`; same_language and cross_language last over the same index with openvino-int8 and
# the sentence selector's pick as the best sentence (sixteenth and seventeenth rounds).
CONFIDENCE_FEATURES = ("cos", "coverage", "late", "passage_coverage", "dense_top", "dense_margin", "bm25_top",
                       "bm25_margin")
CROSS_LANGUAGE_FEATURES = ("late_top", "coverage", "crosslingual_top", "names_found")
CONFIDENCE_MODELS = {
    "same_language": {"bias": -66.196, "cos": 48.548, "coverage": 1.988, "late": 31.134, "passage_coverage": 2.672,
                      "dense_top": -1.046, "dense_margin": 2.419, "bm25_top": -2.567, "bm25_margin": 1.303},
    "cross_language": {"bias": -40.624, "late_top": 49.194, "coverage": 1.074, "crosslingual_top": 10.09,
                       "names_found": 0.523},
    # Without the cross-language model (RAG_CROSS_LINGUAL=false): the fit before it (eighth round).
    "cross_language_e5": {"bias": -50.483, "late_top": 67.193, "coverage": 1.521},
}


def probability(weights: dict[str, float], features: dict[str, float]) -> float:
    """The logistic model `weights` (a "bias" and one weight per feature it reads) at `features`."""
    z = weights["bias"] + sum(w * features[name] for name, w in weights.items() if name != "bias")
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
