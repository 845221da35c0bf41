"""What each endpoint does, between parsing (the routes) and the core and storage it calls.

One function per action. Each takes the request's :class:`~server.runtime.Runtime` (or the
holder, to change pins, bans and feedback), an open database session, the caller's
:class:`~server.auth.Principal` and the parsed request; it checks scope and limits, calls the
core (:mod:`copilot.scoring`, :mod:`models.suggest`) and the repository
(:mod:`server.db.repository`), commits what it wrote, and returns the response object. It raises
only :class:`~copilot.errors.CopilotError` subclasses, which the app maps to HTTP statuses.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from copilot.errors import (
    BundleError,
    BusyError,
    ConfigError,
    ForbiddenError,
    InputError,
    NotFoundError,
)
from copilot.schema import Conversation, check_time
from models.suggest import ScriptStates
from server.auth import Principal
from server.db import begin_write
from server.db import orders as orders_repo
from server.db import repository as repo
from server.db.models import ConversationRow, ServedSuggestion
from server.metrics import Metrics
from server.runtime import Runtime, RuntimeHolder
from server.served import ServedLog
from server.settings import Settings

__all__ = [
    "TimeBound",
    "check_messages",
    "classify",
    "conversation_detail",
    "list_conversations",
    "list_scripts",
    "load_feedback_and_states",
    "parse_time",
    "rank",
    "readiness",
    "record_feedback",
    "reload",
    "score",
    "set_script_state",
    "store_conversations",
    "suggest",
    "sync",
    "follow_reload",
]

TimeBound = date | datetime

logger = logging.getLogger(__name__)


# Pins, bans and feedback counts: read-after-write of the stored state and the apply to the
# engine happen under one lock, so two concurrent changes cannot apply a stale read last.
_STATE_LOCK = threading.Lock()
_FEEDBACK_LOCK = threading.Lock()


# --------------------------------------------------------------------------- checks


_WRITE_ATTEMPTS = 4
# SQLite has one writer at a time, and a writer that finds it busy sleeps in growing steps
# (up to 100 ms each): this process's threads take turns here instead, waking at once.
_SQLITE_WRITER = threading.Lock()
T = TypeVar("T")


def _write(session: Session, work: Callable[[], T]) -> T:
    """Run ``work`` (writes through ``session``) in one transaction and commit, retrying what
    concurrent writers cause.

    On SQLite the transaction takes the write lock before ``work`` reads anything
    (:func:`server.db.begin_write`), so another process cannot commit between what ``work``
    reads and what it writes. Retried: SQLite's "database is locked" (the lock stayed taken
    past the busy timeout), a unique-key race when two requests create the same conversation
    (the retry finds it stored and updates it), and PostgreSQL's deadlock and serialization
    failures (it rolled one transaction back so the other could go on).

    Raises:
        BusyError: the database stayed locked (answered as 503 with Retry-After).
    """
    sqlite = session.get_bind().dialect.name == "sqlite"
    for attempt in range(_WRITE_ATTEMPTS):
        try:
            with _SQLITE_WRITER if sqlite else contextlib.nullcontext():
                begin_write(session)
                result = work()
                session.commit()
            return result
        except (IntegrityError, OperationalError) as exc:
            session.rollback()
            locked = isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower()
            retry = locked or isinstance(exc, IntegrityError) or _rolled_back_for_another(exc)
            if not retry or attempt == _WRITE_ATTEMPTS - 1:
                if locked:
                    raise BusyError(
                        "the database is busy with other writes; retry the request (or use "
                        "PostgreSQL for many concurrent writers: COPILOT_DATABASE_URL)"
                    ) from exc
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _rolled_back_for_another(exc: OperationalError) -> bool:
    """PostgreSQL broke a deadlock or a serialization conflict by failing this transaction."""
    return getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")


def parse_time(value: str | None, name: str) -> TimeBound | None:
    """A ``since``/``until`` query value: an ISO date (a China-time day) or datetime, in the
    years 1970 to 2100 (China time; the rule of message timestamps,
    :func:`~copilot.schema.check_time`).

    Raises:
        InputError: neither, or out of range (the message shows both forms, or the range).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            parsed: TimeBound = date.fromisoformat(text)
        else:
            # upper(): RFC 3339, the schema's date-time, allows a lower-case t and z.
            parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{name}: {value!r} is not an ISO date or datetime; use e.g. 2026-03-01 (a whole "
            "day, China time) or 2026-03-01T10:00:00+08:00"
        ) from None
    try:
        if isinstance(parsed, datetime):
            return check_time(parsed)
        # A day is checked by its first moment (China time); windows add a day at most.
        check_time(datetime.combine(parsed, datetime.min.time()))
        return parsed
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None


