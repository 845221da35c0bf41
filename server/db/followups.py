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

from sqlalchemy import ColumnElement, Date, and_, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from copilot.followups import FollowUp
from server.auth import Principal
from server.db.models import FollowUpAction, utcnow
from server.db.repository import _check_text, _chunks, _scope

__all__ = ["ACTIONS", "ActionName", "DueCounts", "closed_entries", "due_counts", "save_action"]

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
    # Done again is no new work: keep the first done time, which on-time counts read.
    if not (replaced and row.status == status == "done"):
        row.updated_at = now
    row.status, row.reason, row.until = status, reason, until
    row.customer_id, row.guide_id, row.store_id = entry.customer_id, entry.guide_id, entry.store_id
    row.due, row.key_id = entry.due, key_id
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


# --------------------------------------------------------------------------- scorecards


class _china_day(FunctionElement[date]):
    """The China-time calendar day of a stored UTC timestamp, in SQL.

    China time has no daylight saving (UTC+8 all year), so the day is the timestamp plus eight
    hours, cut to its date; each backend spells that differently.
    """

    type = Date()
    name = "china_day"
    inherit_cache = True


@compiles(_china_day, "sqlite")
def _china_day_sqlite(element: _china_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps the UTC instant as text 'YYYY-MM-DD HH:MM:SS...'; date() reads it.
    return f"date({compiler.process(element.clauses, **kw)}, '+8 hours')"


@compiles(_china_day, "postgresql")
def _china_day_postgresql(element: _china_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(timezone('Asia/Shanghai', {compiler.process(element.clauses, **kw)}) AS DATE)"


DueCounts = tuple[str | None, str | None, int, int, int]
"""``(guide_id, store_id, due, done, done_on_time)`` of one guide and store."""


def due_counts(
    session: Session,
    principal: Principal,
    *,
    since: date | None = None,
    until: date | None = None,
    guide_id: str | None = None,
    store_id: str | None = None,
) -> list[DueCounts]:
    """Marked entries due in a range of days, per guide and store, in one grouped query.

    Args:
        session: an open session.
        principal: the caller; only entries of the guides and stores it may see.
        since, until: the first and last due day counted (both inclusive; ``None``: open).
        guide_id, store_id: only this guide's or store's entries.

    Returns:
        ``(guide_id, store_id, due, done, done_on_time)`` per guide and store: the entries
        marked (done, snoozed or dismissed) whose due day is in the range, those marked done,
        and those marked done on or before their due day (China time).
    """
    done = FollowUpAction.status == "done"
    on_time = and_(done, _china_day(FollowUpAction.updated_at) <= FollowUpAction.due)
    conditions: list[ColumnElement[bool]] = []
    scope = _scope(principal, FollowUpAction.guide_id, FollowUpAction.store_id)
    if scope is not None:
        conditions.append(scope)
    if since is not None:
        conditions.append(FollowUpAction.due >= since)
    if until is not None:
        conditions.append(FollowUpAction.due <= until)
    if guide_id is not None:
        conditions.append(FollowUpAction.guide_id == guide_id)
    if store_id is not None:
        conditions.append(FollowUpAction.store_id == store_id)
    stmt = (
        select(
            FollowUpAction.guide_id,
            FollowUpAction.store_id,
            func.count(),
            func.sum(case((done, 1), else_=0)),
            func.sum(case((on_time, 1), else_=0)),
        )
        .where(*conditions)
        .group_by(FollowUpAction.guide_id, FollowUpAction.store_id)
    )
    return [(g, s, int(n), int(d or 0), int(t or 0)) for g, s, n, d, t in session.execute(stmt)]
