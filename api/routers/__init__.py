"""One router per resource: chat (chat, ask), search, citations, documents, health."""
