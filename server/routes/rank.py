"""``POST /v1/rank``: given replies (a script library, a tool's own) ranked as the next reply."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server import service
from server.deps import MetricsDep, PrincipalDep, RuntimeDep, SettingsDep
from server.routes import error_responses
from server.schemas import RankCreate, RankPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["suggestions"])


@router.post("/rank", response_model=RankPublic, responses=error_responses(400, 401, 403, 413, 422))
def rank(
    body: RankCreate,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    """Rank candidate replies for the conversation: every candidate once, best first.

    Each is scored by reply matching and the predicted next action, as suggestions are; one that
    breaks a compliance rule or holds personal data comes last with its ``flags``. A guide key
    may rank only for its own conversations (one without ``guide_id`` is taken as its own).
    """
    result = service.rank(runtime, principal, body.conversation, body.candidates, settings)
    metrics.candidates_ranked.inc(len(result["ranked"]))
    return result
