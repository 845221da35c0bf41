"""A stand-in scorer for the engine-mechanics tests: instant, deterministic, fails on demand.

It produces reports of the real shape (so the flat CSV / Parquet forms apply) from cheap facts of
the conversation, and raises on any conversation with a message containing ``BOOM``, so tests can
check that a failing conversation becomes a quarantine line and its neighbours are still scored.
The integration tests use the real :class:`copilot.scoring.scorer.Scorer`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from copilot.schema import Conversation
from copilot.scoring.rubric import DIMENSIONS


def make_stub_bundle(directory: Path) -> Path:
    """A directory with just the manifest the engine reads (name and id)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_text(
        json.dumps({"name": "stub", "id": "0123456789abcdef"}), encoding="utf-8"
    )
    return directory


class StubScorer:
    """``score_many`` like the real scorer's, without any model."""

    def __init__(self, bundle: str, rubric: str | None) -> None:
        self.bundle = f"stub@{Path(bundle).name}"
        self.rubric = "default@1" if rubric is None else f"file@{Path(rubric).name}"

    @classmethod
    def load(cls, bundle: str | Path, rubric: str | Path | None = None) -> StubScorer:
        return cls(str(bundle), None if rubric is None else str(rubric))

    def score_many(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
        for conversation in conversations:
            if any("BOOM" in m.text for m in conversation.messages):
                raise ValueError(f"cannot score {conversation.conversation_id}")
        return [self._report(c) for c in conversations]

    def _report(self, conversation: Conversation) -> dict[str, Any]:
        chars = sum(len(m.text) for m in conversation.messages)
        outcome = conversation.outcome
        return {
            "conversation_id": conversation.conversation_id,
            "guide_id": conversation.guide_id,
            "store_id": conversation.store_id,
            "customer_id": conversation.customer_id,
            "channel": conversation.channel,
            "started_at": None,
            "ended_at": None,
            "n_messages": len(conversation.messages),
            "overall": float(chars % 101),
            "dimensions": {
                d: {"score": float((chars + i) % 100), "name": d, "evidence": []}
                for i, d in enumerate(DIMENSIONS)
            },
            "flags": [],
            "timing": {"first_response_s": None},
            "sentiment": {"start": 0.0},
            "signals": {},
            "messages": [{"index": i, "role": m.role} for i, m in enumerate(conversation.messages)],
            "win_probability": 0.5,
            "converted": outcome.converted if outcome else None,
            "order_amount": outcome.order_amount if outcome else None,
            "bundle": self.bundle,
            "rubric": self.rubric,
        }


STUB_SCORER = StubScorer.load
"""The stub's factory, as a :class:`copilot.batch.ScoreJob` takes it (it pickles by name)."""
