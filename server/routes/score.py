"""``POST /v1/score``: the score report of one conversation, not stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server import service
from server.deps import PrincipalDep, RuntimeDep, SettingsDep
from server.routes import error_responses
from server.schemas import ScoreCreate

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["models"])


@router.post("/score", responses=error_responses(400, 401, 413, 422))
def score(
    body: ScoreCreate, runtime: RuntimeDep, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    """Score a conversation: overall, dimensions with evidence, flags, win probability.

    Nothing is stored (``POST /v1/conversations`` scores and stores).
    """
    return service.score(runtime, body.conversation, settings)
