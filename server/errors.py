"""Errors as JSON: the product's error hierarchy mapped to HTTP status codes in one place.

Every error response has one shape::

    {"error": {"status": 422, "message": "conversation.messages[0].role: input should be ...",
               "request_id": "4f0c..."}}

=============================================  ======  ==========================================
raised                                         status  when
=============================================  ======  ==========================================
:class:`~copilot.errors.NotFoundError`         404     an unknown conversation, suggestion, script
:class:`~copilot.errors.ForbiddenError`        403     a valid key outside its role or scope
:class:`~copilot.errors.InputError`            422     a request the core cannot use
:class:`~copilot.errors.BundleError`,          503     the models cannot serve (a broken bundle)
:class:`~copilot.errors.ConfigError`,
:class:`~copilot.errors.NotFittedError`
:class:`~copilot.errors.LLMBackendError`       503     the optional LLM could not answer
:class:`~copilot.errors.LLMOutputError`        502     the LLM's reply was invalid, also retried
any other :class:`~copilot.errors.CopilotError` 500     a fault of the server
FastAPI's request validation                   422     a field of the wrong type, an unknown field
... of a body that is not JSON                 400     malformed JSON
:class:`PayloadTooLarge` (middleware)          413     a body over ``max_body_bytes``
:mod:`server.protocol` (before the app)        400     a request that is not valid HTTP/1.1
... and ``HeaderLimitMiddleware``              431     headers over ``max_header_bytes``
=============================================  ======  ==========================================

An LLM error is answered with a fixed message: what it carries (the model server's address and
answer, the model's reply, which may repeat the chat) goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from copilot.errors import (
    BundleError,
    BusyError,
    ConfigError,
    CopilotError,
    ForbiddenError,
    InputError,
    LLMBackendError,
    LLMError,
    LLMOutputError,
    NotFittedError,
    NotFoundError,
)
from copilot.schema import format_errors
from server.schemas import SINGLE_TAG, UNION_TAGS

__all__ = [
    "error_content",
    "error_response",
    "install_error_handlers",
    "status_of",
    "validation_message",
]

logger = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[CopilotError], int], ...] = (
    (NotFoundError, 404),  # before InputError: it is one
    (ForbiddenError, 403),
    (InputError, 422),
    (BundleError, 503),
    (BusyError, 503),  # with Retry-After
    (ConfigError, 503),
    (NotFittedError, 503),
    (LLMBackendError, 503),
    (LLMError, 502),  # LLMOutputError, and any other of the family
)

_LLM_MESSAGES: tuple[tuple[type[LLMError], str], ...] = (
    (
        LLMBackendError,
        "the language model is unavailable: it could not be reached or kept failing after "
        "retries; try again later (the server log names the failure)",
    ),
    (
        LLMError,
        "the language model's reply was not valid, also after one retry; try again, or "
        "configure another model (COPILOT_LLM_MODEL)",
    ),
)


def status_of(exc: CopilotError) -> int:
    """The HTTP status code of a product error (500 for one not in the table)."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def error_content(status: int, message: str, request_id: str | None) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": {"status": status, "message": message, "request_id": request_id}}


def error_response(
    status: int,
    message: str,
    request_id: str | None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error response in the one shape (see the module docstring)."""
    return JSONResponse(
        error_content(status, message, request_id), status_code=status, headers=headers
    )


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def validation_message(errors: Sequence[Mapping[str, Any]], body: Any = None) -> tuple[int, str]:
    """Status code and message for FastAPI's validation errors of a request.

    Malformed JSON gives 400 with where it broke; anything else 422 with one readable line per
    problem (field path, what is expected, the value received), as the CLI words them.
    """
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        position = first.get("loc", ("body", 0))[-1]
        where = _where(body, position) if isinstance(position, int) else ""
        reason = (first.get("ctx") or {}).get("error", "invalid JSON")
        return 400, f"the request body is not valid JSON: {reason}{where}; send one JSON object"
    cleaned = []
    for err in errors:
        loc = err_loc = tuple(err.get("loc", ()))
        inside_body = bool(loc) and loc[0] == "body"
        if inside_body:
            loc = loc[1:]
        # Unknown fields of a conversation get the hint about ``meta`` (where custom data
        # goes); a request wrapper has no such place.
        conversation = any(p in (SINGLE_TAG, "conversation", "conversations") for p in loc)
        loc = tuple(part for part in loc if part not in UNION_TAGS)
        err = {**err, "loc": loc}
        if not loc and inside_body:
            if err.get("type") == "missing":
                return 422, "the request needs a JSON body (Content-Type: application/json)"
            if not isinstance(err.get("input"), dict):
                return 422, _not_an_object(err.get("input"))
            err["loc"] = ("conversation",) if SINGLE_TAG in err_loc else ("body",)
        if err.get("type") == "extra_forbidden" and not conversation:
            err = {**err, "type": "unknown_field", "msg": "unknown field", "input": {}}
        cleaned.append(err)
    return 422, format_errors(cleaned)


def _not_an_object(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "the request body must be JSON sent with Content-Type: application/json"
    kind = {type(None): "null", bool: "a boolean", str: "a string", list: "an array"}.get(
        type(value), "a number"
    )
    return f"the request body must be a JSON object, not {kind}"


def _where(body: Any, position: int) -> str:
    if not isinstance(body, str):
        return f" at character {position}"
    line = body.count("\n", 0, position) + 1
    column = position - (body.rfind("\n", 0, position) + 1) + 1
    return f" at line {line} column {column}"


def _llm_message(exc: LLMError) -> str:
    """The client's message for an LLM error; the details are logged."""
    if isinstance(exc, LLMOutputError):
        logger.warning("LLMOutputError: %s", "; ".join(exc.problems) or "invalid reply")
    else:
        logger.warning("%s: %s", type(exc).__name__, exc)
    return next(text for kind, text in _LLM_MESSAGES if isinstance(exc, kind))


async def _copilot_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CopilotError)
    status = status_of(exc)
    if isinstance(exc, LLMError):
        return error_response(status, _llm_message(exc), _request_id(request))
    if isinstance(exc, BusyError):
        logger.warning("busy: %s", exc)
        return error_response(status, str(exc), _request_id(request), {"Retry-After": "1"})
    if status >= 500:
        logger.error("%s: %s", type(exc).__name__, exc, exc_info=exc)
    return error_response(status, str(exc), _request_id(request))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status, message = validation_message(exc.errors(), getattr(exc, "body", None))
    return error_response(status, message, _request_id(request))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 400 and message == "There was an error parsing the body":
        # json.loads gave up other than with a syntax error: nesting too deep, for one
        message = (
            "the request body could not be parsed as JSON (too deeply nested?); send one JSON "
            "object"
        )
    elif exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}; see /docs for the API"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see /docs for the API"
    return error_response(exc.status_code, message, _request_id(request), exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers: product errors, request validation and HTTP errors, as JSON."""
    app.add_exception_handler(CopilotError, _copilot_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
