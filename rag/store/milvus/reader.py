"""A `PassageStore` over the Milvus collections of one index (rag/store/milvus/schema.py).

A passage is live when its `doc_hash` is its document's content hash: a writer inserts a document's new
passages, then switches the document's row to the new hash, then deletes the old passages, so a reader never
sees two versions of one article, and a writer that died half-way leaves passages no document claims (filtered
here, deleted by the next write of that document or by `rag index --compact`). Document rows are read once per
reader, so one reader answers from the versions it first saw, as a local snapshot does.

Dense and BM25 search run in Milvus (BM25 by its own function over the `lexical` field); the project's fusion,
second stage and abstention run on the candidates with the sentence vectors and token codes the passages carry,
fetched for the few rows the second stage reads.
"""

from __future__ import annotations

import json

import numpy as np

from rag.store.local.lexical import idf as bm25_idf
from rag.store.milvus import schema
from rag.store.tokens import codec_from_files
from rag.types import Chunk, Document, Span

LIGHT = ["row", "doc_id", "doc_hash", "ordinal", "start", "end", "language", "sentences"]
HEAVY = ["row", "sentence_vectors", "tokens", "token_spans"]
DOCUMENT = ["doc_id", "title", "date", "source", "url", "path", "content_hash", "chars", "parts"]
SLACK = 8  # extra candidates asked for, for the passages a half-done write left behind


