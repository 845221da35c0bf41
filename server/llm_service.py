"""The optional LLM in the server: one backend per process, drafts beside the suggestions of
``POST /v1/suggest`` and summaries of stored conversations.

Off unless ``COPILOT_LLM_BACKEND`` names a backend (:class:`copilot.llm.LLMSettings`); then the
app builds one :class:`LLMService` at start-up and closes it at shutdown. Model calls block, so
they run in the service's own threads, never in the threads that answer requests: a request
waiting on a model holds no thread that a plain suggestion needs.

**Drafts.** :func:`add_draft` adapts the top retrieved scripts to the customer (what their
profile says, the catalogue's facts about the products of the chat) with
:func:`copilot.llm.draft`, whose one retry is fed the problems of the checks every suggestion
passes (:class:`copilot.llm.checks.ReplyCheck`: facts, compliance, personal data). A draft
that passes is served as one more suggestion (``origin: "draft"``, with its own ``sg_`` id for
feedback); the response's ``draft`` says what happened: ``ok``, ``off`` (no LLM), ``timeout``
(the budget ``COPILOT_LLM_DRAFT_BUDGET_S`` ran out, counted from the start of the request:
the suggestions answer alone), ``rejected`` (with the reasons) or ``error``.

**Summaries.** :func:`summarize_stored` summarises a stored conversation and stores the summary
with the prompt version and the model (:mod:`server.db.summaries`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy.orm import Session

from copilot.catalog import Catalog
from copilot.errors import (
    ConfigError,
    ForbiddenError,
    LLMBackendError,
    LLMOutputError,
    NotFoundError,
)
from copilot.llm import (
    Backend,
    ChatMessage,
    Completion,
    Draft,
    LLMSettings,
    Summary,
    build_backend,
    draft,
    summarize,
)
from copilot.llm.checks import ReplyCheck
from copilot.schema import Conversation
from server import service
from server.auth import Principal
from server.db import repository as repo
from server.db.summaries import save_summary
from server.runtime import Runtime
from server.served import ServedLog

__all__ = ["LLMService", "add_draft", "catalog_facts", "summarize_stored"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_MAX_FACTS = 5
_MAX_REASON = 300


class LLMService:
    """The process's LLM backend (``None`` when off) and the threads its calls run in.

    Args:
        settings: the ``COPILOT_LLM_*`` settings.
        backend: the backend; built from ``settings`` when ``None`` and they enable one.

    Raises:
        ConfigError: an enabled backend lacks a required setting.
    """

    def __init__(self, settings: LLMSettings, backend: Backend | None = None) -> None:
        self.settings = settings
        self.backend = backend or (build_backend(settings) if settings.enabled else None)
        self.model = f"{settings.backend}:{settings.model}"
        self.budget_s = settings.draft_budget_s
        workers = settings.max_concurrency
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="llm") if self.backend else None
        # Drafts abandoned at their deadline still run to their backend's timeout: past this
        # many in flight a new one is not started (it would only wait behind them).
        self._draft_slots = threading.BoundedSemaphore(workers)

    @property
    def enabled(self) -> bool:
        """Whether an LLM is configured."""
        return self.backend is not None

    def submit(self, work: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``work(*args)`` in the service's threads."""
        if self._pool is None:
            raise _off()
        return self._pool.submit(work, *args)

    def submit_draft(self, work: Callable[..., T], *args: Any) -> Future[T] | None:
        """Like :meth:`submit`, or ``None`` when as many drafts as threads are in flight."""
        if not self._draft_slots.acquire(blocking=False):
            return None
        future = self.submit(work, *args)
        future.add_done_callback(lambda _f: self._draft_slots.release())
        return future

    def close(self) -> None:
        """Stop the threads (calls in flight are abandoned) and close the backend."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self.backend is not None:
            self.backend.close()


def _off() -> ConfigError:
    return ConfigError(
        "no LLM is configured (COPILOT_LLM_BACKEND is 'none', the default); set "
        "COPILOT_LLM_BACKEND=openai with COPILOT_LLM_BASE_URL and COPILOT_LLM_MODEL (or "
        "transformers with COPILOT_LLM_MODEL) and restart the server"
    )


class _Deadline:
    """``backend`` with each call limited to what is left before ``deadline`` (monotonic s),
    and no call started after it: a draft past its budget is of no use to anyone."""

    def __init__(self, backend: Backend, deadline: float) -> None:
        self._backend = backend
        self._deadline = deadline
        self.name = backend.name
        self.mask = backend.mask

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        timeout: float | None = None,
    ) -> Completion:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise LLMBackendError(f"{self.name}: the draft's time budget ran out")
        return self._backend.complete(
            messages, max_tokens=max_tokens, temperature=temperature, timeout=left
        )

    def close(self) -> None:
        """The backend belongs to the service: nothing to close here."""


# --------------------------------------------------------------------------- drafts


def catalog_facts(
    catalog: Catalog, conversation: Conversation, known: Mapping[str, str] | None, day: date | None
) -> list[dict[str, Any]] | None:
    """The catalogue's facts about the products of the chat (and the customer's known product):
    their prices and attributes, and the promotions running that day for them (for every
    product when the chat names none); ``None`` when the catalogue says nothing."""
    text = "\n".join(m.text for m in conversation.messages if m.role != "system")
    if known and known.get("product"):
        text += "\n" + known["product"]
    products = list({p.name: p for p in catalog.find(text)}.values())[:_MAX_FACTS]
    names = [p.name for p in products]
    promotions = [
        p
        for p in catalog.active_promotions(day)
        if not p.products or not names or set(p.products) & set(names)
    ][:_MAX_FACTS]
    facts: list[dict[str, Any]] = [{"product": p.to_dict()} for p in products]
    facts += [
        {
            "promotion": {
                "title": p.title,
                "kind": p.kind,
                "detail": p.detail,
                "ends": p.to_dict()["ends"],
            }
        }
        for p in promotions
    ]
    return facts or None


def _draft_check(
    runtime: Runtime, conversation: Conversation, known: Mapping[str, str] | None, day: date | None
) -> ReplyCheck:
    """The checks of the suggestions, for a draft in ``conversation`` (chat masked as the
    engine masks it)."""
    engine = runtime.engine
    messages = [
        (m.role, engine.pipeline.mask(m.text)[0])
        for m in conversation.messages
        if m.role != "system"
    ]
    return ReplyCheck.of(messages, engine.catalog, day, engine.checker, known)


def _reasons(problems: Sequence[str]) -> list[str]:
    return [p if len(p) <= _MAX_REASON else p[: _MAX_REASON - 1] + "…" for p in problems]


def _status(
    status: str, started: float, reasons: Sequence[str] = (), prompt_version: str | None = None
) -> dict[str, Any]:
    return {
        "status": status,
        "reasons": _reasons(reasons),
        "prompt_version": prompt_version,
        "seconds": round(time.monotonic() - started, 3),
    }


def _draft_work(
    llm: LLMService,
    runtime: Runtime,
    conversation: Conversation,
    suggestions: Sequence[Mapping[str, Any]],
    known: Mapping[str, str] | None,
    deadline: float,
) -> Callable[[], Draft]:
    """The draft call, to run in the service's threads (the evidence is built there too)."""
    assert llm.backend is not None
    backend = _Deadline(llm.backend, deadline)

    def work() -> Draft:
        day = next((m.ts.date() for m in reversed(conversation.messages) if m.ts), None)
        return draft(
            backend,
            conversation,
            [{"id": s["script_id"], "text": s["text"]} for s in suggestions],
            dict(known) if known else None,
            catalog_facts(runtime.engine.catalog, conversation, known, day),
            check=_draft_check(runtime, conversation, known, day),
        )

    return work


