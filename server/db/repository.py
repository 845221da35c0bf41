"""What the server stores and reads: conversations with their score reports, served suggestions
and feedback, script states and API keys.

Every function takes a SQLAlchemy :class:`~sqlalchemy.orm.Session` first and flushes what it
writes (so constraint errors surface at the call) but never commits: the caller owns the
transaction. Reads that list conversations take the caller's :class:`~server.auth.Principal`
and return only what it may see.

Example:
    >>> with Session.begin() as session:
    ...     upsert_conversations(session, [(conversation, scorer.score(conversation))])
    ...     total, items = list_conversations(session, principal, flag="unanswered")
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from copilot.errors import InputError, NotFoundError
from copilot.profile import latest_product
from copilot.schema import CHINA_TZ, Conversation
from copilot.scoring.scorecard import UNKNOWN_ID
from server.auth import KEY_PREFIX, ROLES, Principal, generate_key, hash_key
from server.db.models import (
    EVERY_STORE,
    ApiKey,
    ConversationRow,
    Feedback,
    FlagRow,
    MessageRow,
    ScriptState,
    ServedSuggestion,
    ServerState,
    utcnow,
)
from server.db.session import begin_write

__all__ = [
    "OUTCOMES",
    "SCRIPT_STATES",
    "SORTS",
    "FeedbackOutcome",
    "ScriptStateName",
    "Sort",
    "UpsertStatus",
    "acceptance_by_guide",
    "acceptance_by_script",
    "authenticate",
    "check_key_scope",
    "create_api_key",
    "get_conversation",
    "iter_reports",
    "list_api_keys",
    "list_conversations",
    "record_feedback",
    "record_suggestions",
    "served_rows",
    "insert_served",
    "judgements_by_script",
    "feedback_version",
    "bundle_state",
    "set_bundle_state",
    "revoke_api_key",
    "script_states",
    "set_script_state",
    "store_script_states",
    "upsert_conversations",
]

Sort = Literal["overall", "-overall", "started_at", "-started_at"]
SORTS: tuple[str, ...] = get_args(Sort)
FeedbackOutcome = Literal["accepted", "edited", "rejected"]
OUTCOMES: tuple[str, ...] = get_args(FeedbackOutcome)
ScriptStateName = Literal["pinned", "banned"]
SCRIPT_STATES: tuple[str, ...] = get_args(ScriptStateName)
UpsertStatus = Literal["created", "updated"]

_CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit
_EXCERPT_CHARS = 60  # the list's excerpt of the customer's last message
# The list reads the product from this many of the customer's (and the guide's) last messages,
# so a page costs the same however long its conversations are.
_PRODUCT_MESSAGES = 20


# ----------------------------------------------------------------------------- helpers


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _float(value: Any) -> float | None:
    """A finite float, or ``None`` (missing, NaN or not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _iso(ts: datetime | None) -> str | None:
    """ISO 8601 text in China time (stored instants carry no original zone)."""
    return ts.astimezone(CHINA_TZ).isoformat() if ts is not None else None


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=CHINA_TZ)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA_TZ)
    return None


