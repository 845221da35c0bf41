"""What the leaderboard and scorecard endpoints do: ``/v1/guides``, ``/v1/stores`` and each
guide's or store's scorecard.

The scores come from the stored reports (:mod:`copilot.scoring.scorecard`), the acceptance of
served suggestions from the feedback, and the execution (follow-ups done on time, tasks carried
out and what they brought) from :mod:`server.execution_service`, all over the same period and
the stores the caller may see.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Literal

from sqlalchemy.orm import Session

from copilot.errors import ForbiddenError, NotFoundError
from copilot.scoring.scorecard import build_scorecards, leaderboard, scorecard
from server.auth import Principal
from server.db import repository as repo
from server.execution_service import empty_execution, execution_by
from server.runtime import Runtime
from server.service import TimeBound, _check_ids

__all__ = ["guide_scorecard", "guides", "store_scorecard", "stores"]

GroupBy = Literal["guide", "store"]

_EVERYONE = Principal(key_id=0, role="admin")
"""Used only to tell "exists outside your scope" (403) from "does not exist" (404)."""


def _first(items: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]] | None:
    """``items`` again, or ``None`` when it is empty."""
    head = next(items, None)
    return None if head is None else itertools.chain([head], items)


def _check_store(principal: Principal, store_id: str | None) -> None:
    if principal.role == "supervisor" and store_id is not None and store_id not in principal.stores:
        raise ForbiddenError(
            f"this API key covers stores {', '.join(sorted(principal.stores))} only, "
            f"not store {store_id!r}"
        )


def _board(
    session: Session,
    principal: Principal,
    runtime: Runtime,
    by: GroupBy,
    *,
    store_id: str | None,
    since: TimeBound | None,
    until: TimeBound | None,
) -> dict[str, Any]:
    """The leaderboard of guides or stores, with acceptance and execution."""
    principal.require(("supervisor", "admin"))
    _check_ids(store_id=store_id)
    _check_store(principal, store_id)
    reports = _first(
        repo.iter_reports(session, principal, store_id=store_id, since=since, until=until)
    )
    if reports is None:
        return {"items": []}
    cards = {card.id: card for card in build_scorecards(reports, by=by)}
    window: dict[str, Any] = {"store_id": store_id, "since": since, "until": until}
    acceptance = repo.acceptance_by_guide(session, principal, by=by, **window)
    execution = execution_by(session, principal, runtime, by=by, **window)
    return {
        "items": [
            {
                "rank": row.rank,
                f"{by}_id": row.id,
                "stores" if by == "guide" else "guides": cards[row.id].related,
                "n": row.n,
                "overall": row.overall,
                "dimensions": row.dimensions,
                "conversion_rate": row.conversion_rate,
                "flags": row.flags,
                "acceptance_rate": acceptance.get(row.id, {}).get("acceptance_rate"),
                "execution": execution.get(row.id) or empty_execution(),
            }
            for row in leaderboard(cards.values())
        ]
    }


def guides(
    session: Session,
    principal: Principal,
    runtime: Runtime,
    *,
    store_id: str | None = None,
    since: TimeBound | None = None,
    until: TimeBound | None = None,
) -> dict[str, Any]:
    """The guide leaderboard over the stores the caller sees, with acceptance rates and
    execution.

    Raises:
        ForbiddenError: a guide key, or a store outside a supervisor's.
    """
    return _board(session, principal, runtime, "guide", store_id=store_id, since=since, until=until)


def stores(
    session: Session,
    principal: Principal,
    runtime: Runtime,
    *,
    since: TimeBound | None = None,
    until: TimeBound | None = None,
) -> dict[str, Any]:
    """The store leaderboard over the stores the caller sees, with acceptance rates and
    execution.

    Raises:
        ForbiddenError: a guide key.
    """
    return _board(session, principal, runtime, "store", store_id=None, since=since, until=until)


def _card(
    session: Session,
    principal: Principal,
    runtime: Runtime,
    by: GroupBy,
    key: str,
    *,
    since: TimeBound | None,
    until: TimeBound | None,
    period: str,
) -> dict[str, Any]:
    """One guide's or store's scorecard with acceptance and execution; 404 without reports."""
    guide_id, store_id = (key, None) if by == "guide" else (None, key)
    ids: dict[str, Any] = {"guide_id": guide_id, "store_id": store_id}
    reports = _first(repo.iter_reports(session, principal, since=since, until=until, **ids))
    if reports is None:
        total, _ = repo.list_conversations(session, _EVERYONE, limit=0, **ids)
        visible, _ = repo.list_conversations(session, principal, limit=0, **ids)
        if total and not visible:
            raise ForbiddenError(
                f"{by} {key!r} has no conversations in the stores this API key covers "
                f"({', '.join(sorted(principal.stores)) or 'none'})"
            )
        window = " in that period" if since is not None or until is not None else ""
        raise NotFoundError(f"{by} {key!r} has no stored conversations{window}")
    card = scorecard(reports, since=since, until=until, period=period, **ids)
    acceptance = repo.acceptance_by_guide(
        session, principal, by=by, since=since, until=until, **ids
    )
    execution = execution_by(session, principal, runtime, by=by, since=since, until=until, **ids)
    return {
        **card.to_dict(),
        "acceptance": acceptance.get(key, {}),
        "execution": execution.get(key) or empty_execution(),
    }


def guide_scorecard(
    session: Session,
    principal: Principal,
    runtime: Runtime,
    guide_id: str,
    *,
    since: TimeBound | None = None,
    until: TimeBound | None = None,
    period: str = "week",
) -> dict[str, Any]:
    """One guide's scorecard (over the caller's scope), feedback counts and execution.

    Raises:
        ForbiddenError: a guide asking for another guide, or a supervisor for a guide with no
            conversation in its stores (who has some elsewhere).
        NotFoundError: the guide has no stored conversation (in the window).
        InputError: an unknown period or an empty window.
    """
    _check_ids(guide_id=guide_id)
    if principal.role == "guide" and guide_id != principal.guide_id:
        raise ForbiddenError(
            f"this API key may only see guide {principal.guide_id!r}, not guide {guide_id!r}"
        )
    return _card(
        session, principal, runtime, "guide", guide_id, since=since, until=until, period=period
    )


def store_scorecard(
    session: Session,
    principal: Principal,
    runtime: Runtime,
    store_id: str,
    *,
    since: TimeBound | None = None,
    until: TimeBound | None = None,
    period: str = "week",
) -> dict[str, Any]:
    """One store's scorecard, feedback counts and execution (supervisors: their stores).

    Raises:
        ForbiddenError: a guide key, or a store outside a supervisor's.
        NotFoundError: the store has no stored conversation (in the window).
        InputError: an unknown period or an empty window.
    """
    principal.require(("supervisor", "admin"))
    _check_ids(store_id=store_id)
    _check_store(principal, store_id)
    return _card(
        session, principal, runtime, "store", store_id, since=since, until=until, period=period
    )
