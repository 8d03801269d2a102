"""How a change is written into the Milvus collections, one document at a time, in the order that keeps every
document whole for readers (rag/store/milvus/reader.py): new passages, new text, then the document's row (the
switch), then the old version's passages and text deleted. Rows are keyed by (doc id, content hash, ordinal), so
writing the same version twice writes the same rows (an upsert), never a duplicate.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from rag.arabic import detect_language, tokenize
from rag.chunking import embedding_text
from rag.errors import InvalidInput
from rag.store.embedded import ChunkEmbeddings
from rag.store.milvus import schema
from rag.types import Chunk, Document

BATCH = 128  # rows per insert: Milvus's message size limit is 64 MB, a passage row is ~40 KB with its late data


def _checked(value: str, what: str, doc_id: str) -> str:
    if len(value.encode()) > schema.VARCHAR_MAX:
        raise InvalidInput(f"{doc_id}: a passage's {what} is {len(value.encode()):,} bytes, over Milvus's VARCHAR "
                           f"limit of {schema.VARCHAR_MAX:,}; index it with smaller chunks (RAG_CHUNK_TOKENS)")
    return value


def passage_rows(docs: dict[str, Document], chunks: list[Chunk], emb: ChunkEmbeddings, embed_title: bool) -> list[dict]:
    codes = np.concatenate(emb.tokens) if emb.tokens else np.zeros((0, 0), np.uint8)
    rows, first_sentence = [], 0
    for i, c in enumerate(chunks):
        doc = docs[c.doc_id]
        n_sent = len(c.sentences)
        a, b = int(emb.token_rows[i]), int(emb.token_rows[i + 1])
        rows.append({
            "row": schema.row_id(c.doc_id, doc.content_hash, c.ordinal), "doc_id": c.doc_id,
            "doc_hash": doc.content_hash, "ordinal": c.ordinal, "start": c.start, "end": c.end,
            "language": detect_language(c.text), "sentences": json.dumps([[s.start, s.end] for s in c.sentences]),
            "lexical": _checked(" ".join(tokenize(embedding_text(doc, c, embed_title)[0])), "BM25 text", c.doc_id),
            "dense": emb.vectors[i].astype(np.float32).tolist(),
            "sentence_vectors": _checked(schema.pack(emb.sentences[first_sentence:first_sentence + n_sent]
                                                     .astype(np.float16)), "sentence vectors", c.doc_id),
            "tokens": _checked(schema.pack(codes[a:b]), "token codes", c.doc_id),
            "token_spans": schema.pack(emb.token_spans[a:b].astype(np.int32)),
        })
        first_sentence += n_sent
    return rows


def text_rows(doc: Document) -> list[dict]:
    parts = [doc.text[at:at + schema.TEXT_PART] for at in range(0, max(len(doc.text), 1), schema.TEXT_PART)]
    return [{"key": f"{doc.content_hash}:{n}", "doc_id": doc.id, "content_hash": doc.content_hash, "part": n,
             "text": part, "placeholder": schema.PLACEHOLDER} for n, part in enumerate(parts)]


def document_row(doc: Document) -> dict:
    return {"doc_id": doc.id, "title": doc.title, "date": doc.date, "source": doc.source, "url": doc.url,
            "path": doc.path, "content_hash": doc.content_hash, "chars": len(doc.text),
            "parts": len(text_rows(doc)), "placeholder": schema.PLACEHOLDER}


def in_batches(client, collection: str, rows: list[dict]) -> None:
    for at in range(0, len(rows), BATCH):
        client.upsert(collection, rows[at:at + BATCH])


def write_documents(client, collection: str, docs: dict[str, Document], chunks: list[Chunk], emb: ChunkEmbeddings,
                    embed_title: bool, switch: bool = True) -> Counter:
    """Write the new versions of `docs` (their chunks and embeddings), each made live by its document row
    (without `switch`, the passages alone: a copy writes the rows of documents once all their passages are in).
    Returns the document frequencies their passages add (`apply_terms`)."""
    n = schema.names(collection)
    rows = passage_rows(docs, chunks, emb, embed_title)
    terms = Counter(t for row in rows for t in set(row["lexical"].split()))
    if not switch:
        in_batches(client, n["passages"], rows)
        return terms
    by_doc: dict[str, list[dict]] = {}
    for row in rows:
        by_doc.setdefault(row["doc_id"], []).append(row)
    for doc_id in sorted(docs):
        doc = docs[doc_id]
        in_batches(client, n["passages"], by_doc.get(doc_id, []))
        in_batches(client, n["texts"], text_rows(doc))
        client.upsert(n["documents"], [document_row(doc)])  # the switch: readers now see this version
        drop_versions(client, collection, [doc_id], keep=doc.content_hash)
    return terms


def drop_versions(client, collection: str, doc_ids: list[str], keep: str | None = None) -> None:
    """Delete the passages and texts of `doc_ids` but those of version `keep` (None: every version)."""
    n = schema.names(collection)
    where = f"doc_id in {schema.literal(doc_ids)}"
    client.delete(n["passages"], filter=where + (f" and doc_hash != {schema.literal(keep)}" if keep else ""))
    client.delete(n["texts"], filter=where + (f" and content_hash != {schema.literal(keep)}" if keep else ""))


def remove_documents(client, collection: str, doc_ids: list[str]) -> None:
    """Their document rows first (readers stop seeing them), then everything else they had."""
    n = schema.names(collection)
    client.delete(n["documents"], ids=list(doc_ids))
    drop_versions(client, collection, doc_ids)


def orphans(client, collection: str) -> tuple[list[int], list[str]]:
    """Passages and texts no document's live version claims (left by a writer that died half-way)."""
    n = schema.names(collection)
    live = {r["doc_id"]: r["content_hash"] for r in schema.all_rows(client, n["documents"], ["doc_id", "content_hash"])}
    rows = [r["row"] for r in schema.all_rows(client, n["passages"], ["row", "doc_id", "doc_hash"])
            if live.get(r["doc_id"]) != r["doc_hash"]]
    texts = [r["key"] for r in schema.all_rows(client, n["texts"], ["key", "doc_id", "content_hash"])
             if live.get(r["doc_id"]) != r["content_hash"]]
    return rows, texts


