"""One router per resource of the HTTP API (``app.py`` includes them all).

``suggest``, ``rank``, ``classify``, ``score``, ``conversations``, ``guides``, ``stores``,
``feedback``, ``orders``, ``customers``, ``followups``, ``tasks``, ``catalog``, ``scripts``,
``admin`` and ``me`` live under ``/v1`` and need an API key; ``health`` (``/healthz``, ``/readyz``,
``/metrics``) and ``ui`` (the dashboard's static files) do not.
"""

from __future__ import annotations

from typing import Any

from server.schemas import ErrorPublic

__all__ = ["error_responses"]

_MEANING = {
    400: "Malformed JSON or a body that is not UTF-8",
    401: "Missing, invalid or revoked API key",
    403: "The key's role or scope does not allow this",
    404: "Nothing stored under that id",
    413: "The body is larger than COPILOT_MAX_BODY_BYTES",
    422: "A request that does not validate (the message names the field)",
    503: "The models cannot serve",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error status codes (all share the JSON error shape)."""
    return {code: {"model": ErrorPublic, "description": _MEANING[code]} for code in codes}