def check_messages(conversations: Sequence[Conversation], settings: Settings) -> None:
    """Refuse a conversation with more messages than ``settings.max_messages``.

    Raises:
        InputError: the first conversation over the limit, with the limit and how to raise it.
    """
    for conversation in conversations:
        n = len(conversation.messages)
        if n > settings.max_messages:
            raise InputError(
                f"conversation {conversation.conversation_id!r} has {n:,} messages; the limit "
                f"is {settings.max_messages:,} per conversation (set COPILOT_MAX_MESSAGES to "
                "change it, or send the latest messages only)"
            )


def _check_ids(**values: str | None) -> None:
    """Refuse NUL in ids from the path or query (PostgreSQL cannot even compare them)."""
    for name, value in values.items():
        if value is not None and "\x00" in value:
            raise InputError(f"{name} contains a NUL character (\\x00); remove it")


def _attributed(conversation: Conversation, principal: Principal) -> Conversation:
    """A guide's conversation without a guide id is the guide's own."""
    if principal.role == "guide" and conversation.guide_id is None:
        return conversation.model_copy(update={"guide_id": principal.guide_id})
    return conversation


def _what(conversation: Conversation) -> str:
    return f"conversation {conversation.conversation_id!r}"


# --------------------------------------------------------------------------- models


