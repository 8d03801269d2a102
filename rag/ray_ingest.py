"""`rag index PATH... --ray ADDRESS`: read, chunk and embed a large corpus on Ray, then commit as `rag index` does.

The work is the single-process path's, spread out: the driver lists the files; Ray tasks read and parse them
(`rag.documents.load_file`, one file a task); the driver decides what changed against the index, as
`index_paths` does; an actor pool (one model per actor, Ray Data's `map_batches` with an `ActorPoolStrategy`)
chunks and embeds the changed documents in groups with the same `embed_documents`; the driver commits what
they return to the configured store. So the chunks and ids are the same as without Ray, and the vectors are
those of the same model over the same texts (batched differently, so equal to float rounding).

`ADDRESS` is `local` (start a Ray on this machine with `RAG_RAY_WORKERS` CPUs and stop it after) or a
running cluster's address (`ray://host:10001`, or `auto` inside a cluster's node). Ray is an optional
dependency: `pip install -e '.[distributed]'`.
"""

from __future__ import annotations

import io
import json
import logging
import socket
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.documents import LoadReport, gather, list_files, load_file
from rag.errors import InvalidInput, ModelUnavailable
from rag.types import Chunk, Document, Skipped, Span

DOCUMENTS_PER_TASK = 8  # documents one actor call chunks and embeds (a few hundred passages at most)


def _ray():
    try:
        import ray
    except ImportError:
        raise ModelUnavailable("`--ray` needs Ray: pip install -e '.[distributed]'") from None
    return ray


class RayIngest:
    """The two steps of `index_paths` that cost: loading files and embedding, run on a Ray cluster."""

    def __init__(self, settings: Settings, address: str, workers: int = 2):
        if workers < 1:
            raise InvalidInput(f"RAG_RAY_WORKERS must be at least 1, not {workers}")
        self.settings, self.address, self.workers = settings, address, workers
        self._started = False

    def __enter__(self) -> "RayIngest":
        ray = _ray()
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False  # the CLI shows its own
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.WARNING)
        if not ray.is_initialized():
            quiet = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            _check_reachable(self.address)
            try:
                if self.address == "local":
                    ray.init(num_cpus=self.workers, **quiet)
                else:
                    ray.init(address=self.address, **quiet)
            except Exception as e:  # ConnectionError, or Ray's own errors for a bad address
                raise InvalidInput(f"could not reach Ray at {self.address!r}: {str(e).splitlines()[0]}") from None
            self._started = True
        return self

    def __exit__(self, *exc) -> None:
        if self._started:
            _ray().shutdown()

    # -- loading ---------------------------------------------------------------------------------------------
    def load(self, paths: list[Path]) -> LoadReport:
        ray = _ray()
        files, skipped = list_files(paths)
        read = ray.remote(num_cpus=1)(_load_encoded)
        loaded = ray.get([read.remote(str(f)) for f in files])
        return gather(files, [_decode_loaded(x) for x in loaded], skipped)

    # -- embedding -------------------------------------------------------------------------------------------
    def embed(self, spec, docs: dict[str, Document], doc_ids: list[str], progress=None, codec=None, **_):
        """`embed_documents`'s contract: the chunks of `doc_ids` in that order, with their embeddings."""
        from ray.data import ActorPoolStrategy, from_items

        from rag.store.embedded import ChunkEmbeddings
        from rag.store.tokens import codec_files

        dim = spec.embedder.dimension
        if not doc_ids:
            return [], ChunkEmbeddings.empty(dim)
        groups = [doc_ids[i:i + DOCUMENTS_PER_TASK] for i in range(0, len(doc_ids), DOCUMENTS_PER_TASK)]
        items = [{"group": n, "documents": json.dumps([asdict(docs[d]) for d in g], ensure_ascii=False)}
                 for n, g in enumerate(groups)]
        settings = self.settings.model_dump(mode="json")
        codec_name = codec.name if codec is not None else "int8"
        dataset = from_items(items).map_batches(
            _EmbedActor, fn_constructor_kwargs={"settings": settings, "codec": codec_name,
                                                "parameters": codec_files(codec)}, batch_size=1,
            compute=ActorPoolStrategy(size=min(self.workers, len(groups))), num_cpus=1)
        results: dict[int, tuple[list[Chunk], ChunkEmbeddings]] = {}
        for batch in dataset.iter_batches(batch_size=1, batch_format="numpy"):
            for n, blob in zip(batch["group"], batch["payload"]):
                results[int(n)] = _decode_embedded(bytes(blob))
            if progress:  # in documents: how many passages the rest will make is known only once chunked
                progress(sum(len(groups[n]) for n in results), len(doc_ids))
        chunks = [c for n in range(len(groups)) for c in results[n][0]]
        return chunks, ChunkEmbeddings.concat([results[n][1] for n in range(len(groups))], dim)


