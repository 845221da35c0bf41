"""Win probability of a conversation, or of any prefix of it.

Features come from :meth:`models.state.ConversationState.outcome_features` (what the customer
asked, what the guide did, how fast, open objections and purchase signals). Training uses each
whole conversation plus one random prefix of it, so that live, unfinished conversations get
sensible probabilities too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from models.linear import DictClassifier
from models.state import ConversationState

__all__ = ["OutcomeModel", "outcome_features"]

_WON, _LOST = "won", "lost"


class OutcomeModel(DictClassifier):
    """Logistic win probability from outcome features."""

    kind = "outcome"

    def fit_outcomes(
        self, rows: Sequence[dict[str, float]], converted: Sequence[bool]
    ) -> OutcomeModel:
        self.fit(rows, [_WON if c else _LOST for c in converted])
        return self

    def win_probability(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        """P(converted) for each row."""
        proba = self.predict_proba(rows)
        return proba[:, self.classes_.index(_WON)] if _WON in self.classes_ else np.zeros(len(rows))


def outcome_features(
    roles: Sequence[str],
    labels: Sequence[str | None],
    stamps: Sequence[datetime | None] | None = None,
    upto: int | None = None,
) -> dict[str, float]:
    """Outcome features of messages ``0..upto-1`` (all when ``upto`` is None)."""
    n = len(roles) if upto is None else upto
    state = ConversationState()
    for i in range(n):
        state.update(roles[i], labels[i], stamps[i] if stamps else None)
    if n == len(roles):
        state.finish()
    return state.outcome_features()


def outcome_examples(
    roles: Sequence[str],
    labels: Sequence[str | None],
    stamps: Sequence[datetime | None] | None,
    rng: random.Random,
) -> list[dict[str, float]]:
    """The whole conversation and one random prefix of it, as outcome feature rows."""
    rows = [outcome_features(roles, labels, stamps)]
    if len(roles) > 2:
        rows.append(outcome_features(roles, labels, stamps, upto=rng.randrange(2, len(roles))))
    return rows


__all__ += ["outcome_examples"]
