"""``POST /v1/feedback``: what the guide did with a served suggestion."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server import service
from server.deps import HolderDep, MetricsDep, PrincipalDep, ServedDep, SessionDep
from server.routes import error_responses
from server.schemas import FeedbackCreate, FeedbackPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["suggestions"])


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackPublic,
    responses=error_responses(400, 401, 403, 404, 422),
)
def feedback(
    body: FeedbackCreate,
    holder: HolderDep,
    served: ServedDep,
    session: SessionDep,
    principal: PrincipalDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    """Record ``accepted``, ``edited`` (with ``final_text``, the reply sent) or ``rejected``.

    A second feedback on the same suggestion replaces the first. Acceptance feeds the script
    ranking at once.
    """
    result = service.record_feedback(
        holder, served, session, principal, body.suggestion_id, body.outcome, body.final_text
    )
    metrics.feedback.labels(outcome=body.outcome).inc()
    return result
