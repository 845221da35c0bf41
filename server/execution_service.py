"""Execution on the scorecards: follow-ups done on time and headquarters' tasks carried out,
per guide or per store, over the same period as the scores.

Two sources, each read once per request whatever the number of guides or stores:

- **Follow-ups** (``followup_actions``, one grouped query): of the queue entries marked done,
  snoozed or dismissed whose *due* day falls in the period, how many were marked done on or
  before that day (China time). Only marked entries are stored, so an entry nobody touched
  counts nowhere; a snoozed or dismissed one counts as due and not done.
- **Tasks** (``tasks`` in one query, then the conversations and orders of their stores in one
  load): of the targets of every task whose window (``starts`` to ``deadline``) overlaps the
  period, how many the guide carried out (:func:`copilot.tasks.execution`, as
  ``GET /v1/tasks/{id}`` counts them), and how many of those customers replied and paid after
  the script. Execution is computed from the conversations, not stored: a period with many
  tasks costs about as much as opening each of them.

A guide or store counts what the caller may see (a supervisor: its stores; an admin: all), by
the entry's or target's guide and store: the customer's latest conversation's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from copilot.schema import CHINA_TZ
from copilot.scoring.scorecard import UNKNOWN_ID
from copilot.tasks import Target
from server import task_service
from server.auth import Principal
from server.db import followups as followups_repo
from server.db.repository import _bound
from server.runtime import Runtime

__all__ = ["empty_execution", "execution_by"]

GroupBy = Literal["guide", "store"]
TimeBound = date | datetime


def empty_execution() -> dict[str, Any]:
    """The execution of a guide or store with nothing in the period."""
    return {"followups": _followups(0, 0, 0), "tasks": _tasks(set(), [])}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _followups(due: int, done: int, on_time: int) -> dict[str, Any]:
    return {
        "due": due,
        "done": done,
        "done_on_time": on_time,
        "on_time_rate": _rate(on_time, due),
    }


def _tasks(task_ids: set[str], targets: list[Target]) -> dict[str, Any]:
    executed = [t for t in targets if t.executed]
    converted = sum(t.converted for t in executed)
    return {
        "tasks": len(task_ids),
        "targeted": len(targets),
        "executed": len(executed),
        "execution_rate": _rate(len(executed), len(targets)),
        "replied": sum(t.replied for t in executed),
        "converted": converted,
        "conversion_rate": _rate(converted, len(executed)),
    }


def _days(since: TimeBound | None, until: TimeBound | None) -> tuple[date | None, date | None]:
    """The first and last China-time day a period touches (``until`` is exclusive when it is
    a datetime, the whole day when it is a date)."""
    lower, upper = _bound(since, upper=False), _bound(until, upper=True)
    first = lower.astimezone(CHINA_TZ).date() if lower is not None else None
    last = (upper - timedelta(microseconds=1)).astimezone(CHINA_TZ).date() if upper else None
    return first, last


def _key(by: GroupBy, guide_id: str | None, store_id: str | None) -> str:
    value = guide_id if by == "guide" else store_id
    return UNKNOWN_ID if value is None else value


def execution_by(
    session: Session,
    principal: Principal,
    runtime: Runtime,
    *,
    by: GroupBy = "guide",
    since: TimeBound | None = None,
    until: TimeBound | None = None,
    guide_id: str | None = None,
    store_id: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Follow-ups and task execution per guide or store (see the module docstring).

    Args:
        session: an open session.
        principal: the caller; it counts only the guides and stores it may see.
        runtime: the live runtime (its bundle's embedder reads task execution).
        by: ``"guide"`` or ``"store"``.
        since, until: the period (a ``date`` is a whole China-time day; no bound: open).
        guide_id, store_id: only this guide or store.

    Returns:
        ``{id: {"followups": {due, done, done_on_time, on_time_rate}, "tasks": {tasks,
        targeted, executed, execution_rate, replied, converted, conversion_rate}}}`` for each
        guide or store with anything to count; rates are ``None`` when nothing was due or
        targeted (or, for ``conversion_rate``, nothing executed).
    """
    first, last = _days(since, until)
    due: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for g, s, n, done, on_time in followups_repo.due_counts(
        session, principal, since=first, until=last, guide_id=guide_id, store_id=store_id
    ):
        counts = due[_key(by, g, s)]
        for i, value in enumerate((n, done, on_time)):
            counts[i] += value
    targets = task_service.executed_targets(
        session,
        principal,
        runtime,
        lower=_bound(since, upper=False),
        upper=_bound(until, upper=True),
        guide_id=guide_id,
        store_id=store_id,
    )
    grouped = _group_targets(by, targets)
    return {
        key: {
            "followups": _followups(*due.get(key, (0, 0, 0))),
            "tasks": _tasks(*grouped.get(key, (set(), []))),
        }
        for key in sorted(set(due) | set(grouped))
    }


def _group_targets(
    by: GroupBy, targets: Iterable[tuple[str, Target]]
) -> dict[str, tuple[set[str], list[Target]]]:
    """Per guide or store: the tasks with a target there, and those targets."""
    out: dict[str, tuple[set[str], list[Target]]] = {}
    for task_id, target in targets:
        tasks, items = out.setdefault(_key(by, target.guide_id, target.store_id), (set(), []))
        tasks.add(task_id)
        items.append(target)
    return out
