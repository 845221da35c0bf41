"""``GET /v1/me``: who the API key speaks for (the dashboard's sign-in check)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.deps import PrincipalDep
from server.routes import error_responses
from server.schemas import MePublic

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["auth"])


@router.get("/me", response_model=MePublic, responses=error_responses(401))
def me(principal: PrincipalDep) -> dict[str, Any]:
    """The key's role, guide and stores."""
    return principal.to_dict()
