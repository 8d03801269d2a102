"""The Milvus collections of one index, the connection, and how arrays travel in their fields.

Four collections, named after `RAG_MILVUS_COLLECTION` (C):

    C             one row per passage: citation fields (doc_id, start, end), the BM25 text (`lexical`: the
                  project's normalised, stemmed tokens, space-joined; Milvus's BM25 function makes `sparse` of it),
                  the dense vector, and late interaction's data (sentence vectors, token codes and spans)
    C_documents   one row per document: its metadata and content hash (the live version of its passages)
    C_texts       documents' texts in parts of at most TEXT_PART characters, keyed by content hash
    C_terms       each BM25 token's document frequency over the live passages (for IDF-weighted coverage: Milvus
                  ranks by BM25 but does not expose its statistics), kept by the writer, rebuilt by --compact
    C_meta        the index's settings (model, dimension, chunking, runtime, codec), its generation, and the
                  token codec's trained parameters

Milvus refuses a collection without a vector field, so the last four carry a 2-dimensional placeholder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import asdict

import numpy as np

from rag.errors import IndexIncompatible, IndexMissing
from rag.store.local.manifest import Manifest

# A VARCHAR holds at most 65,535 bytes: texts are cut into parts that fit whatever their script (4 bytes a char).
TEXT_PART = 16_000
VARCHAR_MAX = 65_535
BLOB_PART = 60_000  # characters of base64 per meta row (codec parameters)
PLACEHOLDER = [0.0, 0.0]
BM25_K1, BM25_B = 1.5, 0.75  # the local store's (bm25s's defaults), so both backends score alike
# Milvus's own analyzer splits the space-joined tokens back into the project's tokens (they hold no spaces and
# no punctuation: rag.arabic.tokenize) and lower-cases them (they are already).
ANALYZER = {"tokenizer": "standard"}



def _quiet() -> None:
    """pymilvus logs each failed call before raising it (configured when it is imported); the CLI says it once."""
    for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.decorators", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def literal(value) -> str:
    """A string or a list of strings as a Milvus filter literal (Milvus Lite takes no filter templates)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # "..." with \ and \" escaped, as Milvus reads them


def names(collection: str) -> dict[str, str]:
    return {"passages": collection, "documents": f"{collection}_documents", "texts": f"{collection}_texts",
            "terms": f"{collection}_terms", "meta": f"{collection}_meta"}


def row_id(doc_id: str, content_hash: str, ordinal: int) -> int:
    """A passage's primary key: the same article version always gets the same ids (writes are idempotent), a
    new version new ones (63 bits: a collision among ten million passages has odds of about 1 in 10^5)."""
    digest = hashlib.blake2b(f"{doc_id}\0{content_hash}\0{ordinal}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def pack(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def unpack(text: str, dtype, width: int) -> np.ndarray:
    flat = np.frombuffer(base64.b64decode(text), dtype=dtype)
    return flat.reshape(-1, width) if width else flat


def connect(uri: str, token: str = ""):
    """A MilvusClient, or one clear error: unreachable server, Milvus Lite's file held by another process."""
    from pymilvus import MilvusClient

    _quiet()
    try:
        return MilvusClient(uri=uri, token=token, timeout=10)
    except Exception as e:  # noqa: BLE001 - pymilvus raises MilvusException, grpc's errors, or Lite's lock error
        text = str(e)
        if "lock" in text.lower() or ("://" not in uri and "local milvus failed" in text):
            raise IndexMissing(f"the Milvus Lite file {uri} is open in another process (a `rag serve`?); Milvus "
                               "Lite serves one process: stop that one, or use a Milvus server "
                               "(RAG_MILVUS_URI=http://host:19530)") from None
        raise IndexMissing(f"cannot reach Milvus at {uri}: {text.splitlines()[0] if text else type(e).__name__}"
                           ) from None


def _placeholder_schema(client, key: str, fields: list[tuple]):
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False)
    schema.add_field(key, DataType.VARCHAR, is_primary=True, max_length=1024)
    for name, kind, extra in fields:
        schema.add_field(name, kind, **extra)
    schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("placeholder", index_type="FLAT", metric_type="IP")
    return schema, index


