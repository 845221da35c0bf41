"""``POST /v1/admin/reload``: swap in a new bundle without dropping a request."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server import service
from server.deps import HolderDep, MetricsDep, PrincipalDep, SessionDep, SettingsDep
from server.routes import error_responses
from server.schemas import ReloadCreate, ReloadPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/reload", response_model=ReloadPublic, responses=error_responses(400, 401, 403, 422))
def reload(
    holder: HolderDep,
    session: SessionDep,
    principal: PrincipalDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    body: ReloadCreate | None = None,
) -> dict[str, Any]:
    """Load a bundle (default: the current bundle's directory again) and make it current.

    Requests in flight finish on the old bundle; pins, bans and feedback carry over. A bundle
    that cannot be loaded leaves the current one serving (admins only). With several server
    processes, the others load it within ``COPILOT_SYNC_SECONDS``.
    """
    bundle_dir = body.bundle_dir if body else None
    return service.reload(holder, session, principal, metrics, bundle_dir, settings.serve_id)
