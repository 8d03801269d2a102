"""Token codecs (rag/store/tokens/): round trips on real token vectors, trained parameters saved, loaded and
checksummed, an index written with the default codec, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexIncompatible
from rag.onnx_export import ONNX_MANIFEST
from rag.retrieval import max_sim
from rag.store import IndexStore
from rag.store.tokens import load_codec, training
from rag.store.tokens.int8 import Int8Codec
from rag.store.tokens.pq import PQCodec
from rag.store.tokens.training import graph_checksums, trained_codec

QUESTIONS = ["متى تستأنف المحادثات بين العراق والولايات المتحدة؟", "كم جندي للولايات المتحدة في العراق؟",
             "أين جرت الجولة الأولى من المناقشات بين الولايات المتحدة وإيران؟", "كم بلغ محصول القمح في المغرب؟",
             "When do the talks between Iraq and the United States resume?", "Who commands Iran's Quds Force?"]


@pytest.fixture(scope="module")
def real_tokens(embedder):
    """Exact (float) token vectors of passages the codec was not trained on, and questions' token vectors."""
    passages = ["أعلنت وزارة الصحة في مصر أن حملة التطعيم ضد شلل الأطفال شملت أكثر من 16 مليون طفل في المحافظات.",
                "فاز المنتخب المغربي على نظيره البرتغالي بهدف دون رد في ربع نهائي كأس العالم في قطر.",
                "The central bank raised interest rates by a quarter point to curb inflation, its governor said.",
                "قالت الأمم المتحدة إن الجفاف في القرن الأفريقي يهدد ملايين الأشخاص بالجوع هذا العام."]
    _, _, tokens = embedder.encode_late(passages, [[] for _ in passages])
    questions = ["كم طفلا شملت حملة التطعيم في مصر؟", "من فاز في ربع نهائي كأس العالم؟", "Why did the bank raise rates?",
                 "ما الذي يهدد ملايين الأشخاص في القرن الأفريقي؟"]
    _, q_tokens = embedder.encode_queries_with_tokens(questions)
    return [t.vectors.astype(np.float32) for t in tokens], q_tokens


def test_pq_codec_scores_real_tokens_close_to_exact(embedder, real_tokens):
    passages, questions = real_tokens
    codec = trained_codec("pq", embedder)
    assert codec.name == "pq" and codec.width == 48 and codec.dtype == np.uint8
    errors, exact_late, coded_late = [], [], []
    for q in questions:
        for p in passages:
            codes = codec.encode(p)
            assert codes.shape == (len(p), 48) and codes.dtype == np.uint8
            sims, exact = codec.similarities(q, codes), q @ p.T
            errors.append(np.abs(sims - exact).mean())
            exact_late.append(max_sim(q, p))
            coded_late.append(max_sim(q, similarities=sims))
    assert np.mean(errors) < 0.04  # the study's pq48: ~0.03 on the dev corpus
    assert np.abs(np.array(coded_late) - exact_late).max() < 0.08  # measured 0.06
    # Each question's own passage stays its best match through the codec, as it is with exact vectors.
    n = len(passages)
    assert (np.array(coded_late).reshape(-1, n).argmax(axis=1) == np.arange(n)).all()
    assert (np.array(exact_late).reshape(-1, n).argmax(axis=1) == np.arange(n)).all()


def test_a_broken_codec_fails_the_same_threshold(embedder, real_tokens):
    passages, questions = real_tokens
    good = trained_codec("pq", embedder)
    broken = PQCodec(np.random.default_rng(0).permutation(good.centroids.reshape(-1, good.dsub)).reshape(
        good.centroids.shape))  # the right centroids, each slice given another slice's
    errors = [np.abs(broken.similarities(q, good.encode(p)) - q @ p.T).mean() for q in questions for p in passages]
    assert np.mean(errors) >= 0.04


