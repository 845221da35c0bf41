"""The tables of the server's database (SQLAlchemy 2 typed ORM).

::

    conversations       one row per conversation_id: the canonical fields, the score report
    │                   (JSON) and the columns the lists filter and sort on
    ├── messages        one row per message (conversation_id, position)
    └── flags           one row per flag of the report, queryable by rule and kind
    served_suggestions  each suggestion the server handed out (id ``sg_<hex>``)
    └── feedback        at most one per suggestion: accepted, edited or rejected
    script_states       scripts pinned or banned: for every store (an admin's) or one store
                        (a supervisor's, one row per store it covers)
    api_keys            SHA-256 hashes of API keys, with role and scope
    server_state        what the server's processes share besides the tables above: the
                        bundle the last reload made current (name ``bundle``)
    orders              payments posted to ``/v1/orders`` (one row per order_id) and the
                        conversation each is attributed to (``copilot.orders``), or why none
    catalog_products    the brand's products posted to ``/v1/catalog`` (one row per name)
    catalog_promotions  the brand's promotions posted to ``/v1/catalog`` (one row per title)
    followup_actions    follow-up queue entries a guide marked done, snoozed or dismissed (one
                        row per entry id; posting again replaces it)
    tasks               headquarters' tasks posted to ``/v1/tasks``: script variants, segment,
                        window and the stores they cover (``copilot.tasks``)
    conversation_summaries  the LLM summary of a conversation (``POST
                        /v1/conversations/{id}/summary``), at most one per conversation

Every timestamp is timezone-aware: stored in UTC, read back as UTC datetimes on both SQLite
(which keeps no zone itself) and PostgreSQL. The Alembic migrations in ``migrations/`` create
exactly these tables; a test checks that they agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from copilot.schema import CHINA_TZ

__all__ = [
    "EVERY_STORE",
    "ApiKey",
    "Base",
    "CatalogProduct",
    "CatalogPromotion",
    "ConversationRow",
    "ConversationSummary",
    "Feedback",
    "FlagRow",
    "FollowUpAction",
    "MessageRow",
    "OrderRow",
    "ScriptState",
    "ServedSuggestion",
    "ServerState",
    "TaskRow",
    "UTCDateTime",
    "utcnow",
]

# Deterministic constraint and index names, so migrations can name what they change.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


EVERY_STORE = ""
"""The ``store_id`` of a script state that holds in every store (no store has an empty id)."""


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC.

    A naive datetime is read as China time (as :mod:`copilot.schema` does). SQLite keeps no
    zone, so values come back naive there and get UTC attached; PostgreSQL's ``timestamptz``
    comes back in the session's zone and is converted.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=CHINA_TZ)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table; ``Base.metadata`` is what the migrations target."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class ConversationRow(Base):
    """A stored conversation with its score report; ``conversation_id`` is the key."""

    __tablename__ = "conversations"
    # A guide's or a store's conversations, newest first: the lists' commonest query. Each
    # index also serves a filter on its first column alone.
    __table_args__ = (
        Index("ix_conversations_guide_id_started_at", "guide_id", "started_at"),
        Index("ix_conversations_store_id_started_at", "store_id", "started_at"),
    )

    conversation_id: Mapped[str] = mapped_column(String, primary_key=True)
    guide_id: Mapped[str | None] = mapped_column(String)
    store_id: Mapped[str | None] = mapped_column(String)
    # Indexed: orders find their customer's conversations by it.
    customer_id: Mapped[str | None] = mapped_column(String, index=True)
    channel: Mapped[str | None] = mapped_column(String)
    started_at: Mapped[datetime | None] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    n_messages: Mapped[int] = mapped_column(Integer)
    overall: Mapped[float | None] = mapped_column(Float, index=True)
    win_probability: Mapped[float | None] = mapped_column(Float)
    converted: Mapped[bool | None] = mapped_column(Boolean)
    outcome: Mapped[dict[str, Any] | None]
    labels: Mapped[dict[str, Any] | None]
    meta: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Read-only views: the repository writes message and flag rows itself (replacing them all
    # on a re-post), and the database's ON DELETE CASCADE removes them with the conversation.
    messages: Mapped[list[MessageRow]] = relationship(viewonly=True, order_by="MessageRow.position")
    flags: Mapped[list[FlagRow]] = relationship(viewonly=True, order_by="FlagRow.position")


class MessageRow(Base):
    """One message of a conversation; ``position`` is its index in the conversation."""

    __tablename__ = "messages"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    ts: Mapped[datetime | None]


class FlagRow(Base):
    """One flag of a score report (a timing or compliance problem at a message)."""

    __tablename__ = "flags"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String, index=True)
    rule: Mapped[str] = mapped_column(String, index=True)
    severity: Mapped[str | None] = mapped_column(String)
    message_index: Mapped[int | None] = mapped_column(Integer)


class ServedSuggestion(Base):
    """A suggestion the server served; the conversation it was for need not be stored."""

    __tablename__ = "served_suggestions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str | None] = mapped_column(String, index=True)
    guide_id: Mapped[str | None] = mapped_column(String, index=True)
    store_id: Mapped[str | None] = mapped_column(String, index=True)
    message_index: Mapped[int | None] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(Integer)
    script_id: Mapped[int | None] = mapped_column(Integer, index=True)
    text: Mapped[str] = mapped_column(Text)
    action: Mapped[str | None] = mapped_column(String)
    served_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Feedback(Base):
    """What the guide did with a served suggestion; a later feedback replaces this one."""

    __tablename__ = "feedback"

    suggestion_id: Mapped[str] = mapped_column(
        ForeignKey("served_suggestions.id", ondelete="CASCADE"), primary_key=True
    )
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    final_text: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[int | None] = mapped_column(Integer)
    given_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScriptState(Base):
    """A script pinned (boosted) or banned (never served) in one store, or in every store
    (``store_id`` ``""``, :data:`EVERY_STORE`: an admin's)."""

    __tablename__ = "script_states"

    script_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    store_id: Mapped[str] = mapped_column(String, primary_key=True, default="", server_default="")
    state: Mapped[str] = mapped_column(String(16))
    set_by: Mapped[str] = mapped_column(String)
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key: the SHA-256 hash of its plaintext (never the plaintext), role and scope."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    guide_id: Mapped[str | None] = mapped_column(String)
    stores: Mapped[list[Any]]
    name: Mapped[str] = mapped_column(String, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class ServerState(Base):
    """A named JSON value the server's processes share (``bundle``: the reloaded bundle)."""

    __tablename__ = "server_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderRow(Base):
    """A payment and where attribution put it.

    ``conversation_id`` is the conversation the order is attributed to (``None`` while no
    stored conversation qualifies), and ``reason`` says why not (``unknown_customer``,
    ``other_store``, ``paid_before_chat`` or ``outside_window``). Both are recomputed whenever
    an order or a conversation of the same customer is stored.
    """

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer_id_paid_at", "customer_id", "paid_at"),)

    order_id: Mapped[str] = mapped_column(String, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String)
    store_id: Mapped[str | None] = mapped_column(String, index=True)
    paid_at: Mapped[datetime]
    amount: Mapped[float] = mapped_column(Float)
    product: Mapped[str | None] = mapped_column(String)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="SET NULL"), index=True
    )
    reason: Mapped[str | None] = mapped_column(String(32))
    key_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogProduct(Base):
    """A product of the brand's catalogue (:class:`copilot.catalog.Product`), by name.

    One catalogue per server, as the bundle is: every process's suggestion engine uses it.
    """

    __tablename__ = "catalog_products"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    category: Mapped[str] = mapped_column(String, default="")
    price: Mapped[float | None] = mapped_column(Float)
    attributes: Mapped[dict[str, Any]]
    key_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogPromotion(Base):
    """A promotion of the brand (:class:`copilot.catalog.Promotion`), by title; ``starts`` and
    ``ends`` are days (inclusive), ``products`` the names it applies to (empty: all)."""

    __tablename__ = "catalog_promotions"

    title: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    starts: Mapped[date | None] = mapped_column(Date)
    ends: Mapped[date | None] = mapped_column(Date)
    products: Mapped[list[Any]]
    key_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FollowUpAction(Base):
    """What a guide did with an entry of the follow-up queue (:mod:`copilot.followups`).

    ``status`` is ``done`` or ``dismissed`` (the entry leaves the queue for good) or ``snoozed``
    (it comes back on ``until``). ``due`` is the entry's due day when it was closed, kept so
    scorecards can count follow-ups done on time; customer, guide and store are the entry's.
    """

    __tablename__ = "followup_actions"

    entry_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    until: Mapped[date | None] = mapped_column(Date)
    # Indexed: the queue reads the actions of the customers it covers.
    customer_id: Mapped[str] = mapped_column(String, index=True)
    guide_id: Mapped[str | None] = mapped_column(String, index=True)
    store_id: Mapped[str | None] = mapped_column(String)
    due: Mapped[date] = mapped_column(Date)
    key_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskRow(Base):
    """A task from headquarters (:class:`copilot.tasks.Task`): script variants for a segment of
    customers, to carry out between ``starts`` and ``deadline``.

    ``stores`` is the task's scope: the stores of the supervisor key that created it (its
    segment may only name those), or empty for an admin's task (every store).
    """

    __tablename__ = "tasks"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    variants: Mapped[list[Any]]
    segment: Mapped[dict[str, Any]]
    stores: Mapped[list[Any]]
    starts: Mapped[datetime]
    deadline: Mapped[datetime]
    key_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationSummary(Base):
    """The latest LLM summary of a stored conversation (:func:`copilot.llm.summarize`):
    ``summary`` holds ``wanted``, ``guide_did``, ``open_items`` and ``next_step``;
    ``n_messages`` how many messages the conversation had when it was summarised. Removed with
    its conversation."""

    __tablename__ = "conversation_summaries"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE"), primary_key=True
    )
    summary: Mapped[dict[str, Any]]
    prompt_version: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(Text)
    n_messages: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
