"""Stored conversations and orders read per customer: what profiles, the follow-up queue and
tasks are built from.

Like :mod:`server.db.repository`, every function takes a session first; these only read.
Conversations come back as core :class:`~copilot.schema.Conversation` objects with message
times in China time (the same instants), only those the principal may see and only those with
a customer id (nobody could be contacted without one).

Example:
    >>> with Session() as session:
    ...     chats = load_conversations(session, principal, customer_id="u-9")
    ...     orders = customer_orders(session, ["u-9"])
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from copilot.schema import CHINA_TZ, Conversation
from server.auth import Principal
from server.db.models import ConversationRow, MessageRow, OrderRow

# The repository's helpers, so scopes and id lists work exactly as they do for the lists.
from server.db.repository import _chunks, _scope

__all__ = ["customer_orders", "load_conversations", "stored_intents"]


def load_conversations(
    session: Session,
    principal: Principal,
    *,
    customer_id: str | None = None,
    ended_since: datetime | None = None,
) -> list[Conversation]:
    """The stored conversations with a customer that ``principal`` may see.

    Args:
        session: an open session.
        principal: the caller (a guide sees its own conversations, a supervisor its stores',
            an admin all).
        customer_id: only this customer's conversations.
        ended_since: only conversations whose last message is at or after this instant.

    Returns:
        The conversations, in ``conversation_id`` order.
    """
    conditions: list[ColumnElement[bool]] = [ConversationRow.customer_id.is_not(None)]
    scope = _scope(principal, ConversationRow.guide_id, ConversationRow.store_id)
    if scope is not None:
        conditions.append(scope)
    if customer_id is not None:
        conditions.append(ConversationRow.customer_id == customer_id)
    if ended_since is not None:
        conditions.append(ConversationRow.ended_at >= ended_since)
    stmt = (
        select(
            ConversationRow.conversation_id,
            ConversationRow.guide_id,
            ConversationRow.customer_id,
            ConversationRow.store_id,
            ConversationRow.channel,
            ConversationRow.outcome,
        )
        .where(*conditions)
        .order_by(ConversationRow.conversation_id)
    )
    rows = session.execute(stmt).all()
    messages = _messages(session, [row.conversation_id for row in rows])
    return [
        # They were valid when stored; the length limit in force then may have been raised.
        Conversation.model_validate(
            {**row._asdict(), "messages": messages[row.conversation_id]},
            context={"max_message_chars": sys.maxsize},
        )
        for row in rows
        if messages[row.conversation_id]
    ]


def stored_intents(session: Session, ids: Sequence[str]) -> dict[str, list[str | None]]:
    """Per conversation, the intent of each message as scored when it was stored (the bundle's
    labels in its report; ``None`` for guide messages and where the report has none)."""
    out: dict[str, list[str | None]] = {}
    for chunk in _chunks(list(ids)):
        stmt = select(ConversationRow.conversation_id, ConversationRow.report).where(
            ConversationRow.conversation_id.in_(chunk)
        )
        for cid, report in session.execute(stmt):
            rows = (report or {}).get("messages") or []
            labels: list[str | None] = [None] * (
                max((r.get("index", -1) for r in rows), default=-1) + 1
            )
            for row in rows:
                if isinstance(row.get("index"), int) and row["index"] >= 0:
                    labels[row["index"]] = row.get("intent")
            out[cid] = labels
    return out


def _messages(session: Session, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The messages of these conversations, in order, as ``{role, text, ts}`` dicts."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in _chunks(ids):
        stmt = (
            select(MessageRow.conversation_id, MessageRow.role, MessageRow.text, MessageRow.ts)
            .where(MessageRow.conversation_id.in_(chunk))
            .order_by(MessageRow.conversation_id, MessageRow.position)
        )
        for cid, role, text, ts in session.execute(stmt):
            at = ts.astimezone(CHINA_TZ) if ts is not None else None
            out[cid].append({"role": role, "text": text, "ts": at})
    return out


def customer_orders(
    session: Session, customer_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every stored order of these customers, in any store, oldest payment first.

    Returns:
        customer id -> ``[{order_id, customer_id, store_id, paid_at (China time), amount,
        product}, ...]`` (customers without orders are left out).
    """
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in _chunks(sorted(set(customer_ids))):
        stmt = (
            select(OrderRow)
            .where(OrderRow.customer_id.in_(chunk))
            .order_by(OrderRow.customer_id, OrderRow.paid_at, OrderRow.order_id)
        )
        for row in session.scalars(stmt):
            out[row.customer_id].append(
                {
                    "order_id": row.order_id,
                    "customer_id": row.customer_id,
                    "store_id": row.store_id,
                    "paid_at": row.paid_at.astimezone(CHINA_TZ),
                    "amount": row.amount,
                    "product": row.product,
                }
            )
    return dict(out)
