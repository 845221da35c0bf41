"""Request and response models of the HTTP API (``XCreate`` in, ``XPublic`` out).

Conversations in requests are the core :class:`copilot.schema.Conversation` (and orders the core
:class:`copilot.orders.Order`), so the API, the CLI and the files share one definition and its
messages; the request subclasses only make them strict. Request models refuse unknown fields
and wrong JSON types (``"k": "3"`` and ``"conversation_id": 123`` are 422s, not coerced; a file
read by the CLI may still carry numeric ids). Every rule a validator checks is declared in the
JSON schema too (``/openapi.json``), so a client generated from it sends what the server takes.
Response models list what the API promises, so ``/docs`` shows both.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    WithJsonSchema,
    model_validator,
)

from copilot.catalog import PromotionKind
from copilot.orders import Order, UnattributedReason
from copilot.schema import MAX_MESSAGE_CHARS, Conversation
from copilot.schema import Outcome as ConversationOutcome  # ``Outcome`` here is feedback's
from copilot.scoring.scorecard import Scorecard
from models.rank import MAX_CANDIDATES
from server.llm_schemas import DraftStatusPublic, DraftSuggestionPublic, SummaryPublic

__all__ = [
    "BATCH_TAG",
    "SINGLE_TAG",
    "AcceptancePublic",
    "ExecutionPublic",
    "CatalogCreate",
    "CatalogPublic",
    "CatalogStored",
    "ClassifyCreate",
    "ClassifyPublic",
    "CoachingPublic",
    "ConversationBatch",
    "ConversationCreate",
    "ConversationDetailPublic",
    "ConversationPage",
    "ConversationSort",
    "ConversationSummary",
    "ConversationsCreate",
    "ConversationsStored",
    "ErrorPublic",
    "FeedbackCreate",
    "FeedbackPublic",
    "GuidePage",
    "GuidePublic",
    "HealthPublic",
    "IdQuery",
    "MAX_CATALOG_ITEMS",
    "MAX_OFFSET",
    "MAX_ORDERS",
    "MAX_PAGE",
    "MePublic",
    "OrderBatch",
    "OrderCreate",
    "OrderPage",
    "OrderPublic",
    "OrdersCreate",
    "OrdersStored",
    "Outcome",
    "OutcomeCreate",
    "ProductPublic",
    "PromotionPublic",
    "RankCreate",
    "RankPublic",
    "RankedReplyPublic",
    "ReadyPublic",
    "ReloadCreate",
    "ReloadPublic",
    "ScorecardPublic",
    "StorePage",
    "StorePublic",
    "ScoreCreate",
    "ScriptPage",
    "ScriptPublic",
    "ScriptSort",
    "ScriptState",
    "ScriptStateCreate",
    "StoredItem",
    "SuggestCreate",
    "SuggestPublic",
    "SuggestionPublic",
    "TimeQuery",
    "UNION_TAGS",
]

Outcome = Literal["accepted", "edited", "rejected"]
ScriptState = Literal["pinned", "banned"]
ScriptSort = Literal["-lift", "-lift_lower", "-n", "-acceptance"]
ConversationSort = Literal["overall", "-overall", "started_at", "-started_at"]
SINGLE_TAG, BATCH_TAG = "single conversation", "conversation batch"
_SINGLE_ORDER, _ORDER_BATCH = "single order", "order batch"
UNION_TAGS = frozenset({SINGLE_TAG, BATCH_TAG, _SINGLE_ORDER, _ORDER_BATCH})
"""Tags of the one-or-many bodies of ``POST /v1/conversations`` and ``POST /v1/orders``; error
messages leave them out."""
MAX_ORDERS = 500
"""Most orders in one ``POST /v1/orders``."""
MAX_CATALOG_ITEMS = 20_000
"""Most products (and most promotions) in one ``POST /v1/catalog``."""
MAX_PAGE = 200
"""Most items in one page of a list (``limit``)."""
MAX_OFFSET = 1_000_000_000
"""Largest ``offset`` of a list: far past any real page, well inside a 64-bit SQL integer."""

_NOT_BLANK = r"\S"
"""JSON-schema pattern of a text that must not be blank (a non-whitespace character), declared
where a validator refuses blank text with its own message."""

TimeQuery = Annotated[
    str,
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    ),
]
"""A ``since``/``until`` query parameter: an ISO date or datetime in the years 1970 to 2100,
parsed by :func:`server.service.parse_time` (whose messages say both forms)."""


IdQuery = Annotated[str, WithJsonSchema({"type": "string", "pattern": "^[^\\u0000]*$"})]
"""An id in a query or path: any text but NUL, which the service refuses (PostgreSQL cannot
compare it)."""


def _absent(value: object) -> bool:
    """A field left out of a response when ``None`` (added by the optional LLM, so answers
    without it keep their shape)."""
    return value is None


class _Request(BaseModel):
    # Strict: a JSON value of the wrong type is refused, not coerced (JSON bodies carry their
    # types; query parameters are strings and stay lax).
    model_config = ConfigDict(extra="forbid", strict=True)


# --------------------------------------------------------------------------- errors


class _ErrorDetail(BaseModel):
    status: int
    message: str
    request_id: str | None


class ErrorPublic(BaseModel):
    """Every error: ``{"error": {"status", "message", "request_id"}}``."""

    error: _ErrorDetail


# --------------------------------------------------------------------------- request types


class OutcomeCreate(ConversationOutcome):
    """What the conversation led to, strict: ``converted`` a JSON boolean, ``order_amount`` a
    number."""

    model_config = ConfigDict(strict=True)


class ConversationCreate(Conversation):
    """A conversation in a request: the core :class:`~copilot.schema.Conversation`, strict about
    JSON types (ids are strings; ``123`` is refused rather than stored as ``"123"``). Message
    timestamps stay ISO 8601 strings or epoch milliseconds, as in the files."""

    model_config = ConfigDict(strict=True)  # merged with the core's (extra="forbid")

    outcome: OutcomeCreate | None = None


# --------------------------------------------------------------------------- suggest


class SuggestCreate(_Request):
    """``POST /v1/suggest``: the conversation so far, and how many suggestions (default 3).
    ``draft: true`` asks for an LLM draft beside them (when an LLM is configured)."""

    conversation: ConversationCreate
    k: int | None = Field(default=None, ge=1, le=20)
    draft: bool = False


class _Label(BaseModel):
    label: str | None
    confidence: float


class _ActionProbability(BaseModel):
    label: str
    probability: float


class _Source(BaseModel):
    """Where a script comes from: a mined one's conversation and message; a written one
    (``copilot scripts import``) has null ids and adds ``kind: "written"``, ``product``,
    ``file`` and ``line``, passed through as they are."""

    model_config = ConfigDict(extra="allow")

    conversation_id: str | None = None
    message_index: int | None = None


class SuggestionPublic(BaseModel):
    """One suggestion; ``id`` is its served id (send it back with feedback).

    ``text`` is the script filled from this chat (product, price, size ...); ``template`` the
    script as stored. ``needs_edit`` is true when a slot could not be filled: ``slots`` names
    them (``["订单号"]``) and the text keeps them marked (``[订单号]``) for the guide to fill;
    such suggestions come after every complete one.
    """

    id: str
    script_id: int
    text: str
    template: str
    needs_edit: bool
    slots: list[str]
    action: str
    score: float
    lift: float
    n: int
    source: _Source
    reason: str
    # Only in answers to ``draft: true``, so the others stay exactly as they were.
    origin: Literal["script"] | None = Field(default=None, exclude_if=_absent)


class SuggestPublic(BaseModel):
    """The suggestion object (``copilot suggest --json`` prints the same, without served ids).

    With ``draft: true``: every suggestion says its ``origin`` (``script``, or ``draft`` for the
    LLM's, last when it passed), and ``draft`` what became of the draft.
    """

    intent: _Label
    actions: list[_ActionProbability]
    suggestions: list[SuggestionPublic | DraftSuggestionPublic]
    flags: list[dict[str, Any]]
    bundle: str
    draft: DraftStatusPublic | None = Field(default=None, exclude_if=_absent)


# --------------------------------------------------------------------------- rank

_Candidate = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_MESSAGE_CHARS),
    Field(json_schema_extra={"pattern": _NOT_BLANK}),  # the ranker refuses a blank one
]


class RankCreate(_Request):
    """``POST /v1/rank``: the conversation so far and the replies to rank (1 to 500 texts)."""

    conversation: ConversationCreate
    candidates: list[_Candidate] = Field(min_length=1, max_length=MAX_CANDIDATES)


class _RankFlag(BaseModel):
    kind: Literal["compliance", "personal_data"]
    rule: str
    excerpt: str
    severity: str


class RankedReplyPublic(BaseModel):
    """One candidate with its score, the action read in it, why, and its safety flags."""

    text: str
    score: float
    action: str
    reason: str
    flags: list[_RankFlag]


class RankPublic(BaseModel):
    """Every candidate once, best first, unsafe ones (with flags) last
    (``copilot rank --json`` prints the same)."""

    ranked: list[RankedReplyPublic]
    bundle: str


# --------------------------------------------------------------------------- classify, score

_Text = Annotated[str, StringConstraints(max_length=MAX_MESSAGE_CHARS)]


class ClassifyCreate(_Request):
    """``POST /v1/classify``: customer messages (1 to 1000)."""

    texts: list[_Text] = Field(min_length=1, max_length=1000)


class ClassifyPublic(BaseModel):
    """Intent and next-best actions per text, and the bundle that made them."""

    results: list[dict[str, Any]]
    bundle: str


class ScoreCreate(_Request):
    """``POST /v1/score``: one conversation to score (not stored)."""

    conversation: ConversationCreate


# --------------------------------------------------------------------------- conversations


class ConversationBatch(_Request):
    """Several conversations in one request: ``{"conversations": [...]}``."""

    conversations: list[ConversationCreate] = Field(min_length=1)


def _one_or_many(value: Any) -> str:
    if isinstance(value, dict) and "conversations" in value:
        return BATCH_TAG
    return SINGLE_TAG


ConversationsCreate = Annotated[
    Annotated[ConversationCreate, Tag(SINGLE_TAG)] | Annotated[ConversationBatch, Tag(BATCH_TAG)],
    Discriminator(_one_or_many),
]
"""``POST /v1/conversations``: one conversation object, or ``{"conversations": [...]}``."""


class StoredItem(BaseModel):
    """What became of one posted conversation."""

    conversation_id: str
    overall: float | None
    status: Literal["created", "updated"]


class ConversationsStored(BaseModel):
    """``POST /v1/conversations`` result: counts and one item per conversation, in order."""

    stored: int
    created: int
    updated: int
    items: list[StoredItem]


class ConversationSummary(BaseModel):
    """One row of the conversation list."""

    conversation_id: str
    guide_id: str | None = None
    store_id: str | None = None
    started_at: datetime | None = None
    overall: float | None = None
    n_messages: int
    converted: bool | None = None
    flags: list[str] = Field(default_factory=list)
    win_probability: float | None = None
    last_customer_text: str | None = Field(
        default=None, description="The customer's last message, cut to 60 characters (…)."
    )
    product: str | None = Field(
        default=None,
        description="The product talked about last: a product word of the customer's last 20 "
        "messages, as their profile reads it, else of the guide's.",
    )


class ConversationPage(BaseModel):
    """A page of the conversation list and the total that matched."""

    total: int
    limit: int
    offset: int
    items: list[ConversationSummary]


class _CoachingSuggestion(BaseModel):
    text: str
    action: str
    script_id: int
    lift: float
    n: int
    reason: str


class CoachingPublic(BaseModel):
    """A weak guide reply and what the copilot would have suggested in its place."""

    message_index: int
    reason: str
    points: float
    suggestion: _CoachingSuggestion | None


class ConversationDetailPublic(BaseModel):
    """``GET /v1/conversations/{id}``: the conversation, its score report and coaching, and
    its LLM summary when one was made (``POST /v1/conversations/{id}/summary``)."""

    conversation: dict[str, Any]
    report: dict[str, Any]
    coaching: list[CoachingPublic]
    summary: SummaryPublic | None = Field(default=None, exclude_if=_absent)


# --------------------------------------------------------------------------- orders


class OrderCreate(Order):
    """One payment: ``customer_id``, ``paid_at`` (ISO 8601; without a zone, China time; or
    epoch milliseconds; in the years 1970 to 2100) and ``amount``; ``order_id`` (derived from
    the other fields when left out), ``product`` and ``store_id`` are optional. A supervisor's
    orders must name one of its stores. Strict about JSON types, like every request body."""

    model_config = ConfigDict(strict=True)

    # Not strict: a JSON body carries a time as a string (or epoch milliseconds), never as a
    # datetime object.
    paid_at: datetime = Field(strict=False)


class OrderBatch(_Request):
    """Several orders in one request: ``{"orders": [...]}`` (1 to 500)."""

    orders: list[OrderCreate] = Field(min_length=1, max_length=MAX_ORDERS)


def _one_or_many_orders(value: Any) -> str:
    if isinstance(value, dict) and "orders" in value:
        return _ORDER_BATCH
    return _SINGLE_ORDER


OrdersCreate = Annotated[
    Annotated[OrderCreate, Tag(_SINGLE_ORDER)] | Annotated[OrderBatch, Tag(_ORDER_BATCH)],
    Discriminator(_one_or_many_orders),
]
"""``POST /v1/orders``: one order object, or ``{"orders": [...]}``."""


class _OrderPlaced(BaseModel):
    order_id: str
    status: Literal["created", "updated"]
    conversation_id: str | None
    reason: UnattributedReason | None


class OrdersStored(BaseModel):
    """``POST /v1/orders`` result: counts, where each order went (in order), and the stored
    conversations whose outcome changed."""

    stored: int
    created: int
    updated: int
    attributed: int
    conversations_updated: list[str]
    items: list[_OrderPlaced]


class OrderPublic(BaseModel):
    """A stored order and the conversation it is attributed to (or why none)."""

    order_id: str
    customer_id: str
    store_id: str | None
    paid_at: datetime
    amount: float
    product: str | None
    conversation_id: str | None
    reason: UnattributedReason | None


class OrderPage(BaseModel):
    """A page of orders, newest payment first, and the total that matched."""

    total: int
    limit: int
    offset: int
    items: list[OrderPublic]


# --------------------------------------------------------------------------- catalogue


class CatalogCreate(_Request):
    """``POST /v1/catalog``: products and promotions to store, by name and by title.

    Each item is checked on its own (the fields of ``GET /v1/catalog``; price a non-negative
    number, ``¥``/``元`` allowed; attributes an object or ``key:value;key:value``; kind one of
    coupon, discount, gift, free_shipping, other; starts/ends ISO days; products a list of
    names): an invalid item is rejected with its reason and the others are stored.
    """

    products: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_CATALOG_ITEMS,
        description="Products: {name, category?, price?, attributes?}.",
    )
    promotions: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_CATALOG_ITEMS,
        description="Promotions: {title, kind?, detail?, starts?, ends?, products?}.",
    )
    replace: bool = Field(
        default=False,
        description="Replace the whole stored catalogue with the valid items of this request "
        "(false: add them, replacing those of the same name or title).",
    )


class ProductPublic(BaseModel):
    """A product of the catalogue; ``price`` is ``null`` when not given."""

    name: str
    category: str
    price: float | None
    attributes: dict[str, str]


class PromotionPublic(BaseModel):
    """A promotion; ``starts``/``ends`` are inclusive days (``null``: open), ``products`` the
    names it applies to (empty: every product)."""

    title: str
    kind: PromotionKind
    detail: str
    starts: date | None
    ends: date | None
    products: list[str]


class CatalogPublic(BaseModel):
    """The stored catalogue, products by name and promotions by title."""

    products: list[ProductPublic]
    promotions: list[PromotionPublic]


class _RejectedItem(BaseModel):
    index: int
    error: str


class _CatalogPart(BaseModel):
    received: int
    created: int
    updated: int
    rejected: int
    errors: list[_RejectedItem]


class CatalogStored(BaseModel):
    """``POST /v1/catalog`` result: per part, what was created, updated and rejected (with
    each rejected item's position and reason), and the catalogue's size now."""

    replaced: bool
    products: _CatalogPart
    promotions: _CatalogPart
    stored: dict[str, int]


# --------------------------------------------------------------------------- guides


class AcceptancePublic(BaseModel):
    """Feedback on served suggestions; edited counts as accepted in the rate."""

    shown: int = 0
    accepted: int = 0
    edited: int = 0
    rejected: int = 0
    acceptance_rate: float | None = None


class _FollowUpExecution(BaseModel):
    due: int = 0
    done: int = 0
    done_on_time: int = 0
    on_time_rate: float | None = None


class _TaskExecution(BaseModel):
    tasks: int = 0
    targeted: int = 0
    executed: int = 0
    execution_rate: float | None = None
    replied: int = 0
    converted: int = 0
    conversion_rate: float | None = None


class ExecutionPublic(BaseModel):
    """What a guide or store did with the follow-up queue and headquarters' tasks in the
    period (:mod:`server.execution_service`).

    ``followups``: entries marked done, snoozed or dismissed whose due day is in the period
    (``due``), those done, and those done by their due day (``on_time_rate`` = done_on_time /
    due). ``tasks``: the targets of tasks whose window overlaps the period, those the guide
    carried out (``execution_rate``), and of those the customers who replied or paid after it
    (``conversion_rate`` = converted / executed).
    """

    followups: _FollowUpExecution = Field(default_factory=_FollowUpExecution)
    tasks: _TaskExecution = Field(default_factory=_TaskExecution)


class GuidePublic(BaseModel):
    """One row of the guide leaderboard."""

    rank: int
    guide_id: str
    stores: list[str]
    n: int
    overall: float | None
    dimensions: dict[str, float | None]
    conversion_rate: float | None
    flags: int
    acceptance_rate: float | None
    execution: ExecutionPublic


class GuidePage(BaseModel):
    """The guide leaderboard, best first."""

    items: list[GuidePublic]


class StorePublic(BaseModel):
    """One row of the store leaderboard; ``guides`` are the store's guides."""

    rank: int
    store_id: str
    guides: list[str]
    n: int
    overall: float | None
    dimensions: dict[str, float | None]
    conversion_rate: float | None
    flags: int
    acceptance_rate: float | None
    execution: ExecutionPublic


class StorePage(BaseModel):
    """The store leaderboard, best first."""

    items: list[StorePublic]


class ScorecardPublic(Scorecard):
    """A guide's or store's scorecard (dimension averages, trend, best and worst) with
    feedback counts and execution."""

    acceptance: AcceptancePublic
    execution: ExecutionPublic


# --------------------------------------------------------------------------- feedback, scripts


class FeedbackCreate(_Request):
    """``POST /v1/feedback``: what the guide did with a served suggestion; ``edited`` needs
    ``final_text``, the reply the guide sent."""

    # The rule of _edited_has_text, for the JSON schema: if outcome is "edited", then a
    # final_text that is not blank.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"outcome": {"const": "edited"}}, "required": ["outcome"]},
            "then": {
                "properties": {"final_text": {"type": "string", "pattern": _NOT_BLANK}},
                "required": ["final_text"],
            },
        }
    )

    suggestion_id: str = Field(min_length=1, max_length=64)
    outcome: Outcome
    final_text: _Text | None = None

    @model_validator(mode="after")
    def _edited_has_text(self) -> FeedbackCreate:
        if self.outcome == "edited" and not (self.final_text or "").strip():
            raise ValueError("outcome 'edited' needs final_text: the reply the guide sent")
        return self


