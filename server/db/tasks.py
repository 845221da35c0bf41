"""Headquarters' tasks (``tasks``): script variants, a segment of customers and a window.

Like :mod:`server.db.repository`, every function takes a session first, flushes what it writes
and leaves the commit to the caller. What a task's targets did is never stored: it is read
from the conversations and orders each time (:func:`copilot.tasks.execution`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import TaskRow, utcnow
from server.db.repository import _check_text, _iso

__all__ = ["get_task", "insert_task", "list_tasks", "task_dict", "tasks_between"]


def insert_task(
    session: Session,
    *,
    title: str,
    variants: Sequence[str],
    segment: dict[str, Any],
    stores: Sequence[str],
    starts: datetime,
    deadline: datetime,
    key_id: int | None = None,
) -> TaskRow:
    """Store a new task under a generated id (``tk_`` and 16 hex digits).

    Raises:
        InputError: text with a NUL character.
    """
    _check_text(title, "title")
    for i, variant in enumerate(variants):
        _check_text(variant, f"variants[{i}]")
    for name in ("asked_about", "stores", "guides"):
        for value in segment.get(name) or ():
            _check_text(value, f"segment.{name}")
    row = TaskRow(
        task_id=f"tk_{uuid.uuid4().hex[:16]}",
        title=title,
        variants=list(variants),
        segment=segment,
        stores=sorted(stores),
        starts=starts,
        deadline=deadline,
        key_id=key_id,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def get_task(session: Session, task_id: str) -> TaskRow | None:
    """The task stored under ``task_id``, or ``None``."""
    return session.get(TaskRow, task_id)


def list_tasks(session: Session) -> list[TaskRow]:
    """Every stored task, newest first (the caller keeps those in its scope)."""
    stmt = select(TaskRow).order_by(TaskRow.created_at.desc(), TaskRow.task_id)
    return list(session.scalars(stmt))


def tasks_between(
    session: Session, lower: datetime | None = None, upper: datetime | None = None
) -> list[TaskRow]:
    """The tasks whose window (``starts`` to ``deadline``) overlaps ``[lower, upper)``, oldest
    start first (``None``: open on that side)."""
    stmt = select(TaskRow).order_by(TaskRow.starts, TaskRow.task_id)
    if lower is not None:
        stmt = stmt.where(TaskRow.deadline > lower)
    if upper is not None:
        stmt = stmt.where(TaskRow.starts < upper)
    return list(session.scalars(stmt))


def task_dict(row: TaskRow) -> dict[str, Any]:
    """A stored task as the API shows it (times in China time)."""
    return {
        "task_id": row.task_id,
        "title": row.title,
        "variants": list(row.variants),
        "segment": dict(row.segment),
        "stores": list(row.stores),
        "starts": _iso(row.starts),
        "deadline": _iso(row.deadline),
        "created_at": _iso(row.created_at),
    }
