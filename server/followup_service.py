"""What the follow-up endpoints do: ``GET /v1/followups`` and ``POST /v1/followups/{id}``.

The day's queue is :func:`copilot.followups.build_queue` over the stored conversations the
caller may see whose last message is at most :data:`QUEUE_DAYS` days before the day (a guide:
its own; a supervisor: its stores'; an admin: all), with those customers' stored orders, under
the rules of ``COPILOT_FOLLOWUP_RULES`` (the built-in file by default). Entries marked done or
dismissed are left out; snoozed ones come back on their day.

An entry can be marked only while it is in the caller's queue today (China time), so a guide
can close its own entries only. Marking it again replaces the earlier action.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from copilot.errors import ConfigError, ForbiddenError, InputError, NotFoundError
from copilot.followups import FollowUp, FollowUpRules, build_queue, customer_states, load_rules
from copilot.schema import CHINA_TZ, check_time
from server.auth import Principal
from server.customer_service import customers_in_scope, intents_of
from server.db import followups as followups_repo
from server.service import _write
from server.settings import Settings

__all__ = ["QUEUE_DAYS", "close_entry", "followup_queue", "parse_day", "today"]

QUEUE_DAYS = 60
"""Conversations whose last message is older than this (before the queue's day) are not read:
every rule's window closes well within it."""


def today() -> date:
    """The current day in China time."""
    return datetime.now(CHINA_TZ).date()


def parse_day(value: str | None, name: str = "date") -> date:
    """A ``YYYY-MM-DD`` query value in the years 1970 to 2100; today (China time) when absent.

    Raises:
        InputError: not such a day.
    """
    if value is None or not value.strip():
        return today()
    try:
        day = date.fromisoformat(value.strip())
        check_time(datetime.combine(day, time()))
    except ValueError as exc:
        reason = str(exc) if "supported range" in str(exc) else "not a day"
        raise InputError(
            f"{name}: {value!r} is {reason}; use YYYY-MM-DD, e.g. 2026-03-01"
        ) from None
    return day


@lru_cache(maxsize=8)
def _load_rules(path: Path | None) -> FollowUpRules:
    try:
        return load_rules(path)
    except InputError as exc:
        # A bad rules file is the server's configuration, not the request's fault.
        raise ConfigError(f"{exc}; fix the file COPILOT_FOLLOWUP_RULES names") from exc


def _queue(
    session: Session,
    principal: Principal,
    settings: Settings,
    day: date,
    *,
    reopened: str | None = None,
) -> list[FollowUp]:
    """The caller's queue for ``day`` with marked entries left out, except ``reopened`` (an
    entry that is about to be marked again)."""
    since = datetime.combine(day - timedelta(days=QUEUE_DAYS), time(), tzinfo=CHINA_TZ)
    conversations, orders = customers_in_scope(session, principal, since)
    chats = [c for items in conversations.values() for c in items]
    paid = [o for items in orders.values() for o in items]
    states = customer_states(chats, paid, intents=intents_of(session, chats))
    closed = followups_repo.closed_entries(session, states)
    if reopened is not None:
        closed.pop(reopened, None)
    return build_queue(states.values(), day, _load_rules(settings.followup_rules), closed=closed)


def _check_filters(principal: Principal, guide_id: str | None, store_id: str | None) -> None:
    for name, value in (("guide_id", guide_id), ("store_id", store_id)):
        if value is not None and "\x00" in value:
            raise InputError(f"{name} contains a NUL character (\\x00); remove it")
    if principal.role == "guide" and guide_id not in (None, principal.guide_id):
        raise ForbiddenError(
            f"this API key may only see guide {principal.guide_id!r}, not guide {guide_id!r}"
        )
    if principal.role == "supervisor" and store_id is not None and store_id not in principal.stores:
        raise ForbiddenError(
            f"this API key covers stores {', '.join(sorted(principal.stores))} only, "
            f"not store {store_id!r}"
        )


def followup_queue(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    day: date,
    guide_id: str | None = None,
    store_id: str | None = None,
) -> dict[str, Any]:
    """The follow-ups open on ``day`` for the caller's customers, most urgent first.

    Args:
        guide_id, store_id: only entries of this guide or store (the customer's latest
            conversation's).

    Returns:
        ``{date, customers, total, items}``: how many customers were read, and the entries
        (:meth:`copilot.followups.FollowUp.to_dict`).

    Raises:
        ForbiddenError: a guide or store outside the caller's scope.
        ConfigError: the rules file cannot be read.
    """
    _check_filters(principal, guide_id, store_id)
    entries = _queue(session, principal, settings, day)
    items = [
        e.to_dict(day)
        for e in entries
        if guide_id in (None, e.guide_id) and store_id in (None, e.store_id)
    ]
    return {"date": day.isoformat(), "total": len(items), "items": items}


def close_entry(
    session: Session,
    principal: Principal,
    settings: Settings,
    entry_id: str,
    *,
    status: str,
    reason: str | None = None,
    until: date | None = None,
) -> dict[str, Any]:
    """Mark an entry of the caller's queue today done, snoozed (until a later day) or dismissed.

    The entry is looked up in today's queue as it would be without an action on it, so marking
    it again (done after snoozed, or the same twice) replaces the earlier action.

    Returns:
        The stored action (``id, status, reason, until, customer_id, guide_id, store_id, due``)
        and ``replaced``.

    Raises:
        InputError: an unknown status, ``dismissed`` without a reason, ``snoozed`` without
            ``until`` or with one not after today, ``until`` with another status, or an id
            with a NUL character.
        NotFoundError: no entry with that id in the caller's queue today.
    """
    if "\x00" in entry_id:
        raise InputError("the follow-up id contains a NUL character (\\x00); remove it")
    _check_action(status, reason, until)
    day = today()
    if until is not None and until <= day:
        raise InputError(
            f"until: {until.isoformat()} is not after today ({day.isoformat()}, China time); "
            "snooze to a later day"
        )
    # Found before the write transaction: the queue reads many rows, the write is one.
    found = _queue(session, principal, settings, day, reopened=entry_id)
    entry = next((e for e in found if e.id == entry_id), None)
    if entry is None:
        raise NotFoundError(
            f"no follow-up {entry_id!r} in this API key's queue today ({day.isoformat()}); use "
            "an id from GET /v1/followups (a guide may mark only its own customers' entries)"
        )
    chosen = entry

    def work() -> tuple[dict[str, Any], bool]:
        return followups_repo.save_action(
            session, chosen, status, reason=reason, until=until, key_id=principal.key_id
        )

    action, replaced = _write(session, work)
    return {**action, "replaced": replaced}


def _check_action(status: str, reason: str | None, until: date | None) -> None:
    """The rules of an action's fields (the request schema declares them too)."""
    if status not in followups_repo.ACTIONS:
        raise InputError(
            f"status must be one of {', '.join(followups_repo.ACTIONS)}, got {status!r}"
        )
    if status == "dismissed" and not (reason or "").strip():
        raise InputError("status 'dismissed' needs a reason: why the customer is not followed up")
    if status == "snoozed" and until is None:
        raise InputError("status 'snoozed' needs until: the day the entry comes back (YYYY-MM-DD)")
    if status != "snoozed" and until is not None:
        raise InputError(f"until is only for status 'snoozed', not {status!r}; leave it out")