class _EmbedActor:
    """One model per actor; each call chunks and embeds a group of documents with `embed_documents`."""

    def __init__(self, settings: dict, codec: str, parameters: dict[str, bytes]):
        from rag.chain import index_spec
        from rag.embeddings import Embedder
        from rag.store.tokens import codec_from_files

        s = Settings(**settings)
        self.spec = index_spec(s, Embedder(s))
        self.codec = codec_from_files(codec, parameters)  # the index's own codec parameters, as the driver sent them

    def __call__(self, batch: dict) -> dict:
        from rag.indexer import embed_documents

        out = []
        for documents in batch["documents"]:
            docs = {d["id"]: Document(**d) for d in json.loads(str(documents))}
            chunks, emb = embed_documents(self.spec, docs, list(docs), codec=self.codec)
            out.append(_encode_embedded(chunks, emb))
        return {"group": batch["group"], "payload": np.array(out, dtype=object)}


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds with one line when a cluster's address does not answer (ray.init retries for minutes)."""
    if address in ("local", "auto"):
        return
    hostport = address.removeprefix("ray://").rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"not a Ray address: {address!r} (use local, auto, host:port or ray://host:port)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise InvalidInput(f"could not reach Ray at {address}: {e.strerror or e}") from None


# -- what crosses between Ray workers: JSON and .npz, never pickle of our own types ------------------------
def _load_encoded(path: str) -> str:
    docs, skipped = load_file(Path(path))
    return json.dumps({"documents": [[asdict(d), line] for d, line in docs],
                       "skipped": [asdict(s) for s in skipped]}, ensure_ascii=False)


def _decode_loaded(payload: str) -> tuple[list[tuple[Document, int | None]], list[Skipped]]:
    data = json.loads(payload)
    return ([(Document(**d), line) for d, line in data["documents"]], [Skipped(**s) for s in data["skipped"]])


def _encode_embedded(chunks: list[Chunk], emb) -> bytes:
    meta = [{"doc_id": c.doc_id, "start": c.start, "end": c.end, "ordinal": c.ordinal, "text": c.text,
             "sentences": [[s.start, s.end] for s in c.sentences]} for c in chunks]
    tokens = np.concatenate(emb.tokens) if emb.tokens else np.zeros((0, emb.vectors.shape[1]), np.int8)
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), np.uint8),
             vectors=emb.vectors, sentences=emb.sentences, tokens=tokens, token_spans=emb.token_spans,
             token_rows=emb.token_rows)
    return buf.getvalue()


def _decode_embedded(blob: bytes):
    from rag.store.embedded import ChunkEmbeddings

    z = np.load(io.BytesIO(blob), allow_pickle=False)
    meta = json.loads(z["meta"].tobytes().decode())
    chunks = [Chunk(doc_id=m["doc_id"], start=m["start"], end=m["end"], text=m["text"], ordinal=m["ordinal"],
                    sentences=tuple(Span(a, b) for a, b in m["sentences"])) for m in meta]
    return chunks, ChunkEmbeddings(z["vectors"], z["sentences"], [z["tokens"]], z["token_spans"], z["token_rows"])


def on_ray(spec, ingest: RayIngest):
    """`spec` with its loading and embedding done by `ingest` (rag.indexer.index_paths reads both from it)."""
    return replace(spec, load=ingest.load, embed=ingest.embed)
