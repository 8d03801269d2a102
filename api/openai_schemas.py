"""The OpenAI chat-completions wire format, as far as `rag serve` speaks it (api/routers/openai_compat.py).

Requests accept any field OpenAI defines, and any other, and ignore what has no meaning here (`n`, `stop`,
`temperature`, `tools`, ...), as OpenAI-compatible servers do; the fields read are typed strictly, so a wrong
type is a 400 rather than a guess ("true" is not a boolean). Replies add Perplexity's `citations` (citation
ids, in marker order) and `search_results` (the passages behind them) to OpenAI's objects.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Text


class Lenient(BaseModel):
    """Unknown fields are accepted and ignored; the known ones must have the right type."""

    model_config = ConfigDict(extra="allow", strict=True)


class ContentPart(Lenient):
    type: str = Field(description='"text" parts are read; others (images, audio, files) are ignored')
    text: Text | None = None


class ChatMessage(Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | list[ContentPart] | None = Field(
        None, description="a string, or a list of content parts whose text parts are joined")
    name: Text | None = None


class StreamOptions(Lenient):
    include_usage: bool = Field(False, description="send a last chunk with `usage` (and no choices)")


class ChatCompletionRequest(Lenient):
    model: Text = Field(examples=["rag-news"],
                        description="rag-news (or rag-news-extractive / rag-news-generative: GET /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1, description="the last user message is the question; the "
                                        "earlier turns are the conversation it may lean on; system messages "
                                        "are not used for retrieval")
    stream: bool | None = Field(False, description="reply with chat.completion.chunk events, then data: [DONE]")
    stream_options: StreamOptions | None = None
    # Accepted for compatibility and not used: the answer is quoted or generated under the server's own
    # settings (RAG_LLM_MAX_TOKENS, RAG_LLM_TEMPERATURE), and there is one answer, not n.
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1)
    stop: Text | list[Text] | None = None
    user: Text | None = None


# -- replies --------------------------------------------------------------------------------------------------
class SearchResult(BaseModel):
    id: str = Field(description="citation id <doc_id>:<start>-<end>; GET /citations/{id} opens it")
    title: str
    date: str
    url: str
    quote: str = Field(description="exactly the cited characters of the article")


class Usage(BaseModel):
    """Counted with the embedding model's tokenizer (multilingual-e5's, the one retrieval reads with):
    prompt = the text of the messages sent, completion = the content returned."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description='the answer with its [n] markers, then a "Sources:" / "المصادر:" list')
    refusal: str | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[str] = Field(description="citation ids, in the order of the answer's markers [1], [2], ...")
    search_results: list[SearchResult] = Field(description="the cited passages, in the same order")
    system_fingerprint: str | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One streamed event. The last one with a choice carries `finish_reason`, `citations` and
    `search_results`; with stream_options.include_usage a final one carries `usage` and no choices."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    citations: list[str] | None = None
    search_results: list[SearchResult] | None = None
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "rag-news"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIError(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, server_error, ...")
    param: str | None = Field(None, description="the request field at fault, e.g. messages[0].content")
    code: str | None = Field(None, description="e.g. model_not_found, invalid_api_key, missing_required_parameter")


class OpenAIErrorBody(BaseModel):
    error: OpenAIError
