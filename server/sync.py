"""Keeps one server process up to date with what the others stored.

``copilot serve --workers N`` runs N processes, each with its own models in memory. A request
that pins a script, gives feedback, posts the catalogue or reloads the bundle changes the
database and the process that served it; every other process picks the change up from the
database within ``COPILOT_SYNC_SECONDS`` (:func:`server.service.sync`,
:func:`server.catalog_service.sync_catalog`)::

    worker 1:  POST /v1/scripts/7/pin  -> stored, applied in worker 1 at once
    worker 2:  StateSync, every 2 s    -> reads script_states, sees 7 pinned, applies it

The same goes for several servers on one PostgreSQL database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from server import catalog_service, service
from server.metrics import Metrics
from server.runtime import RuntimeHolder

__all__ = ["StateSync"]

logger = logging.getLogger(__name__)


class StateSync:
    """A background thread that calls :func:`server.service.sync` and
    :func:`server.catalog_service.sync_catalog` every ``interval`` seconds.

    Args:
        holder: this process's runtime holder.
        session_factory: opens database sessions.
        metrics: updated when a reload is followed.
        interval: seconds between checks (0: no thread; :meth:`run_once` still works).
    """

    def __init__(
        self,
        holder: RuntimeHolder,
        session_factory: Callable[[], Session],
        metrics: Metrics,
        interval: float,
    ) -> None:
        self.holder = holder
        self.interval = interval
        self._factory = session_factory
        self._metrics = metrics
        self._seen: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> StateSync:
        """Check once now (to learn the current versions), then start the thread."""
        self.run_once()
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="state-sync", daemon=True)
            self._thread.start()
        return self

    def run_once(self) -> None:
        """Catch up now (errors propagate)."""
        with self._factory() as session:
            service.sync(self.holder, session, self._metrics, self._seen)
            catalog_service.sync_catalog(self.holder, session, self._seen)

    def close(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # never let the thread die: the next round may succeed
                logger.exception("could not catch up with the other server processes")
