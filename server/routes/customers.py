"""``/v1/customers``: a customer's profile from the conversations the key may see."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server import customer_service
from server.crm_schemas import CustomerPublic
from server.deps import PrincipalDep, SessionDep
from server.routes import error_responses
from server.schemas import IdQuery

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["customers"])


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerPublic,
    responses=error_responses(401, 404, 422),
)
def profile(customer_id: IdQuery, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """The customer's profile: facts read from their messages (sizes, budget, skin, who it is
    for, products, objections, preferences, a promised come-back time), each with the
    conversation, message index, time and text it came from; stage, last contact, orders and
    the conversations read. Built from the stored conversations the key may see (a guide: its
    own; a supervisor: its stores'); 404 when it sees none of this customer's."""
    return customer_service.customer_profile(session, principal, customer_id)