def _bound(value: date | datetime | None, *, upper: bool) -> datetime | None:
    """A filter bound as an aware datetime. A ``date`` is a China-time calendar day: ``since``
    starts at its midnight, ``until`` includes the whole day (ends at the next midnight)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=CHINA_TZ)
    if isinstance(value, date):
        day = value + timedelta(days=1) if upper else value
        return datetime.combine(day, time(), tzinfo=CHINA_TZ)
    raise InputError(f"a time bound must be a date or a datetime, got {value!r}")


def _check_text(value: str | None, where: str) -> None:
    # PostgreSQL text cannot hold NUL; refuse it on every backend so behaviour is the same.
    if value is not None and "\x00" in value:
        raise InputError(
            f"{where} contains a NUL character (\\x00), which cannot be stored; remove it"
        )


def _scope(
    principal: Principal,
    guide_column: InstrumentedAttribute[str | None],
    store_column: InstrumentedAttribute[str | None],
) -> ColumnElement[bool] | None:
    """The SQL form of :meth:`Principal.can_see`; ``None`` when everything is visible."""
    if principal.role == "admin":
        return None
    if principal.role == "supervisor" and principal.stores:
        return store_column.in_(sorted(principal.stores))
    if principal.role == "guide" and principal.guide_id is not None:
        return guide_column == principal.guide_id
    return false()


def _time_filters(
    column: InstrumentedAttribute[Any],
    since: date | datetime | None,
    until: date | datetime | None,
) -> list[ColumnElement[bool]]:
    lower, upper = _bound(since, upper=False), _bound(until, upper=True)
    if lower is not None and upper is not None and lower >= upper:
        raise InputError(
            f"since ({lower.isoformat()}) is not before until ({upper.isoformat()}); swap them"
        )
    conditions = []
    if lower is not None:
        conditions.append(column >= lower)
    if upper is not None:
        conditions.append(column < upper)
    return conditions


def _owned_filters(
    table: type[ConversationRow] | type[ServedSuggestion],
    time_column: InstrumentedAttribute[Any],
    principal: Principal,
    *,
    guide_id: str | None,
    store_id: str | None,
    since: date | datetime | None,
    until: date | datetime | None,
) -> list[ColumnElement[bool]]:
    """Conditions on rows owned by a guide and a store: the principal's scope, the asked guide
    and store, and a time range on ``time_column``."""
    conditions = _time_filters(time_column, since, until)
    scope = _scope(principal, table.guide_id, table.store_id)
    if scope is not None:
        conditions.append(scope)
    if guide_id is not None:
        conditions.append(table.guide_id == guide_id)
    if store_id is not None:
        conditions.append(table.store_id == store_id)
    return conditions


def _conversation_filters(principal: Principal, **filters: Any) -> list[ColumnElement[bool]]:
    return _owned_filters(ConversationRow, ConversationRow.started_at, principal, **filters)


# ----------------------------------------------------------------------------- conversations


def _flag_rows(conversation_id: str, report: dict[str, Any]) -> list[FlagRow]:
    flags = report.get("flags") or []
    if not isinstance(flags, list):
        raise InputError(
            f"the score report of conversation {conversation_id!r} has flags of type "
            f"{type(flags).__name__}; expected a list of {{kind, rule, severity, message_index}}"
        )
    rows = []
    for position, flag in enumerate(flags):
        kind = flag.get("kind") if isinstance(flag, dict) else None
        rule = flag.get("rule") if isinstance(flag, dict) else None
        if not isinstance(kind, str) or not isinstance(rule, str) or not kind or not rule:
            raise InputError(
                f"flag {position} of the score report of conversation {conversation_id!r} "
                f"needs text 'kind' and 'rule' (e.g. kind 'timing', rule 'unanswered'), "
                f"got {flag!r}"
            )
        index = flag.get("message_index")
        rows.append(
            FlagRow(
                conversation_id=conversation_id,
                position=position,
                kind=kind,
                rule=rule,
                severity=flag.get("severity"),
                message_index=index if isinstance(index, int) else None,
            )
        )
    return rows


def _conversation_values(conversation: Conversation, report: dict[str, Any]) -> dict[str, Any]:
    """The columns of a conversation row (the denormalised ones come from the report)."""
    cid = conversation.conversation_id
    if not isinstance(report, dict):
        raise InputError(
            f"the score report of conversation {cid!r} is a {type(report).__name__}; "
            "expected a dict from copilot.scoring.Scorer.score"
        )
    if report.get("conversation_id") not in (None, cid):
        raise InputError(
            f"the score report given with conversation {cid!r} is for conversation "
            f"{report.get('conversation_id')!r}; pass each conversation with its own report"
        )
    for field in ("conversation_id", "guide_id", "store_id", "customer_id", "channel"):
        _check_text(getattr(conversation, field), f"{field} of conversation {cid!r}")
    stamps = [m.ts for m in conversation.messages if m.ts is not None]
    converted = report.get("converted")
    if not isinstance(converted, bool):
        converted = conversation.outcome.converted if conversation.outcome else None
    dumped = conversation.model_dump(mode="json", include={"outcome", "labels", "meta"})
    return {
        "guide_id": conversation.guide_id,
        "store_id": conversation.store_id,
        "customer_id": conversation.customer_id,
        "channel": conversation.channel,
        "started_at": _parse_time(report.get("started_at")) or (min(stamps) if stamps else None),
        "ended_at": _parse_time(report.get("ended_at")) or (max(stamps) if stamps else None),
        "n_messages": len(conversation.messages),
        "overall": _float(report.get("overall")),
        "win_probability": _float(report.get("win_probability")),
        "converted": converted,
        "outcome": dumped["outcome"],
        "labels": dumped["labels"],
        "meta": dumped["meta"],
        "report": report,
    }


def _lock_conversations(session: Session, ids: Sequence[str]) -> dict[str, ConversationRow]:
    """The stored rows of ``ids`` (sorted), locked until the transaction ends and read fresh.

    On SQLite the transaction takes the database's write lock first (:func:`begin_write`); on
    PostgreSQL each row is locked with ``SELECT ... FOR UPDATE``, so a concurrent writer of the
    same id waits here and then reads what this one committed. Either way the values read are
    the stored ones when the UPDATE is made, so it writes every column that differs from them.
    """
    begin_write(session)
    rows: dict[str, ConversationRow] = {}
    for chunk in _chunks(ids):
        stmt = (
            select(ConversationRow)
            .where(ConversationRow.conversation_id.in_(chunk))
            .order_by(ConversationRow.conversation_id)
            .with_for_update()
            .execution_options(populate_existing=True)  # not what this session saw earlier
        )
        rows.update((row.conversation_id, row) for row in session.scalars(stmt))
    return rows


def upsert_conversations(
    session: Session, items: Sequence[tuple[Conversation, dict[str, Any]]]
) -> list[UpsertStatus]:
    """Store conversations with their score reports; idempotent on ``conversation_id``.

    A conversation already stored is replaced whole: its fields, messages, report and flags
    (never duplicated). A conversation that occurs twice in ``items`` is stored once, as its
    last occurrence. Replacing is atomic per conversation, also when other processes store the
    same ids at once: the stored rows are locked before they are read (the write lock on
    SQLite, ``FOR UPDATE`` on PostgreSQL), so a concurrent writer waits, then replaces what
    this one committed.

    Args:
        session: an open session; the caller commits.
        items: ``(conversation, score report)`` pairs; the report is the
            :mod:`copilot.scoring.report` shape (its ``overall``, ``started_at``,
            ``win_probability``, ``converted`` and ``flags`` become queryable columns).

    Returns:
        ``"created"`` or ``"updated"`` for each item, in order.

    Raises:
        InputError: a report that is not for its conversation, a flag without kind or rule,
            or text with a NUL character.
    """
    prepared = []
    for conversation, report in items:
        values = _conversation_values(conversation, report)
        cid = conversation.conversation_id
        messages = []
        for i, m in enumerate(conversation.messages):
            _check_text(m.text, f"message {i} of conversation {cid!r}")
            messages.append(
                MessageRow(conversation_id=cid, position=i, role=m.role, text=m.text, ts=m.ts)
            )
        prepared.append((cid, values, messages, _flag_rows(cid, report)))

    # Ids in sorted order throughout: two writers with overlapping ids lock them, and create
    # the new ones, in the same order, so neither waits on the other in a cycle.
    ids = sorted({cid for cid, *_ in prepared})
    rows = _lock_conversations(session, ids)
    for chunk in _chunks(ids):
        session.execute(delete(MessageRow).where(MessageRow.conversation_id.in_(chunk)))
        session.execute(delete(FlagRow).where(FlagRow.conversation_id.in_(chunk)))
    for row in rows.values():
        session.expire(row, ["messages", "flags"])

    statuses: list[UpsertStatus] = []
    stored = set(rows)
    for cid, *_ in prepared:  # a second occurrence in this call updates the first
        statuses.append("updated" if cid in stored else "created")
        stored.add(cid)
    last = {cid: (values, messages, flags) for cid, values, messages, flags in prepared}
    now = utcnow()
    for cid in ids:
        values, messages, flags = last[cid]
        existing = rows.get(cid)
        if existing is None:
            session.add(
                ConversationRow(conversation_id=cid, created_at=now, updated_at=now, **values)
            )
        else:
            for name, value in values.items():
                setattr(existing, name, value)
            existing.updated_at = now
        session.add_all([*messages, *flags])
    session.flush()
    return statuses


def list_conversations(
    session: Session,
    principal: Principal,
    *,
    guide_id: str | None = None,
    store_id: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    flag: str | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    sort: str = "-started_at",
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """One page of the conversations ``principal`` may see, filtered and sorted.

    Args:
        session: an open session.
        principal: the caller; a guide sees its own conversations, a supervisor those of its
            stores, an admin all.
        guide_id: only this guide's conversations.
        store_id: only this store's conversations.
        min_score: only an overall score of at least this (unscored ones are left out).
        max_score: only an overall score of at most this.
        flag: only conversations with a flag of this rule (``"unanswered"``) or kind
            (``"compliance"``).
        since: only conversations that started at or after this instant; a ``date`` means
            its midnight, China time.
        until: only conversations that started before this instant; a ``date`` includes that
            whole day (China time).
        sort: ``overall``, ``-overall``, ``started_at`` or ``-started_at`` (``-`` is
            descending); missing values come last, ties in ``conversation_id`` order.
        limit: page size (0 returns only the total).
        offset: rows to skip.

    Returns:
        ``(total, items)``: how many match, and the page; each item is ``{conversation_id,
        guide_id, store_id, started_at (ISO 8601, China time), overall, n_messages, converted,
        flags: [rule, ...] (one per flag, in report order), win_probability,
        last_customer_text (the customer's last message, cut to 60 characters with …),
        product (the product word of the newest of the customer's last 20 messages that
        names one, as the customer's profile reads it; else of the guide's last 20)}``; both
        ``None`` when there is none.

    Raises:
        InputError: an unknown sort, a negative limit or offset, or an empty score or time
            range.
    """
    if sort not in SORTS:
        raise InputError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    if limit < 0 or offset < 0:
        raise InputError(f"limit and offset must be >= 0, got limit={limit}, offset={offset}")
    if min_score is not None and max_score is not None and min_score > max_score:
        raise InputError(f"min_score ({min_score}) is above max_score ({max_score}); swap them")
    conditions = _conversation_filters(
        principal, guide_id=guide_id, store_id=store_id, since=since, until=until
    )
    if min_score is not None:
        conditions.append(ConversationRow.overall >= min_score)
    if max_score is not None:
        conditions.append(ConversationRow.overall <= max_score)
    if flag is not None:
        conditions.append(
            exists().where(
                FlagRow.conversation_id == ConversationRow.conversation_id,
                or_(FlagRow.rule == flag, FlagRow.kind == flag),
            )
        )
    total = session.scalar(select(func.count()).select_from(ConversationRow).where(*conditions))
    column = ConversationRow.overall if sort.endswith("overall") else ConversationRow.started_at
    order = column.desc() if sort.startswith("-") else column.asc()
    page = (
        select(
            ConversationRow.conversation_id,
            ConversationRow.guide_id,
            ConversationRow.store_id,
            ConversationRow.started_at,
            ConversationRow.overall,
            ConversationRow.n_messages,
            ConversationRow.converted,
            ConversationRow.win_probability,
        )
        .where(*conditions)
        .order_by(order.nulls_last(), ConversationRow.conversation_id)
        .limit(limit)
        .offset(offset)
    )
    rows = session.execute(page).all() if limit else []
    flags: dict[str, list[str]] = {row.conversation_id: [] for row in rows}
    if flags:
        stmt = (
            select(FlagRow.conversation_id, FlagRow.rule)
            .where(FlagRow.conversation_id.in_(list(flags)))
            .order_by(FlagRow.conversation_id, FlagRow.position)
        )
        for cid, rule in session.execute(stmt):
            flags[cid].append(rule)
    said = _message_tails(session, list(flags))
    items = [
        {
            "conversation_id": row.conversation_id,
            "guide_id": row.guide_id,
            "store_id": row.store_id,
            "started_at": _iso(row.started_at),
            "overall": row.overall,
            "n_messages": row.n_messages,
            "converted": row.converted,
            "flags": flags[row.conversation_id],
            "win_probability": row.win_probability,
            "last_customer_text": _excerpt(said.get((row.conversation_id, "customer"))),
            "product": latest_product(said.get((row.conversation_id, "customer"), []))
            or latest_product(said.get((row.conversation_id, "guide"), [])),
        }
        for row in rows
    ]
    return int(total or 0), items


def _message_tails(session: Session, ids: list[str]) -> dict[tuple[str, str], list[str]]:
    """(conversation, role) -> the last ``_PRODUCT_MESSAGES`` customer or guide messages,
    newest first: one query over the messages' primary key for a whole page."""
    if not ids:
        return {}
    newest = (
        func.row_number()
        .over(
            partition_by=(MessageRow.conversation_id, MessageRow.role),
            order_by=MessageRow.position.desc(),
        )
        .label("newest")
    )
    tails = (
        select(MessageRow.conversation_id, MessageRow.role, MessageRow.text, newest)
        .where(MessageRow.conversation_id.in_(ids), MessageRow.role.in_(("customer", "guide")))
        .subquery()
    )
    stmt = (
        select(tails.c.conversation_id, tails.c.role, tails.c.text)
        .where(tails.c.newest <= _PRODUCT_MESSAGES)
        .order_by(tails.c.conversation_id, tails.c.role, tails.c.newest)
    )
    out: dict[tuple[str, str], list[str]] = {}
    for cid, role, text in session.execute(stmt):
        out.setdefault((cid, role), []).append(text)
    return out


def _excerpt(texts: list[str] | None) -> str | None:
    if not texts:
        return None
    text = " ".join(texts[0].split())
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


def get_conversation(
    session: Session, conversation_id: str
) -> tuple[Conversation, dict[str, Any]] | None:
    """A stored conversation and its score report.

    The caller checks the scope (``principal.check_scope(conversation.guide_id,
    conversation.store_id)``). Message times come back in China time (the same instants).

    Args:
        session: an open session.
        conversation_id: the id it was stored under.

    Returns:
        ``(conversation, report)``, or ``None`` when nothing is stored under that id.
    """
    row = session.get(ConversationRow, conversation_id)
    if row is None:
        return None
    messages = session.scalars(
        select(MessageRow)
        .where(MessageRow.conversation_id == conversation_id)
        .order_by(MessageRow.position)
    )
    record: dict[str, Any] = {
        "conversation_id": row.conversation_id,
        "guide_id": row.guide_id,
        "customer_id": row.customer_id,
        "store_id": row.store_id,
        "channel": row.channel,
        "messages": [
            {"role": m.role, "text": m.text, "ts": m.ts.astimezone(CHINA_TZ) if m.ts else None}
            for m in messages
        ],
        "outcome": row.outcome,
        "labels": row.labels,
        "meta": row.meta or {},
    }
    # It was valid when stored; the length limit in force then may have been raised.
    conversation = Conversation.model_validate(record, context={"max_message_chars": sys.maxsize})
    return conversation, row.report


def iter_reports(
    session: Session,
    principal: Principal,
    *,
    guide_id: str | None = None,
    store_id: str | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """The stored score reports ``principal`` may see, oldest first, streamed in batches.

    Feeds :func:`copilot.scoring.scorecard.build_scorecards` and ``leaderboard``. Consume it
    while the session is open.

    Args:
        session: an open session.
        principal: the caller (see :func:`list_conversations` for the scopes).
        guide_id: only this guide's reports.
        store_id: only this store's reports.
        since: only conversations that started at or after this (a ``date``: its midnight,
            China time).
        until: only conversations that started before this (a ``date``: including that day).

    Returns:
        An iterator of report dicts (the query has run; rows arrive as it is consumed).

    Raises:
        InputError: an empty time range.
    """
    conditions = _conversation_filters(
        principal, guide_id=guide_id, store_id=store_id, since=since, until=until
    )
    stmt = (
        select(ConversationRow.report)
        .where(*conditions)
        .order_by(ConversationRow.started_at.asc().nulls_last(), ConversationRow.conversation_id)
        .execution_options(yield_per=500)
    )
    return iter(session.scalars(stmt))


# ----------------------------------------------------------------------------- suggestions


def _script_id(suggestion: dict[str, Any]) -> int | None:
    """The script id: ``script_id``, else an integer ``id`` (the engine's own output)."""
    for key in ("script_id", "id"):
        value = suggestion.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def served_rows(
    *,
    conversation_id: str | None,
    guide_id: str | None,
    store_id: str | None,
    message_index: int | None,
    suggestions: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The ``served_suggestions`` rows of suggestions about to be served, each with a new id.

    Args:
        conversation_id: the conversation they were made for (it need not be stored).
        guide_id: the guide they were served to (feedback and acceptance are per guide).
        store_id: the guide's store.
        message_index: how many messages the conversation had when they were made.
        suggestions: the engine's suggestions (``models.suggest.SuggestionEngine.suggest``),
            in rank order; each needs ``text`` and may carry ``action`` and ``script_id`` (or
            the engine's integer ``id``).

    Returns:
        One row (column -> value) per suggestion, in order; ``row["id"]`` is its served id
        (``sg_<32 hex>``).

    Raises:
        InputError: a suggestion without text, or with text that cannot be stored.
    """
    rows = []
    now = utcnow()
    for rank, suggestion in enumerate(suggestions):
        text = suggestion.get("text")
        if not isinstance(text, str) or not text:
            raise InputError(f"suggestion {rank} has no text: {suggestion!r}")
        _check_text(text, f"suggestion {rank}")
        rows.append(
            {
                "id": f"sg_{uuid.uuid4().hex}",
                "conversation_id": conversation_id,
                "guide_id": guide_id,
                "store_id": store_id,
                "message_index": message_index,
                "rank": rank,
                "script_id": _script_id(suggestion),
                "text": text,
                "action": suggestion.get("action"),
                "served_at": now,
            }
        )
    return rows


def insert_served(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows from :func:`served_rows` in one statement (the caller commits)."""
    if rows:
        session.execute(insert(ServedSuggestion), list(rows))


def record_suggestions(session: Session, **served: Any) -> list[str]:
    """Record suggestions as served at once (the keyword arguments of :func:`served_rows`),
    so feedback can refer to them; the caller commits.

    Returns:
        The served ids (``sg_<32 hex>``), in order.

    Raises:
        InputError: a suggestion without text.
    """
    rows = served_rows(**served)
    insert_served(session, rows)
    return [row["id"] for row in rows]


def record_feedback(
    session: Session,
    suggestion_id: str,
    outcome: str,
    final_text: str | None,
    principal: Principal,
) -> dict[str, Any]:
    """Record what the guide did with a served suggestion; a second feedback replaces the first.

    Args:
        session: an open session; the caller commits.
        suggestion_id: the served id (``sg_...``) from :func:`record_suggestions`.
        outcome: ``accepted`` (sent as is), ``edited`` (sent after changes) or ``rejected``.
        final_text: what the guide sent; required for ``edited``.
        principal: the caller; it must be able to see the suggestion's guide and store.

    Returns:
        ``{suggestion_id, outcome, final_text, script_id, replaced}``; ``replaced`` is whether
        an earlier feedback was overwritten.

    Raises:
        InputError: an unknown outcome, or ``edited`` without ``final_text``.
        NotFoundError: no suggestion was served under that id.
        ForbiddenError: the suggestion was served to a guide or store outside the caller's scope.
    """
    if outcome not in OUTCOMES:
        raise InputError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if outcome == "edited" and not (final_text and final_text.strip()):
        raise InputError("outcome 'edited' needs final_text: the reply the guide actually sent")
    _check_text(final_text, "final_text")
    served = session.get(ServedSuggestion, suggestion_id)
    if served is None:
        raise NotFoundError(
            f"no suggestion was served with id {suggestion_id!r}; use an id from a "
            "POST /v1/suggest response (it starts with 'sg_')"
        )
    principal.check_scope(served.guide_id, served.store_id, what=f"suggestion {suggestion_id!r}")
    feedback = session.get(Feedback, suggestion_id)
    replaced = feedback is not None
    if feedback is None:
        feedback = Feedback(suggestion_id=suggestion_id)
        session.add(feedback)
    feedback.outcome = outcome
    feedback.final_text = final_text
    feedback.key_id = principal.key_id
    feedback.given_at = utcnow()
    session.flush()
    return {
        "suggestion_id": suggestion_id,
        "outcome": outcome,
        "final_text": final_text,
        "script_id": served.script_id,
        "replaced": replaced,
    }


def _acceptance(shown: int, accepted: int, edited: int, rejected: int) -> dict[str, Any]:
    answered = accepted + edited + rejected
    return {
        "shown": shown,
        "accepted": accepted,
        "edited": edited,
        "rejected": rejected,
        "acceptance_rate": round((accepted + edited) / answered, 4) if answered else None,
    }


def _acceptance_query(key: InstrumentedAttribute[Any]) -> Select[Any]:
    def count(outcome: str) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((Feedback.outcome == outcome, 1), else_=0)), 0)

    return (
        select(
            key,
            func.count(ServedSuggestion.id),
            count("accepted"),
            count("edited"),
            count("rejected"),
        )
        .select_from(ServedSuggestion)
        .outerjoin(Feedback, Feedback.suggestion_id == ServedSuggestion.id)
        .group_by(key)
    )


def acceptance_by_script(session: Session) -> dict[int, dict[str, Any]]:
    """How often each script was served and what guides did with it.

    Args:
        session: an open session.

    Returns:
        ``{script_id: {shown, accepted, edited, rejected, acceptance_rate}}`` for every script
        served at least once; ``acceptance_rate`` is (accepted + edited) / feedback given,
        ``None`` before any feedback.
    """
    stmt = _acceptance_query(ServedSuggestion.script_id).where(
        ServedSuggestion.script_id.is_not(None)
    )
    return {int(sid): _acceptance(*map(int, counts)) for sid, *counts in session.execute(stmt)}


def judgements_by_script(session: Session) -> dict[int, tuple[int, int]]:
    """``{script_id: (judged, accepted)}``: the feedback the ranking uses, per script.

    An edited suggestion counts as accepted (the guide started from it); a served suggestion
    without feedback is not judged at all. Reads only the feedback rows (and the served rows
    they name), so it stays cheap however many suggestions were served.
    """
    accepted = func.sum(case((Feedback.outcome.in_(("accepted", "edited")), 1), else_=0))
    stmt = (
        select(ServedSuggestion.script_id, func.count(), accepted)
        .select_from(Feedback)
        .join(ServedSuggestion, ServedSuggestion.id == Feedback.suggestion_id)
        .where(ServedSuggestion.script_id.is_not(None))
        .group_by(ServedSuggestion.script_id)
    )
    return {int(sid): (int(n), int(yes or 0)) for sid, n, yes in session.execute(stmt)}


def feedback_version(session: Session) -> tuple[int, str | None]:
    """``(count, latest given_at)`` of the feedback: changes whenever feedback is given."""
    n, latest = session.execute(select(func.count(), func.max(Feedback.given_at))).one()
    return int(n), latest.isoformat() if isinstance(latest, datetime) else latest


BUNDLE_STATE = "bundle"


def bundle_state(session: Session) -> dict[str, Any] | None:
    """What the last reload made current: ``{"bundle_dir", "generation", "serve_id"}``, or
    ``None`` before the first reload."""
    row = session.get(ServerState, BUNDLE_STATE)
    return dict(row.value) if row is not None else None


def set_bundle_state(session: Session, bundle_dir: str, serve_id: str | None) -> int:
    """Record a reload to ``bundle_dir`` (by the server run ``serve_id``); the caller commits.

    Returns:
        The new generation (one more than the last), which every process of the server compares
        with the one it serves.
    """
    row = session.get(ServerState, BUNDLE_STATE, with_for_update=True)
    generation = int(row.value.get("generation", 0)) + 1 if row is not None else 1
    value = {"bundle_dir": bundle_dir, "generation": generation, "serve_id": serve_id}
    if row is None:
        session.add(ServerState(name=BUNDLE_STATE, value=value, updated_at=utcnow()))
    else:
        row.value = value
        row.updated_at = utcnow()
    session.flush()
    return generation


def acceptance_by_guide(
    session: Session,
    principal: Principal,
    *,
    guide_id: str | None = None,
    store_id: str | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    by: Literal["guide", "store"] = "guide",
) -> dict[str, dict[str, Any]]:
    """Served suggestions and feedback per guide (or per store), for those ``principal`` may see.

    Args:
        session: an open session.
        principal: the caller (a guide sees itself, a supervisor its stores, an admin all).
        guide_id: only this guide.
        store_id: only suggestions served in this store.
        since: only suggestions served at or after this (a ``date``: its midnight, China time).
        until: only suggestions served before this (a ``date``: including that day).
        by: ``"guide"`` (the default) or ``"store"``: what the counts are grouped by.

    Returns:
        ``{guide_id: {shown, accepted, edited, rejected, acceptance_rate}}`` (see
        :func:`acceptance_by_script`), or the same per store id; suggestions served without a
        guide (store) count under ``"(unknown)"``.

    Raises:
        InputError: an empty time range.
    """
    conditions = _owned_filters(
        ServedSuggestion,
        ServedSuggestion.served_at,
        principal,
        guide_id=guide_id,
        store_id=store_id,
        since=since,
        until=until,
    )
    key = ServedSuggestion.guide_id if by == "guide" else ServedSuggestion.store_id
    stmt = _acceptance_query(key).where(*conditions)
    return {
        UNKNOWN_ID if gid is None else gid: _acceptance(*map(int, counts))
        for gid, *counts in session.execute(stmt)
    }


# ----------------------------------------------------------------------------- scripts


def set_script_state(
    session: Session,
    script_id: int,
    state: str | None,
    by: str,
    *,
    stores: Iterable[str] | None = None,
) -> None:
    """Pin or ban a script, or clear its state, in every store or in some.

    A state for every store (an admin's) replaces whatever single stores had set for the
    script, so afterwards it holds everywhere; a state for some stores (a supervisor's)
    replaces only theirs. How the two combine when a store sets one later is
    :meth:`server.runtime.RuntimeHolder.set_script_states`'s rule: a ban wins.

    Args:
        session: an open session; the caller commits.
        script_id: the script (an id from the bundle's script library).
        state: ``"pinned"``, ``"banned"``, or ``None`` to clear it.
        by: who set it (e.g. ``"key 3"``), kept for the record.
        stores: the stores it applies to (a supervisor's); ``None`` for every store.

    Raises:
        InputError: an unknown state, a script id that is not a non-negative integer, or
            ``stores`` given but empty.
    """
    if isinstance(script_id, bool) or not isinstance(script_id, int) or script_id < 0:
        raise InputError(f"script_id must be a non-negative integer, got {script_id!r}")
    if state is not None and state not in SCRIPT_STATES:
        raise InputError(
            f"script state must be one of {', '.join(SCRIPT_STATES)} (or none to clear it), "
            f"got {state!r}"
        )
    scope = [EVERY_STORE] if stores is None else _clean_stores(stores)
    if not scope:
        raise InputError("a script state for some stores needs at least one store")
    for store in scope:
        _check_text(store, "store")
    # Delete and insert, not read and update: nothing read can be stale by the time it is
    # written (and on SQLite the transaction is a writer from the start).
    begin_write(session)
    stale = delete(ScriptState).where(ScriptState.script_id == script_id)
    if stores is not None:
        stale = stale.where(ScriptState.store_id.in_(scope))
    session.execute(stale)
    if state is not None:
        now = utcnow()
        session.add_all(
            ScriptState(script_id=script_id, store_id=store, state=state, set_by=by, set_at=now)
            for store in scope
        )
    session.flush()


def script_states(session: Session) -> dict[int, str]:
    """Every script pinned or banned in every store (an admin's states).

    Args:
        session: an open session.

    Returns:
        ``{script_id: "pinned" | "banned"}``.
    """
    stmt = select(ScriptState.script_id, ScriptState.state).where(
        ScriptState.store_id == EVERY_STORE
    )
    return {int(sid): state for sid, state in session.execute(stmt)}


def store_script_states(session: Session) -> dict[str, dict[int, str]]:
    """Every script pinned or banned in single stores (supervisors' states).

    Args:
        session: an open session.

    Returns:
        ``{store_id: {script_id: "pinned" | "banned"}}``, only stores that set one.
    """
    stmt = select(ScriptState.store_id, ScriptState.script_id, ScriptState.state).where(
        ScriptState.store_id != EVERY_STORE
    )
    out: dict[str, dict[int, str]] = {}
    for store, sid, state in session.execute(stmt):
        out.setdefault(store, {})[int(sid)] = state
    return out


# ----------------------------------------------------------------------------- API keys


def _key_dict(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "guide_id": row.guide_id,
        "stores": list(row.stores),
        "prefix": row.prefix,
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "active": row.revoked_at is None,
    }


def _clean_stores(stores: Iterable[str]) -> list[str]:
    if isinstance(stores, str):  # a lone store id, not an iterable of its characters
        stores = [stores]
    return sorted({s.strip() for s in stores if s and s.strip()})


def check_key_scope(
    role: str, guide_id: str | None, stores: Iterable[str]
) -> tuple[str | None, list[str]]:
    """Check that a key's scope fits its role (before anything is stored).

    Args:
        role: ``guide``, ``supervisor`` or ``admin``.
        guide_id: the guide of a guide key.
        stores: the stores of a supervisor key.

    Returns:
        ``(guide_id, stores)`` cleaned: ids stripped, stores de-duplicated and sorted.

    Raises:
        InputError: an unknown role; a guide key without a guide or a supervisor key without a
            store; a guide on a non-guide key or stores on a non-supervisor key.
    """
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    guide_id = guide_id.strip() if guide_id else None
    store_list = _clean_stores(stores)
    if role == "guide" and not guide_id:
        raise InputError("a guide key needs the guide it speaks for: pass --guide G (guide_id)")
    if role == "supervisor" and not store_list:
        raise InputError("a supervisor key needs at least one store: pass --store S (stores)")
    if role != "guide" and guide_id:
        raise InputError(
            f"only guide keys have a guide; a {role} key cannot take guide {guide_id!r}"
        )
    if role != "supervisor" and store_list:
        hint = " (an admin sees every store)" if role == "admin" else ""
        raise InputError(
            f"only supervisor keys have stores; a {role} key cannot take stores "
            f"{', '.join(store_list)}{hint}"
        )
    _check_text(guide_id, "guide id")
    for store in store_list:
        _check_text(store, "store")
    return guide_id, store_list


def create_api_key(
    session: Session,
    role: str,
    *,
    guide_id: str | None = None,
    stores: Iterable[str] = (),
    name: str = "",
) -> tuple[str, dict[str, Any]]:
    """Create an API key; its plaintext is returned here once and never stored.

    Args:
        session: an open session; the caller commits.
        role: ``guide``, ``supervisor`` or ``admin``.
        guide_id: the guide a guide key speaks for (required for ``guide``, refused otherwise).
        stores: the stores a supervisor key covers (at least one for ``supervisor``, refused
            otherwise).
        name: a label for people (``"店长 张三"``).

    Returns:
        ``(plaintext, info)``: the key (``cpk_...``) and ``{id, name, role, guide_id, stores,
        prefix, created_at, revoked_at, active}`` as :func:`list_api_keys` shows it.

    Raises:
        InputError: an unknown role, or a scope that does not fit the role.

    Example:
        >>> key, info = create_api_key(session, "supervisor", stores=["s-3"], name="店长")
        >>> session.commit(); print(key)  # show it now: only its hash is kept
    """
    guide_id, store_list = check_key_scope(role, guide_id, stores)
    _check_text(name, "name")
    plaintext = generate_key()
    row = ApiKey(
        key_hash=hash_key(plaintext),
        prefix=plaintext[: len(KEY_PREFIX) + 4],
        role=role,
        guide_id=guide_id,
        stores=store_list,
        name=name,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return plaintext, _key_dict(row)


def authenticate(session: Session, plaintext: str | None) -> Principal | None:
    """The principal of an API key, or ``None`` for a missing, unknown or revoked key.

    Args:
        session: an open session.
        plaintext: the key as sent (``Authorization: Bearer <key>``).

    Returns:
        The :class:`~server.auth.Principal`, or ``None``.
    """
    if not plaintext or not plaintext.startswith(KEY_PREFIX):
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext)))
    if row is None or row.revoked_at is not None:
        return None
    return Principal(
        key_id=row.id, role=row.role, guide_id=row.guide_id, stores=frozenset(row.stores)
    )


def list_api_keys(session: Session) -> list[dict[str, Any]]:
    """Every API key, revoked ones too, oldest first (never a hash or a plaintext).

    Args:
        session: an open session.

    Returns:
        ``{id, name, role, guide_id, stores, prefix, created_at, revoked_at, active}`` each;
        ``prefix`` is the key's first characters, enough to tell keys apart.
    """
    return [_key_dict(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_api_key(session: Session, key_id: int) -> bool:
    """Revoke a key: it stops authenticating at once. Revoking twice keeps the first time.

    Args:
        session: an open session; the caller commits.
        key_id: the key's id (``copilot keys list``).

    Returns:
        ``True`` when the key exists (now revoked), ``False`` when there is no such key.
    """
    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return True
