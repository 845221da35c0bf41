"""Value types that analyzers attach to a conversation: flags, evidence and dimension scores.

They are plain frozen dataclasses with ``as_dict`` for reports; the pipeline stores them under the
analyzer's annotation keys (see :mod:`copilot.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from copilot.text import mask_pii

__all__ = ["DimensionScore", "Evidence", "Flag", "excerpt_of"]


def excerpt_of(text: str, limit: int = 60) -> str:
    """A message as a supervisor may see it: personal data masked, cut to ``limit`` characters."""
    masked, _ = mask_pii(text)
    masked = " ".join(masked.split())
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"


@dataclass(frozen=True)
class Flag:
    """Something a supervisor should look at, on one message.

    Attributes:
        kind: ``compliance`` or ``timing``.
        rule: the rule id (``absolute_claim``, ``unanswered``, ...).
        severity: ``high``, ``medium`` or ``low``.
        message_index: the message it is about.
        excerpt: the text concerned, personal data masked.
        explanation: why it matters, in Chinese.
        start, end: the span in the original message text, when the rule matched one.
    """

    kind: str
    rule: str
    severity: str
    message_index: int
    excerpt: str
    explanation: str
    start: int | None = None
    end: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "rule": self.rule,
            "severity": self.severity,
            "message_index": self.message_index,
            "excerpt": self.excerpt,
            "explanation": self.explanation,
        }
        if self.start is not None:
            out["start"], out["end"] = self.start, self.end
        return out


@dataclass(frozen=True)
class Evidence:
    """Why a dimension scored what it did: the message and a reason in Chinese.

    ``points`` is the deduction (negative) this message caused; 0 for evidence of good practice.
    """

    message_index: int
    reason: str
    points: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "message_index": self.message_index,
            "reason": self.reason,
            "points": round(self.points, 1),
        }


@dataclass(frozen=True)
class DimensionScore:
    """One dimension's score (0-100, ``None`` when it does not apply) and its evidence."""

    score: float | None
    evidence: list[Evidence] = field(default_factory=list)