def create(client, collection: str, dimension: int) -> None:
    """The five collections, empty (Strong consistency: a reader sees every write that returned)."""
    from pymilvus import DataType, Function, FunctionType

    n = names(collection)
    s = client.create_schema(auto_id=False)
    s.add_field("row", DataType.INT64, is_primary=True)
    s.add_field("doc_id", DataType.VARCHAR, max_length=1024)
    s.add_field("doc_hash", DataType.VARCHAR, max_length=64)
    s.add_field("ordinal", DataType.INT64)
    s.add_field("start", DataType.INT64)
    s.add_field("end", DataType.INT64)
    s.add_field("language", DataType.VARCHAR, max_length=8)  # rag.arabic.detect_language of the passage
    s.add_field("sentences", DataType.VARCHAR, max_length=VARCHAR_MAX)  # JSON [[start, end], ...]
    s.add_field("lexical", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True, enable_match=True,
                analyzer_params=ANALYZER)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
    s.add_field("sentence_vectors", DataType.VARCHAR, max_length=VARCHAR_MAX)  # base64 float16 (n, d)
    s.add_field("tokens", DataType.VARCHAR, max_length=VARCHAR_MAX)  # base64 codes (t, codec width)
    s.add_field("token_spans", DataType.VARCHAR, max_length=VARCHAR_MAX)  # base64 int32 (t, 2)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["lexical"],
                            output_field_names=["sparse"]))
    index = client.prepare_index_params()
    # AUTOINDEX: Milvus picks the ANN index for the deployment (HNSW on a server); Milvus Lite searches exactly.
    index.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    client.create_collection(n["passages"], schema=s, index_params=index, consistency_level="Strong")

    v = DataType.VARCHAR
    docs = [(f, v, {"max_length": 4096}) for f in ("title", "date", "source", "url", "path")]
    docs += [("content_hash", v, {"max_length": 64}), ("chars", DataType.INT64, {}), ("parts", DataType.INT64, {})]
    for name, key, fields in (
            ("documents", "doc_id", docs),
            ("texts", "key", [("doc_id", v, {"max_length": 1024}), ("content_hash", v, {"max_length": 64}),
                              ("part", DataType.INT64, {}), ("text", v, {"max_length": VARCHAR_MAX})]),
            ("terms", "token", [("df", DataType.INT64, {})]),
            ("meta", "key", [("value", v, {"max_length": VARCHAR_MAX})])):
        schema, idx = _placeholder_schema(client, key, fields)
        client.create_collection(n[name], schema=schema, index_params=idx, consistency_level="Strong")


def drop(client, collection: str) -> None:
    for name in names(collection).values():
        if client.has_collection(name):
            client.drop_collection(name)


def exists(client, collection: str) -> bool:
    """Whether the index's collections are there; if so they are loaded (a new process finds them released)."""
    if not all(client.has_collection(name) for name in names(collection).values()):
        return False
    for name in names(collection).values():
        client.load_collection(name)
    return True


def all_rows(client, name: str, fields: list[str], batch_size: int = 1000) -> list[dict]:
    """Every row of a collection (a query iterator read to its end)."""
    out = []
    it = client.query_iterator(name, batch_size=batch_size, filter="", output_fields=fields)
    try:
        while batch := it.next():
            out += batch
    finally:
        it.close()
    return out


# -- the meta collection ----------------------------------------------------------------------------------------
def read_manifest(client, collection: str) -> Manifest | None:
    rows = client.get(names(collection)["meta"], ids=["manifest"], output_fields=["value"])
    if not rows:
        return None
    data = json.loads(rows[0]["value"])
    return Manifest(**{k: v for k, v in data.items() if k in Manifest.__dataclass_fields__})


def write_manifest(client, collection: str, manifest: Manifest) -> None:
    value = json.dumps({k: v for k, v in asdict(manifest).items() if k != "segments"}, ensure_ascii=False)
    client.upsert(names(collection)["meta"], [{"key": "manifest", "value": value, "placeholder": PLACEHOLDER}])


def write_codec_files(client, collection: str, files: dict[str, bytes]) -> None:
    """The codec's trained parameters (rag.store.tokens.codec_files), as base64 in parts."""
    rows = []
    for name, blob in files.items():
        text = base64.b64encode(blob).decode("ascii")
        for n, at in enumerate(range(0, max(len(text), 1), BLOB_PART)):
            rows.append({"key": f"codec:{name}:{n:05d}", "value": text[at:at + BLOB_PART], "placeholder": PLACEHOLDER})
    if rows:
        client.upsert(names(collection)["meta"], rows)


def read_codec_files(client, collection: str) -> dict[str, bytes]:
    rows = client.query(names(collection)["meta"], filter='key like "codec:%"', output_fields=["key", "value"])
    parts: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        _, name, n = r["key"].rsplit(":", 2)
        parts.setdefault(name, []).append((n, r["value"]))
    return {name: base64.b64decode("".join(v for _, v in sorted(p))) for name, p in parts.items()}


def check_settings(manifest: Manifest, where: str, model_id: str | None, runtime: str | None) -> None:
    from rag.runtime import compatible, compatible_runtimes

    if model_id is not None and manifest.model_id != model_id:
        raise IndexIncompatible(f"the index in {where} was built with the model {manifest.model_id!r} "
                                f"({manifest.dimension} dimensions), but {model_id!r} is configured; rebuild it "
                                "with `rag index --rebuild PATH` or set RAG_MILVUS_COLLECTION to another collection")
    if runtime is not None and not compatible(manifest.runtime, runtime):
        raise IndexIncompatible(
            f"the index in {where} was built by the {manifest.runtime} runtime, and the {runtime} runtime's vectors "
            f"are not comparable with its; use RAG_RUNTIME={' or '.join(compatible_runtimes(manifest.runtime))} "
            "(or --runtime), or rebuild it with `rag index --rebuild PATH`")