def suggest(
    runtime: Runtime,
    served: ServedLog,
    principal: Principal,
    conversation: Conversation,
    k: int,
    settings: Settings,
    known: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Suggestions for the next guide reply, each recorded as served under an ``sg_`` id.

    ``known``: what the customer's profile says for slots the chat leaves open (their size,
    the product of earlier chats; :func:`server.customer_service.known_about`).

    A guide may ask only for its own conversations (one without ``guide_id`` is taken as its
    own); a supervisor for its stores' (or a conversation without a store); an admin for any.
    The served records are queued on ``served`` (written within its interval), so answering
    needs no database round trip.

    Raises:
        ForbiddenError: the conversation is outside the caller's scope.
        InputError: too many messages.
    """
    check_messages([conversation], settings)
    conversation = _attributed(conversation, principal)
    if principal.role == "guide" or conversation.store_id is not None:
        principal.check_scope(conversation.guide_id, conversation.store_id, _what(conversation))
    result = runtime.engine.suggest(conversation, k=k, known=known)
    suggestions = [{**s, "script_id": s["id"]} for s in result["suggestions"]]
    rows = repo.served_rows(
        conversation_id=conversation.conversation_id,
        guide_id=conversation.guide_id,
        store_id=conversation.store_id,
        message_index=len(conversation.messages),
        suggestions=suggestions,
    )
    served.add(rows)
    result["suggestions"] = [
        {**s, "id": row["id"]} for s, row in zip(suggestions, rows, strict=True)
    ]
    return result


def rank(
    runtime: Runtime,
    principal: Principal,
    conversation: Conversation,
    candidates: Sequence[str],
    settings: Settings,
) -> dict[str, Any]:
    """Given replies ranked as the next guide message, best first, unsafe ones last.

    The scope is that of :func:`suggest`: a guide only its own conversations (one without
    ``guide_id`` is taken as its own), a supervisor its stores' (or one without a store).

    Raises:
        ForbiddenError: the conversation is outside the caller's scope.
        InputError: too many messages, or a blank candidate.
    """
    check_messages([conversation], settings)
    conversation = _attributed(conversation, principal)
    if principal.role == "guide" or conversation.store_id is not None:
        principal.check_scope(conversation.guide_id, conversation.store_id, _what(conversation))
    return {"ranked": runtime.ranker.rank(conversation, candidates), "bundle": runtime.name}


def classify(runtime: Runtime, texts: Sequence[str]) -> dict[str, Any]:
    """Intent and next-best actions of bare customer messages."""
    return {"results": runtime.bundle.classify(list(texts)), "bundle": runtime.name}


def score(runtime: Runtime, conversation: Conversation, settings: Settings) -> dict[str, Any]:
    """The score report of one conversation (not stored)."""
    check_messages([conversation], settings)
    return runtime.scorer.score(conversation)


# --------------------------------------------------------------------------- conversations


def store_conversations(
    runtime: Runtime,
    session: Session,
    principal: Principal,
    conversations: Sequence[Conversation],
    settings: Settings,
) -> dict[str, Any]:
    """Score and store conversations; re-posting an id replaces what was stored under it.

    Every conversation must be in the caller's scope, and so must the stored one it replaces.
    The stored orders of their customers are attributed again (an order posted before its
    conversation goes to it now), which may change those conversations' outcome.

    Raises:
        InputError: too many conversations or messages, or one id twice in the request.
        ForbiddenError: a conversation (new or stored) outside the caller's scope.
    """
    if len(conversations) > settings.max_conversations:
        raise InputError(
            f"{len(conversations):,} conversations in one request; the limit is "
            f"{settings.max_conversations:,} (send them in several requests, or set "
            "COPILOT_MAX_CONVERSATIONS)"
        )
    check_messages(conversations, settings)
    seen: set[str] = set()
    for conversation in conversations:
        if conversation.conversation_id in seen:
            raise InputError(
                f"conversation_id {conversation.conversation_id!r} occurs twice in the request; "
                "send each conversation once"
            )
        seen.add(conversation.conversation_id)
    items = [_attributed(c, principal) for c in conversations]
    for conversation in items:
        principal.check_scope(conversation.guide_id, conversation.store_id, _what(conversation))
    if principal.role != "admin":
        for cid, (guide_id, store_id) in _stored_owners(session, list(seen)).items():
            principal.check_scope(guide_id, store_id, f"the stored conversation {cid!r}")
    reports = runtime.scorer.score_many(items)
    pairs = list(zip(items, reports, strict=True))

    def work() -> list[repo.UpsertStatus]:
        # Orders posted before their conversation are attributed now; a re-posted conversation
        # keeps (or loses) its orders by the same rule (server.db.orders).
        customers = orders_repo.customers_to_attribute(
            session, list(seen), [c.customer_id for c in items]
        )
        orders_repo.lock_customers(session, customers)
        statuses = repo.upsert_conversations(session, pairs)
        orders_repo.attribute_customers(session, customers, settings.attribution_hours)
        return statuses

    statuses = _write(session, work)
    created = sum(s == "created" for s in statuses)
    return {
        "stored": len(statuses),
        "created": created,
        "updated": len(statuses) - created,
        "items": [
            {"conversation_id": c.conversation_id, "overall": r.get("overall"), "status": s}
            for c, r, s in zip(items, reports, statuses, strict=True)
        ],
    }


def _stored_owners(session: Session, ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    # The guide and store of already stored conversations, without loading their messages.
    out: dict[str, tuple[str | None, str | None]] = {}
    for start in range(0, len(ids), 500):
        stmt = select(
            ConversationRow.conversation_id, ConversationRow.guide_id, ConversationRow.store_id
        ).where(ConversationRow.conversation_id.in_(ids[start : start + 500]))
        out.update((cid, (guide, store)) for cid, guide, store in session.execute(stmt))
    return out


def list_conversations(
    session: Session, principal: Principal, **filters: Any
) -> tuple[int, list[dict[str, Any]]]:
    """A page of the conversations the caller may see (filters of the repository's function).

    Raises:
        ForbiddenError: a guide or store filter outside the caller's scope (rather than an
            empty page that would hide the mistake).
    """
    guide_id, store_id = filters.get("guide_id"), filters.get("store_id")
    _check_ids(guide_id=guide_id, store_id=store_id, flag=filters.get("flag"))
    if principal.role == "guide" and guide_id not in (None, principal.guide_id):
        raise ForbiddenError(
            f"this API key may only see guide {principal.guide_id!r}, not guide {guide_id!r}"
        )
    if principal.role == "supervisor" and store_id is not None and store_id not in principal.stores:
        raise ForbiddenError(
            f"this API key covers stores {', '.join(sorted(principal.stores))} only, "
            f"not store {store_id!r}"
        )
    return repo.list_conversations(session, principal, **filters)


def conversation_detail(
    runtime: Runtime, session: Session, principal: Principal, conversation_id: str
) -> dict[str, Any]:
    """A stored conversation, its score report and coaching on its weakest guide replies.

    Raises:
        NotFoundError: nothing stored under that id.
        ForbiddenError: it is outside the caller's scope.
    """
    _check_ids(conversation_id=conversation_id)
    found = repo.get_conversation(session, conversation_id)
    if found is None:
        raise NotFoundError(
            f"no conversation {conversation_id!r} is stored; POST it to /v1/conversations first"
        )
    conversation, report = found
    principal.check_scope(conversation.guide_id, conversation.store_id, _what(conversation))
    return {
        "conversation": conversation.model_dump(mode="json", exclude_none=True),
        "report": report,
        "coaching": runtime.engine.coaching(conversation, report),
    }


# --------------------------------------------------------------------------- feedback


def record_feedback(
    holder: RuntimeHolder,
    served: ServedLog,
    session: Session,
    principal: Principal,
    suggestion_id: str,
    outcome: str,
    final_text: str | None,
) -> dict[str, Any]:
    """Record feedback on a served suggestion and feed it into the script ranking.

    The engine's counts move by this one judgement; when it replaces an earlier one (whose
    outcome is not known here) they are reloaded from storage instead. A suggestion this
    process served is written first; one that another process served may still be queued
    there, so an unknown ``sg_`` id is looked up once more after that process's write interval.

    Raises:
        NotFoundError: no suggestion served under that id.
        ForbiddenError: it was served outside the caller's scope.
    """
    served.flush()
    if (
        served.interval > 0
        and suggestion_id.startswith("sg_")
        and session.get(ServedSuggestion, suggestion_id) is None
    ):
        session.rollback()  # hand the connection back while waiting (and take no lock)
        time.sleep(2 * served.interval + 0.05)
    with _FEEDBACK_LOCK:
        recorded = repo.record_feedback(session, suggestion_id, outcome, final_text, principal)
        session.commit()
        script_id = recorded.get("script_id")
        if recorded.get("replaced"):
            holder.set_acceptance(repo.judgements_by_script(session))
        elif script_id is not None:
            holder.add_judgement(int(script_id), accepted=outcome in ("accepted", "edited"))
    return {"suggestion_id": suggestion_id, "outcome": outcome}


def load_feedback_and_states(holder: RuntimeHolder, session: Session) -> None:
    """Apply every stored pin, ban and feedback count to the holder (at start-up)."""
    with _STATE_LOCK, _FEEDBACK_LOCK:
        holder.set_script_states(repo.script_states(session), repo.store_script_states(session))
        holder.set_acceptance(repo.judgements_by_script(session))


def sync(holder: RuntimeHolder, session: Session, metrics: Metrics, seen: dict[str, Any]) -> None:
    """Catch up with what other server processes stored: a reload, pins and bans, feedback.

    Called every ``COPILOT_SYNC_SECONDS`` by :class:`server.sync.StateSync`. Each part reads
    and applies under the lock its writers take, so a change made here at the same moment is
    never overwritten by an older read.

    Args:
        holder: this process's runtime holder.
        session: an open session.
        metrics: updated when the bundle changes.
        seen: what the last call saw (``{"feedback": version}``); updated in place.
    """
    follow_reload(holder, session, metrics)
    with _STATE_LOCK:
        states, by_store = repo.script_states(session), repo.store_script_states(session)
        if states != holder.script_states or by_store != holder.store_script_states:
            holder.set_script_states(states, by_store)
    with _FEEDBACK_LOCK:
        version = repo.feedback_version(session)
        if version != seen.get("feedback"):
            holder.set_acceptance(repo.judgements_by_script(session))
            seen["feedback"] = version
    session.rollback()


def follow_reload(holder: RuntimeHolder, session: Session, metrics: Metrics) -> bool:
    """Load the bundle another process's reload made current, if this one serves an older one.

    Returns:
        Whether this process took a new generation (a bundle that fails to load here is
        logged and skipped, and the old one keeps serving).
    """
    state = repo.bundle_state(session)
    if state is None or int(state["generation"]) <= holder.generation:
        return False
    generation = int(state["generation"])
    try:
        _, new = holder.reload(state["bundle_dir"], generation=generation)
    except (BundleError, ConfigError) as exc:
        holder.generation = generation  # do not retry every interval; a new reload will
        metrics.reloads.labels(result="error").inc()
        logger.error(
            "could not follow the reload to %s (generation %d): %s; still serving %s",
            state["bundle_dir"],
            generation,
            exc,
            holder.current.name,
        )
        return True
    metrics.reloads.labels(result="ok").inc()
    metrics.set_bundle(new.name)
    return True


# --------------------------------------------------------------------------- scripts


def _caller_states(runtime: Runtime, principal: Principal, store_id: str | None) -> ScriptStates:
    """The pins and bans a script list shows the caller: those of ``store_id`` when given; a
    supervisor's, those that hold in every store of its key; for every store otherwise."""
    engine = runtime.engine
    if store_id is not None or principal.role != "supervisor" or not principal.stores:
        return engine.script_states(store_id)
    each = [engine.script_states(store) for store in sorted(principal.stores)]
    return ScriptStates(
        pinned=frozenset.intersection(*(s.pinned for s in each)),
        banned=frozenset.intersection(*(s.banned for s in each)),
    )


