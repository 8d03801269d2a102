"""A real indexing process for the crash and concurrency tests: loads the model once, then applies a list of
changes to the index in RAG_INDEX_DIR through the same functions `rag index`, `rag rm` and `rag index --compact`
call, printing "ready" once loaded and "done N" after each change returns (so the test knows which commits
landed before it killed the process).

    python tests/index_driver.py CORPUS_DIR STEPS_JSON

STEPS_JSON: [["add", id, marker], ["rm", id], ["compact"], ...]; "add" (re)writes CORPUS_DIR/<id>.txt with a short
article holding `marker` and indexes that file (a new id is an add, an existing one a replace).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rag.chain import index_spec
from rag.config import get_settings
from rag.embeddings import Embedder
from rag.indexer import compact_index, index_paths, remove_documents
from rag.store import MergePolicy


def article(doc_id: str, marker: str) -> str:
    return (f"خبر {doc_id}\nأعلنت الوزارة في بيان {marker} عن افتتاح مشروع جديد للمياه في المدينة. "
            f"وقال المتحدث إن المشروع {doc_id} يخدم آلاف السكان.\n")


def main() -> None:
    corpus, steps = Path(sys.argv[1]), json.loads(sys.argv[2])
    settings = get_settings()
    embedder = Embedder(settings)
    embedder.encode_queries(["warm-up"])
    spec = index_spec(settings, embedder)
    spec = type(spec)(**{**spec.__dict__, "merge_policy": MergePolicy(min_segments=3, factor=4, floor_rows=2)})
    print("ready", flush=True)
    for n, step in enumerate(steps, start=1):
        if step[0] == "add":
            path = corpus / f"{step[1]}.txt"
            path.write_text(article(step[1], step[2]), encoding="utf-8")
            index_paths([path], settings.index_dir, spec)
        elif step[0] == "rm":
            remove_documents(settings.index_dir, [step[1]])
            (corpus / f"{step[1]}.txt").unlink(missing_ok=True)
        elif step[0] == "compact":
            compact_index(settings.index_dir)
        print(f"done {n}", flush=True)


if __name__ == "__main__":
    main()
