"""Win probability of each conversation, from the bundle's outcome model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from copilot.pipeline import Analyzer, Doc

if TYPE_CHECKING:
    from models.bundle import Bundle

__all__ = ["OutcomeAnalyzer"]


class OutcomeAnalyzer(Analyzer):
    """Assigns ``win_probability`` (``None`` when the bundle has no outcome model)."""

    name = "outcome"
    requires = ("labels",)
    assigns = ("win_probability",)

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        from models.outcome import outcome_features

        if self.bundle.outcome is None or not docs:
            return [{"win_probability": None} for _ in docs]
        rows = []
        for doc in docs:
            messages = doc.conversation.messages
            labels = [p.label if p else None for p in doc["labels"]]
            rows.append(
                outcome_features([m.role for m in messages], labels, [m.ts for m in messages])
            )
        probs = self.bundle.outcome.win_probability(rows)
        return [{"win_probability": float(p)} for p in probs]
