"""The app factory: ``create_app(settings)`` builds the FastAPI app of the HTTP API.

At start-up (the lifespan) the app migrates the database, loads the bundle once into a
:class:`~server.runtime.RuntimeHolder` and applies the stored pins, bans and feedback counts; it
disposes of the database engine at shutdown. Everything an app holds lives on ``app.state``
(settings, metrics, holder, session factory), so several apps can live in one process.

Example:
    >>> import uvicorn
    >>> from server.app import create_app
    >>> from server.settings import Settings
    >>> uvicorn.run(create_app(Settings(bundle_dir="models/default")), port=8000)

or ``copilot serve --bundle models/default``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from copilot import __version__
from server import service
from server.db import describe_url, make_engine, make_session_factory, migrate
from server.errors import install_error_handlers
from server.metrics import Metrics
from server.middleware import BodyLimitMiddleware, RequestContextMiddleware
from server.routes import (
    admin,
    classify,
    conversations,
    feedback,
    guides,
    health,
    me,
    score,
    scripts,
    suggest,
    ui,
)
from server.runtime import RuntimeHolder, build_runtime
from server.settings import Settings, get_settings

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Reply suggestions, classification, scoring, stored conversations, guide scorecards, feedback
and script management for Chinese social retail. Every `/v1` route needs
`Authorization: Bearer <api key>` (`copilot keys create`). Errors are JSON:
`{"error": {"status", "message", "request_id"}}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the bundle and the database are opened when it starts serving.

    Args:
        settings: the configuration; read from ``COPILOT_*`` environment variables when
            ``None``.

    Returns:
        The FastAPI app (OpenAPI at ``/docs``, Prometheus metrics at ``/metrics``).

    Example:
        >>> app = create_app(Settings(bundle_dir="models/default", database_url="sqlite:///x.db"))
    """
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in anyio's thread pool. On a few cores, many threads only contend
        # for the GIL: a small pool serves as fast and keeps the slowest requests far faster.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        engine = make_engine(settings.database_url)
        try:
            migrate(engine)
            factory = make_session_factory(engine)
            runtime = build_runtime(settings.bundle_dir, settings.rubric)
            holder = RuntimeHolder(runtime, settings.rubric)
            with factory() as session:
                service.load_feedback_and_states(holder, session)
            app.state.holder = holder
            app.state.session_factory = factory
            metrics.set_bundle(runtime.name)
            logger.info(
                "serving",
                extra={
                    "bundle": runtime.name,
                    "bundle_dir": str(settings.bundle_dir),
                    "database": describe_url(settings.database_url),
                },
            )
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="Sales copilot API",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    # The last added is the outermost: request ids and logs cover the size check's answers.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    for module in (
        suggest,
        classify,
        score,
        conversations,
        guides,
        feedback,
        scripts,
        admin,
        me,
        health,
        ui,
    ):
        app.include_router(module.router)
    return app
