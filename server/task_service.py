"""What the task endpoints do: ``POST /v1/tasks``, ``GET /v1/tasks`` and ``GET /v1/tasks/{id}``.

A task (:mod:`copilot.tasks`) is created by a supervisor or an admin. Its ``stores`` are the
creating key's stores (empty for an admin: every store); a supervisor's segment may name only
its own stores, and names them all when it names none. Targets are worked out over every
stored conversation in the task's stores (whoever asks), so each role sees the same numbers for
the targets it may see: a guide its own customers, a supervisor its stores' customers, an
admin all. Whether a target's guide carried the task out is read from the conversations with
the live bundle's embedder (:func:`copilot.tasks.execution`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from copilot.errors import ForbiddenError, InputError, NotFoundError
from copilot.profile import build_profile
from copilot.schema import Conversation
from copilot.tasks import Segment, Target, Task, execution, summarise, targets
from server.auth import Principal
from server.customer_service import CustomerData, customers_in_scope, latest_owner
from server.db import tasks as tasks_repo
from server.db.models import TaskRow
from server.runtime import Runtime
from server.service import _write

__all__ = ["create_task", "executed_targets", "list_tasks", "task_detail"]


def create_task(
    session: Session,
    principal: Principal,
    *,
    title: str,
    variants: list[str],
    segment: dict[str, Any],
    starts: datetime,
    deadline: datetime,
) -> dict[str, Any]:
    """Store a task for the caller's stores.

    Raises:
        ForbiddenError: a guide key, or a supervisor's segment naming another store.
        InputError: blank variants, unknown stages, a deadline not after the start.
    """
    principal.require(("supervisor", "admin"))
    stores = sorted(principal.stores) if principal.role == "supervisor" else []
    named = list(segment.get("stores") or [])
    outside = sorted(set(named) - set(stores)) if stores else []
    if outside:
        raise ForbiddenError(
            f"the segment names store {outside[0]!r}; this API key covers stores "
            f"{', '.join(stores)} only (leave segment.stores empty for all of them)"
        )
    segment = {**segment, "stores": named or stores}
    task = Task("new", title, tuple(variants), Segment.from_dict(segment), starts, deadline)

    def work() -> dict[str, Any]:
        row = tasks_repo.insert_task(
            session,
            title=task.title,
            variants=task.variants,
            segment=task.segment.to_dict(),
            stores=stores,
            starts=task.starts,
            deadline=task.deadline,
            key_id=principal.key_id,
        )
        return tasks_repo.task_dict(row)

    return _write(session, work)


def _task(row: TaskRow) -> Task:
    return Task(
        row.task_id,
        row.title,
        tuple(row.variants),
        Segment.from_dict(row.segment),
        row.starts,
        row.deadline,
    )


def _reach(row: TaskRow) -> Principal:
    """Whose conversations a task reads: its stores' (an admin's task: every store's)."""
    stores = row.segment.get("stores") or row.stores
    if not stores:
        return Principal(key_id=0, role="admin")
    return Principal(key_id=0, role="supervisor", stores=frozenset(stores))


def _since(task: Task) -> datetime | None:
    """The earliest end of a conversation the task reads: a fact or contact within the
    segment's days lies in a conversation that ended since (no limit without ``within_days``)."""
    within = task.segment.within_days
    return task.starts - timedelta(days=within) if within is not None else None


def _customers(session: Session, row: TaskRow, task: Task) -> CustomerData:
    """The conversations and orders of the customers the task may target."""
    return customers_in_scope(session, _reach(row), _since(task))


def _targets(task: Task, customers: CustomerData) -> list[Target]:
    conversations, orders = customers
    return targets(
        task,
        [
            (build_profile(cid, chats, orders.get(cid, [])), *latest_owner(chats))
            for cid, chats in sorted(conversations.items())
        ],
    )


def _mine(principal: Principal, chosen: list[Target]) -> list[Target]:
    """The targets the caller may see."""
    return [t for t in chosen if principal.can_see(t.guide_id, t.store_id)]


def _visible(principal: Principal, row: TaskRow) -> bool:
    """Whether a supervisor's stores meet the task's (guides: see :func:`list_tasks`)."""
    if principal.role != "supervisor":
        return True
    stores = row.segment.get("stores") or row.stores
    return not stores or bool(set(stores) & principal.stores)


