"""The app factory: ``create_app(settings)`` builds the FastAPI app of the HTTP API.

At start-up (the lifespan) the app migrates the database, loads the bundle once into a
:class:`~server.runtime.RuntimeHolder` and applies the stored pins, bans, feedback counts and
catalogue, and builds the optional LLM's backend once (:class:`~server.llm_service.LLMService`;
off unless ``COPILOT_LLM_BACKEND`` is set); it disposes of the database engine at shutdown. Everything an app holds lives on ``app.state``
(settings, metrics, holder, session factory), so several apps can live in one process.

Example:
    >>> import uvicorn
    >>> from server.app import create_app
    >>> from server.protocol import uvicorn_options
    >>> from server.settings import Settings
    >>> settings = Settings(bundle_dir="bundles/default")
    >>> uvicorn.run(create_app(settings), port=8000, **uvicorn_options(settings))

or ``copilot serve --bundle bundles/default`` (``uvicorn_options`` gives the HTTP parser with the
limit on headers, and JSON errors for requests it cannot parse).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy.orm import Session

from copilot import __version__
from copilot.llm import LLMSettings
from server.auth import KeyCache
from server.db import describe_url, make_engine, make_session_factory, migrate
from server.db import repository as repo
from server.errors import install_error_handlers
from server.llm_service import LLMService
from server.logs import configure_logging
from server.metrics import Metrics
from server.middleware import (
    BodyLimitMiddleware,
    HeaderLimitMiddleware,
    RequestContextMiddleware,
)
from server.routes import (
    admin,
    catalog,
    classify,
    conversations,
    customers,
    feedback,
    followups,
    guides,
    health,
    me,
    orders,
    rank,
    score,
    scripts,
    stores,
    suggest,
    tasks,
    ui,
)
from server.runtime import RuntimeHolder, build_runtime
from server.served import ServedLog
from server.settings import Settings, get_settings
from server.sync import StateSync

__all__ = ["create_app", "create_app_from_env"]

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Reply suggestions, ranking of given replies, classification, scoring, stored conversations, guide scorecards, feedback
and script management for Chinese social retail. Every `/v1` route needs
`Authorization: Bearer <api key>` (`copilot keys create`). Errors are JSON:
`{"error": {"status", "message", "request_id"}}`.
"""


def _startup_bundle(settings: Settings, session: Session) -> tuple[Path, int]:
    """The bundle a process starts with, and its reload generation.

    The configured bundle, unless a reload during this same server run (the same
    ``serve_id``) made another current: a worker process that restarts then serves what its
    siblings serve. A reload recorded by an earlier run is history, not an instruction.
    """
    state = repo.bundle_state(session)
    if state is None:
        return settings.bundle_dir, 0
    if settings.serve_id is not None and state.get("serve_id") == settings.serve_id:
        return Path(state["bundle_dir"]), int(state["generation"])
    return settings.bundle_dir, int(state["generation"])


def create_app_from_env() -> FastAPI:
    """The app of one ``copilot serve --workers N`` process: settings and log level from the
    ``COPILOT_*`` environment the parent set (``uvicorn --factory server.app:create_app_from_env``).
    """
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def create_app(settings: Settings | None = None, llm: LLMSettings | None = None) -> FastAPI:
    """Build the app; the bundle and the database are opened when it starts serving.

    Args:
        settings: the configuration; read from ``COPILOT_*`` environment variables when
            ``None``.
        llm: the optional LLM's settings; read from ``COPILOT_LLM_*`` when ``None``.

    Returns:
        The FastAPI app (OpenAPI at ``/docs``, Prometheus metrics at ``/metrics``).

    Example:
        >>> app = create_app(Settings(bundle_dir="bundles/default", database_url="sqlite:///x.db"))
    """
    settings = settings or get_settings()
    llm_settings = llm or LLMSettings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in anyio's thread pool. On a few cores, many threads only contend
        # for the GIL: a small pool serves as fast and keeps the slowest requests far faster.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        engine = make_engine(settings.database_url)
        served: ServedLog | None = None
        state_sync: StateSync | None = None
        llm_service: LLMService | None = None
        try:
            migrate(engine)
            factory = make_session_factory(engine)
            with factory() as session:
                bundle_dir, generation = _startup_bundle(settings, session)
            runtime = build_runtime(bundle_dir, settings.rubric)
            holder = RuntimeHolder(runtime, settings.rubric, generation)
            served = ServedLog(factory, settings.served_write_seconds).start()
            # Applies the stored pins, bans, feedback counts and catalogue now, then keeps up
            # with the other processes of this server.
            state_sync = StateSync(holder, factory, metrics, settings.sync_seconds).start()
            app.state.holder = holder
            app.state.session_factory = factory
            app.state.served = served
            app.state.key_cache = KeyCache(settings.auth_cache_seconds)
            app.state.llm = llm_service = LLMService(llm_settings)
            metrics.set_bundle(runtime.name)
            logger.info(
                "serving",
                extra={
                    "bundle": runtime.name,
                    "bundle_dir": str(bundle_dir),
                    "database": describe_url(settings.database_url),
                },
            )
            yield
        finally:
            if llm_service is not None:
                llm_service.close()
            if state_sync is not None:
                state_sync.close()
            if served is not None:
                served.close()
            engine.dispose()
            metrics.close()

    app = FastAPI(
        title="Sales copilot API",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    # The last added is the outermost: request ids and logs cover the size checks' answers.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeaderLimitMiddleware, max_bytes=settings.max_header_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    for module in (
        suggest,
        rank,
        classify,
        score,
        conversations,
        guides,
        stores,
        feedback,
        orders,
        customers,
        followups,
        tasks,
        catalog,
        scripts,
        admin,
        me,
        health,
        ui,
    ):
        app.include_router(module.router)
    return app