async def add_draft(
    llm: LLMService,
    runtime: Runtime,
    served: ServedLog,
    principal: Principal,
    conversation: Conversation,
    result: dict[str, Any],
    known: Mapping[str, str] | None,
    started: float,
) -> None:
    """Draft a reply from ``result``'s suggestions and add it when it passes the checks in time.

    Marks every retrieved suggestion ``origin: "script"``; sets ``result["draft"]`` to
    ``{"status", "reasons", "prompt_version", "seconds"}``; appends the draft (``origin:
    "draft"``, ``text``, ``cites``, ``prompt_version`` and a served ``id``) only when its status
    is ``ok``.

    Args:
        started: ``time.monotonic()`` when the request began: the budget counts from there.
    """
    for suggestion in result["suggestions"]:
        suggestion["origin"] = "script"
    if not llm.enabled:
        result["draft"] = _status("off", started, [str(_off())])
        return
    deadline = started + llm.budget_s
    future = llm.submit_draft(
        _draft_work(llm, runtime, conversation, result["suggestions"], known, deadline)
    )
    if future is None:
        result["draft"] = _status("timeout", started, ["the LLM is busy with earlier drafts"])
        return
    drafted, result["draft"] = await _await_draft(future, deadline, started)
    if drafted is not None:
        rank = len(result["suggestions"])
        item = await anyio.to_thread.run_sync(
            _served_draft, served, principal, conversation, drafted, rank
        )
        result["suggestions"].append(item)


