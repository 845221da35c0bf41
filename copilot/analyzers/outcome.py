"""Win probability of each conversation, from the model's outcome part."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from copilot.pipeline import Analyzer, Doc
from copilot.schema import Conversation

__all__ = ["OutcomeAnalyzer", "WinModel"]


class WinModel(Protocol):
    """What :class:`OutcomeAnalyzer` asks of a model (``models.bundle.Bundle`` is one)."""

    def win_probabilities(
        self,
        conversations: Sequence[Conversation],
        labels: Sequence[Sequence[str | None]],
    ) -> list[float] | None:
        """P(converted) of each conversation given one label per message; ``None`` when the
        model has no outcome part."""
        ...


class OutcomeAnalyzer(Analyzer):
    """Assigns ``win_probability`` (``None`` when the model has no outcome part)."""

    name = "outcome"
    requires = ("labels",)
    assigns = ("win_probability",)

    def __init__(self, bundle: WinModel) -> None:
        self.bundle = bundle

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        labels = [[p.label if p else None for p in doc["labels"]] for doc in docs]
        probs = self.bundle.win_probabilities([doc.conversation for doc in docs], labels)
        if probs is None:
            return [{"win_probability": None} for _ in docs]
        return [{"win_probability": p} for p in probs]
