"""``/v1/scripts``: the live bundle's winning scripts; supervisors pin and ban them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from server import service
from server.deps import HolderDep, PrincipalDep, RuntimeDep, ServedDep, SessionDep
from server.routes import error_responses
from server.schemas import (
    MAX_OFFSET,
    MAX_PAGE,
    IdQuery,
    ScriptPage,
    ScriptPublic,
    ScriptSort,
    ScriptState,
    ScriptStateCreate,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["scripts"])


@router.get("/scripts", response_model=ScriptPage, responses=error_responses(401, 403, 422))
def list_scripts(
    runtime: RuntimeDep,
    session: SessionDep,
    principal: PrincipalDep,
    served: ServedDep,
    store_id: Annotated[
        IdQuery | None, Query(description="Show the pins and bans that hold in this store.")
    ] = None,
    action: str | None = None,
    intent: str | None = None,
    q: Annotated[str | None, Query(description="Text the script contains.")] = None,
    state: ScriptState | None = None,
    sort: ScriptSort = "-lift",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """Scripts with lift, sample size, pin/ban state and guides' acceptance."""
    served.flush()  # count what this process served a moment ago
    return service.list_scripts(
        runtime,
        session,
        principal,
        store_id=store_id,
        action=action,
        intent=intent,
        q=q,
        state=state,
        sort=sort,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/scripts", response_model=ScriptPublic, responses=error_responses(400, 401, 403, 404, 422)
)
def set_state(
    body: ScriptStateCreate,
    holder: HolderDep,
    session: SessionDep,
    principal: PrincipalDep,
    served: ServedDep,
) -> dict[str, Any]:
    """Pin a script (it leads when it fits) or ban it (never served); effective at once,
    kept across reloads and restarts. A supervisor's holds in its stores, an admin's in every
    store."""
    served.flush()
    return service.set_script_state(holder, session, principal, body.script_id, body.state)


@router.delete(
    "/scripts/{script_id}", response_model=ScriptPublic, responses=error_responses(401, 403, 404)
)
def clear_state(
    script_id: int,
    holder: HolderDep,
    session: SessionDep,
    principal: PrincipalDep,
    served: ServedDep,
) -> dict[str, Any]:
    """Clear a script's pin or ban: a supervisor's in its stores, an admin's in every store."""
    served.flush()
    return service.set_script_state(holder, session, principal, script_id, None)
