"""Errors a user can cause. The CLI prints them as one line and exits 1; the API maps them to 4xx/503."""


class RagError(Exception):
    """Base of every error that is shown to the user as a message, not a traceback."""


class InvalidCitationId(RagError):
    """A citation id that is not `<doc_id>:<start>-<end>`."""


class DocumentNotFound(RagError):
    """A document id that is not in the index."""


class InvalidSpan(RagError):
    """A character range outside its document."""


class IndexMissing(RagError):
    """No index where one was expected."""


class IndexIncompatible(RagError):
    """An index built with another model or chunking than the one configured."""


class ModelUnavailable(RagError):
    """The embedding model could not be built or loaded."""


class InvalidInput(RagError):
    """A question, file or option the program cannot use."""
