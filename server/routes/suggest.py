"""``POST /v1/suggest``: suggestions for the next guide reply."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server import customer_service, service
from server.deps import MetricsDep, PrincipalDep, RuntimeDep, ServedDep, SessionDep, SettingsDep
from server.routes import error_responses
from server.schemas import SuggestCreate, SuggestPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["suggestions"])


@router.post(
    "/suggest",
    response_model=SuggestPublic,
    responses=error_responses(400, 401, 403, 413, 422),
)
def suggest(
    body: SuggestCreate,
    runtime: RuntimeDep,
    served: ServedDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    session: SessionDep,
) -> dict[str, Any]:
    """Suggest the next guide reply: intent, next-best actions, k scripts with their evidence.

    Each suggestion's ``id`` is its served id: send it back to ``POST /v1/feedback``. A guide
    key may ask only for its own conversations (one without ``guide_id`` is taken as its own).
    With a ``customer_id``, slots the chat leaves open (size, product) are filled from what the
    customer's other stored conversations and orders say.
    """
    known = customer_service.known_about(session, principal, body.conversation)
    result = service.suggest(
        runtime,
        served,
        principal,
        body.conversation,
        body.k or settings.suggest_k,
        settings,
        known=known,
    )
    metrics.suggestions_served.inc(len(result["suggestions"]))
    return result
