"""What the routes share: the live Assistant, the one loaded Embedder, the chat sessions, and the write path.

Live index swap: a write goes through rag.indexer.change_documents (its file lock keeps other processes out,
our threading.Lock keeps concurrent API writes in line), which commits one new segment atomically;
then a new Assistant is built on it, sharing the loaded Embedder (loading takes ~10 s), warmed, and only
then published by replacing one reference. A query that already holds the old Assistant finishes on it:
its snapshot's files stay open and readable after a merge removes them (POSIX). A commit by another process
(`rag index`, `rag rm` while serving) is picked up on the next request: the manifest's generation moved on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

from langchain_core.language_models import BaseChatModel

from rag.chain import Assistant, ensure_index, index_spec
from rag.condense import condense
from rag.config import Settings
from rag.crosslingual import CrossLingualEncoder
from rag.embeddings import Embedder
from rag.feedback import FeedbackStore, database_path
from rag.generate import chat_model_from_settings, condense_with_model
from rag.indexer import IndexReport, change_documents
from rag.sessions import SessionStore, Turn
from rag.store.base import backend_for
from rag.translate import translator_from_settings
from rag.types import Answer, Document

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: Settings, embedder: Embedder, chat_model: BaseChatModel | None = None):
        self.settings, self.embedder = settings, embedder
        self.backend = backend_for(settings)  # RAG_STORE: the local index or Milvus
        ensure_index(settings, embedder)  # the bundled articles when there is no index yet
        # Built once and shared by every Assistant version, like the embedder.
        self.chat_model = chat_model if chat_model is not None else chat_model_from_settings(settings)
        self.reader = None
        if settings.reader:  # and the reader: its graph loads once, not again after every write
            from rag.reader import load_reader

            self.reader = load_reader(settings)
        # and the sentence selector, likewise
        self.selector = None
        if settings.selector:
            from rag.selector import load_selector

            self.selector = load_selector(settings)
        # and the cross-language model (rag/crosslingual.py), with the sentence vectors it has cached
        self.cross_lingual = CrossLingualEncoder() if settings.cross_lingual else None
        if self.cross_lingual is not None:
            self.cross_lingual.warm()
        # and the question translator (rag/translate/), with its cache
        self.translator = translator_from_settings(settings)
        if self.translator is not None:
            self.translator.warm()
        self._assistant = self._new_assistant()
        self._write_lock = threading.Lock()
        path = database_path(settings)
        self.sessions = SessionStore(path, settings.session_max_turns, settings.session_max_age_seconds)
        self.feedback = FeedbackStore(path)

    @property
    def assistant(self) -> Assistant:
        """The current Assistant; take it once per request so one request sees one index version."""
        live = self.backend.generation()
        if live is not None and live != self._assistant.store.manifest.generation:
            self._reload()  # another process (`rag index`, `rag rm`) committed
        return self._assistant

    def _reload(self) -> None:
        # Never wait here: while a write of ours holds the lock, queries go on with the current version.
        if not self._write_lock.acquire(blocking=False):
            return
        try:
            if self.backend.generation() != self._assistant.store.manifest.generation:
                self._assistant = self._new_assistant()
        except Exception:  # noqa: BLE001 - e.g. the version was replaced again while opening: keep serving
            log.warning("could not open the new commit; still serving %s", self._assistant.store.version,
                        exc_info=True)
        finally:
            self._write_lock.release()

    def change(self, upsert: Sequence[Document] = (), delete: Sequence[str] = ()) -> IndexReport:
        with self._write_lock:
            report = change_documents(self.backend, index_spec(self.settings, self.embedder),
                                      upsert=list(upsert), delete=list(delete))
            if report.written:
                self._assistant = self._new_assistant()
            return report

    def _new_assistant(self) -> Assistant:
        return Assistant(self.settings, embedder=self.embedder, chat_model=self.chat_model, reader=self.reader,
                         cross_lingual=self.cross_lingual, translator=self.translator, selector=self.selector)

    def standalone(self, message: str, session_id: str) -> str:
        """The message made standalone, given the turns of its session."""
        history = self.sessions.history(self.sessions.check_id(session_id))
        return self.standalone_from(message, [(t.standalone, t.answer) for t in history])

    def standalone_from(self, message: str, history: Sequence[tuple[str, str]]) -> str:
        """The message made standalone, given earlier (standalone question, answer) turns, oldest first. The
        rules of rag.condense decide whether it is a follow-up; with a chat model, the model rewrites it
        (prompts/condense.*.txt), the rules' rewrite being the fallback."""
        condensed = condense(message, [q for q, _ in history])
        standalone = condensed.query
        if condensed.rewritten and self.chat_model is not None:
            standalone = condense_with_model(self.chat_model, message, history) or standalone
        if len(standalone) > self.settings.max_question_chars:
            standalone = message  # the context would push a long message over the limit: retrieve without
        return standalone

    def chat(self, message: str, session_id: str, k: int | None = None) -> tuple[Answer, str]:
        """Answer one turn of a session: (the answer, whose `question` is the message; the standalone query)."""
        *_, (answer, standalone) = self.chat_stream(message, session_id, k)
        return answer, standalone

    def chat_stream(self, message: str, session_id: str, k: int | None = None) -> Iterator[str | tuple[Answer, str]]:
        """chat(), with the generated answer's pieces first (see Assistant.stream)."""
        message = self.assistant.check_question(message)
        history = self.sessions.history(self.sessions.check_id(session_id))
        for event in self.converse(message, [(t.standalone, t.answer) for t in history], k):
            if not isinstance(event, str):
                answer, standalone = event
                self.sessions.add(session_id, Turn(message=message, standalone=standalone, answer=answer.answer,
                                                   citations=[c.id for c in answer.citations]))
            yield event

    def converse(self, message: str, history: Sequence[tuple[str, str]], k: int | None = None,
                 extractive: bool = False) -> Iterator[str | tuple[Answer, str]]:
        """Answer `message` after the (standalone question, answer) turns of `history`, kept by the caller (a
        session, or the messages of an OpenAI request): the generated answer's pieces, then (the answer, whose
        `question` is the message; the standalone query). `extractive` skips the chat model."""
        assistant = self.assistant
        message = assistant.check_question(message)
        standalone = self.standalone_from(message, history)
        for event in assistant.stream(standalone, k=k, extractive=extractive):
            if isinstance(event, str):
                yield event
                continue
            answer = event
        answer.question = message
        yield answer, standalone

    def close(self) -> None:
        self.sessions.close()
        self.feedback.close()
