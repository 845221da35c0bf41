"""``/v1/followups``: the day's follow-up queue, and marking its entries done, snoozed or
dismissed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from server import followup_service
from server.crm_schemas import FollowUpActionCreate, FollowUpActionPublic, FollowUpPage
from server.deps import PrincipalDep, SessionDep, SettingsDep
from server.routes import error_responses
from server.schemas import IdQuery

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["followups"])


@router.get("/followups", response_model=FollowUpPage, responses=error_responses(401, 403, 422))
def queue(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    date: Annotated[
        str | None,
        Query(
            description="The day, YYYY-MM-DD (default: today, China time).",
            json_schema_extra={"format": "date"},
        ),
    ] = None,
    guide_id: IdQuery | None = None,
    store_id: IdQuery | None = None,
) -> dict[str, Any]:
    """Whom to contact on the day, why, by when and with what first message: unanswered
    questions, promised come-backs that are due, hesitations without a purchase, after-sales
    care. For the key's customers (a guide: its own; a supervisor: its stores'; an admin: all),
    most urgent first; entries marked done or dismissed are left out, snoozed ones come back
    on their day. Rules: ``COPILOT_FOLLOWUP_RULES``."""
    return followup_service.followup_queue(
        session,
        principal,
        settings,
        day=followup_service.parse_day(date),
        guide_id=guide_id,
        store_id=store_id,
    )


@router.post(
    "/followups/{followup_id}",
    response_model=FollowUpActionPublic,
    responses=error_responses(400, 401, 404, 413, 422),
)
def mark(
    followup_id: IdQuery,
    body: Annotated[FollowUpActionCreate, Body()],
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Mark an entry of today's queue ``done``, ``snoozed`` until a later day (``until``), or
    ``dismissed`` (with a ``reason``); posting again replaces the earlier action. Only entries
    in the key's own queue today (404 otherwise). A done entry keeps its due day."""
    return followup_service.close_entry(
        session,
        principal,
        settings,
        followup_id,
        status=body.status,
        reason=body.reason,
        until=body.until,
    )
