"""What guides did with entries of the follow-up queue (``followup_actions``).

An entry of :func:`copilot.followups.build_queue` is marked ``done``, ``dismissed`` (with a
reason) or ``snoozed`` (until a day); posting again replaces the action. Like
:mod:`server.db.repository`, every function takes a session first, flushes what it writes and
leaves the commit to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from copilot.followups import FollowUp
from server.db.models import FollowUpAction, utcnow
from server.db.repository import _check_text, _chunks

__all__ = ["ACTIONS", "ActionName", "closed_entries", "save_action"]

ActionName = Literal["done", "snoozed", "dismissed"]
ACTIONS: tuple[str, ...] = get_args(ActionName)


def closed_entries(session: Session, customer_ids: Iterable[str]) -> dict[str, date | None]:
    """The ``closed`` argument of :func:`copilot.followups.build_queue` for these customers:
    entry id -> ``None`` (done or dismissed) or the day a snoozed entry comes back."""
    out: dict[str, date | None] = {}
    for chunk in _chunks(sorted(set(customer_ids))):
        stmt = select(FollowUpAction.entry_id, FollowUpAction.status, FollowUpAction.until).where(
            FollowUpAction.customer_id.in_(chunk)
        )
        for entry_id, status, until in session.execute(stmt):
            out[entry_id] = until if status == "snoozed" else None
    return out


def save_action(
    session: Session,
    entry: FollowUp,
    status: str,
    *,
    reason: str | None = None,
    until: date | None = None,
    key_id: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """Store what was done with ``entry``, replacing an earlier action on it.

    The caller checks that the entry is in the caller's queue and that ``reason`` and ``until``
    suit the status.

    Returns:
        ``(action, replaced)``: the stored action as a dict (``id, status, reason, until,
        customer_id, guide_id, store_id, due``), and whether an earlier one was replaced.

    Raises:
        InputError: a reason with a NUL character.
    """
    _check_text(reason, "reason")
    row = session.get(FollowUpAction, entry.id, populate_existing=True)
    replaced = row is not None
    now = utcnow()
    if row is None:
        row = FollowUpAction(entry_id=entry.id, created_at=now)
        session.add(row)
    row.status, row.reason, row.until = status, reason, until
    row.customer_id, row.guide_id, row.store_id = entry.customer_id, entry.guide_id, entry.store_id
    row.due, row.key_id, row.updated_at = entry.due, key_id, now
    session.flush()
    action = {
        "id": row.entry_id,
        "status": row.status,
        "reason": row.reason,
        "until": row.until,
        "customer_id": row.customer_id,
        "guide_id": row.guide_id,
        "store_id": row.store_id,
        "due": row.due,
    }
    return action, replaced
