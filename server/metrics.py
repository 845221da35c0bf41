"""Prometheus metrics of one app, served at ``GET /metrics``.

Each app has its own :class:`~prometheus_client.CollectorRegistry` (not the process-global one),
so tests and embedders can build several apps in one process.

========================================  =========  ============================================
metric                                    type       labels
========================================  =========  ============================================
``http_request_duration_seconds``         histogram  ``method``, ``route`` (the template, e.g.
                                                     ``/v1/conversations/{conversation_id}``),
                                                     ``status``
``suggestions_served_total``              counter    (none): suggestions returned by /v1/suggest
``candidates_ranked_total``               counter    (none): candidate replies ranked by /v1/rank
``feedback_total``                        counter    ``outcome``: accepted, edited, rejected
``bundle_reloads_total``                  counter    ``result``: ok, error
``bundle_info``                           gauge      ``bundle``: 1 for the bundle being served
                                                     (several workers: 1 for each bundle some
                                                     live worker serves, 0 for one none does)
========================================  =========  ============================================

Several worker processes (``copilot serve --workers N``)
--------------------------------------------------------
Each uvicorn worker is its own process with its own counters, so ``/metrics`` would show only
the worker that answered. When the environment variable ``PROMETHEUS_MULTIPROC_DIR`` names a
directory, prometheus_client's multiprocess mode is on: every process writes its values to
mmap files there and :meth:`Metrics.render` adds up all the processes' files
(:class:`~prometheus_client.multiprocess.MultiProcessCollector` on a fresh registry per
scrape), whichever worker answers:

- counters and the histogram are summed over every process that ever wrote (a worker that
  exited still counts, so the totals never go back);
- ``bundle_info`` uses the ``livemax`` mode: per ``bundle`` label, the largest value among the
  live processes, so a bundle shows 1 while at least one live worker serves it. A reload
  (``POST /v1/admin/reload``) reaches only the worker that answered it, so two bundles can show
  1 at once. prometheus_client cannot remove a label in this mode, so a bundle a worker stopped
  serving is set to 0 (not dropped).

What the serving side must do:

- prometheus_client picks its value class (mmap files or in-process floats) once, when
  ``prometheus_client`` is first imported (``prometheus_client.values.ValueClass``, 0.26). The
  parent must therefore set ``PROMETHEUS_MULTIPROC_DIR`` to a fresh empty directory in its
  ``os.environ`` *before* the workers start: uvicorn spawns each worker as a fresh interpreter
  that inherits the environment, so setting it before ``uvicorn.run(..., workers=N)`` is enough,
  even though the parent itself already imported prometheus_client. Do not set it for a single
  in-process server: :class:`Metrics` refuses to start when the variable is set after
  prometheus_client was imported without it (its values would never reach the files).
- Each worker calls :meth:`Metrics.close` when it shuts down (the app lifespan's exit), which
  removes its ``bundle_info`` file (:func:`~prometheus_client.multiprocess.mark_process_dead`).
  A worker killed outright (SIGKILL, OOM) cannot; its last ``bundle_info`` stays in the sums
  until the directory is replaced at the next start.
- In this mode the values live in files per process, not per app: two :class:`Metrics` built
  in one process share them. Serve one app per worker.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROC_DIR_ENV", "UNMATCHED_ROUTE", "Metrics"]

UNMATCHED_ROUTE = "<unmatched>"
"""The ``route`` label of requests no route matched (keeps the label set small)."""

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""The environment variable that turns prometheus_client's multiprocess mode on."""

# Suggestions must come back in tens of milliseconds; scoring a batch can take seconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _multiprocess_dir() -> Path | None:
    """The multiprocess directory, or ``None`` in single-process mode.

    Raises:
        RuntimeError: the variable is set but is no directory, or was set after
            prometheus_client was imported (so values would stay in this process).
    """
    raw = os.environ.get(MULTIPROC_DIR_ENV)
    if not raw:
        return None
    path = Path(raw)
    if not path.is_dir():
        raise RuntimeError(f"{MULTIPROC_DIR_ENV}={raw!r} is not a directory")
    if values.ValueClass is values.MutexValue:
        raise RuntimeError(
            f"{MULTIPROC_DIR_ENV} was set after prometheus_client was imported; set it before "
            "the worker processes start (and not for a single in-process server)"
        )
    return path


class Metrics:
    """The metrics of one app, in a registry of their own.

    With ``PROMETHEUS_MULTIPROC_DIR`` set, the values go to that directory and :meth:`render`
    adds up every process's (see the module notes).

    Example:
        >>> metrics = Metrics()
        >>> metrics.feedback.labels(outcome="accepted").inc()
        >>> body = metrics.render()
        >>> metrics.close()
    """

    def __init__(self) -> None:
        self.multiprocess_dir = _multiprocess_dir()
        """The directory every process writes to; ``None`` in single-process mode."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "http_request_duration_seconds",
            "Time to serve a request, by method, route template and status code.",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.suggestions_served = Counter(
            "suggestions_served",
            "Suggestions returned by POST /v1/suggest (each has a served id).",
            registry=self.registry,
        )
        self.candidates_ranked = Counter(
            "candidates_ranked",
            "Candidate replies ranked by POST /v1/rank.",
            registry=self.registry,
        )
        self.feedback = Counter(
            "feedback",
            "Feedback on served suggestions, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("accepted", "edited", "rejected"):
            self.feedback.labels(outcome=outcome)  # export zeros before the first feedback
        self.reloads = Counter(
            "bundle_reloads",
            "Bundle reloads (POST /v1/admin/reload), by result.",
            ["result"],
            registry=self.registry,
        )
        self.bundle = Gauge(
            "bundle_info",
            "The bundle being served (value 1).",
            ["bundle"],
            registry=self.registry,
            multiprocess_mode="livemax",  # ignored in single-process mode
        )
        self._bundles: set[str] = set()  # the bundle labels this process has set

    @property
    def multiprocess(self) -> bool:
        """Whether the values are shared with other processes (``PROMETHEUS_MULTIPROC_DIR``)."""
        return self.multiprocess_dir is not None

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one served request."""
        self.request_seconds.labels(method=method, route=route, status=str(status)).observe(seconds)

    def set_bundle(self, name: str) -> None:
        """Mark ``name`` as the bundle being served (and no other, by this process)."""
        if self.multiprocess:
            # Labels cannot be removed from the mmap files (clear() only warns): zero them.
            for old in self._bundles - {name}:
                self.bundle.labels(bundle=old).set(0)
        else:
            self.bundle.clear()
        self._bundles.add(name)
        self.bundle.labels(bundle=name).set(1)

    def render(self) -> bytes:
        """The text exposition format of every metric, for ``GET /metrics``.

        In multiprocess mode, the sums over every process's files (whichever process renders).
        """
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        return generate_latest(registry)

    def close(self) -> None:
        """Mark this process dead at shutdown (multiprocess mode; does nothing otherwise).

        Drops this process's ``bundle_info`` from the sums; its counters keep counting.
        Safe to call more than once.
        """
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self.multiprocess_dir))
