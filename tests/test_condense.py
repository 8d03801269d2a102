"""rag.condense: which chat messages are follow-ups, and the standalone query made from them."""

import pytest

from rag.condense import condense, content_words, refers_back

PREVIOUS = "متى تستأنف المحادثات بين العراق والولايات المتحدة؟"


@pytest.mark.parametrize("message,reason", [
    ("ومن أعلن ذلك؟", "refers back"),    # demonstrative, glued conjunction
    ("وهل هو متأكد؟", "refers back"),
    ("ومتى؟", "short"),                  # no content word at all
    ("and when did that happen?", "refers back"),
    ("Where did the talks between them take place?", "refers back"),
])
def test_follow_ups_get_the_previous_question_s_content_words(message, reason):
    c = condense(message, [PREVIOUS])
    assert c.rewritten and c.reason == reason
    assert c.query.startswith(message.rstrip("?؟"))
    assert all(w in c.query for w in ("تستأنف", "المحادثات", "العراق"))
    assert "متى" not in c.query.removeprefix(message.rstrip("?؟"))  # question words are not content
    assert c.query[-1] == message[-1]  # the message's own question mark stays at the end


@pytest.mark.parametrize("message", [
    "ما اسم القاعدة الجوية التي أصابتها الصواريخ في محافظة الأنبار؟",  # self-contained
    "ما عاصمة أستراليا؟",  # short, but a new topic: two content words and nothing pointing back
    "What did Araghchi say about the missiles that Iran has?",  # "that" as a conjunction
    "ما هي عاصمة منغوليا؟",  # هي after ما is the copula of a new question
    "ومن هو قائد فيلق القدس؟",
])
def test_standalone_messages_are_kept(message):
    assert condense(message, [PREVIOUS]).query == message and not condense(message, [PREVIOUS]).rewritten


def test_no_history_means_nothing_to_lean_on():
    assert condense("  ومن أعلن ذلك؟ ", []).query == "ومن أعلن ذلك؟"


def test_a_chain_of_follow_ups_keeps_the_topic_and_stays_bounded():
    history = [PREVIOUS]
    for message in ["ومن أعلن ذلك؟", "ومتى حدث ذلك؟", "ولماذا؟"] * 5:
        history.append(condense(message, history).query)
    assert "المحادثات" in history[-1] and len(history[-1].split()) < 40


def test_reference_words_and_content_words():
    assert refers_back("فهل هذه هي الحقيقة") and refers_back("Did THEY agree?")
    assert not refers_back("من رفض لقاء قائد فيلق القدس؟")
    assert not refers_back("ما هو موقف ترمب؟") and refers_back("وهل هو متأكد؟") and refers_back("ما رأيه هو؟")
    assert content_words("متى تستأنف المحادثات بين العراق والعراق؟") == ["تستأنف", "المحادثات", "العراق"]