class FeedbackPublic(BaseModel):
    """The feedback recorded."""

    suggestion_id: str
    outcome: Outcome


class ScriptPublic(BaseModel):
    """A script of the live bundle with its evidence, state and guides' feedback."""

    script_id: int
    text: str
    action: str
    intent: str
    lift: float
    lift_lower: float = Field(
        description="A lower confidence bound of lift (what the engine ranks by): low for a "
        "script used only a few times, whatever its lift"
    )
    n: int
    rate: float
    state: ScriptState | None
    shown: int
    accepted: int
    acceptance_rate: float | None


class ScriptPage(BaseModel):
    """A page of scripts and the total that matched."""

    total: int
    limit: int
    offset: int
    items: list[ScriptPublic]


class ScriptStateCreate(_Request):
    """``POST /v1/scripts``: pin or ban a script."""

    script_id: int = Field(ge=0)
    state: ScriptState


# --------------------------------------------------------------------------- admin, me, health


class ReloadCreate(_Request):
    """``POST /v1/admin/reload``: the bundle to load (default: the current one's directory)."""

    bundle_dir: str | None = Field(default=None, min_length=1)


class ReloadPublic(BaseModel):
    """The bundle now served, and the one it replaced."""

    bundle: str
    bundle_dir: str
    loaded_at: datetime
    scripts: int
    previous: str


class MePublic(BaseModel):
    """Who the API key speaks for."""

    role: str
    guide_id: str | None
    stores: list[str]
    key_id: int


class HealthPublic(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class ReadyPublic(BaseModel):
    """Readiness: the bundle served and whether the database answers."""

    status: Literal["ready", "not ready"]
    bundle: str | None
    database: str
