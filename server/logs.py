"""Structured logs: one JSON object per line, each carrying the id of the request it belongs to.

The request id comes from the ``X-Request-ID`` header (or is made up) and lives in a context
variable for the duration of the request, so every record logged while serving it, in any module
and in the worker thread that runs a sync route, carries it. ``copilot serve`` installs
:class:`JsonFormatter` on the root logger; the app itself never configures logging.

A line::

    {"ts": "2026-03-08T02:01:02.123Z", "level": "INFO", "logger": "server.access",
     "message": "request", "request_id": "4f0c...", "method": "POST", "route": "/v1/suggest",
     "status": 200, "ms": 23.1}
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure_logging", "current_request_id", "request_id_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "copilot_request_id", default=None
)
"""The id of the request being served in this context (``None`` outside a request)."""

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}  # uvicorn's ANSI copy of the message
)


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return request_id_var.get()


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line of ``record`` (non-JSON extras are written as their ``str``)."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            out["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines, at ``level`` and above.

    Replaces the root logger's handlers; uvicorn's own loggers propagate to it (their access
    log is off: the app writes its own, with the request id).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        # uvicorn's access lines would repeat the app's own (which carry the request id)
        logger.propagate = name != "uvicorn.access"
