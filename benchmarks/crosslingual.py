"""How much lower e5 scores an English question than its Arabic original against the same Arabic corpus.

The drop is why English questions have their own abstention model (rag/confidence.py, CONFIDENCE_MODELS
["cross_language"], fitted on English questions by benchmarks/quality.py; until issue 17 the Arabic model was
shifted by this drop). The English lines are our translations of dev questions from ../shared/eval and of two
questions about the bundled articles.

    .venv/bin/python benchmarks/crosslingual.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import BUNDLED_ARTICLES, get_settings  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.evaluate import prepare  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
PAIRS = [
    ("هل تزول الإصابة بمرض ذبابة الرمال عبر الوقت؟", "Does sandfly infection go away over time?"),
    ("ما هو ناتج تميز الخلايا النباتية؟", "What is the result of plant cell differentiation?"),
    ("ماذا تستطيع خلايا البشرة فعله؟", "What can epidermal cells do?"),
    ("أين يتم استخدام الحمض النووي اليوم؟", "Where is DNA used today?"),
    ("ما هي العوامل التي تؤثر على سرعة الموصلات العصبية؟", "What factors affect nerve conduction velocity?"),
    ("ما الذي استخدمه الكيميائيون لاحقاً؟", "What did chemists use later?"),
    ("كم عدد الصفات التي استخدمها جابر بن حيان لتحليل كل عنصر كلاسيكي؟",
     "How many qualities did Jabir ibn Hayyan use to analyse each classical element?"),
    ("في أي فصل ينخفض معدل مياه النهر؟", "In which season does the river's water level drop?"),
    ("متى ولد جمال خاشقجي؟", "When was Jamal Khashoggi born?"),
    ("في أي مدينة ولد جمال أحمد حمزة خاشقجي؟", "In which city was Jamal Ahmad Hamza Khashoggi born?"),
    ("متى تستأنف المحادثات بين العراق والولايات المتحدة؟", "When do the talks between Iraq and the United States resume?"),
    ("أين جرت الجولة الأولى من المناقشات بين الولايات المتحدة وإيران؟",
     "Where was the first round of talks between the United States and Iran held?"),
]


def main() -> None:
    settings = get_settings()
    assistant = prepare([EVAL / "arcd" / "corpus.jsonl", EVAL / "mlqa_ar_dev" / "corpus.jsonl", BUNDLED_ARTICLES],
                        settings, Embedder(settings))
    drops = []
    for ar, en in PAIRS:
        best = []
        for q in (ar, en):
            scored = assistant.extractive.score_sentences(q, assistant.encode_query(q), assistant.hybrid.search(q, 5))
            best.append((scored[0].cos, scored[0].hit.chunk.doc_id))
        drops.append(best[0][0] - best[1][0])
        print(f"{best[0][0]:.3f} {best[1][0]:.3f}  same passage: {best[0][1] == best[1][1]!s:5}  {en}")
    print(f"cosine drop, Arabic -> English: median {np.median(drops):.3f}, mean {np.mean(drops):.3f}")


if __name__ == "__main__":
    main()
