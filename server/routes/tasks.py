"""``/v1/tasks``: headquarters' tasks (a script for a segment of customers by a deadline) and
whether guides carried them out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from server import task_service
from server.crm_schemas import TaskCreate, TaskDetailPublic, TaskPage, TaskPublic
from server.deps import PrincipalDep, RuntimeDep, SessionDep
from server.routes import error_responses
from server.schemas import MAX_OFFSET, MAX_PAGE, IdQuery

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["tasks"])


@router.post(
    "/tasks",
    status_code=201,
    response_model=TaskPublic,
    responses=error_responses(400, 401, 403, 413, 422),
)
def create(
    body: Annotated[TaskCreate, Body()], session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Create a task: 1 to 5 script variants, the segment of customers (``asked_about``,
    ``within_days``, ``bought``, ``stages``, ``stores``, ``guides``) and the window
    (``starts`` to ``deadline``). Supervisors (for their stores: a segment without stores
    means all of them) and admins."""
    return task_service.create_task(
        session,
        principal,
        title=body.title,
        variants=list(body.variants),
        segment=body.segment.model_dump(),
        starts=body.starts,
        deadline=body.deadline,
    )


@router.get("/tasks", response_model=TaskPage, responses=error_responses(401, 422))
def list_tasks(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """The tasks in the key's scope, newest first: an admin all, a supervisor those of its
    stores, a guide those that target at least one of its customers."""
    total, items = task_service.list_tasks(session, principal, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get(
    "/tasks/{task_id}", response_model=TaskDetailPublic, responses=error_responses(401, 403, 404)
)
def detail(
    task_id: IdQuery, session: SessionDep, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """The task, its targets the key may see (a guide: its own customers) with whether the
    guide sent the script or a close variant in the window, whether the customer replied and
    paid, and the summary overall, per guide and per store."""
    return task_service.task_detail(session, principal, runtime, task_id)
