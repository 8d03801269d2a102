"""Errors on /v1 paths in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, so that OpenAI
clients raise their own exception types (BadRequestError, AuthenticationError, NotFoundError, ...) with a
readable message. The rest of the API keeps its `{"detail", "error"}` shape.

`install(app)` wraps the app's handlers rather than repeating them: on a /v1 path the usual handler runs
first (so the status of each library error stays decided in one table, api/main.py) and its body is then
rewritten. A request OpenAI would call invalid is a 400 there, never a 422, so 422 becomes 400.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

PREFIX = "/v1/"

CODES = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
         503: "service_unavailable"}


class OpenAIHTTPError(Exception):
    """An error a /v1 route raises already in OpenAI's terms (e.g. 404 model_not_found)."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _param(loc) -> str | None:
    """("body", "messages", 0, "content") -> "messages[0].content", as OpenAI names a field. Pydantic also
    names the member of a union it tried ("str", "list[ContentPart]"): OpenAI names only the field."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (part == "body" and not out) or not str(part).isidentifier() or part in _TYPE_NAMES:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or None


_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _from_validation(errors: list[dict]) -> dict:
    first = errors[0] if errors else {}
    param, kind, msg = _param(first.get("loc", ())), first.get("type", ""), first.get("msg", "invalid request")
    if kind == "missing":
        return error_body(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if kind.startswith("json_"):
        return error_body(f"The request body is not valid JSON: {msg}", code="invalid_json")
    if kind.endswith("_type") or kind in ("literal_error", "union_tag_invalid", "model_type", "is_instance_of"):
        field = f"'{param}'" if param else "the request body"
        return error_body(f"Invalid type for {field}: {msg}.", param=param, code="invalid_type")
    if kind == "too_short" and param == "messages":
        return error_body("Invalid 'messages': empty array. Expected an array with minimum length 1.",
                          param=param, code="empty_array")
    return error_body(f"Invalid value for '{param}': {msg}.", param=param, code="invalid_value")


def reshape(response: Response) -> Response:
    """A `{"detail", "error"}` JSON error of ours, in OpenAI's shape."""
    status = 400 if response.status_code == 422 else response.status_code
    try:
        body = json.loads(response.body)
    except (AttributeError, ValueError):
        body = {}
    detail, kind = body.get("detail", ""), body.get("error", "")
    if isinstance(detail, list):  # request validation: [{"loc", "msg", "type"}, ...]
        shaped = _from_validation(detail)
    else:
        shaped = error_body(str(detail) or "error", "server_error" if status >= 500 else "invalid_request_error",
                            code=CODES.get(status) or kind or None)
    headers = {k: v for k, v in response.headers.items() if k.lower() == "www-authenticate"}
    return JSONResponse(shaped, status_code=status, headers=headers)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _scoped(handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        return reshape(response) if request.url.path.startswith(PREFIX) else response

    return handle


def install(app: FastAPI) -> None:
    """Call after the app's own exception handlers are registered."""
    for kind, handler in list(app.exception_handlers.items()):
        app.exception_handlers[kind] = _scoped(handler)

    @app.exception_handler(OpenAIHTTPError)
    async def openai_error(request: Request, exc: OpenAIHTTPError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.type, exc.param, exc.code), status_code=exc.status)