def list_tasks(
    session: Session, principal: Principal, *, limit: int = 50, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """The tasks in the caller's scope, newest first: all for an admin, those of its stores
    for a supervisor, and for a guide those that target at least one of its customers."""
    rows = [row for row in tasks_repo.list_tasks(session) if _visible(principal, row)]
    if principal.role == "guide":
        rows = [row for row in rows if _guide_targets(session, principal, row)]
    items = [tasks_repo.task_dict(row) for row in rows]
    return len(items), items[offset : offset + limit]


def _guide_targets(session: Session, principal: Principal, row: TaskRow) -> list[Target]:
    task = _task(row)
    return _mine(principal, _targets(task, _customers(session, row, task)))


def task_detail(
    session: Session, principal: Principal, runtime: Runtime, task_id: str
) -> dict[str, Any]:
    """A task, its targets the caller may see with what became of each, and the summary of
    those targets overall, per guide and per store.

    Raises:
        NotFoundError: no task under that id.
        ForbiddenError: a supervisor's stores do not meet the task's, or a guide none of whose
            customers it targets.
    """
    if "\x00" in task_id:
        raise InputError("task_id contains a NUL character (\\x00); remove it")
    row = tasks_repo.get_task(session, task_id)
    if row is None:
        raise NotFoundError(f"no task {task_id!r}; use an id from GET /v1/tasks")
    if not _visible(principal, row):
        raise ForbiddenError(
            f"task {task_id!r} is for stores {', '.join(row.segment.get('stores') or [])}; "
            f"this API key covers stores {', '.join(sorted(principal.stores))} only"
        )
    task = _task(row)
    conversations, orders = customers = _customers(session, row, task)
    chosen = _mine(principal, _targets(task, customers))
    if principal.role == "guide" and not chosen:
        raise ForbiddenError(
            f"task {task_id!r} targets none of guide {principal.guide_id!r}'s customers"
        )
    done = execution(task, chosen, conversations, orders, encode=runtime.bundle.embedder.encode)
    return {
        **tasks_repo.task_dict(row),
        "targets": [t.to_dict() for t in done],
        "summary": summarise(done),
    }


# --------------------------------------------------------------------------- scorecards


def _ended(conversation: Conversation) -> datetime | None:
    stamps = [m.ts for m in conversation.messages if m.ts is not None]
    return max(stamps) if stamps else None


def _union_reach(rows: list[TaskRow]) -> Principal:
    """Whose conversations several tasks read together: the union of their reaches."""
    stores: set[str] = set()
    for row in rows:
        reach = _reach(row)
        if reach.role == "admin":
            return reach
        stores |= reach.stores
    return Principal(key_id=0, role="supervisor", stores=frozenset(stores))


def _narrow(everything: CustomerData, row: TaskRow, task: Task) -> CustomerData:
    """Of conversations loaded for several tasks, those this task's own load would read."""
    stores = set(_reach(row).stores)
    since = _since(task)
    conversations: dict[str, list[Conversation]] = {}
    for cid, chats in everything[0].items():
        kept = [
            c
            for c in chats
            if (not stores or c.store_id in stores)
            and (since is None or ((end := _ended(c)) is not None and end >= since))
        ]
        if kept:
            conversations[cid] = kept
    orders = {cid: everything[1][cid] for cid in conversations if cid in everything[1]}
    return conversations, orders


def executed_targets(
    session: Session,
    principal: Principal,
    runtime: Runtime,
    *,
    lower: datetime | None = None,
    upper: datetime | None = None,
    guide_id: str | None = None,
    store_id: str | None = None,
) -> list[tuple[str, Target]]:
    """The targets the caller may see of every task whose window overlaps ``[lower, upper)``,
    each with what became of it (as ``GET /v1/tasks/{id}`` says).

    Execution is not stored; it is read from the conversations each time. The tasks come in
    one query and the conversations and orders of all their stores in one load, shared; each
    task then picks its own customers and embeds only its targets' guide messages.

    Args:
        guide_id, store_id: only targets of this guide or store (the customer's latest
            conversation's), so only their messages get embedded.

    Returns:
        ``(task_id, target)`` pairs, tasks by start.
    """
    rows = [
        row for row in tasks_repo.tasks_between(session, lower, upper) if _visible(principal, row)
    ]
    if not rows:
        return []
    tasks = [(row, _task(row)) for row in rows]
    sinces = [_since(task) for _, task in tasks]
    since = None if any(s is None for s in sinces) else min(s for s in sinces if s is not None)
    everything = customers_in_scope(session, _union_reach(rows), since)
    out: list[tuple[str, Target]] = []
    for row, task in tasks:
        customers = _narrow(everything, row, task)
        chosen = [
            t
            for t in _mine(principal, _targets(task, customers))
            if guide_id in (None, t.guide_id) and store_id in (None, t.store_id)
        ]
        if chosen:
            encode = runtime.bundle.embedder.encode
            done = execution(task, chosen, customers[0], customers[1], encode=encode)
            out += [(row.task_id, target) for target in done]
    return out
