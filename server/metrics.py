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
``feedback_total``                        counter    ``outcome``: accepted, edited, rejected
``bundle_reloads_total``                  counter    ``result``: ok, error
``bundle_info``                           gauge      ``bundle``: 1 for the bundle being served
========================================  =========  ============================================
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "UNMATCHED_ROUTE", "Metrics"]

UNMATCHED_ROUTE = "<unmatched>"
"""The ``route`` label of requests no route matched (keeps the label set small)."""

# Suggestions must come back in tens of milliseconds; scoring a batch can take seconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The metrics of one app, in a registry of their own.

    Example:
        >>> metrics = Metrics()
        >>> metrics.feedback.labels(outcome="accepted").inc()
        >>> body = metrics.render()
    """

    def __init__(self) -> None:
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
            "bundle_info", "The bundle being served (value 1).", ["bundle"], registry=self.registry
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one served request."""
        self.request_seconds.labels(method=method, route=route, status=str(status)).observe(seconds)

    def set_bundle(self, name: str) -> None:
        """Mark ``name`` as the bundle being served (and no other)."""
        self.bundle.clear()
        self.bundle.labels(bundle=name).set(1)

    def render(self) -> bytes:
        """The text exposition format of every metric, for ``GET /metrics``."""
        return generate_latest(self.registry)
