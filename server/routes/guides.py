"""``/v1/guides``: the guide leaderboard and each guide's scorecard."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from server import scorecard_service, service
from server.deps import PrincipalDep, RuntimeDep, ServedDep, SessionDep
from server.routes import error_responses
from server.schemas import GuidePage, IdQuery, ScorecardPublic, TimeQuery

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["guides"])

_SINCE = "ISO date (a China-time day) or datetime, inclusive."
_UNTIL = "ISO date (that whole day) or datetime."
# Each parameter gets its own Query(): FastAPI writes the parameter's alias into the Query
# object, so one shared between two routes makes pydantic warn that the alias has no effect.


@router.get("/guides", response_model=GuidePage, responses=error_responses(401, 403, 422))
def leaderboard(
    session: SessionDep,
    principal: PrincipalDep,
    served: ServedDep,
    runtime: RuntimeDep,
    store_id: IdQuery | None = None,
    since: Annotated[TimeQuery | None, Query(description=_SINCE)] = None,
    until: Annotated[TimeQuery | None, Query(description=_UNTIL)] = None,
) -> dict[str, Any]:
    """Guides ranked by average overall score, with acceptance of their suggestions and their
    execution: follow-ups done on time, task targets reached and what those brought
    (supervisors: their stores; admins: all; guides may not list guides)."""
    served.flush()  # count what this process served a moment ago
    return scorecard_service.guides(
        session,
        principal,
        runtime,
        store_id=store_id,
        since=service.parse_time(since, "since"),
        until=service.parse_time(until, "until"),
    )


@router.get(
    "/guides/{guide_id}/scorecard",
    response_model=ScorecardPublic,
    responses=error_responses(401, 403, 404, 422),
)
def guide_scorecard(
    guide_id: IdQuery,
    session: SessionDep,
    principal: PrincipalDep,
    served: ServedDep,
    runtime: RuntimeDep,
    since: Annotated[TimeQuery | None, Query(description=_SINCE)] = None,
    until: Annotated[TimeQuery | None, Query(description=_UNTIL)] = None,
    period: Literal["day", "week", "month"] = "week",
) -> dict[str, Any]:
    """A guide's scorecard: dimension averages, trend, best and worst conversations, feedback
    and execution (follow-ups and tasks).

    A guide key may read only its own.
    """
    served.flush()
    return scorecard_service.guide_scorecard(
        session,
        principal,
        runtime,
        guide_id,
        since=service.parse_time(since, "since"),
        until=service.parse_time(until, "until"),
        period=period,
    )
