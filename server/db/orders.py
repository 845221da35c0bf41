"""Stored orders and their attribution to stored conversations.

The rule is :func:`copilot.orders.attribute`, applied per customer to what is stored: whenever
an order or a conversation of a customer is stored, every order of that customer is
attributed again (so a conversation posted after its order still gets it, and a later
conversation posted afterwards takes it over). A conversation an order is attributed to is
stored as converted, with ``order_amount`` the sum of its orders' amounts, in its
``converted`` column, its ``outcome`` and its score report (which the lists, the leaderboard
and the scorecards read); one that loses its last order becomes not converted. Conversations
no order ever went to keep the outcome they were posted with.

Like :mod:`server.db.repository`, every function takes a session first, flushes what it writes
and leaves the commit to the caller. On PostgreSQL, :func:`lock_customers` serialises the
transactions that attribute the same customers (SQLite has one writer at a time anyway); take
it before writing conversation or order rows, so two writers never wait on each other.

Example:
    >>> with Session.begin() as session:
    ...     lock_customers(session, {"u-9"})
    ...     upsert_orders(session, orders, key_id=3)
    ...     changed = attribute_customers(session, {"u-9"}, hours=72)
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, select, text
from sqlalchemy.orm import Session

from copilot.orders import ConversationSpan, Order, attribute
from server.auth import Principal
from server.db.models import ConversationRow, MessageRow, OrderRow, utcnow

# The repository's small helpers, so orders store text, page ids and read times as it does.
from server.db.repository import UpsertStatus, _check_text, _chunks, _iso, _time_filters

__all__ = [
    "attribute_customers",
    "customers_to_attribute",
    "list_orders",
    "lock_customers",
    "order_placements",
    "stored_orders",
    "upsert_orders",
]


# ----------------------------------------------------------------------------- orders


def stored_orders(session: Session, order_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """``{order_id: (customer_id, store_id)}`` of the orders already stored under these ids."""
    out: dict[str, tuple[str, str | None]] = {}
    for chunk in _chunks(list(order_ids)):
        stmt = select(OrderRow.order_id, OrderRow.customer_id, OrderRow.store_id).where(
            OrderRow.order_id.in_(chunk)
        )
        out.update((oid, (customer, store)) for oid, customer, store in session.execute(stmt))
    return out


def upsert_orders(
    session: Session, orders: Sequence[Order], *, key_id: int | None = None
) -> list[UpsertStatus]:
    """Store orders; idempotent on ``order_id`` (a re-posted order replaces the stored one).

    Attribution is left as it was: call :func:`attribute_customers` afterwards with the
    orders' customers and, for replaced orders, the customers they had
    (:func:`stored_orders`).

    Args:
        session: an open session; the caller commits.
        orders: the orders (an ``order_id`` given twice is stored as its last occurrence).
        key_id: the API key that posted them, kept for the record.

    Returns:
        ``"created"`` or ``"updated"`` per order, in order.

    Raises:
        InputError: text with a NUL character.
    """
    for order in orders:
        for name in ("order_id", "customer_id", "store_id", "product"):
            _check_text(getattr(order, name), f"{name} of order {order.order_id!r}")
    ids = list(dict.fromkeys(o.order_id for o in orders))
    rows: dict[str, OrderRow] = {}
    for chunk in _chunks(ids):
        stmt = select(OrderRow).where(OrderRow.order_id.in_(chunk))
        rows.update((row.order_id, row) for row in session.scalars(stmt))
    statuses: list[UpsertStatus] = []
    now = utcnow()
    for order in orders:
        values = {
            "customer_id": order.customer_id,
            "store_id": order.store_id,
            "paid_at": order.paid_at,
            "amount": order.amount,
            "product": order.product,
            "key_id": key_id,
            "updated_at": now,
        }
        row = rows.get(order.order_id)
        if row is None:
            rows[order.order_id] = OrderRow(order_id=order.order_id, created_at=now, **values)
            session.add(rows[order.order_id])
            statuses.append("created")
        else:
            for name, value in values.items():
                setattr(row, name, value)
            statuses.append("updated")
    session.flush()
    return statuses


def order_placements(
    session: Session, order_ids: Sequence[str]
) -> dict[str, tuple[str | None, str | None]]:
    """``{order_id: (conversation_id, reason)}``: where attribution put these stored orders."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for chunk in _chunks(list(order_ids)):
        stmt = select(OrderRow.order_id, OrderRow.conversation_id, OrderRow.reason).where(
            OrderRow.order_id.in_(chunk)
        )
        out.update((oid, (cid, reason)) for oid, cid, reason in session.execute(stmt))
    return out


