"""Orders become outcomes: read an orders file and attribute each payment to a conversation.

An order is a payment by a customer: ``customer_id``, ``paid_at`` and ``amount``, optionally
``order_id``, ``product`` and ``store_id``. :func:`read_orders` reads them from CSV or JSONL
(``.gz`` too), :func:`attribute` credits each order to at most one conversation, and
:func:`apply_orders` does both for a list of conversations (what ``copilot train --orders``
calls). The server applies the same :func:`attribute` to stored conversations.

**The attribution rule.** An order goes to the conversation of its customer (same
``customer_id``) whose latest message at or before ``paid_at`` is the latest of all, provided
that message is at most ``hours`` (72 by default) before ``paid_at``:

- only messages at or before the payment count, so a conversation still going on when the
  customer paid (its first message before ``paid_at``, its last after) counts, from its last
  message before the payment; a payment at the very second of a message counts too;
- of two conversations before one payment, the later one gets it (ties: the one that started
  later, then the larger ``conversation_id``);
- an order that names a store (``store_id``) goes only to that store's conversations;
- each order goes to at most one conversation; a conversation may get several, and its outcome
  becomes ``converted = true`` with ``order_amount`` = the sum of their amounts;
- every other conversation that has a ``customer_id`` and at least one timestamped message gets
  ``converted = false`` (so the orders file should cover the conversations' period plus the
  window); a conversation without a customer or without timestamps keeps its outcome and is
  counted apart.

An order that goes nowhere is counted by reason: ``unknown_customer`` (no conversation of that
customer), ``other_store`` (the customer's conversations are all in other stores),
``paid_before_chat`` (no message of the customer's conversations is at or before the payment)
or ``outside_window`` (the latest one is more than ``hours`` before it).

Times are compared as instants: a ``paid_at`` with a zone (``+08:00``, ``Z``) is that instant,
one without a zone is China time (as message ``ts`` are, :mod:`copilot.schema`), and epoch
milliseconds are UTC.

Example::

    orders, quarantined = read_orders("orders.csv", columns={"付款时间": "paid_at"})
    result = attribute(conversations, orders, hours=72)
    labelled = [result.apply(c) for c in conversations]
    print(result.to_dict()["orders"]["attributed"])
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from copilot.errors import InputError
from copilot.io.readers import Quarantined
from copilot.io.tables import TableSpec, read_table  # one reader for every table file
from copilot.schema import Conversation, Outcome, check_time

__all__ = [
    "DEFAULT_ATTRIBUTION_HOURS",
    "ORDER_COLUMNS",
    "REASONS",
    "AttributionResult",
    "ConversationSpan",
    "Order",
    "OrderMatch",
    "UnattributedReason",
    "apply_orders",
    "attribute",
    "check_hours",
    "read_orders",
]

logger = logging.getLogger(__name__)

DEFAULT_ATTRIBUTION_HOURS = 72.0
ORDER_COLUMNS = ("order_id", "customer_id", "paid_at", "amount", "product", "store_id")
"""Columns of an orders file; rename others with ``columns={"SOURCE": "paid_at"}``."""
_ORDERS_FILE = TableSpec(
    noun="order",
    file="orders file",
    columns=ORDER_COLUMNS,
    required=("customer_id", "paid_at", "amount"),
    key="order_id",
    option="--order-column",
)

UnattributedReason = Literal[
    "unknown_customer", "other_store", "paid_before_chat", "outside_window"
]
REASONS: tuple[str, ...] = get_args(UnattributedReason)

_DATE_ONLY = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")
_QUARANTINE_SHOWN = 20


class Order(BaseModel):
    """One payment. ``order_id`` may be left out: it is then derived from the order's fields
    (``o_`` and 16 hex digits), so the same row read or posted twice is the same order.

    A ``paid_at`` without a zone is China time; a date without a time of day is refused
    (attribution needs the time of the payment), and so is one outside the years 1970 to 2100.
    """

    model_config = ConfigDict(extra="forbid")

    order_id: str = ""
    # Ids are stripped before min_length applies: the schema says "not blank" for the API.
    customer_id: str = Field(min_length=1, json_schema_extra={"pattern": r"\S"})
    paid_at: datetime
    amount: float = Field(ge=0, allow_inf_nan=False)
    product: str | None = None
    store_id: str | None = None

    @field_validator("order_id", "customer_id", "product", "store_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any, info: ValidationInfo) -> Any:
        # Exports often carry numeric ids; they are identifiers, not numbers. A strict subclass
        # (the API's request bodies) refuses them, as it refuses every other wrong type.
        if isinstance(value, str):
            return value.strip()
        numeric = isinstance(value, int) and not isinstance(value, bool)
        return str(value) if numeric and not (info.config or {}).get("strict") else value

    @field_validator("paid_at", mode="before")
    @classmethod
    def _has_time(cls, value: Any) -> Any:
        if isinstance(value, str) and _DATE_ONLY.fullmatch(value):
            raise ValueError(
                "a date without a time of day; attribution needs the time of the payment "
                "(e.g. 2026-03-08T15:04:00+08:00)"
            )
        return value

    @field_validator("paid_at")
    @classmethod
    def _zone(cls, value: datetime) -> datetime:
        return check_time(value)

    def model_post_init(self, context: Any, /) -> None:
        if not self.order_id:
            self.order_id = self.derived_id()

    def derived_id(self) -> str:
        """The id of an order given without one: a hash of its other fields."""
        key = orjson.dumps(
            [
                self.customer_id,
                self.paid_at.timestamp(),
                self.amount,
                self.product,
                self.store_id,
            ]
        )
        return "o_" + hashlib.sha256(key).hexdigest()[:16]


@dataclass(frozen=True)
class ConversationSpan:
    """What attribution needs of a conversation: its ids and its message times, sorted.

    Holding spans instead of conversations keeps a pass over a large file small in memory.
    """

    conversation_id: str
    customer_id: str | None
    store_id: str | None
    stamps: tuple[datetime, ...] = ()

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationSpan:
        """The span of a conversation."""
        stamps = sorted(m.ts for m in conversation.messages if m.ts is not None)
        return cls(
            conversation.conversation_id,
            conversation.customer_id or None,
            conversation.store_id,
            tuple(stamps),
        )

    def last_before(self, instant: datetime) -> datetime | None:
        """The latest message time at or before ``instant``, or None."""
        index = bisect.bisect_right(self.stamps, instant)
        return self.stamps[index - 1] if index else None


@dataclass(frozen=True)
class OrderMatch:
    """Where one order went: a conversation, or the reason it went nowhere."""

    order_id: str
    customer_id: str
    amount: float
    conversation_id: str | None
    reason: UnattributedReason | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "amount": self.amount,
            "conversation_id": self.conversation_id,
            "reason": self.reason,
        }


@dataclass
class AttributionResult:
    """The outcome of every conversation that can have one, and where each order went.

    Attributes:
        hours: the window used.
        outcomes: conversation_id -> the outcome the orders give it (every conversation with a
            customer and a timestamp; others are absent and keep their own outcome).
        matches: one per distinct order, in input order (a repeated ``order_id``: its last row).
        counts: the figures of :meth:`to_dict`.
    """

    hours: float
    outcomes: dict[str, Outcome]
    matches: list[OrderMatch]
    counts: dict[str, Any] = field(default_factory=dict)

    def apply(self, conversation: Conversation) -> Conversation:
        """The conversation with the outcome the orders give it (a copy), or unchanged when it
        has no customer or no timestamp."""
        outcome = self.outcomes.get(conversation.conversation_id)
        if outcome is None:
            return conversation
        return conversation.model_copy(update={"outcome": outcome})

    def to_dict(self) -> dict[str, Any]:
        """``{"hours", "conversations": {total, with_outcome, converted, not_converted,
        no_customer, no_time}, "orders": {total, duplicates, attributed, unattributed,
        attributed_amount, unattributed_by_reason: {reason: n}}}``."""
        return {"hours": self.hours, **self.counts}


def attribute(
    conversations: Iterable[Conversation | ConversationSpan],
    orders: Iterable[Order],
    hours: float = DEFAULT_ATTRIBUTION_HOURS,
) -> AttributionResult:
    """Attribute each order to at most one conversation (the rule is in the module docstring).

    Args:
        conversations: conversations or their :class:`ConversationSpan`; a ``conversation_id``
            given twice is one conversation (its messages' times are pooled).
        orders: the orders; an ``order_id`` given twice counts once, as its last occurrence.
        hours: the window: the conversation's latest message at or before the payment must be
            at most this many hours before it.

    Returns:
        An :class:`AttributionResult`.

    Raises:
        InputError: ``hours`` is not a positive number.

    Example:
        >>> result = attribute(conversations, orders, hours=48)
        >>> result.to_dict()["orders"]["unattributed_by_reason"]
        {'unknown_customer': 1, 'other_store': 0, 'paid_before_chat': 0, 'outside_window': 2}
    """
    hours = check_hours(hours)
    spans = _merge_spans(conversations)
    by_customer, no_customer, no_time = _by_customer(spans)
    distinct, total_rows = _distinct_orders(orders)
    window = timedelta(hours=hours)
    matches = [
        _match(order, by_customer.get(order.customer_id, []), window) for order in distinct.values()
    ]
    outcomes, amounts = _outcomes(by_customer, matches)
    reasons: Counter[str] = Counter(m.reason for m in matches if m.reason is not None)
    attributed = [m for m in matches if m.conversation_id is not None]
    counts = {
        "conversations": {
            "total": len(spans),
            "with_outcome": len(outcomes),
            "converted": len(amounts),
            "not_converted": len(outcomes) - len(amounts),
            "no_customer": no_customer,
            "no_time": no_time,
        },
        "orders": {
            "total": len(matches),
            "duplicates": total_rows - len(matches),
            "attributed": len(attributed),
            "unattributed": len(matches) - len(attributed),
            "attributed_amount": round(sum(m.amount for m in attributed), 2),
            "unattributed_by_reason": {reason: reasons.get(reason, 0) for reason in REASONS},
        },
    }
    return AttributionResult(hours=float(hours), outcomes=outcomes, matches=matches, counts=counts)


def _by_customer(
    spans: dict[str, ConversationSpan],
) -> tuple[dict[str, list[ConversationSpan]], int, int]:
    """The spans an order can go to, by customer; and how many lack a customer, or a time."""
    by_customer: dict[str, list[ConversationSpan]] = defaultdict(list)
    no_customer = no_time = 0
    for span in spans.values():
        if span.customer_id is None:
            no_customer += 1
        elif not span.stamps:
            no_time += 1
        else:
            by_customer[span.customer_id].append(span)
    return by_customer, no_customer, no_time


def _distinct_orders(orders: Iterable[Order]) -> tuple[dict[str, Order], int]:
    """Each ``order_id``'s last row, in the order of those rows; and the number of rows read."""
    distinct: dict[str, Order] = {}
    total_rows = 0
    for order in orders:
        total_rows += 1
        distinct.pop(order.order_id, None)  # the last occurrence keeps its place in the order
        distinct[order.order_id] = order
    return distinct, total_rows


def _outcomes(
    by_customer: dict[str, list[ConversationSpan]], matches: list[OrderMatch]
) -> tuple[dict[str, Outcome], dict[str, float]]:
    """Each span's outcome, and the amount each converted conversation was paid."""
    amounts: dict[str, float] = defaultdict(float)
    for match in matches:
        if match.conversation_id is not None:
            amounts[match.conversation_id] += match.amount
    outcomes: dict[str, Outcome] = {}
    for customer_spans in by_customer.values():
        for span in customer_spans:
            cid = span.conversation_id
            outcomes[cid] = (
                Outcome(converted=True, order_amount=round(amounts[cid], 2))
                if cid in amounts
                else Outcome(converted=False)
            )
    return outcomes, amounts


def check_hours(hours: float) -> float:
    """The attribution window as a float.

    Raises:
        InputError: not a positive, finite number of hours.
    """
    if (
        isinstance(hours, bool)
        or not isinstance(hours, int | float)
        or not 0 < hours < float("inf")
    ):
        raise InputError(
            f"the attribution window must be a positive number of hours, got {hours!r} "
            f"(default {DEFAULT_ATTRIBUTION_HOURS:g}; --attribution-hours)"
        )
    return float(hours)


def _merge_spans(
    conversations: Iterable[Conversation | ConversationSpan],
) -> dict[str, ConversationSpan]:
    spans: dict[str, ConversationSpan] = {}
    for item in conversations:
        span = item if isinstance(item, ConversationSpan) else ConversationSpan.of(item)
        seen = spans.get(span.conversation_id)
        if seen is not None:
            span = ConversationSpan(
                seen.conversation_id,
                seen.customer_id or span.customer_id,
                seen.store_id or span.store_id,
                tuple(sorted((*seen.stamps, *span.stamps))),
            )
        spans[span.conversation_id] = span
    return spans


def _match(order: Order, candidates: list[ConversationSpan], window: timedelta) -> OrderMatch:
    """Where one order goes among its customer's conversations (with a customer and times)."""

    def nowhere(reason: UnattributedReason) -> OrderMatch:
        return OrderMatch(order.order_id, order.customer_id, order.amount, None, reason)

    if not candidates:
        return nowhere("unknown_customer")
    if order.store_id is not None:
        candidates = [s for s in candidates if s.store_id == order.store_id]
        if not candidates:
            return nowhere("other_store")
    best: tuple[datetime, datetime, str] | None = None
    for span in candidates:
        last = span.last_before(order.paid_at)
        if last is not None:
            key = (last, span.stamps[0], span.conversation_id)
            if best is None or key > best:
                best = key
    if best is None:
        return nowhere("paid_before_chat")
    if order.paid_at - best[0] > window:
        return nowhere("outside_window")
    return OrderMatch(order.order_id, order.customer_id, order.amount, best[2])


# --------------------------------------------------------------------------- reading


def read_orders(
    path: str | Path, columns: Mapping[str, str] | None = None
) -> tuple[list[Order], list[Quarantined]]:
    """Read an orders file: CSV (a header row) or JSONL (one object per line), ``.gz`` too.

    Columns (CSV header names or JSON keys) are matched case-insensitively to
    :data:`ORDER_COLUMNS`; others are ignored. A row that cannot be read (a missing customer,
    an unparsable time or amount, a negative amount) becomes a :class:`Quarantined` entry
    naming the field and the value; it never stops the read.

    Args:
        path: the file (``"-"`` for standard input).
        columns: source column name -> order column, e.g. ``{"付款时间": "paid_at",
            "实付金额": "amount"}`` (the CLI's ``--order-column 付款时间=paid_at``).

    Returns:
        ``(orders, quarantined)`` in file order.

    Raises:
        InputError: the file does not exist or cannot be read, a mapping names no order
            column, or a CSV header lacks a required column.

    Example:
        >>> orders, bad = read_orders("orders.csv.gz", columns={"客户ID": "customer_id"})
    """
    return read_table(path, _ORDERS_FILE, Order.model_validate, columns)


# --------------------------------------------------------------------------- for train and stats


def apply_orders(
    conversations: Sequence[Conversation],
    orders_path: str | Path,
    hours: float = DEFAULT_ATTRIBUTION_HOURS,
    columns: Mapping[str, str] | None = None,
) -> tuple[list[Conversation], dict[str, Any]]:
    """Read an orders file and give each conversation the outcome its customer's orders say.

    What ``copilot train --orders`` calls before training.

    Args:
        conversations: the conversations (not changed; copies come back).
        orders_path: the orders file (see :func:`read_orders`).
        hours: the attribution window (``--attribution-hours``).
        columns: column renaming for the orders file (``--order-column SOURCE=TARGET``).

    Returns:
        ``(conversations, summary)``: the conversations in the same order, each with the
        outcome the orders give it (unchanged when it has no customer or no timestamp), and
        :meth:`AttributionResult.to_dict` plus ``orders_file``, ``quarantined`` (rows of the
        orders file that could not be read) and ``quarantine`` (the first 20 of them, as
        ``{"line", "error", "raw"}``).

    Raises:
        InputError: as :func:`read_orders` and :func:`attribute`.

    Example:
        >>> conversations, summary = apply_orders(conversations, "orders.csv", hours=72)
        >>> summary["orders"]["attributed"], summary["conversations"]["converted"]
    """
    orders, quarantined = read_orders(orders_path, columns)
    result = attribute(conversations, orders, hours)
    summary = {
        **result.to_dict(),
        "orders_file": str(orders_path),
        "quarantined": len(quarantined),
        "quarantine": [q.to_dict() for q in quarantined[:_QUARANTINE_SHOWN]],
    }
    return [result.apply(c) for c in conversations], summary
