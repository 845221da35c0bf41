"""The log of served suggestions, written to the database in batches off the request path.

``POST /v1/suggest`` must answer in milliseconds; a database commit per request (and, with
several worker processes on SQLite, a wait for the one write lock) would be most of that. So a
request only builds its rows (with their ``sg_`` ids, made here) and queues them; a background
thread writes what is queued every ``interval`` seconds in one transaction::

    request:  rows = served_rows(...); log.add(rows); answer with the ids      <- no database
    thread:   every interval: insert everything queued, commit                  <- one write

Nothing is lost on a clean shutdown (:meth:`ServedLog.close` writes the rest); a process that
is killed loses at most the last ``interval`` of served-suggestion records (never feedback or
conversations, which are written before their request answers). Code that reads served rows
calls :meth:`ServedLog.flush` first, so this process always reads its own suggestions; feedback
on a suggestion another process served waits up to one interval for it (see
:func:`server.service.record_feedback`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from server.db import repository as repo

__all__ = ["ServedLog"]

logger = logging.getLogger(__name__)


class ServedLog:
    """Queues served-suggestion rows and writes them in batches from a background thread.

    Args:
        session_factory: opens database sessions.
        interval: seconds between writes (0: write at once, in the caller's thread).
        max_pending: rows kept while the database refuses writes; older rows beyond this are
            dropped, each drop logged as an error and counted in :attr:`dropped`.

    Example:
        >>> log = ServedLog(factory, interval=0.2).start()
        >>> log.add(repo.served_rows(conversation_id="c-1", guide_id="g-1", store_id=None,
        ...                          message_index=3, suggestions=suggestions))
        >>> log.close()   # writes what is left
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        interval: float = 0.2,
        max_pending: int = 100_000,
    ) -> None:
        self._factory = session_factory
        self.interval = interval
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # one writer at a time, so rows stay in order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ServedLog:
        """Start the writer thread (nothing to start when ``interval`` is 0)."""
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="served-log", daemon=True)
            self._thread.start()
        return self

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue rows from :func:`~server.db.repository.served_rows` (written at once when the
        log has no thread)."""
        with self._lock:
            self._pending.extend(rows)
        if self._thread is None:
            self.flush()

    def pending(self) -> int:
        """Rows queued and not yet written."""
        with self._lock:
            return len(self._pending)

    def flush(self) -> None:
        """Write every queued row now, in the caller's thread.

        Raises:
            SQLAlchemyError: the database refused the write (the rows stay queued).
        """
        with self._write_lock:
            with self._lock:
                rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                with self._factory() as session:
                    repo.insert_served(session, rows)
                    session.commit()
            except SQLAlchemyError:
                with self._lock:
                    self._pending[:0] = rows  # back in front, in order
                    self._trim()
                raise

    def close(self) -> None:
        """Stop the thread and write what is left (logged, not raised, if the write fails)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        try:
            self.flush()
        except SQLAlchemyError:
            logger.exception("could not write %d served suggestions at shutdown", self.pending())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except SQLAlchemyError as exc:  # the database is away or locked: retry next time
                logger.error(
                    "could not write served suggestions (%d queued), will retry: %s",
                    self.pending(),
                    exc,
                )

    def _trim(self) -> None:
        extra = len(self._pending) - self.max_pending
        if extra > 0:
            del self._pending[:extra]
            self.dropped += extra
            logger.error(
                "dropped the %d oldest served-suggestion records: the database refused writes "
                "for too long (%d queued at most)",
                extra,
                self.max_pending,
            )
