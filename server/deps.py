"""The dependencies routes declare, as ``Annotated`` aliases.

- ``SettingsDep``: the :class:`~server.settings.Settings` the app was built with.
- ``RuntimeDep``: the current :class:`~server.runtime.Runtime`, taken once per request, so a
  reload never swaps the models under a request in flight.
- ``HolderDep``: the :class:`~server.runtime.RuntimeHolder`, for what changes the live engine.
- ``SessionDep``: a database session for the request, closed after it.
- ``PrincipalDep``: who the ``Authorization: Bearer <key>`` header speaks for; 401 without a
  valid key.
- ``MetricsDep``: the app's :class:`~server.metrics.Metrics`.
- ``ServedDep``: the app's :class:`~server.served.ServedLog` of served suggestions.
- ``LLMDep``: the app's :class:`~server.llm_service.LLMService` (its backend is ``None`` when
  no LLM is configured).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from server.auth import KeyCache, Principal
from server.db import authenticate
from server.llm_service import LLMService
from server.metrics import Metrics
from server.runtime import Runtime, RuntimeHolder
from server.served import ServedLog
from server.settings import Settings

__all__ = [
    "HolderDep",
    "LLMDep",
    "MetricsDep",
    "PrincipalDep",
    "RuntimeDep",
    "ServedDep",
    "SessionDep",
    "SettingsDep",
    "get_app_settings",
    "get_holder",
    "get_llm",
    "get_metrics",
    "get_principal",
    "get_runtime",
    "get_served",
    "get_session",
]


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (``create_app(settings)``, else :func:`get_settings`).

    Read from the app rather than swapped in with ``dependency_overrides``: FastAPI rebuilds an
    overridden dependency's signature on every request, which cost a tenth of a suggestion.
    """
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `copilot keys create`, sent as `Authorization: Bearer cpk_...`.",
)


# The cheap dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in the thread
# pool, and a hop there per dependency per request was a large share of a suggestion's latency.


async def get_holder(request: Request) -> RuntimeHolder:
    """The app's runtime holder (set up by the lifespan)."""
    holder: RuntimeHolder = request.app.state.holder
    return holder


async def get_runtime(request: Request) -> Runtime:
    """The runtime for this request: read once, kept to the end of the request."""
    holder: RuntimeHolder = request.app.state.holder
    return holder.current


async def get_metrics(request: Request) -> Metrics:
    """The app's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for this request; the service functions commit what they write.

    Creating a session does not connect (the work happens in the thread-pooled route), so this
    runs on the event loop; closing it returns the connection to the pool.
    """
    with request.app.state.session_factory() as session:
        yield session


async def get_served(request: Request) -> ServedLog:
    """The app's log of served suggestions (call ``flush()`` before reading served rows)."""
    served: ServedLog = request.app.state.served
    return served


async def get_llm(request: Request) -> LLMService:
    """The app's LLM service (set up by the lifespan; off unless COPILOT_LLM_BACKEND is set)."""
    llm: LLMService = request.app.state.llm
    return llm


HolderDep = Annotated[RuntimeHolder, Depends(get_holder)]
LLMDep = Annotated[LLMService, Depends(get_llm)]
ServedDep = Annotated[ServedLog, Depends(get_served)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SessionDep = Annotated[Session, Depends(get_session)]


_OTHER_SCHEMES = {
    name.lower(): name
    for name in ("Basic", "Digest", "Negotiate", "NTLM", "OAuth", "Token", "ApiKey", "DPoP")
}
"""Authorization schemes a 401 may name (IANA's common ones, and two popular for API keys)."""


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _lookup(request: Request, plaintext: str) -> Principal | None:
    with request.app.state.session_factory() as session:
        return authenticate(session, plaintext)


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller behind the request's API key.

    A key checked in the last ``COPILOT_AUTH_CACHE_SECONDS`` is trusted without a query (see
    :class:`~server.auth.KeyCache`); otherwise it is looked up in a worker thread, in a session
    of its own that is closed at once (holding a pooled connection while waiting for a thread
    could starve the requests that hold the threads).

    Raises:
        HTTPException: 401 when the header is missing, malformed, or names no active key.
    """
    if credentials is None:
        header = request.headers.get("authorization")
        if header:
            first = header.strip().split(" ", 1)[0].lower()
            if first == "bearer":
                raise _unauthorized(
                    "the Authorization header has no API key after 'Bearer'; send "
                    "'Authorization: Bearer <api key>'"
                )
            # Never quote the header: without 'Bearer' its first word is often the key itself.
            # Only a known scheme is named, and by our own spelling of it.
            scheme = _OTHER_SCHEMES.get(first)
            raise _unauthorized(
                "the Authorization header must read 'Bearer <api key>'"
                + (f", not a {scheme!r} credential" if scheme else "")
                + ": the word Bearer, a space, then the key"
            )
        raise _unauthorized(
            "missing API key: send the header 'Authorization: Bearer <api key>' (an admin "
            "creates keys with `copilot keys create`)"
        )
    plaintext = credentials.credentials
    cache: KeyCache = request.app.state.key_cache
    principal = cache.get(plaintext)
    if principal is None:
        principal = await anyio.to_thread.run_sync(_lookup, request, plaintext)
        if principal is None:
            raise _unauthorized(
                "invalid or revoked API key; ask an admin for a key (`copilot keys create`)"
            )
        cache.put(plaintext, principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
