"""ASGI middleware: request ids, access logs and metrics; the size limits and UTF-8 check.

Plain ASGI classes (not Starlette's ``BaseHTTPMiddleware``, which buffers responses and
breaks context variables):

- :class:`RequestContextMiddleware` (outermost): takes the ``X-Request-ID`` header or makes an
  id, echoes it on the response (with ``X-Served-By``: host and process id of the worker), logs one JSON line per request (method, route template,
  status, ms, request id), records the latency histogram, and turns an unexpected exception
  into a JSON 500 that names the request id instead of a bare text page.
- :class:`HeaderLimitMiddleware`: refuses a request line and headers over ``max_header_bytes``
  with 431. The HTTP parser (:mod:`server.protocol`) stops reading a head long before it
  grows large, but it only checks a head that arrived in pieces; this check is exact.
- :class:`BodyLimitMiddleware`: refuses a body over ``max_body_bytes`` with 413, whether or not
  the client sent ``Content-Length`` (a chunked upload is counted as it arrives), and a body
  that is not UTF-8 with 400, before any route parses it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_content
from server.logs import request_id_var
from server.metrics import UNMATCHED_ROUTE, Metrics

__all__ = [
    "REQUEST_ID_HEADER",
    "BodyLimitMiddleware",
    "HeaderLimitMiddleware",
    "RequestContextMiddleware",
    "header_limit_message",
]

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_DRAIN_FACTOR = 8  # read (and drop) up to this many times the limit before answering 413

access_log = logging.getLogger("server.access")
logger = logging.getLogger(__name__)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_json(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content, ensure_ascii=False).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _route_template(scope: Scope, probe: Scope) -> str:
    """The path template of the route that served the request (the metrics' ``route`` label).

    API routes leave themselves in the scope; FastAPI's own pages (``/docs``) and mounts
    (``/ui``) do not, so those are matched again here on a copy of the original scope.
    """
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str) and path:
        return path
    for route in getattr(scope.get("app"), "routes", ()):
        if route.matches(probe)[0] is Match.FULL:
            path = getattr(route, "path", None)
            return path if isinstance(path, str) and path else UNMATCHED_ROUTE
    return UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Request id in and out, one access log line, the latency histogram, JSON 500s.

    Args:
        app: the wrapped ASGI app.
        metrics: where request latencies go.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Which server process answered (``copilot serve --workers N`` runs several).
        self._served_by = f"{socket.gethostname()}/{os.getpid()}".encode("latin-1", "replace")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (other scope types pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _VALID_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        # Routing rewrites path and root_path in a mount; keep what matching needs.
        probe = {
            "type": scope["type"],
            "path": scope["path"],
            "root_path": scope.get("root_path", ""),
            "method": scope["method"],
        }
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.append((b"x-served-by", self._served_by))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            if started:
                raise  # the response is half sent: only closing the connection is left
            await _send_json(
                send_with_id,
                500,
                error_content(
                    500,
                    "internal server error; the server log has the details under this request id",
                    request_id,
                ),
            )
        finally:
            seconds = time.perf_counter() - start
            route = _route_template(scope, probe)
            self.metrics.observe_request(scope["method"], route, status, seconds)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                    "request_id": request_id,
                },
            )
            request_id_var.reset(token)


def header_limit_message(max_bytes: int) -> str:
    """The message of a 431: the limit and the setting that changes it (never the headers)."""
    return (
        f"the request line and headers are larger than the limit of {max_bytes:,} bytes; send "
        "fewer or smaller headers (the server's limit is COPILOT_MAX_HEADER_BYTES)"
    )


class HeaderLimitMiddleware:
    """431 for a request line and headers over ``max_bytes`` (counted as sent: ``name: value``
    and line ends).

    Args:
        app: the wrapped ASGI app.
        max_bytes: the largest request head accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the head of one request, then serve it."""
        if scope["type"] == "http":
            target = scope.get("raw_path") or scope["path"].encode()
            size = len(scope["method"]) + len(target) + len(scope.get("query_string", b"")) + 13
            size += sum(len(name) + len(value) + 4 for name, value in scope["headers"]) + 2
            if size > self.max_bytes:
                request_id = scope.get("state", {}).get("request_id")
                content = error_content(431, header_limit_message(self.max_bytes), request_id)
                await _send_json(send, 431, content)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes`` (with or without ``Content-Length``); 400 for non-UTF-8.

    The body is read here, checked, and handed on whole; ``max_bytes`` bounds what is held in
    memory. An oversized body is still read (and dropped) up to a few times the limit, so a
    client that uploads before it listens gets the 413 instead of a reset connection.

    Args:
        app: the wrapped ASGI app.
        max_bytes: the largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the body of one request, then serve it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _send_json(
                    send,
                    400,
                    error_content(400, f"invalid Content-Length {declared!r}", request_id),
                )
                return
            if int(declared) > self.max_bytes:
                if int(declared) <= _DRAIN_FACTOR * self.max_bytes:
                    await self._drain(receive, 0)
                await self._too_large(send, f"{int(declared):,} bytes", request_id)
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.max_bytes:
                if more:
                    await self._drain(receive, len(body))
                await self._too_large(send, f"more than {self.max_bytes:,} bytes", request_id)
                return
        if body and _is_text(scope):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = body[exc.start : exc.start + 1].hex()
                await _send_json(
                    send,
                    400,
                    error_content(
                        400,
                        f"the request body is not valid UTF-8: byte 0x{byte} at position "
                        f"{exc.start} ({exc.reason}); send JSON encoded as UTF-8",
                        request_id,
                    ),
                )
                return
            bad = _unstorable_escape(body)
            if bad is not None:
                await _send_json(
                    send,
                    400,
                    error_content(
                        400,
                        f"the request body has the escape '{bad}', which is not a character "
                        "that can be stored (a lone UTF-16 surrogate or NUL); send text as "
                        "UTF-8, with characters outside the BMP as surrogate pairs",
                        request_id,
                    ),
                )
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _drain(self, receive: Receive, seen: int) -> None:
        while seen <= _DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _too_large(self, send: Send, got: str, request_id: str | None) -> None:
        message = (
            f"the request body is too large: {got}; the limit is {self.max_bytes:,} bytes. "
            "Send fewer conversations per request, or raise the limit with "
            "COPILOT_MAX_BODY_BYTES"
        )
        await _send_json(send, 413, error_content(413, message, request_id))


_ESCAPE = re.compile(rb"(\\+)u([dD][89a-fA-F][0-9a-fA-F]{2}|0000)")


def _unstorable_escape(body: bytes | bytearray) -> str | None:
    """The first ``\\uD800``-style escape in JSON text that is not half of a surrogate pair,
    or a ``\\u0000``.

    JSON allows both, but a lone surrogate decodes to no character and NUL cannot be stored in
    PostgreSQL text: either would fail at the database (a 500), so they are refused with the
    body's other encoding errors.
    """
    if b"\\u" not in body:
        return None
    pending: re.Match[bytes] | None = None  # a high surrogate waiting for its low half
    for match in _ESCAPE.finditer(body):
        if len(match.group(1)) % 2 == 0:  # "\\\\uD800": an escaped backslash, then text
            continue
        if match.group(2) == b"0000":
            return match.group(0).decode()[-6:]
        high = match.group(2)[1:2].lower() in b"89ab"
        if pending is not None:
            if not high and match.start() == pending.end():
                pending = None
                continue
            return pending.group(0).decode()[-6:]
        if not high:
            return match.group(0).decode()[-6:]
        pending = match
    return None if pending is None else pending.group(0).decode()[-6:]


def _is_text(scope: Scope) -> bool:
    """Bodies FastAPI would parse as JSON: JSON content types, or none given."""
    kind = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    return not kind or kind == "application/json" or kind.endswith("+json")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body once, then waits on the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
