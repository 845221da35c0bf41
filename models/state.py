"""What has happened in a conversation so far, as features.

One pass over a conversation's messages (with an intent for each customer message and an action
for each guide message, gold or predicted) keeps a running :class:`ConversationState`. The
next-best-action model reads it at every customer turn; the outcome model reads it at the end of
any prefix. Label ids are read from the taxonomy passed in: the groups below name the default
taxonomy's ids, and ids a brand's taxonomy does not have simply never fire.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["ConversationState", "walk"]

# Default-taxonomy ids whose meaning the state tracks; unknown ids are ignored, never an error.
_OBJECTIONS = frozenset({"price_objection", "trust_objection", "hesitation"})
_HANDLERS = frozenset(
    {"handle_price_objection", "build_trust", "follow_up_later", "share_promotion"}
)
_DISCOVERY = frozenset({"greet_and_discover", "size_advice"})
_NO_ANSWER_NEEDED = frozenset({"thanks_closing", "other"})


def _bucket(n: int) -> str:
    return (
        "0"
        if n <= 0
        else "1"
        if n == 1
        else "2"
        if n == 2
        else "3-5"
        if n <= 5
        else "6-10"
        if n <= 10
        else "11+"
    )


@dataclass
class ConversationState:
    """A running summary of a conversation, updated one message at a time."""

    n_messages: int = 0
    n_customer: int = 0
    n_guide: int = 0
    guide_first: bool = False
    last_intent: str | None = None
    prev_intent: str | None = None
    last_action: str | None = None
    intents_seen: dict[str, int] = field(default_factory=dict)
    actions_done: dict[str, int] = field(default_factory=dict)
    purchase_open: bool = False  # a purchase signal no close_sale has followed yet
    objection_open: bool = False  # an objection no handling reply has followed yet
    objections: int = 0
    objections_handled: int = 0
    waiting: int = 0  # customer messages since the last guide message
    unanswered: int = 0  # a final customer turn that needed an answer and got none
    latencies: list[float] = field(default_factory=list)
    first_response_s: float | None = None
    _last_customer_ts: datetime | None = None
    _turn_needs_answer: bool = False

    def update(self, role: str, label: str | None, ts: datetime | None = None) -> None:
        """Add one message: ``label`` is its intent (customer) or action (guide)."""
        if self.n_messages == 0:
            self.guide_first = role == "guide"
        self.n_messages += 1
        if role == "customer":
            self.n_customer += 1
            self.waiting += 1
            if self._last_customer_ts is None or self.waiting == 1:
                self._last_customer_ts = ts
            if label is not None:
                self.prev_intent, self.last_intent = self.last_intent, label
                self.intents_seen[label] = self.intents_seen.get(label, 0) + 1
                if label == "purchase_intent":
                    self.purchase_open = True
                if label in _OBJECTIONS:
                    self.objection_open = True
                    self.objections += 1
                if label not in _NO_ANSWER_NEEDED:
                    self._turn_needs_answer = True
        elif role == "guide":
            self.n_guide += 1
            if self.waiting and self._last_customer_ts is not None and ts is not None:
                seconds = max((ts - self._last_customer_ts).total_seconds(), 0.0)
                self.latencies.append(seconds)
                if self.first_response_s is None:
                    self.first_response_s = seconds
            self.waiting = 0
            self._turn_needs_answer = False
            if label is not None:
                self.last_action = label
                self.actions_done[label] = self.actions_done.get(label, 0) + 1
                if label == "close_sale":
                    self.purchase_open = False
                if self.objection_open and label in _HANDLERS:
                    self.objection_open = False
                    self.objections_handled += 1

    def finish(self) -> None:
        """Count a final customer turn that needed an answer and got none."""
        if self.waiting and self._turn_needs_answer:
            self.unanswered += 1

    # ------------------------------------------------------------------ features

    def nba_features(self) -> dict[str, float]:
        """Sparse features for choosing the guide's next action (at a customer turn)."""
        intent = self.last_intent or "none"
        flags = {
            "purchase_open": self.purchase_open,
            "objection_open": self.objection_open,
            "discovered": any(a in self.actions_done for a in _DISCOVERY),
            "recommended": "recommend_product" in self.actions_done,
            "promoted": "share_promotion" in self.actions_done,
            "closed": "close_sale" in self.actions_done,
            "price_objection_seen": "price_objection" in self.intents_seen,
            "guide_first": self.guide_first,
            "late": self.n_messages >= 6,
        }
        out: dict[str, float] = {
            f"intent={intent}": 1.0,
            f"prev_intent={self.prev_intent or 'none'}": 1.0,
            f"last_action={self.last_action or 'none'}": 1.0,
            f"pos={_bucket(self.n_messages)}": 1.0,
            f"waiting={_bucket(self.waiting)}": 1.0,
        }
        for name, on in flags.items():
            if on:
                out[name] = 1.0
                # The right reply to an intent depends on the state: cross them.
                out[f"intent={intent}&{name}"] = 1.0
        for action in self.actions_done:
            out[f"done={action}"] = 1.0
        for seen in self.intents_seen:
            out[f"seen={seen}"] = 1.0
        return out

    def outcome_features(self) -> dict[str, float]:
        """Dense-ish features of the conversation so far, for its win probability."""
        lat = self.latencies
        out: dict[str, float] = {
            "log_messages": math.log1p(self.n_messages),
            "customer_share": self.n_customer / max(self.n_messages, 1),
            "guide_first": float(self.guide_first),
            "purchase_open": float(self.purchase_open),
            "objection_open": float(self.objection_open),
            "objections": float(self.objections),
            "objections_handled_share": self.objections_handled / self.objections
            if self.objections
            else 1.0,
            "unanswered": float(
                self.unanswered + (1 if self.waiting and self._turn_needs_answer else 0)
            ),
            "waiting": float(min(self.waiting, 5)),
            "log_first_response": math.log1p(self.first_response_s)
            if self.first_response_s is not None
            else 0.0,
            "no_response": float(self.first_response_s is None),
            "log_median_latency": math.log1p(sorted(lat)[len(lat) // 2]) if lat else 0.0,
            "log_max_latency": math.log1p(max(lat)) if lat else 0.0,
        }
        for intent, count in self.intents_seen.items():
            out[f"n_intent={intent}"] = math.log1p(count)
        for action, count in self.actions_done.items():
            out[f"n_action={action}"] = math.log1p(count)
        if self.last_intent:
            out[f"last_intent={self.last_intent}"] = 1.0
        if self.last_action:
            out[f"last_action={self.last_action}"] = 1.0
        return out


def walk(
    roles: Sequence[str],
    labels: Sequence[str | None],
    stamps: Sequence[datetime | None] | None = None,
) -> Iterator[tuple[int, ConversationState]]:
    """Yield ``(i, state)`` after each message; ``labels[i]`` is message i's intent or action.

    The same state object is updated in place: read what you need before the next step.
    """
    state = ConversationState()
    for i, (role, label) in enumerate(zip(roles, labels, strict=True)):
        state.update(role, label, stamps[i] if stamps else None)
        yield i, state
