"""``POST /v1/suggest``: suggestions for the next guide reply, and an LLM draft when asked."""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from fastapi import APIRouter

from server import customer_service, llm_service, service
from server.deps import (
    LLMDep,
    MetricsDep,
    PrincipalDep,
    RuntimeDep,
    ServedDep,
    SessionDep,
    SettingsDep,
)
from server.routes import error_responses
from server.schemas import SuggestCreate, SuggestPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["suggestions"])


@router.post(
    "/suggest",
    response_model=SuggestPublic,
    responses=error_responses(400, 401, 403, 413, 422),
)
async def suggest(
    body: SuggestCreate,
    runtime: RuntimeDep,
    served: ServedDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    session: SessionDep,
    llm: LLMDep,
) -> dict[str, Any]:
    """Suggest the next guide reply: intent, next-best actions, k scripts with their evidence.

    Each suggestion's ``id`` is its served id: send it back to ``POST /v1/feedback``. A guide
    key may ask only for its own conversations (one without ``guide_id`` is taken as its own).
    With a ``customer_id``, slots the chat leaves open (size, product) are filled from what the
    customer's other stored conversations and orders say.

    ``draft: true`` also asks the configured LLM for a draft adapted to this customer, checked
    like every suggestion; it is added when it passes within ``COPILOT_LLM_DRAFT_BUDGET_S``, and
    ``draft`` says what happened. Without it no model is called.
    """
    started = time.monotonic()

    def retrieve() -> tuple[dict[str, str], dict[str, Any]]:
        # The blocking part (database, models) in the request threads, as for a plain route.
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
        return known, result

    known, result = await anyio.to_thread.run_sync(retrieve)
    metrics.suggestions_served.inc(len(result["suggestions"]))
    if body.draft:
        await llm_service.add_draft(
            llm, runtime, served, principal, body.conversation, result, known, started
        )
        if result["draft"]["status"] == "ok":
            metrics.suggestions_served.inc()
    return result
