"""``/v1/orders``: post payments (supervisors and admins) and list them with the conversation
each was attributed to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from server import order_service, service
from server.deps import PrincipalDep, SessionDep, SettingsDep
from server.routes import error_responses
from server.schemas import (
    MAX_OFFSET,
    MAX_PAGE,
    IdQuery,
    OrderBatch,
    OrderPage,
    OrdersCreate,
    OrdersStored,
    TimeQuery,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["orders"])


@router.post(
    "/orders", response_model=OrdersStored, responses=error_responses(400, 401, 403, 413, 422)
)
def store(
    body: Annotated[OrdersCreate, Body()],
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Store one order, or ``{"orders": [...]}`` (up to 500), and attribute them.

    Idempotent on ``order_id``: posting it again replaces the stored order (``status`` says
    ``updated``). Each order goes to its customer's latest stored conversation with a message
    at most ``COPILOT_ATTRIBUTION_HOURS`` (72) before ``paid_at`` (only that store's, when the
    order names a store), which becomes converted with the orders' total as ``order_amount``.
    Supervisors: each order must name one of the key's stores; guides may not post orders.
    """
    orders = body.orders if isinstance(body, OrderBatch) else [body]
    return order_service.store_orders(session, principal, orders, settings)


@router.get("/orders", response_model=OrderPage, responses=error_responses(401, 403, 422))
def list_orders(
    session: SessionDep,
    principal: PrincipalDep,
    customer_id: IdQuery | None = None,
    store_id: IdQuery | None = None,
    conversation_id: IdQuery | None = None,
    attributed: Annotated[
        bool | None, Query(description="Only attributed (true) or unattributed (false) orders.")
    ] = None,
    since: Annotated[
        TimeQuery | None, Query(description="ISO date (a China-time day) or datetime, inclusive.")
    ] = None,
    until: Annotated[
        TimeQuery | None, Query(description="ISO date (that whole day) or datetime, exclusive.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """The orders the key may see (supervisors: their stores'; admins: all), newest payment
    first, each with the conversation it is attributed to or the reason it is not."""
    total, items = order_service.list_orders(
        session,
        principal,
        customer_id=customer_id,
        store_id=store_id,
        conversation_id=conversation_id,
        attributed=attributed,
        since=service.parse_time(since, "since"),
        until=service.parse_time(until, "until"),
        limit=limit,
        offset=offset,
    )
    return {"total": total, "limit": limit, "offset": offset, "items": items}
