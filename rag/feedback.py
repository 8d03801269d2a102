"""Readers' thumbs up / down on answers, kept in the sessions' SQLite file (a table of its own) so an editor can
read them back (`rag feedback`, GET /feedback).

A row keeps what was rated as it was shown: the question, the answer text and its citation ids, so it stays
readable after the session has expired or the index has changed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.config import Settings
from rag.sessions import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    session_id TEXT NOT NULL,      -- '' when the answer came from no session
    rating INTEGER NOT NULL,       -- +1 thumbs up, -1 thumbs down
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,       -- JSON list of citation ids
    mode TEXT NOT NULL,
    comment TEXT NOT NULL
);
"""


def database_path(settings: Settings) -> Path:
    """The SQLite file the chat sessions and the feedback share."""
    return settings.sessions_path or settings.index_dir / "sessions.sqlite"


@dataclass(frozen=True)
class Feedback:
    rating: int
    question: str
    answer: str
    citations: list[str] = field(default_factory=list)
    session_id: str = ""
    mode: str = ""
    comment: str = ""
    id: int = 0
    created: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))
        d["rating"] = "up" if self.rating > 0 else "down"
        return d


class FeedbackStore:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db = open_database(path, _SCHEMA)

    @classmethod
    def read_only(cls, path: Path) -> "FeedbackStore | None":
        """For `rag feedback`: None when there is no database yet (nothing was ever rated)."""
        return cls(path) if path.exists() else None

    def add(self, item: Feedback) -> Feedback:
        if item.rating not in (1, -1):
            raise ValueError("rating is +1 or -1")
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO feedback (created, session_id, rating, question, answer, citations, mode, comment) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (now, item.session_id, item.rating, item.question, item.answer, json.dumps(item.citations),
                 item.mode, item.comment))
        return Feedback(**{**asdict(item), "id": cur.lastrowid, "created": now})

    def list(self, limit: int = 1000) -> list[Feedback]:
        """The newest `limit` ratings, newest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, created, session_id, rating, question, answer, citations, mode, comment "
                    "FROM feedback ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            except sqlite3.OperationalError:
                return []
        return [Feedback(id=i, created=c, session_id=s, rating=r, question=q, answer=a, citations=json.loads(ci),
                         mode=m, comment=co) for i, c, s, r, q, a, ci, m, co in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
