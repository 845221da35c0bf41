"""``/v1/conversations``: store scored conversations, list them, read one with coaching, and
summarise one with the optional LLM."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from server import llm_service, service
from server.db.summaries import get_summary
from server.deps import LLMDep, PrincipalDep, RuntimeDep, SessionDep, SettingsDep
from server.llm_schemas import SummaryPublic
from server.routes import error_responses
from server.schemas import (
    MAX_OFFSET,
    MAX_PAGE,
    ConversationBatch,
    ConversationDetailPublic,
    ConversationPage,
    ConversationsCreate,
    ConversationSort,
    ConversationsStored,
    ErrorPublic,
    IdQuery,
    TimeQuery,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["conversations"])


@router.post(
    "/conversations",
    response_model=ConversationsStored,
    responses=error_responses(400, 401, 403, 413, 422),
)
def store(
    body: Annotated[ConversationsCreate, Body()],
    runtime: RuntimeDep,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Score and store one conversation, or ``{"conversations": [...]}``.

    Idempotent on ``conversation_id``: posting it again replaces what was stored (``status``
    says ``updated``). Every conversation must be in the key's scope.
    """
    conversations = body.conversations if isinstance(body, ConversationBatch) else [body]
    return service.store_conversations(runtime, session, principal, conversations, settings)


@router.get(
    "/conversations", response_model=ConversationPage, responses=error_responses(401, 403, 422)
)
def list_conversations(
    session: SessionDep,
    principal: PrincipalDep,
    guide_id: IdQuery | None = None,
    store_id: IdQuery | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    flag: Annotated[
        IdQuery | None, Query(description="A flag rule (unanswered) or kind (compliance).")
    ] = None,
    since: Annotated[
        TimeQuery | None, Query(description="ISO date (a China-time day) or datetime, inclusive.")
    ] = None,
    until: Annotated[
        TimeQuery | None, Query(description="ISO date (that whole day) or datetime, exclusive.")
    ] = None,
    sort: ConversationSort = "-started_at",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """The stored conversations the key may see, filtered, sorted and paginated."""
    total, items = service.list_conversations(
        session,
        principal,
        guide_id=guide_id,
        store_id=store_id,
        min_score=min_score,
        max_score=max_score,
        flag=flag,
        since=service.parse_time(since, "since"),
        until=service.parse_time(until, "until"),
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationDetailPublic,
    responses=error_responses(401, 403, 404),
)
def get_conversation(
    conversation_id: IdQuery, runtime: RuntimeDep, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    """A stored conversation, its score report, and what the copilot would have suggested in
    place of its weakest guide replies; its LLM summary (``summary``) when one was made."""
    detail = service.conversation_detail(runtime, session, principal, conversation_id)
    summary = get_summary(session, conversation_id)
    return detail if summary is None else {**detail, "summary": summary}


@router.post(
    "/conversations/{conversation_id}/summary",
    response_model=SummaryPublic,
    status_code=201,
    responses={
        **error_responses(401, 403, 404, 503),
        502: {"model": ErrorPublic, "description": "The LLM's reply was invalid, also retried"},
    },
)
async def summarize(
    conversation_id: IdQuery, session: SessionDep, principal: PrincipalDep, llm: LLMDep
) -> dict[str, Any]:
    """Summarise a stored conversation with the LLM (supervisor and admin keys, in their
    scope) and store the summary with the conversation, replacing an earlier one: what the
    customer wanted, what the guide did, open items, the next step, the prompt version and
    the model. 503 when no LLM is configured or it cannot be reached, 502 when its reply stays
    invalid."""
    return await llm_service.summarize_stored(llm, session, principal, conversation_id)