def _script_item(
    runtime: Runtime, script_id: int, stats: Mapping[str, Any], states: ScriptStates
) -> dict[str, Any]:
    s = runtime.engine.library.scripts[script_id]
    return {
        "script_id": s.id,
        "text": s.text,
        "action": s.action,
        "intent": s.intent,
        "lift": s.lift,
        "lift_lower": s.lift_lower,
        "n": s.uses,
        "rate": s.rate,
        "state": "pinned" if s.id in states.pinned else "banned" if s.id in states.banned else None,
        "shown": int(stats.get("shown", 0)),
        "accepted": int(stats.get("accepted", 0)) + int(stats.get("edited", 0)),
        "acceptance_rate": stats.get("acceptance_rate"),
    }


def list_scripts(
    runtime: Runtime,
    session: Session,
    principal: Principal,
    *,
    store_id: str | None = None,
    action: str | None = None,
    intent: str | None = None,
    q: str | None = None,
    state: str | None = None,
    sort: str = "-lift",
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of the live bundle's scripts, filtered and sorted, with state and feedback.

    ``state`` is the pin or ban that holds in ``store_id``; without it, in every store of a
    supervisor's key (a state that only some of them set is not shown), and for every store
    for other keys. ``accepted`` counts accepted and edited suggestions, as the rate does.

    Raises:
        ForbiddenError: a supervisor asking for a store outside its key.
    """
    _check_ids(store_id=store_id)
    if principal.role == "supervisor" and store_id is not None and store_id not in principal.stores:
        raise ForbiddenError(
            f"this API key covers stores {', '.join(sorted(principal.stores))} only, "
            f"not store {store_id!r}"
        )
    states = _caller_states(runtime, principal, store_id)
    acceptance = repo.acceptance_by_script(session)
    items = [
        _script_item(runtime, s.id, acceptance.get(s.id, {}), states)
        for s in runtime.engine.library.scripts
    ]
    if action is not None:
        items = [i for i in items if i["action"] == action]
    if intent is not None:
        items = [i for i in items if i["intent"] == intent]
    if q:
        needle = q.casefold()
        items = [i for i in items if needle in i["text"].casefold()]
    if state is not None:
        items = [i for i in items if i["state"] == state]
    key = {
        "-lift": "lift",
        "-lift_lower": "lift_lower",
        "-n": "n",
        "-acceptance": "acceptance_rate",
    }[sort]
    items.sort(key=lambda i: (i[key] is None, -(i[key] or 0.0), i["script_id"]))
    return {"total": len(items), "limit": limit, "offset": offset, "items": items[offset:][:limit]}


def set_script_state(
    holder: RuntimeHolder,
    session: Session,
    principal: Principal,
    script_id: int,
    state: str | None,
) -> dict[str, Any]:
    """Pin, ban or clear a script: stored, then applied to the live engine at once.

    A supervisor's change holds in the stores of its key only (a pin there, a ban there, or
    clearing what it set there); an admin's holds in every store and replaces what single
    stores had set. A ban for every store wins over a store's pin, so a supervisor cannot pin
    a script banned everywhere.

    Raises:
        ForbiddenError: a guide key, or a supervisor pinning a script banned in every store.
        NotFoundError: no such script in the live bundle.
    """
    principal.require(("supervisor", "admin"))
    runtime = holder.current
    n = len(runtime.engine.library.scripts)
    if not 0 <= script_id < n:
        raise NotFoundError(
            f"no script {script_id} in the bundle {runtime.name}; its scripts are 0..{n - 1} "
            "(GET /v1/scripts lists them)"
        )
    stores = sorted(principal.stores) if principal.role == "supervisor" else None
    if stores is not None and state == "pinned" and script_id in runtime.engine.library.banned:
        raise ForbiddenError(
            f"script {script_id} is banned in every store (by an admin or the bundle), and a "
            "ban for every store wins over a store's pin; ask an admin to clear it"
        )
    by = f"key {principal.key_id}"
    with _STATE_LOCK:
        _write(
            session,
            lambda: repo.set_script_state(session, script_id, state, by=by, stores=stores),
        )
        holder.set_script_states(repo.script_states(session), repo.store_script_states(session))
    stats = repo.acceptance_by_script(session).get(script_id, {})
    current = holder.current
    return _script_item(current, script_id, stats, _caller_states(current, principal, None))


# --------------------------------------------------------------------------- admin, health


def reload(
    holder: RuntimeHolder,
    session: Session,
    principal: Principal,
    metrics: Metrics,
    bundle_dir: str | None,
    serve_id: str | None = None,
) -> dict[str, Any]:
    """Load a bundle and make it current (admins); the old one keeps serving if it fails.

    Pins, bans and feedback counts are read again from storage afterwards, so a reload also
    picks up what another process changed.

    Raises:
        ForbiddenError: not an admin key.
        InputError: the bundle cannot be loaded (the message says why and what still serves).
    """
    principal.require("admin")
    try:
        old, new = holder.reload(bundle_dir)
    except (BundleError, ConfigError) as exc:
        metrics.reloads.labels(result="error").inc()
        raise InputError(f"{exc}; still serving {holder.current.name}") from exc
    # The other processes of this server follow within COPILOT_SYNC_SECONDS.
    holder.generation = _write(
        session,
        lambda: repo.set_bundle_state(session, str(new.bundle_dir.resolve()), serve_id),
    )
    load_feedback_and_states(holder, session)
    metrics.reloads.labels(result="ok").inc()
    metrics.set_bundle(new.name)
    return {**new.describe(), "previous": old.name}


def readiness(state: Any) -> dict[str, Any]:
    """``{"status": "ready" | "not ready", "bundle", "database"}`` from the app's state."""
    holder: RuntimeHolder | None = getattr(state, "holder", None)
    bundle = holder.current.name if holder is not None else None
    factory = getattr(state, "session_factory", None)
    database = "not connected"
    if factory is not None:
        try:
            with factory() as session:
                session.execute(text("SELECT 1"))
            database = "ok"
        except SQLAlchemyError as exc:
            database = f"unavailable: {type(exc).__name__}"
    ready = bundle is not None and database == "ok"
    return {"status": "ready" if ready else "not ready", "bundle": bundle, "database": database}