async def _await_draft(
    future: Future[Draft], deadline: float, started: float
) -> tuple[Draft | None, dict[str, Any]]:
    """The draft, or why there is none, once it is done or the deadline passes."""
    try:
        left = max(0.0, deadline - time.monotonic())
        drafted = await asyncio.wait_for(asyncio.wrap_future(future), left)
    except TimeoutError:
        return None, _status("timeout", started, ["no draft within COPILOT_LLM_DRAFT_BUDGET_S"])
    except LLMOutputError as exc:
        logger.info("draft rejected: %s", "; ".join(exc.problems))
        return None, _status("rejected", started, exc.problems or ["the model gave no valid draft"])
    except LLMBackendError as exc:
        logger.warning("draft failed: %s", exc)
        if time.monotonic() >= deadline - 0.05:
            return None, _status("timeout", started, ["no draft within COPILOT_LLM_DRAFT_BUDGET_S"])
        return None, _status("error", started, ["the LLM backend failed; see the server log"])
    except Exception:  # a draft never breaks the suggestions it comes with
        logger.exception("draft failed")
        return None, _status("error", started, ["the draft failed; see the server log"])
    return drafted, _status("ok", started, (), drafted.prompt_version)


def _served_draft(
    served: ServedLog, principal: Principal, conversation: Conversation, drafted: Draft, rank: int
) -> dict[str, Any]:
    """Record the draft as served (feedback on it counts like any) and return it as a
    suggestion."""
    conversation = service._attributed(conversation, principal)
    text = drafted.text.replace("\x00", "")
    rows = repo.served_rows(
        conversation_id=conversation.conversation_id,
        guide_id=conversation.guide_id,
        store_id=conversation.store_id,
        message_index=len(conversation.messages),
        suggestions=[{"text": text}],
    )
    rows[0]["rank"] = rank
    served.add(rows)
    return {
        "id": rows[0]["id"],
        "origin": "draft",
        "text": text,
        "cites": list(drafted.cites),
        "prompt_version": drafted.prompt_version,
    }


# --------------------------------------------------------------------------- summaries


async def summarize_stored(
    llm: LLMService, session: Session, principal: Principal, conversation_id: str
) -> dict[str, Any]:
    """Summarise a stored conversation with the LLM and store the summary (replacing one
    stored before).

    Returns:
        The stored summary (:func:`server.db.summaries.get_summary`).

    Raises:
        ForbiddenError: a guide key, or a conversation outside the key's scope.
        NotFoundError: nothing stored under that id.
        ConfigError: no LLM is configured (503).
        LLMBackendError, LLMOutputError: the model failed (503, 502).
    """
    if principal.role == "guide":
        raise ForbiddenError(
            "summaries are made by supervisor and admin keys; this key is a guide's (read a "
            "stored summary with GET /v1/conversations/{id})"
        )
    conversation = await anyio.to_thread.run_sync(_stored, session, principal, conversation_id)
    if llm.backend is None:
        raise _off()
    summary = await asyncio.wrap_future(llm.submit(summarize, llm.backend, conversation))
    return await anyio.to_thread.run_sync(
        _store_summary, session, principal, conversation, summary, llm.model
    )


def _stored(session: Session, principal: Principal, conversation_id: str) -> Conversation:
    """A stored conversation the key may see."""
    service._check_ids(conversation_id=conversation_id)
    found = repo.get_conversation(session, conversation_id)
    if found is None:
        raise NotFoundError(
            f"no conversation {conversation_id!r} is stored; POST it to /v1/conversations first"
        )
    conversation = found[0]
    what = f"conversation {conversation_id!r}"
    principal.check_scope(conversation.guide_id, conversation.store_id, what)
    return conversation


def _store_summary(
    session: Session, principal: Principal, conversation: Conversation, summary: Summary, model: str
) -> dict[str, Any]:
    def clean(text: str) -> str:
        return text.replace("\x00", "")  # a model's NUL would be refused as if the caller sent it

    values = {
        "wanted": clean(summary.wanted),
        "guide_did": clean(summary.guide_did),
        "open_items": [clean(item) for item in summary.open_items],
        "next_step": clean(summary.next_step),
    }
    return service._write(
        session,
        lambda: save_summary(
            session,
            conversation.conversation_id,
            values,
            prompt_version=summary.prompt_version,
            model=model,
            n_messages=len(conversation.messages),
            key_id=principal.key_id,
        ),
    )
