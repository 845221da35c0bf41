"""Tasks from headquarters: a script for a segment of customers by a deadline, and whether guides did it.

A :class:`Task` carries one or a few script variants, a :class:`Segment` (filters over customer
profiles: asked about 羽绒服 in the last 30 days and did not buy; stage; stores; guides) and a
window (``starts`` to ``deadline``). :func:`targets` lists each targeted customer with their
guide; :func:`execution` reads the conversations and says, per target:

- **executed**: the guide sent the script or a close variant to that customer inside the window:
  the best cosine between a guide message and any variant is at least ``threshold``, with the
  vectors of ``encode`` (the server passes the bundle's embedder, the one script mining uses to
  merge near-duplicate replies; without one, character 1–3-gram TF-IDF fitted on the task's
  texts);
- **replied**: the customer wrote back after it (within ``reply_hours``);
- **converted**: the customer paid after it (within ``attribution_hours``), by the orders.

:func:`summarise` gives the execution rate, reply rate and conversion per guide and per store.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from copilot.errors import InputError
from copilot.profile import STAGES, Profile
from copilot.schema import Conversation, china_time
from copilot.text.normalize import normalize_text

__all__ = ["Segment", "Target", "Task", "execution", "similarity", "summarise", "targets"]

Encoder = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Segment:
    """Which customers a task targets; every given filter must hold.

    Attributes:
        asked_about: product words; the profile has a product fact containing one of them.
        within_days: with ``asked_about``, the fact is at most this many days before the task
            starts; alone, the customer's last contact is.
        bought: ``False``: no order since that fact (or at all); ``True``: at least one order.
        stages: the profile's stage is one of these.
        stores, guides: the customer's (latest) store or guide is one of these.
    """

    asked_about: tuple[str, ...] = ()
    within_days: int | None = None
    bought: bool | None = None
    stages: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()
    guides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise InputError(f"unknown stages {sorted(unknown)}; stages are {list(STAGES)}")
        if self.within_days is not None and self.within_days < 0:
            raise InputError("within_days must be 0 or more")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Segment:
        known = {"asked_about", "within_days", "bought", "stages", "stores", "guides"}
        extra = set(data) - known
        if extra:
            raise InputError(f"unknown segment filters {sorted(extra)}; use {sorted(known)}")
        return cls(
            asked_about=tuple(data.get("asked_about") or ()),
            within_days=data.get("within_days"),
            bought=data.get("bought"),
            stages=tuple(data.get("stages") or ()),
            stores=tuple(data.get("stores") or ()),
            guides=tuple(data.get("guides") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "asked_about": list(self.asked_about),
            "within_days": self.within_days,
            "bought": self.bought,
            "stages": list(self.stages),
            "stores": list(self.stores),
            "guides": list(self.guides),
        }

    def matches(
        self, profile: Profile, guide: str | None, store: str | None, now: datetime
    ) -> bool:
        """Whether a customer (profile, latest guide and store) is in the segment at ``now``."""
        if self.stores and store not in self.stores or self.guides and guide not in self.guides:
            return False
        if self.stages and profile.stage not in self.stages:
            return False
        since = now - timedelta(days=self.within_days) if self.within_days is not None else None
        asked_at = None
        if self.asked_about:
            hits = [
                f.at
                for f in profile.facts
                if f.type == "product"
                and any(word in str(f.value) or str(f.value) in word for word in self.asked_about)
                and f.at is not None
                and (since is None or china_time(f.at) >= since)
            ]
            if not hits:
                return False
            asked_at = max(china_time(t) for t in hits)
        elif since is not None and (
            profile.last_contact is None or china_time(profile.last_contact) < since
        ):
            return False
        if self.bought is not None:
            paid = [_paid(o) for o in profile.orders]
            paid = [p for p in paid if p is not None and (asked_at is None or p >= asked_at)]
            if self.bought != bool(paid):
                return False
        return True


@dataclass(frozen=True)
class Task:
    """A task: script variants, the segment, and the window to carry it out in."""

    task_id: str
    title: str
    variants: tuple[str, ...]
    segment: Segment
    starts: datetime
    deadline: datetime

    def __post_init__(self) -> None:
        if not self.variants or not all(v.strip() for v in self.variants):
            raise InputError("a task needs at least one non-empty script variant")
        if china_time(self.deadline) <= china_time(self.starts):
            raise InputError("a task's deadline must be after its start")


@dataclass
class Target:
    """One targeted customer and what became of the task with them."""

    customer_id: str
    guide_id: str | None
    store_id: str | None
    executed: bool = False
    executed_at: datetime | None = None
    message: str | None = None
    similarity: float = 0.0
    replied: bool = False
    converted: bool = False
    conversation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items()}
        out["executed_at"] = self.executed_at.isoformat() if self.executed_at else None
        out["similarity"] = round(self.similarity, 4)
        return out


def targets(
    task: Task, customers: Iterable[tuple[Profile, str | None, str | None]]
) -> list[Target]:
    """The customers of the segment when the task starts: ``(profile, guide, store)`` each."""
    now = china_time(task.starts)
    return [
        Target(profile.customer_id, guide, store)
        for profile, guide, store in customers
        if task.segment.matches(profile, guide, store, now)
    ]


def execution(
    task: Task,
    chosen: Sequence[Target],
    conversations: Mapping[str, Sequence[Conversation]],
    orders: Mapping[str, Sequence[Any]] | None = None,
    *,
    encode: Encoder | None = None,
    threshold: float | None = None,
    reply_hours: float = 48.0,
    attribution_hours: float = 72.0,
) -> list[Target]:
    """Fill in executed, replied and converted for each target (see the module docstring).

    Args:
        conversations: customer id -> that customer's conversations.
        orders: customer id -> their orders (with ``paid_at``).
        encode: texts -> unit row vectors; None for the character n-gram default.
        threshold: least cosine between a guide message and a variant to count as sent; by
            default 0.4 for the character n-grams and 0.5 for a given encoder (measured by
            ``eval/task_execution.py`` on hand-written tasks: edits of the script are caught
            either way, paraphrases only by an embedder, and below these same-topic messages
            that do not carry the task out start to count).
    """
    if threshold is None:
        threshold = 0.4 if encode is None else 0.5
    starts, deadline = china_time(task.starts), china_time(task.deadline)
    sent: list[tuple[int, str, datetime, str]] = []  # target, text, time, conversation
    for n, target in enumerate(chosen):
        for conversation in conversations.get(target.customer_id, ()):
            for message in conversation.messages:
                if (
                    message.role == "guide"
                    and message.ts
                    and starts <= china_time(message.ts) <= deadline
                ):
                    at = china_time(message.ts)
                    sent.append((n, message.text, at, conversation.conversation_id))
    similarities = similarity(task.variants, [s[1] for s in sent], encode)
    for (n, text, at, cid), score in zip(sent, similarities, strict=True):
        target = chosen[n]
        if score >= threshold and (target.executed_at is None or at < target.executed_at):
            target.executed, target.executed_at = True, at
            target.message, target.similarity, target.conversation_id = text, float(score), cid
        elif not target.executed:
            target.similarity = max(target.similarity, float(score))
    for target in chosen:
        if target.executed_at is not None:
            _outcome(
                target,
                conversations.get(target.customer_id, ()),
                (orders or {}).get(target.customer_id, ()),
                reply_hours,
                attribution_hours,
            )
    return list(chosen)


def _outcome(
    target: Target,
    conversations: Iterable[Conversation],
    orders: Iterable[Any],
    reply_hours: float,
    attribution_hours: float,
) -> None:
    at = target.executed_at
    assert at is not None
    reply_end, pay_end = at + timedelta(hours=reply_hours), at + timedelta(hours=attribution_hours)
    target.replied = any(
        m.role == "customer" and m.ts and at < china_time(m.ts) <= reply_end
        for c in conversations
        for m in c.messages
    )
    target.converted = any(p is not None and at <= p <= pay_end for p in map(_paid, orders))


def similarity(variants: Sequence[str], texts: Sequence[str], encode: Encoder | None) -> np.ndarray:
    """Per text: its best cosine with any variant."""
    if not texts:
        return np.zeros(0)
    if encode is None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), preprocessor=_bare)
        matrix = vectorizer.fit_transform([*variants, *texts])
        v, t = matrix[: len(variants)], matrix[len(variants) :]
        return np.asarray((t @ v.T).max(axis=1).todense()).ravel()
    vectors = np.asarray(encode([*variants, *texts]), dtype=np.float32)
    v, t = vectors[: len(variants)], vectors[len(variants) :]
    return (t @ v.T).max(axis=1)


def summarise(chosen: Sequence[Target]) -> dict[str, Any]:
    """Targeted, executed, replied and converted counts and rates: overall, per guide, per store."""

    def block(items: Sequence[Target]) -> dict[str, Any]:
        n, done = len(items), [t for t in items if t.executed]
        return {
            "targeted": n,
            "executed": len(done),
            "execution_rate": round(len(done) / n, 4) if n else None,
            "replied": sum(t.replied for t in done),
            "converted": sum(t.converted for t in done),
            "conversion_rate": round(sum(t.converted for t in done) / len(done), 4)
            if done
            else None,
        }

    by_guide: dict[str, list[Target]] = defaultdict(list)
    by_store: dict[str, list[Target]] = defaultdict(list)
    for t in chosen:
        by_guide[t.guide_id or "-"].append(t)
        by_store[t.store_id or "-"].append(t)
    return {
        "overall": block(chosen),
        "guides": {g: block(items) for g, items in sorted(by_guide.items())},
        "stores": {s: block(items) for s, items in sorted(by_store.items())},
    }


_NOISE = re.compile(r"\[[^\[\]]{1,8}\]|[^\w]")


def _bare(text: str) -> str:
    """The words of a message: stickers, masks ([姓名]), emoji, punctuation and spaces gone."""
    return _NOISE.sub("", normalize_text(text)).lower()


def _paid(order: Any) -> datetime | None:
    value = order.get("paid_at") if isinstance(order, Mapping) else getattr(order, "paid_at", None)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return china_time(value) if isinstance(value, datetime) else None