def test_a_graph_exported_again_gets_codecs_of_its_own(embedder, tmp_path, monkeypatch):
    """The codec cache is keyed by the checksums of the graph and weights the runtime runs, not only by the
    runtime's name: a graph rebuilt in place by another recipe once kept a codec trained on the old one's vectors
    (its codes then agreed 53% with a retrained codec's, not 99%)."""
    (tmp_path / "onnx").mkdir()

    def checksums(xml: str, weights: str, runtime: str = "openvino-int8") -> str:
        files = {"openvino_int8.xml": {"sha256": xml * 64}, "openvino_int8.bin": {"sha256": weights * 64},
                 "model.onnx": {"sha256": "e" * 64}}
        (tmp_path / "onnx" / ONNX_MANIFEST).write_text(json.dumps({"files": files}))
        return graph_checksums(tmp_path, runtime)

    first = checksums("a", "b")
    assert checksums("a", "c") != first and checksums("d", "b") != first and checksums("a", "b") == first
    assert checksums("a", "b", "onnx") != first and checksums("a", "b", "onnx") == checksums("d", "c", "onnx")
    # The real embedder's key reads the checksums of the graph it runs, from its export's manifest.
    assert embedder.runtime_name != "torch"
    real = graph_checksums(Path(embedder.settings.model_dir).expanduser(), embedder.runtime_name)
    assert len(real.split("-")) >= 4  # onnx-export-<format>-<graph>[-<weights>]: the checksums were found
    key = training._key("pq", embedder)
    original = training.graph_checksums
    monkeypatch.setattr(training, "graph_checksums", lambda *args: original(*args) + "-rebuilt")
    assert training._key("pq", embedder) != key


def test_int8_codec_is_within_half_a_step(real_tokens):
    passages, questions = real_tokens
    codec = Int8Codec()
    for p in passages:
        codes = codec.encode(p)
        assert codes.dtype == np.int8
        np.testing.assert_allclose(codec.decode(codes), p, atol=0.5 / 127 + 1e-6)
        np.testing.assert_allclose(codec.similarities(questions[0], codes), questions[0] @ p.T, atol=0.02)


def test_pq_parameters_are_saved_loaded_and_checksummed(embedder, real_tokens, tmp_path):
    codec = trained_codec("pq", embedder)
    codec.save(tmp_path / "codec")
    again = load_codec("pq", tmp_path / "codec")
    np.testing.assert_array_equal(again.centroids, codec.centroids)
    x = np.random.default_rng(1).normal(size=(7, codec.dimension)).astype(np.float32)
    np.testing.assert_array_equal(again.encode(x), codec.encode(x))
    # Training is deterministic: the same text, model and seed give the same centroids (up to the float sums'
    # order under another thread count, which may move a rare tie: the codes agree all but everywhere).
    from rag.store.tokens.training import train_codec

    retrained, tokens = train_codec("pq", embedder), np.vstack(real_tokens[0])
    assert (retrained.encode(tokens) == codec.encode(tokens)).mean() > 0.99
    params = tmp_path / "codec" / "pq.npy"
    changed = np.load(params)
    changed[0, 0, 0] += 0.5
    np.save(params, changed)
    with pytest.raises(IndexIncompatible, match="checksum"):
        load_codec("pq", tmp_path / "codec")
    with pytest.raises(IndexIncompatible, match="cannot be read"):
        load_codec("pq", tmp_path / "nowhere")


def _token_codes(store) -> list[np.ndarray]:
    """The token codes of every live segment of a (segmented) index, as stored (memory-mapped)."""
    return [seg.tokens for seg in store.segments]


def _codec_dir(store) -> Path:
    return store.path / store.manifest.codec_dir


def test_an_unknown_codec_is_refused_with_a_message(bundled_index, tmp_path, cli):
    import shutil

    with pytest.raises(IndexIncompatible, match="unknown token codec 'zstd'.*knows int8, pq"):
        load_codec("zstd")
    shutil.copytree(bundled_index.index_dir, tmp_path / "index")
    manifest = tmp_path / "index" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "token_codec": "zstd"}))
    result = cli("search", "العراق", "--index-dir", tmp_path / "index")
    assert result.exit_code == 1 and "unknown token codec 'zstd'" in result.output
    assert "Traceback" not in result.output


