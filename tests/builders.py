"""Builders for test data: one place that knows how to make a valid conversation."""

from __future__ import annotations

from typing import Any

from copilot.schema import Conversation


def conversation_dict(
    conversation_id: str = "c-1",
    turns: list[tuple[str, str]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A canonical conversation as a plain dict; ``turns`` are ``(role, text)`` pairs."""
    turns = turns or [("customer", "在吗？这件有M码吗"), ("guide", "亲，在的～M码有货哦")]
    record: dict[str, Any] = {
        "conversation_id": conversation_id,
        "guide_id": "g-1",
        "customer_id": "u-1",
        "store_id": "s-1",
        "channel": "wecom",
        "messages": [
            {"role": role, "text": text, "ts": f"2026-03-08T10:{i:02d}:00+08:00"}
            for i, (role, text) in enumerate(turns)
        ],
    }
    record.update(fields)
    return record


def timed_conversation_dict(
    conversation_id: str, stamps: list[str], **fields: Any
) -> dict[str, Any]:
    """A canonical conversation dict whose messages (customer and guide in turn) were sent at
    ``stamps`` (ISO 8601 text; a stamp may be ``""`` for a message without a time)."""
    turns = [("customer" if i % 2 == 0 else "guide", f"消息{i}") for i in range(len(stamps))]
    record = conversation_dict(conversation_id, turns, **fields)
    for message, stamp in zip(record["messages"], stamps, strict=True):
        if stamp:
            message["ts"] = stamp
        else:
            del message["ts"]
    return record


def make_conversation(
    conversation_id: str = "c-1", turns: list[tuple[str, str]] | None = None, **fields: Any
) -> Conversation:
    """A validated :class:`Conversation` built from ``(role, text)`` turns."""
    return Conversation.model_validate(conversation_dict(conversation_id, turns, **fields))


def make_report(
    conversation_id: str = "c-1",
    scores: dict[str, float | None] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A score report dict (``copilot.scoring.report`` shape) with the given dimension scores.

    ``overall`` defaults to the plain mean of the scores that apply; ``evidence`` maps a
    dimension to the reason of its first piece of evidence.
    """
    scores = {"responsiveness": 80.0, "closing": 60.0} if scores is None else scores
    evidence: dict[str, str] = fields.pop("evidence", {})
    applied = [s for s in scores.values() if s is not None]
    report: dict[str, Any] = {
        "conversation_id": conversation_id,
        "guide_id": "g-1",
        "store_id": "s-1",
        "started_at": "2026-03-02T10:00:00+08:00",
        "overall": round(sum(applied) / len(applied), 1) if applied else None,
        "dimensions": {
            d: {
                "score": s,
                "name": d,
                "evidence": [{"message_index": 1, "reason": evidence[d], "points": -10.0}]
                if d in evidence
                else [],
            }
            for d, s in scores.items()
        },
        "flags": [],
        "win_probability": 0.5,
        "converted": None,
    }
    report.update(fields)
    return report
