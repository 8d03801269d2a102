"""Chat sessions: each session's turns in one SQLite file, so a restarted server still knows them.

Bounded twice: a session keeps its last `max_turns` turns, and a turn older than `max_age_seconds` is
forgotten (and deleted on the next write), so the file cannot grow without limit. Thread-safe: the API
answers from a threadpool; one connection, one lock (the writes are tiny).
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import InvalidInput

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL,
    created REAL NOT NULL,
    message TEXT NOT NULL,         -- what the user wrote
    standalone TEXT NOT NULL,      -- what was retrieved with (rag.condense)
    answer TEXT NOT NULL,
    citations TEXT NOT NULL        -- JSON list of citation ids
);
CREATE INDEX IF NOT EXISTS turns_session ON turns(session_id, created);
"""


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """The sessions' SQLite file (the feedback table lives there too), opened for one lock-guarded connection
    shared by the API's threads, with `schema` created if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")  # durable appends without rewriting the file
    db.executescript(schema)
    return db


@dataclass(frozen=True)
class Turn:
    message: str
    standalone: str
    answer: str
    citations: list[str] = field(default_factory=list)
    created: float = 0.0


class SessionStore:
    def __init__(self, path: Path, max_turns: int = 20, max_age_seconds: float = 86_400):
        if max_turns < 1 or max_age_seconds <= 0:
            raise ValueError("max_turns must be at least 1 and max_age_seconds positive")
        self.path, self.max_turns, self.max_age = path, max_turns, max_age_seconds
        self._lock = threading.Lock()
        self._db = open_database(path, _SCHEMA)

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(16)  # unguessable: a session id is all that guards its history

    @staticmethod
    def check_id(session_id: str) -> str:
        if not SESSION_ID.match(session_id):
            raise InvalidInput("a session id is 1-64 characters of letters, digits, '_' and '-'")
        return session_id

    def history(self, session_id: str) -> list[Turn]:
        """The session's live turns, oldest first (empty for an unknown or expired session)."""
        cutoff = time.time() - self.max_age
        with self._lock:
            rows = self._db.execute(
                "SELECT message, standalone, answer, citations, created FROM turns "
                "WHERE session_id = ? AND created >= ? ORDER BY created DESC, rowid DESC LIMIT ?",
                (session_id, cutoff, self.max_turns)).fetchall()
        return [Turn(m, s, a, json.loads(c), t) for m, s, a, c, t in reversed(rows)]

    def add(self, session_id: str, turn: Turn) -> None:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO turns VALUES (?,?,?,?,?,?)", (
                    session_id, turn.created or now, turn.message, turn.standalone, turn.answer,
                    json.dumps(turn.citations)))
                # enforce both bounds on write, so reads stay cheap and the file stays small
                self._db.execute("DELETE FROM turns WHERE created < ?", (now - self.max_age,))
                self._db.execute(
                    "DELETE FROM turns WHERE session_id = ? AND rowid NOT IN (SELECT rowid FROM turns "
                    "WHERE session_id = ? ORDER BY created DESC, rowid DESC LIMIT ?)",
                    (session_id, session_id, self.max_turns))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()
