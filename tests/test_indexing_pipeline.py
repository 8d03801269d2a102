"""The pipelined indexer (a producer thread chunking and tokenising beside the forward passes) gives exactly the
chunks and vectors of doing one step after the other."""

from __future__ import annotations

import numpy as np

from rag.chain import index_spec
from rag.chunking import chunk_document
from rag.config import BUNDLED_ARTICLES, get_settings
from rag.documents import clean, load_paths
from rag.embeddings import Embedder
from rag.indexer import ChunkEmbeddings, _chunk_inputs, _stored, embed_documents
from rag.store.tokens.training import trained_codec


def embed_chunks(embedder, docs, chunks, embed_title, batch_size, group, codec, first=None):
    """The reference: a window of `first` chunks, then each window of `group` chunks through
    `Embedder.encode_late`, one step after another, each chunk's tokens coded on their own."""
    parts = []
    bounds = [0, *range(first or group, len(chunks), group), len(chunks)]
    for i, j in zip(bounds, bounds[1:]):
        part = chunks[i:j]
        texts, spans, offsets = _chunk_inputs(docs, part, embed_title)
        vecs, sents, tokens = embedder.encode_late(texts, spans, batch_size=batch_size)
        for k in range(len(part)):
            parts += _stored(part[k:k + 1], offsets[k:k + 1], vecs[k:k + 1], sents[k:k + 1], tokens[k:k + 1], codec)
    return ChunkEmbeddings.concat(parts, embedder.dimension)


def test_pipeline_gives_the_same_chunks_and_vectors(embedder: Embedder) -> None:
    settings = get_settings()
    spec = index_spec(settings, embedder)
    docs = {d.id: d for d in load_paths([BUNDLED_ARTICLES]).documents}
    ids = sorted(docs)
    sequential_chunks = [c for d in ids for c in chunk_document(docs[d], clean(docs[d]), embedder.count_tokens,
                                                                 spec.chunking, skip_title=spec.embed_title)]
    codec = trained_codec(spec.token_codec, embedder)  # the shipped codec's codes, compared exactly
    want = embed_chunks(embedder, docs, sequential_chunks, spec.embed_title, spec.batch_size, group=7, codec=codec,
                        first=3)
    seen = []
    # A small window and queue: many windows, and a producer that must wait for the model; the first window
    # smaller still, as the indexer's is.
    chunks, got = embed_documents(spec, docs, ids, progress=lambda done, total: seen.append((done, total)),
                                  window=7, first_window=3, queue_size=1, codec=codec)
    assert chunks == sequential_chunks and len(chunks) > 14
    assert np.array_equal(got.vectors, want.vectors)
    assert np.array_equal(got.sentences, want.sentences)
    assert np.array_equal(got.token_rows, want.token_rows) and np.array_equal(got.token_spans, want.token_spans)
    assert all(np.array_equal(a, b) for a, b in zip(got.tokens, want.tokens))
    assert seen[-1] == (len(chunks), len(chunks)) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_pipeline_raises_what_the_producer_hit(embedder: Embedder) -> None:
    import pytest

    spec = index_spec(get_settings(), embedder)
    docs = {d.id: d for d in load_paths([BUNDLED_ARTICLES]).documents}
    with pytest.raises(KeyError):
        embed_documents(spec, docs, sorted(docs) + ["no-such-document"], window=3)


def test_an_index_job_tokenises_with_the_quick_tokenizer_it_primed(embedder: Embedder) -> None:
    """A job shows the quick tokenizer its documents before chunking them (Embedder.prime_tokenizer): its chunks
    and vectors are those of the full tokenizer's counts and batches, and the full tokenizer (0.9 s of load
    holding the GIL) is never loaded."""
    settings = get_settings()
    docs = {d.id: d for d in load_paths([BUNDLED_ARTICLES]).documents}
    ids = sorted(docs)
    codec = trained_codec(index_spec(settings, embedder).token_codec, embedder)
    reference = Embedder(settings)
    reference.count_tokens(["x"])  # loads the full tokenizer first: the job then counts and cuts with it
    want_chunks, want = embed_documents(index_spec(settings, reference), docs, ids, codec=codec)
    assert reference._primed_quick() is None and reference.runtime._tokenizer is not None  # type: ignore[attr-defined]
    fresh = Embedder(settings)  # nothing loaded yet, as in a new `rag index`
    chunks, got = embed_documents(index_spec(settings, fresh), docs, ids, codec=codec)
    assert fresh._primed_quick() is not None
    assert fresh._tokenizer is None and fresh.runtime._tokenizer is None  # type: ignore[attr-defined]
    assert chunks == want_chunks
    assert np.array_equal(got.vectors, want.vectors) and np.array_equal(got.token_spans, want.token_spans)
    texts = [docs[c.doc_id].text[s.start:s.end] for c in chunks for s in c.sentences]
    assert fresh.count_tokens(texts) == reference.count_tokens(texts)


def test_a_primed_quick_tokenizer_declines_what_would_rebuild_it_too_often(embedder: Embedder) -> None:
    from rag.runtime.tokenizer import QuickTokenizer, load_tokenizer

    onnx_dir = embedder._local_dir() / "onnx"
    quick, full = QuickTokenizer(onnx_dir), load_tokenizer(onnx_dir / "tokenizer.json")
    # Unprimed (a question, the reader's pairs) it keeps nothing: each call builds over its texts' own pieces.
    alone = len(quick.for_texts(["zebra"])[1])
    quick.for_texts(["المحادثات بين العراق والولايات المتحدة"])
    assert len(quick.for_texts(["zebra"])[1]) == alone and not quick.words and quick.built is None
    quick.prime(["passage: المحادثات بين العراق والولايات المتحدة"])
    new = [f"كلمة{i} zebra{i}quartz" for i in range(QuickTokenizer.MAX_REBUILDS + 1)]
    for i, text in enumerate(new):
        encoded = quick.encode_batch([text])
        if i < QuickTokenizer.MAX_REBUILDS:  # each brings new pieces: a rebuild, still exact
            assert encoded == [(e.ids, e.offsets) for e in full.encode_batch([text])]
        else:
            assert encoded is None
    seen = "passage: المحادثات بين العراق"  # only pieces it has: still served
    assert quick.encode_batch([seen]) == [(e.ids, e.offsets) for e in full.encode_batch([seen])]
    assert quick.encode_batch(["<mask> العراق"]) is None
