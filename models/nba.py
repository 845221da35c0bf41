"""Next-best action: from the conversation so far to a ranked list of guide actions.

Learned from what guides did next in conversations that converted: at every customer turn that a
guide answered, the state of the conversation (current and previous intent, what the guide has
already done, open purchase signals and objections, position; see
:meth:`models.state.ConversationState.nba_features`) is paired with the guide's next action.
The baseline it must beat is "the most frequent winning action for this intent".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.linear import DictClassifier
from models.state import walk

__all__ = ["IntentBaseline", "NextBestActionModel", "Turn", "nba_examples"]


class NextBestActionModel(DictClassifier):
    """Ranks guide actions for the next reply given state features (``nba_features``)."""

    kind = "next-best-action"

    def rank(self, row: dict[str, float], k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable next actions with their probabilities."""
        proba = self.predict_proba([row])[0]
        order = proba.argsort()[::-1][:k]
        return [(self.classes_[i], float(proba[i])) for i in order]


@dataclass(frozen=True)
class Turn:
    """One decision point: the state features, the current intent and the guide's next action."""

    features: dict[str, float]
    intent: str
    action: str


def nba_examples(
    roles: Sequence[str],
    labels: Sequence[str | None],
    stamps: Sequence[datetime | None] | None = None,
) -> list[Turn]:
    """Decision points of one conversation: each customer message that a guide message follows.

    The state is read after the customer's last message of a turn, and the target is the first
    action of the guide's reply. Messages without a label are skipped as targets.
    """
    out = []
    for i, state in walk(roles, labels, stamps):
        nxt = i + 1
        if roles[i] != "customer" or nxt >= len(roles) or roles[nxt] != "guide":
            continue
        action, intent = labels[nxt], labels[i]
        if action is None or intent is None:
            continue
        out.append(Turn(state.nba_features(), intent, action))
    return out


class IntentBaseline:
    """The most frequent winning action for each intent (ties: alphabetical), then overall."""

    def fit(self, turns: Iterable[Turn]) -> IntentBaseline:
        by_intent: dict[str, Counter[str]] = defaultdict(Counter)
        overall: Counter[str] = Counter()
        for turn in turns:
            by_intent[turn.intent][turn.action] += 1
            overall[turn.action] += 1
        self.ranking_ = {
            intent: [a for a, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]
            for intent, c in by_intent.items()
        }
        self.overall_ = [a for a, _ in sorted(overall.items(), key=lambda kv: (-kv[1], kv[0]))]
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"ranking": self.ranking_, "overall": self.overall_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntentBaseline:
        baseline = cls()
        baseline.ranking_ = {k: list(v) for k, v in data["ranking"].items()}
        baseline.overall_ = list(data["overall"])
        return baseline

    def rank(self, intent: str, k: int = 3) -> list[str]:
        ranked = list(self.ranking_.get(intent, []))
        ranked += [a for a in self.overall_ if a not in ranked]
        return ranked[:k]
