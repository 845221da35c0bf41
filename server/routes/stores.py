"""``/v1/stores``: the store leaderboard and each store's scorecard."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from server import scorecard_service, service
from server.deps import PrincipalDep, RuntimeDep, ServedDep, SessionDep
from server.routes import error_responses
from server.schemas import IdQuery, ScorecardPublic, StorePage, TimeQuery

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["stores"])

_SINCE = "ISO date (a China-time day) or datetime, inclusive."
_UNTIL = "ISO date (that whole day) or datetime."


@router.get("/stores", response_model=StorePage, responses=error_responses(401, 403, 422))
def leaderboard(
    session: SessionDep,
    principal: PrincipalDep,
    served: ServedDep,
    runtime: RuntimeDep,
    since: Annotated[TimeQuery | None, Query(description=_SINCE)] = None,
    until: Annotated[TimeQuery | None, Query(description=_UNTIL)] = None,
) -> dict[str, Any]:
    """Stores ranked by average overall score, with acceptance of suggestions and execution:
    follow-ups done on time, task targets reached and what those brought (supervisors: their
    stores; admins: all; guides may not list stores)."""
    served.flush()
    return scorecard_service.stores(
        session,
        principal,
        runtime,
        since=service.parse_time(since, "since"),
        until=service.parse_time(until, "until"),
    )


@router.get(
    "/stores/{store_id}/scorecard",
    response_model=ScorecardPublic,
    responses=error_responses(401, 403, 404, 422),
)
def store_scorecard(
    store_id: IdQuery,
    session: SessionDep,
    principal: PrincipalDep,
    served: ServedDep,
    runtime: RuntimeDep,
    since: Annotated[TimeQuery | None, Query(description=_SINCE)] = None,
    until: Annotated[TimeQuery | None, Query(description=_UNTIL)] = None,
    period: Literal["day", "week", "month"] = "week",
) -> dict[str, Any]:
    """A store's scorecard: dimension averages, trend, best and worst conversations, feedback
    and execution (supervisors: their stores; admins: all)."""
    served.flush()
    return scorecard_service.store_scorecard(
        session,
        principal,
        runtime,
        store_id,
        since=service.parse_time(since, "since"),
        until=service.parse_time(until, "until"),
        period=period,
    )
