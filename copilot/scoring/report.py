"""The score report of one conversation (``docs/formats.md``), and its flat row form.

A report::

    {"conversation_id": "c-001", "guide_id": "g-12", "store_id": "s-3", "customer_id": "u-9",
     "channel": "wecom", "started_at": "2026-03-08T10:01:02+08:00", "ended_at": "...",
     "n_messages": 12, "overall": 72.5,
     "dimensions": {"responsiveness": {"score": 90.0, "name": "响应及时",
                    "evidence": [{"message_index": 3, "reason": "...", "points": -10.0}]}, ...},
     "flags": [{"kind": "compliance", "rule": "absolute_claim", "severity": "high",
                "message_index": 5, "start": 4, "end": 8, "excerpt": "...", "explanation": "..."},
               {"kind": "timing", "rule": "unanswered", "severity": "medium",
                "message_index": 7, "excerpt": "...", "explanation": "..."}],
     "timing": {"first_response_s": 38.0, "median_reply_s": 95.0, "unanswered": 1, "late": 0},
     "sentiment": {"start": 0.2, "end": -0.5, "min": -0.5, "trend": -0.7},
     "signals": {"end_sentiment": -0.5, "follow_ups": 2.0, "guide_reply_length": 2.4, ...},
     "messages": [{"index": 0, "role": "customer", "intent": "stock", "confidence": 0.91,
                   "sentiment": 0.0}, {"index": 1, "role": "guide", "action": "logistics_info",
                   "confidence": 0.88}, ...],
     "win_probability": 0.63, "converted": true, "order_amount": 399.0,
     "bundle": "default@<hash>", "rubric": "default@1"}

A dimension that does not apply to a conversation (no objection raised, so nothing to handle) has
``score: null`` and is left out of the overall score. CSV and Parquet outputs hold the flat row
form (:func:`flatten_report`): scalars as columns, ``dim_<id>`` per dimension, the nested parts as
JSON text; :func:`unflatten_report` turns a row back into the report. ``signals`` holds the summed
value of each evidence signal found (:mod:`copilot.analyzers.signals`; an absent one is 0), what
``copilot calibrate`` fits the experience points on; the signals themselves, each on its message,
are the experience dimension's evidence.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson

from copilot.scoring.rubric import DIMENSIONS

if TYPE_CHECKING:
    from copilot.pipeline import Doc
    from copilot.taxonomy import Taxonomy

__all__ = [
    "REPORT_COLUMNS",
    "REPORT_COLUMN_KINDS",
    "ColumnKind",
    "build_report",
    "flatten_report",
    "unflatten_report",
]

ColumnKind = Literal["str", "int", "float", "bool", "json"]
"""What a flat column holds; ``json`` is a nested part of the report as JSON text."""

_SCALARS: dict[str, ColumnKind] = {
    "conversation_id": "str",
    "guide_id": "str",
    "store_id": "str",
    "customer_id": "str",
    "channel": "str",
    "started_at": "str",
    "ended_at": "str",
    "n_messages": "int",
    "overall": "float",
    "win_probability": "float",
    "converted": "bool",
    "order_amount": "float",
    "bundle": "str",
    "rubric": "str",
}
_NESTED = ("dimensions", "flags", "timing", "sentiment", "signals", "messages")
REPORT_COLUMN_KINDS: dict[str, ColumnKind] = {
    **_SCALARS,
    **{f"dim_{d}": "float" for d in DIMENSIONS},
    "n_flags": "int",
    **{k: "json" for k in _NESTED},
}
"""Every column of the flat (CSV / Parquet) form, in order, with what it holds: the one list
the writers (:mod:`copilot.batch.outputs`) and :func:`unflatten_report` read."""
REPORT_COLUMNS = tuple(REPORT_COLUMN_KINDS)
"""Columns of the flat (CSV / Parquet) form, in order."""


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(float(x), digits)


def build_report(doc: Doc, taxonomy: Taxonomy, bundle: str, rubric: str) -> dict[str, Any]:
    """The report of one analysed doc (see the module docstring for the shape)."""
    conv = doc.conversation
    stamps = [m.ts for m in conv.messages if m.ts is not None]
    labels = doc["labels"]
    sentiment = doc["sentiment"]
    messages: list[dict[str, Any]] = []
    for i, m in enumerate(conv.messages):
        row: dict[str, Any] = {"index": i, "role": m.role}
        pred = labels[i]
        if pred is not None:
            row["intent" if m.role == "customer" else "action"] = pred.label
            row["confidence"] = _round(pred.confidence)
        if m.role == "customer" and sentiment.scores[i] is not None:
            row["sentiment"] = _round(sentiment.scores[i])
        messages.append(row)
    timing = doc["timing"]
    dimensions = {
        d: {
            "score": _round(s.score, 1),
            "name": taxonomy.name_of(d),
            "evidence": [e.as_dict() for e in s.evidence],
        }
        for d, s in doc["dimensions"].items()
    }
    flags = [f.as_dict() for f in doc["compliance"]] + [f.as_dict() for f in timing.flags]
    flags.sort(key=lambda f: f["message_index"])
    outcome = conv.outcome
    return {
        "conversation_id": conv.conversation_id,
        "guide_id": conv.guide_id,
        "store_id": conv.store_id,
        "customer_id": conv.customer_id,
        "channel": conv.channel,
        "started_at": _iso(min(stamps)) if stamps else None,
        "ended_at": _iso(max(stamps)) if stamps else None,
        "n_messages": len(conv.messages),
        "overall": doc["overall"],
        "dimensions": dimensions,
        "flags": flags,
        "timing": timing.summary(),
        "sentiment": sentiment.summary(),
        "signals": doc["signals"].totals(),
        "messages": messages,
        "win_probability": _round(doc["win_probability"]),
        "converted": outcome.converted if outcome else None,
        "order_amount": outcome.order_amount if outcome else None,
        "bundle": bundle,
        "rubric": rubric,
    }


def flatten_report(report: dict[str, Any]) -> dict[str, Any]:
    """The flat row of a report: scalars, ``dim_<id>`` scores, ``n_flags``, nested parts as JSON."""
    row = {k: report.get(k) for k in _SCALARS}
    dims = report.get("dimensions") or {}
    for d in DIMENSIONS:
        row[f"dim_{d}"] = (dims.get(d) or {}).get("score")
    row["n_flags"] = len(report.get("flags") or [])
    for k in _NESTED:
        row[k] = orjson.dumps(report.get(k)).decode()
    return row


def unflatten_report(row: dict[str, Any]) -> dict[str, Any]:
    """The report of a flat row (the inverse of :func:`flatten_report`)."""
    report = {k: _typed(k, row.get(k)) for k in _SCALARS}
    for k in _NESTED:
        value = row.get(k)
        report[k] = orjson.loads(value) if isinstance(value, str | bytes) and value else value
    return report


def _typed(key: str, value: Any) -> Any:
    """Undo CSV's stringification of a scalar column (Parquet and JSONL keep types)."""
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    kind = _SCALARS[key]
    if kind == "float":
        return float(value)
    if kind == "int":
        return int(value)
    if kind == "bool":
        return value.lower() in ("true", "1")
    return value
