"""rag.sessions: turns kept in SQLite, bounded by count and age, shared safely between threads."""

import threading
import time

import pytest

from rag.errors import InvalidInput
from rag.sessions import SessionStore, Turn


def turn(i: int, created: float = 0.0) -> Turn:
    return Turn(message=f"q{i}", standalone=f"s{i}", answer=f"a{i}", citations=[f"d:{i}-{i + 1}"], created=created)


def test_turns_come_back_in_order_after_a_reopen(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite")
    for i in range(3):
        store.add("abc", turn(i))
    store.add("other", turn(9))
    store.close()
    reopened = SessionStore(tmp_path / "s.sqlite")
    assert [t.message for t in reopened.history("abc")] == ["q0", "q1", "q2"]
    assert reopened.history("abc")[0].citations == ["d:0-1"]
    assert reopened.history("nobody") == []


def test_a_session_keeps_its_last_turns_only(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite", max_turns=3)
    for i in range(10):
        store.add("abc", turn(i))
    assert [t.message for t in store.history("abc")] == ["q7", "q8", "q9"]
    assert store._db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 3  # deleted, not just hidden


def test_old_turns_are_forgotten(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite", max_age_seconds=60)
    store.add("abc", turn(0, created=time.time() - 3600))
    store.add("xyz", turn(1, created=time.time() - 3600))
    store.add("abc", turn(2))
    assert [t.message for t in store.history("abc")] == ["q2"]
    assert store._db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 1


def test_concurrent_writers(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite", max_turns=1000)

    def write(n):
        for i in range(50):
            store.add(f"s{n}", turn(i))
            store.history(f"s{n}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(store.history(f"s{n}")) == 50 for n in range(8))


def test_ids_are_checked_and_new_ones_unguessable():
    assert SessionStore.check_id("abc_DEF-123") == "abc_DEF-123"
    for bad in ("", "a/b", "x" * 65, "a b"):
        with pytest.raises(InvalidInput):
            SessionStore.check_id(bad)
    ids = {SessionStore.new_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) >= 20 for i in ids)
