"""Response models of what the optional LLM adds to the API: a draft beside the suggestions of
``POST /v1/suggest`` and conversation summaries (:mod:`server.llm_service`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["DraftStatus", "DraftStatusPublic", "DraftSuggestionPublic", "SummaryPublic"]

DraftStatus = Literal["ok", "off", "timeout", "rejected", "error"]


class DraftStatusPublic(BaseModel):
    """What became of the draft asked for with ``draft: true``.

    ``ok``: it passed the checks and is the last suggestion; ``off``: no LLM is configured;
    ``timeout``: none within ``COPILOT_LLM_DRAFT_BUDGET_S`` (the suggestions answered alone);
    ``rejected``: the model's drafts failed the checks (facts, compliance, personal data) or
    the reply's schema, twice, and ``reasons`` says why; ``error``: the LLM failed (details in
    the server log). ``seconds`` counts from the start of the request.
    """

    status: DraftStatus
    reasons: list[str]
    prompt_version: str | None
    seconds: float


class DraftSuggestionPublic(BaseModel):
    """A reply drafted by the LLM from the retrieved scripts (``cites``: their script ids), for
    this customer; checked like every suggestion. ``id`` is its served id, for feedback."""

    id: str
    origin: Literal["draft"]
    text: str
    cites: list[int]
    prompt_version: str


class SummaryPublic(BaseModel):
    """A conversation's LLM summary: what the customer wanted, what the guide did, what is
    still open and the next step; the prompt version and model that wrote it, the messages it
    covered (``n_messages``: fewer than the conversation has when it grew since) and when."""

    wanted: str
    guide_did: str
    open_items: list[str]
    next_step: str
    prompt_version: str
    model: str
    n_messages: int
    created_at: str