# -- document frequencies (the C_terms collection) ----------------------------------------------------------------
def live_terms(client, collection: str, doc_ids: list[str] | None = None) -> Counter:
    """The document frequencies the live versions of `doc_ids` (None: every document) contribute."""
    n = schema.names(collection)
    if doc_ids is not None and not doc_ids:
        return Counter()
    if doc_ids is None:
        live = {r["doc_id"]: r["content_hash"] for r in schema.all_rows(client, n["documents"], ["doc_id", "content_hash"])}
        rows = schema.all_rows(client, n["passages"], ["doc_id", "doc_hash", "lexical"])
    else:
        live = {r["doc_id"]: r["content_hash"]
                for r in client.get(n["documents"], ids=list(doc_ids), output_fields=["doc_id", "content_hash"])}
        rows = client.query(n["passages"], filter=f"doc_id in {schema.literal(doc_ids)}",
                            output_fields=["doc_id", "doc_hash", "lexical"])
    return Counter(t for r in rows if live.get(r["doc_id"]) == r["doc_hash"] for t in set(r["lexical"].split()))


def apply_terms(client, collection: str, added: Counter, removed: Counter = Counter()) -> None:
    """Add `added` to the stored document frequencies and take `removed` off (a token at 0 is deleted)."""
    name = schema.names(collection)["terms"]
    delta = {t: added.get(t, 0) - removed.get(t, 0) for t in set(added) | set(removed)}
    tokens = [t for t, d in delta.items() if d]
    for at in range(0, len(tokens), 1000):
        batch = tokens[at:at + 1000]
        stored = {r["token"]: r["df"] for r in client.get(name, ids=batch, output_fields=["token", "df"])}
        counts = {t: stored.get(t, 0) + delta[t] for t in batch}
        keep = [{"token": t, "df": c, "placeholder": schema.PLACEHOLDER} for t, c in counts.items() if c > 0]
        gone = [t for t, c in counts.items() if c <= 0 and t in stored]
        if keep:
            client.upsert(name, keep)
        if gone:
            client.delete(name, ids=gone)


def stored_terms(client, collection: str) -> Counter:
    return Counter({r["token"]: r["df"] for r in schema.all_rows(client, schema.names(collection)["terms"], ["token", "df"])})


def term_drift(client, collection: str) -> tuple[Counter, Counter]:
    """The document frequencies recounted from the live passages and the stored ones, for the tokens where
    they differ (both empty when the stored ones are right)."""
    live, stored = live_terms(client, collection), stored_terms(client, collection)
    drift = {t for t in set(live) | set(stored) if live.get(t, 0) != stored.get(t, 0)}
    return Counter({t: live[t] for t in drift if live.get(t)}), Counter({t: stored[t] for t in drift if stored.get(t)})