def test_the_default_index_keeps_pq_codes_and_answers_as_int8_does(bundled_index, embedder, tmp_path):
    from rag.chain import Assistant, build_index
    from rag.config import BUNDLED_ARTICLES

    pq = IndexStore.open(bundled_index.index_dir)
    assert pq.manifest.token_codec == "pq" and (_codec_dir(pq) / "pq.npy").is_file()
    codes = _token_codes(pq)
    assert codes and all(c.dtype == np.uint8 and c.shape[1] == 48 for c in codes)
    # The shipped second stage weighs late interaction by codec (rag.chain.LATE_WEIGHT_BY_CODEC); at one weight
    # for both, what differs is the codec alone.
    same_weight = {"rerank_late_weight": 5.0}
    int8_settings = bundled_index.model_copy(update={"index_dir": tmp_path / "int8", "token_codec": "int8", **same_weight})
    build_index([BUNDLED_ARTICLES], int8_settings, embedder)
    int8 = IndexStore.open(int8_settings.index_dir)
    assert int8.manifest.token_codec == "int8"
    assert all(c.dtype == np.int8 for c in _token_codes(int8))
    size = lambda store: sum(c.nbytes for c in _token_codes(store))  # noqa: E731
    assert size(int8) > 7 * size(pq)
    with_pq = Assistant(bundled_index.model_copy(update=same_weight), embedder=embedder)
    with_int8 = Assistant(int8_settings, embedder=embedder)
    for q in QUESTIONS:
        a, b = with_pq.ask(q), with_int8.ask(q)
        assert a.abstained == b.abstained, q
        if not q.isascii():
            assert [c.id for c in a.citations] == [c.id for c in b.citations], q
            assert (a.short_answer and a.short_answer.id) == (b.short_answer and b.short_answer.id), q
        # An English question shares no words with the articles (its sentences are chosen by token cosines across
        # languages alone), and pq moves those cosines: for "Who commands Iran's Quds Force?" int8 quotes a
        # sentence of another article, pq the one naming the commander (tests/test_short_answer.py).


def test_an_int8_index_is_read_and_transcoded_by_the_next_change(bundled_index, embedder, tmp_path):
    """An index written before the codecs (no token_codec in its manifest: int8) still answers; the next
    `rag index` that writes keeps the unchanged articles' tokens without re-embedding, transcoded to pq."""
    from rag.chain import Assistant, build_index
    from rag.config import BUNDLED_ARTICLES

    old = bundled_index.model_copy(update={"index_dir": tmp_path / "index", "token_codec": "int8"})
    build_index([BUNDLED_ARTICLES], old, embedder)
    manifest = old.index_dir / "manifest.json"
    fields = json.loads(manifest.read_text())
    del fields["token_codec"]
    manifest.write_text(json.dumps(fields))
    store = IndexStore.open(old.index_dir)
    assert store.manifest.token_codec == "int8" and store.has_tokens
    before = Assistant(old, embedder=embedder).ask(QUESTIONS[0])
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "note.txt").write_text("خبر قصير\n\nافتتحت البلدية حديقة جديدة في وسط المدينة يوم السبت.\n",
                                    encoding="utf-8")
    new = old.model_copy(update={"token_codec": "pq"})
    report = build_index([BUNDLED_ARTICLES, extra], new, embedder)
    assert report.chunks_embedded == 1  # only the new article was embedded
    store = IndexStore.open(new.index_dir)
    assert store.manifest.token_codec == "pq"
    assert all(c.shape[1] == 48 for c in _token_codes(store))
    after = Assistant(new, embedder=embedder).ask(QUESTIONS[0])
    assert [c.id for c in after.citations] == [c.id for c in before.citations]
