"""What ``GET /v1/customers/{customer_id}`` does, and the per-customer reading the follow-up
queue and tasks share.

A customer is seen through their conversations: a key sees a customer's profile when it may
see at least one of their stored conversations, and the profile is built from those only (a
guide's view of a customer is what that guide talked about with them). Orders are the
customer's stored orders in any store: a payment anywhere is what the customer did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from copilot.errors import InputError, NotFoundError
from copilot.profile import build_profile
from copilot.schema import Conversation
from server.auth import Principal
from server.db.customers import customer_orders, load_conversations, stored_intents

__all__ = [
    "CustomerData", "customer_profile", "customers_in_scope", "intents_of", "known_about",
    "latest_owner",
]  # fmt: skip

KNOWN_DAYS = 180
"""How far back a customer's stored conversations fill a suggestion's open slots."""

CustomerData = tuple[dict[str, list[Conversation]], dict[str, list[dict[str, Any]]]]
"""customer id -> their conversations, and customer id -> their orders."""


def customer_profile(session: Session, principal: Principal, customer_id: str) -> dict[str, Any]:
    """The customer's profile (:meth:`copilot.profile.Profile.to_dict`): facts each with the
    conversation, message index, time and text it came from; stage, last contact, orders and
    the conversations read.

    Raises:
        InputError: an id with a NUL character.
        NotFoundError: the caller may see none of the customer's stored conversations.
    """
    if "\x00" in customer_id:
        raise InputError("customer_id contains a NUL character (\\x00); remove it")
    conversations = load_conversations(session, principal, customer_id=customer_id)
    if not conversations:
        raise NotFoundError(
            f"no stored conversation of customer {customer_id!r} that this API key may see; "
            "POST the customer's conversations (with customer_id) to /v1/conversations first"
        )
    orders = customer_orders(session, [customer_id]).get(customer_id, [])
    intents = intents_of(session, conversations)
    return build_profile(customer_id, conversations, orders, intents=intents).to_dict()


def intents_of(
    session: Session, conversations: list[Conversation]
) -> Callable[[Conversation], list[str | None]]:
    """Each conversation's message intents as the bundle labelled them when it was stored (what
    the profile's stage and the follow-up rules read besides the words)."""
    stored = stored_intents(session, [c.conversation_id for c in conversations])
    return lambda conversation: stored.get(conversation.conversation_id, [])


def known_about(
    session: Session, principal: Principal, conversation: Conversation
) -> dict[str, str]:
    """What the customer's other stored conversations (of the last :data:`KNOWN_DAYS` days,
    those the caller may see) and orders say for a suggestion's open slots: their size and the
    product they asked about or bought (:meth:`copilot.profile.Profile.slot_values`); ``{}``
    for a conversation without a customer."""
    customer = conversation.customer_id
    if not customer:
        return {}
    since = datetime.now(UTC) - timedelta(days=KNOWN_DAYS)
    earlier = [
        c
        for c in load_conversations(session, principal, customer_id=customer, ended_since=since)
        if c.conversation_id != conversation.conversation_id
    ]
    orders = customer_orders(session, [customer]).get(customer, [])
    if not earlier and not orders:
        return {}
    return build_profile(customer, earlier, orders).slot_values()


def customers_in_scope(
    session: Session, principal: Principal, ended_since: datetime | None = None
) -> CustomerData:
    """The conversations ``principal`` may see (ending at or after ``ended_since``), grouped
    by customer, and those customers' orders."""
    by_customer: dict[str, list[Conversation]] = defaultdict(list)
    for conversation in load_conversations(session, principal, ended_since=ended_since):
        if conversation.customer_id:
            by_customer[conversation.customer_id].append(conversation)
    return dict(by_customer), customer_orders(session, by_customer)


def latest_owner(conversations: list[Conversation]) -> tuple[str | None, str | None]:
    """The guide and store of a customer's latest conversation (by its first message)."""

    def start(conversation: Conversation) -> float:
        stamps = [m.ts.timestamp() for m in conversation.messages if m.ts is not None]
        return min(stamps) if stamps else float("-inf")

    guide = store = None
    for conversation in sorted(conversations, key=start):
        guide = conversation.guide_id or guide
        store = conversation.store_id or store
    return guide, store
