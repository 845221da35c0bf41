"""The HTTP/1.1 protocol the server runs: uvicorn's h11 one, with a limit on the request head and
the API's JSON error shape for requests too malformed to reach the app.

uvicorn answers a request it cannot parse itself, before any middleware sees it, with a plain
text ``400 Invalid HTTP request received.``: a malformed request line or header, a missing
``Host``, a bad ``Content-Length``, a broken chunk of a chunked body, or a head larger than the
limit. :class:`JsonH11Protocol` answers those in the one error shape (``server.errors``), with
h11's status: 431 for a head over the limit, 501 for an unsupported ``Transfer-Encoding``, 400
otherwise. The message never repeats what was received (it could be a credential).

The limit on the request line and headers together, ``COPILOT_MAX_HEADER_BYTES`` (16 KiB, as
h11 and Node.js), is passed to h11 as ``max_incomplete_event_size``: h11 stops reading a head
that grows past it, so a 20 MB header is never held in memory. h11 checks only a head still
incomplete after a read, so one that arrived whole in a single read is measured exactly by
:class:`~server.middleware.HeaderLimitMiddleware`. uvicorn's faster parser, httptools, has no
limit at all (a 20 MB header was read whole), so :func:`uvicorn_options` selects h11.

Example:
    >>> uvicorn.run(create_app(settings), port=8000, **uvicorn_options(settings))
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.errors import error_content
from server.middleware import header_limit_message
from server.settings import Settings

__all__ = ["JsonH11Protocol", "uvicorn_options"]

logger = logging.getLogger(__name__)


class JsonH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering unparseable requests with a JSON error."""

    def send_400_response(self, msg: str) -> None:
        """Answer a request h11 refused, in the JSON error shape, and close the connection."""
        # uvicorn calls this while it handles h11's RemoteProtocolError, whose status hint
        # tells a head over the limit (431) from other malformed requests.
        error = sys.exc_info()[1]
        status = getattr(error, "error_status_hint", 400)
        request_id = uuid.uuid4().hex
        logger.warning(
            "unparseable HTTP request answered %d", status, extra={"request_id": request_id}
        )
        limit = self.config.h11_max_incomplete_event_size
        body = json.dumps(error_content(status, _message(status, limit), request_id))
        payload = body.encode("utf-8")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode("ascii")),
            (b"connection", b"close"),
            (b"x-request-id", request_id.encode("ascii")),
        ]
        reason = HTTPStatus(status).phrase.encode("ascii")
        for event in (
            h11.Response(status_code=status, headers=headers, reason=reason),
            h11.Data(data=payload),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def _message(status: int, limit: int | None) -> str:
    if status == 431:
        return header_limit_message(limit or 16_384)  # None: h11's default
    if status == 501:
        return "unsupported Transfer-Encoding: send the body as is or chunked"
    return (
        "the request is not valid HTTP/1.1 (a malformed request line, header or chunked body, "
        "or no Host header); check the client or the proxy in front of the server"
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The options of :class:`uvicorn.Config` that make it serve :class:`JsonH11Protocol` with
    the settings' limit on the request head (``COPILOT_MAX_HEADER_BYTES``)."""
    return {"http": JsonH11Protocol, "h11_max_incomplete_event_size": settings.max_header_bytes}