class MilvusStore:
    def __init__(self, client, collection: str, where: str, manifest, codec_files: dict[str, bytes]):
        self.client, self.collection, self.path = client, collection, where
        self.names = schema.names(collection)
        self.manifest = manifest
        self.version = f"gen-{manifest.generation}"
        self.has_tokens = True
        self.codec = codec_from_files(manifest.token_codec, codec_files)
        self._headers: dict[str, dict | None] = {}
        self._texts: dict[str, str] = {}
        self._chunks: dict[int, Chunk] = {}
        self._heavy: dict[int, dict] = {}
        self._wanted: list[int] = []  # rows whose heavy fields the second stage will read next
        self._df: dict[str, int] = {}
        self._n: int | None = None

    # -- documents -------------------------------------------------------------------------------------------
    def _count(self, name: str) -> int:
        rows = self.client.query(self.names[name], filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def __len__(self) -> int:
        if self._n is None:
            self._n = self._count("passages")
        return self._n

    def document_count(self) -> int:
        return self._count("documents")

    def _header(self, doc_id: str) -> dict | None:
        if doc_id not in self._headers:
            self._load_headers([doc_id])
        return self._headers[doc_id]

    def _load_headers(self, doc_ids: list[str]) -> None:
        missing = [d for d in dict.fromkeys(doc_ids) if d not in self._headers]
        if missing:
            found = {r["doc_id"]: r for r in self.client.get(self.names["documents"], ids=missing,
                                                                output_fields=DOCUMENT)}
            for d in missing:
                self._headers[d] = found.get(d)

    def _text(self, header: dict) -> str:
        self._load_texts([header])
        return self._texts[header["content_hash"]]

    def _load_texts(self, headers: list[dict]) -> None:
        """The texts of these documents' versions, by primary key, in one round trip."""
        keys = list(dict.fromkeys(f"{h['content_hash']}:{n}" for h in headers if h["content_hash"] not in self._texts
                                  for n in range(h["parts"])))
        if not keys:
            return
        parts: dict[str, list[tuple[int, str]]] = {}
        for at in range(0, len(keys), 1000):
            for r in self.client.get(self.names["texts"], ids=keys[at:at + 1000],
                                     output_fields=["content_hash", "part", "text"]):
                parts.setdefault(r["content_hash"], []).append((r["part"], r["text"]))
        for h in headers:
            self._texts.setdefault(h["content_hash"], "".join(t for _, t in sorted(parts.get(h["content_hash"], []))))

    def _document(self, header: dict) -> Document:
        return Document(id=header["doc_id"], text=self._text(header), title=header["title"], date=header["date"],
                        source=header["source"], url=header["url"], path=header["path"],
                        content_hash=header["content_hash"])

    def document(self, doc_id: str) -> Document | None:
        header = self._header(doc_id)
        return self._document(header) if header else None

    def documents(self) -> list[Document]:
        for header in schema.all_rows(self.client, self.names["documents"], DOCUMENT):
            self._headers[header["doc_id"]] = header
        headers = [h for h in self._headers.values() if h]
        self._load_texts(headers)
        return sorted((self._document(h) for h in headers), key=lambda d: d.id)

    # -- passages --------------------------------------------------------------------------------------------
    def _live(self, rows: list[dict]) -> list[dict]:
        """The hits whose document still holds their version; their chunks cached."""
        self._load_headers([r["doc_id"] for r in rows])
        self._load_texts([h for h in (self._headers.get(r["doc_id"]) for r in rows) if h is not None])
        live = []
        for r in rows:
            header = self._headers.get(r["doc_id"])
            if header is None or header["content_hash"] != r["doc_hash"]:
                continue
            if r["row"] not in self._chunks:
                text = self._text(header)
                self._chunks[r["row"]] = Chunk(
                    doc_id=r["doc_id"], start=r["start"], end=r["end"], text=text[r["start"]:r["end"]],
                    ordinal=r["ordinal"], sentences=tuple(Span(a, b) for a, b in json.loads(r["sentences"])))
            live.append(r)
        return live

    def chunks(self, rows: list[int]) -> list[Chunk]:
        missing = [r for r in dict.fromkeys(rows) if r not in self._chunks]
        if missing:
            self._live(self.client.get(self.names["passages"], ids=missing, output_fields=LIGHT))
        if len(rows) <= 64:
            self._wanted = [r for r in dict.fromkeys(rows) if r not in self._heavy]
        return [self._chunks[r] for r in rows]

    def all_chunks(self) -> list[tuple[int, Chunk]]:
        live = self._live(schema.all_rows(self.client, self.names["passages"], LIGHT))
        return sorted(((r["row"], self._chunks[r["row"]]) for r in live), key=lambda rc: (rc[1].doc_id, rc[1].ordinal))

    def _heavy_fields(self, row: int) -> dict:
        if row not in self._heavy:
            rows = list(dict.fromkeys([row] + [r for r in self._wanted if r not in self._heavy]))
            for r in self.client.get(self.names["passages"], ids=rows, output_fields=HEAVY):
                self._heavy[r["row"]] = r
            self._wanted = []
        return self._heavy[row]

    def chunk_sentence_vectors(self, row: int) -> np.ndarray:
        return schema.unpack(self._heavy_fields(row)["sentence_vectors"], np.float16,
                             self.manifest.dimension).astype(np.float32)

    def stored_token_vectors(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        heavy = self._heavy_fields(row)
        width = self.codec.width or self.manifest.dimension
        return (schema.unpack(heavy["tokens"], self.codec.dtype, width),
                schema.unpack(heavy["token_spans"], np.int32, 2))

    def token_similarities(self, row: int, query_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes, spans = self.stored_token_vectors(row)
        return self.codec.similarities(query_tokens, codes), spans

    def row_vectors(self, rows: list[int]) -> np.ndarray:
        if not rows:
            return np.zeros((0, self.manifest.dimension), np.float32)
        found = {r["row"]: r["dense"] for r in self.client.get(self.names["passages"], ids=list(rows),
                                                               output_fields=["row", "dense"])}
        return np.asarray([found[r] for r in rows], np.float32)

    @property
    def tokens(self):
        return True

    # -- search ----------------------------------------------------------------------------------------------
    def _search(self, data, field: str, k: int, score) -> tuple[list[float], list[int]]:
        if k <= 0:
            return [], []
        result = self.client.search(self.names["passages"], data=[data], anns_field=field, limit=k + SLACK,
                                    output_fields=LIGHT)[0]
        return self._live_hits(result, score, k)

    def _live_hits(self, result, score, k: int | None = None) -> tuple[list[float], list[int]]:
        """(scores, rows) of the live hits of one Milvus search, best first, at most `k`."""
        by_row = {h["entity"].get("row", h.get("row")): h for h in result}
        live = self._live([dict(h["entity"], row=row) for row, h in by_row.items()])[:k]
        return [score(by_row[r["row"]]["distance"]) for r in live], [r["row"] for r in live]

    def dense_search(self, query: np.ndarray, k: int) -> tuple[list[float], list[int]]:
        q = np.ascontiguousarray(query, np.float32).reshape(-1).tolist()
        return self._search(q, "dense", k, float)

    def lexical_search(self, tokens: list[str], k: int) -> tuple[list[float], list[int]]:
        if not tokens:
            return [], []
        # A BM25 score is never negative; Milvus Lite returns it negated (smaller = better), a server as is. Milvus
        # scores as Lucene does, with a (k1 + 1) factor bm25s (the local store, and the scale the abstention's
        # confidence was fitted on) leaves out: divided here, the scores are the local store's.
        return self._search(" ".join(tokens), "sparse", k, lambda d: abs(float(d)) / (schema.BM25_K1 + 1))

    def hybrid_search(self, query: np.ndarray, tokens: list[str], k: int, rrf_k: int,
                      language: str | None = None) -> tuple[list[float], list[int]]:
        """Dense and BM25 fused by Milvus's own `hybrid_search` with its RRFRanker: the same reciprocal-rank
        fusion as the project's `fusion="rrf"`, in one round trip; BM25's candidates only in `language`."""
        from pymilvus import AnnSearchRequest, RRFRanker

        q = np.ascontiguousarray(query, np.float32).reshape(-1).tolist()
        requests = [AnnSearchRequest(data=[q], anns_field="dense", param={}, limit=k)]
        if tokens:
            requests.append(AnnSearchRequest(data=[" ".join(tokens)], anns_field="sparse", param={}, limit=k,
                                             expr=f"language == {schema.literal(language)}" if language else None))
        result = self.client.hybrid_search(self.names["passages"], requests, RRFRanker(rrf_k), limit=2 * k + SLACK,
                                           output_fields=LIGHT)[0]
        return self._live_hits(result, float)

    def idf(self, token: str) -> float:
        return self.idfs([token])[token]

    def idfs(self, tokens) -> dict[str, float]:
        """BM25's IDF of each token over the live passages (as of the last commit), from the writer's document
        frequencies (C_terms), in one round trip for the tokens not seen yet."""
        missing = [t for t in dict.fromkeys(tokens) if t not in self._df]
        if missing:
            asked = [t for t in missing if t]  # "" (the IDF of a term no passage holds) is no row
            found = {r["token"]: r["df"] for r in self.client.get(self.names["terms"], ids=asked,
                                                                  output_fields=["token", "df"])} if asked else {}
            for t in missing:
                self._df[t] = int(found.get(t, 0))
        n = max(1, self.manifest.chunks)
        return {t: bm25_idf(n, self._df[t]) for t in tokens}

    def warm(self) -> None:
        len(self)

    def close(self) -> None:
        pass  # the client is the backend's, shared by its readers and writes