def _scope(principal: Principal) -> ColumnElement[bool] | None:
    """The orders ``principal`` may see: a supervisor's stores' (an order without a store is
    an admin's), everything for an admin, nothing for a guide."""
    if principal.role == "admin":
        return None
    if principal.role == "supervisor" and principal.stores:
        return OrderRow.store_id.in_(sorted(principal.stores))
    return false()


def list_orders(
    session: Session,
    principal: Principal,
    *,
    customer_id: str | None = None,
    store_id: str | None = None,
    conversation_id: str | None = None,
    attributed: bool | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """A page of the orders ``principal`` may see, newest payment first.

    Args:
        session: an open session.
        principal: the caller (a supervisor sees its stores' orders, an admin all).
        customer_id: only this customer's orders.
        store_id: only this store's orders.
        conversation_id: only the orders attributed to this conversation.
        attributed: only attributed (``True``) or unattributed (``False``) orders.
        since: only payments at or after this (a ``date``: its midnight, China time).
        until: only payments before this (a ``date``: including that day).
        limit: page size (0 returns only the total).
        offset: rows to skip.

    Returns:
        ``(total, items)``; each item is ``{order_id, customer_id, store_id, paid_at (ISO 8601,
        China time), amount, product, conversation_id, reason}``.

    Raises:
        InputError: an empty time range.
    """
    conditions = _time_filters(OrderRow.paid_at, since, until)
    scope = _scope(principal)
    if scope is not None:
        conditions.append(scope)
    for column, value in (
        (OrderRow.customer_id, customer_id),
        (OrderRow.store_id, store_id),
        (OrderRow.conversation_id, conversation_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if attributed is not None:
        conditions.append(
            OrderRow.conversation_id.is_not(None)
            if attributed
            else OrderRow.conversation_id.is_(None)
        )
    total = session.scalar(select(func.count()).select_from(OrderRow).where(*conditions))
    page = (
        select(OrderRow)
        .where(*conditions)
        .order_by(OrderRow.paid_at.desc(), OrderRow.order_id)
        .limit(limit)
        .offset(offset)
    )
    rows = session.scalars(page).all() if limit else []
    items = [
        {
            "order_id": row.order_id,
            "customer_id": row.customer_id,
            "store_id": row.store_id,
            "paid_at": _iso(row.paid_at),
            "amount": row.amount,
            "product": row.product,
            "conversation_id": row.conversation_id,
            "reason": row.reason,
        }
        for row in rows
    ]
    return int(total or 0), items


# ----------------------------------------------------------------------------- attribution


def _lock_key(customer_id: str) -> int:
    """A signed 64-bit advisory-lock key for a customer (a hash; collisions only serialise)."""
    digest = hashlib.sha256(b"copilot-customer:" + customer_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_LOCK_MANY = text(
    "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY "
    "AS t(k, n) ORDER BY n"
)


def lock_customers(session: Session, customer_ids: Collection[str]) -> None:
    """On PostgreSQL, hold a transaction lock per customer until the commit (keys in sorted
    order, so two transactions cannot deadlock on them); nothing on SQLite."""
    if session.get_bind().dialect.name != "postgresql" or not customer_ids:
        return
    keys = sorted({_lock_key(c) for c in customer_ids if c})
    # unnest keeps the array's order, so the locks are taken in sorted order.
    session.execute(_LOCK_MANY, {"keys": keys}).all()


def customers_to_attribute(
    session: Session, conversation_ids: Sequence[str], customer_ids: Iterable[str | None]
) -> set[str]:
    """The customers whose orders need attributing again when these conversations are stored:
    their customers, and the customers of orders now attributed to them (a re-posted
    conversation may have changed its customer)."""
    customers = {c for c in customer_ids if c}
    for chunk in _chunks(list(conversation_ids)):
        stmt = select(OrderRow.customer_id).where(OrderRow.conversation_id.in_(chunk)).distinct()
        customers.update(session.scalars(stmt))
    return customers


def _spans(session: Session, customers: Sequence[str]) -> list[ConversationSpan]:
    """The stored conversations of these customers that have timestamped messages."""
    found: dict[str, tuple[str | None, str | None, list[datetime]]] = {}
    for chunk in _chunks(list(customers)):
        stmt = (
            select(
                ConversationRow.conversation_id,
                ConversationRow.customer_id,
                ConversationRow.store_id,
                MessageRow.ts,
            )
            .join(MessageRow, MessageRow.conversation_id == ConversationRow.conversation_id)
            .where(ConversationRow.customer_id.in_(chunk), MessageRow.ts.is_not(None))
        )
        for cid, customer, store, ts in session.execute(stmt):
            if ts is not None:
                found.setdefault(cid, (customer, store, []))[2].append(ts)
    return [
        ConversationSpan(cid, customer, store, tuple(sorted(stamps)))
        for cid, (customer, store, stamps) in found.items()
    ]


def attribute_customers(session: Session, customer_ids: Iterable[str], hours: float) -> list[str]:
    """Attribute every stored order of these customers again, and store the outcomes.

    Args:
        session: an open session; the caller commits (and took :func:`lock_customers`).
        customer_ids: the customers.
        hours: the attribution window (``COPILOT_ATTRIBUTION_HOURS``).

    Returns:
        The ids of the conversations whose stored outcome changed, sorted.

    Raises:
        InputError: ``hours`` is not a positive number.
    """
    customers = sorted({c for c in customer_ids if c})
    rows: list[OrderRow] = []
    for chunk in _chunks(customers):
        rows.extend(session.scalars(select(OrderRow).where(OrderRow.customer_id.in_(chunk))))
    if not rows:
        return []
    orders = [
        Order(
            order_id=row.order_id,
            customer_id=row.customer_id,
            paid_at=row.paid_at,
            amount=row.amount,
            store_id=row.store_id,
        )
        for row in rows
    ]
    result = attribute(_spans(session, customers), orders, hours)
    matches = {m.order_id: m for m in result.matches}
    touched: set[str] = set()
    for row in rows:
        match = matches[row.order_id]
        touched.update(c for c in (row.conversation_id, match.conversation_id) if c)
        if (row.conversation_id, row.reason) != (match.conversation_id, match.reason):
            row.conversation_id, row.reason = match.conversation_id, match.reason
    session.flush()
    return _store_outcomes(session, sorted(touched))


def _store_outcomes(session: Session, conversation_ids: list[str]) -> list[str]:
    """Set each conversation's outcome from the orders attributed to it; returns the changed."""
    amounts: dict[str, float] = defaultdict(float)
    for chunk in _chunks(conversation_ids):
        stmt = (
            select(OrderRow.conversation_id, func.sum(OrderRow.amount))
            .where(OrderRow.conversation_id.in_(chunk))
            .group_by(OrderRow.conversation_id)
        )
        amounts.update((cid, float(total)) for cid, total in session.execute(stmt) if cid)
    changed = []
    now = utcnow()
    for chunk in _chunks(conversation_ids):
        rows = select(ConversationRow).where(ConversationRow.conversation_id.in_(chunk))
        for row in session.scalars(rows):
            converted = row.conversation_id in amounts
            amount = round(amounts[row.conversation_id], 2) if converted else None
            outcome = {"converted": converted, **({"order_amount": amount} if converted else {})}
            report = row.report or {}
            if (
                row.converted == converted
                and row.outcome == outcome
                and report.get("converted") == converted
                and report.get("order_amount") == amount
            ):
                continue
            row.converted = converted
            row.outcome = outcome
            row.report = {**report, "converted": converted, "order_amount": amount}
            row.updated_at = now
            changed.append(row.conversation_id)
    session.flush()
    return sorted(changed)
