"""``POST /v1/classify``: intents and next-best actions of customer messages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server import service
from server.deps import PrincipalDep, RuntimeDep
from server.routes import error_responses
from server.schemas import ClassifyCreate, ClassifyPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["models"])


@router.post(
    "/classify", response_model=ClassifyPublic, responses=error_responses(400, 401, 413, 422)
)
def classify(body: ClassifyCreate, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Classify bare customer messages: intent with confidence, and the guide's next actions."""
    return service.classify(runtime, body.texts)
