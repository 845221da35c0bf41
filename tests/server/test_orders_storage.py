"""Stored orders (server.db.orders): the migration, idempotent upserts, attribution to stored
conversations and their outcomes, lists and scopes, and the per-customer lock; every test
runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

from copilot.errors import InputError
from copilot.orders import Order
from copilot.schema import Conversation
from copilot.scoring.scorecard import build_scorecards
from server.auth import Principal
from server.db import iter_reports, make_engine, make_session_factory, migrate
from server.db.models import ConversationRow
from server.db.orders import (
    attribute_customers,
    customers_to_attribute,
    list_orders,
    lock_customers,
    order_placements,
    stored_orders,
    upsert_orders,
)
from server.db.repository import upsert_conversations
from tests.builders import make_report, timed_conversation_dict

ADMIN = Principal(key_id=1, role="admin")
SUPERVISOR = Principal(key_id=2, role="supervisor", stores=frozenset({"s-1"}))
GUIDE = Principal(key_id=3, role="guide", guide_id="g-1")


def store_chat(
    session: Session, cid: str, customer: str | None, *stamps: str, store: str = "s-1"
) -> None:
    """Store a conversation with messages at ``stamps`` and attribute its customer's orders,
    as the server does."""
    conversation = Conversation.model_validate(
        timed_conversation_dict(cid, list(stamps), customer_id=customer, store_id=store)
    )
    customers = customers_to_attribute(session, [cid], [customer])
    upsert_conversations(session, [(conversation, make_report(cid, store_id=store))])
    attribute_customers(session, customers, hours=72)
    session.commit()


def post(session: Session, *orders: Order) -> list[str]:
    """Store orders and attribute them, as the server does; returns the changed conversations."""
    ids = [o.order_id for o in orders]
    customers = {o.customer_id for o in orders}
    customers |= {c for c, _ in stored_orders(session, ids).values()}
    lock_customers(session, customers)
    upsert_orders(session, list(orders), key_id=1)
    changed = attribute_customers(session, customers, hours=72)
    session.commit()
    return changed


def order(oid: str, customer: str, paid_at: str, amount: float = 10.0, **fields: Any) -> Order:
    return Order(order_id=oid, customer_id=customer, paid_at=paid_at, amount=amount, **fields)  # type: ignore[arg-type]


def outcome(session: Session, cid: str) -> tuple[Any, Any, Any]:
    """(converted column, outcome JSON, report's converted and order_amount) of a conversation,
    as stored."""
    session.expire_all()
    row = session.get_one(ConversationRow, cid)
    return row.converted, row.outcome, (row.report.get("converted"), row.report.get("order_amount"))


# ----------------------------------------------------------------------------- migration


def test_a_database_of_the_second_schema_gets_orders_in_place(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from server.db import MIGRATIONS_DIR

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    chat = Conversation.model_validate(
        timed_conversation_dict("c-old", ["2026-03-08T10:00:00+08:00"], customer_id="u-1")
    )
    with make_session_factory(engine).begin() as session:
        upsert_conversations(session, [(chat, make_report("c-old"))])
    migrate(engine)
    indexes = {i["name"] for i in inspect(engine).get_indexes("conversations")}
    assert "ix_conversations_customer_id" in indexes
    with make_session_factory(engine)() as session:
        assert post(session, order("o-1", "u-1", "2026-03-08T11:00:00+08:00")) == ["c-old"]
    engine.dispose()


# ----------------------------------------------------------------------------- orders


def test_upsert_orders_is_idempotent_on_order_id(session: Session) -> None:
    first = order("o-1", "u-1", "2026-03-08T11:00:00+08:00", 10.0, store_id="s-1")
    assert upsert_orders(session, [first]) == ["created"]
    session.commit()
    changed = Order(**{**first.model_dump(), "amount": 12.5, "product": "大衣"})
    assert upsert_orders(session, [changed, order("o-2", "u-2", "2026-03-08T11:00:00")]) == [
        "updated",
        "created",
    ]
    session.commit()
    total, items = list_orders(session, ADMIN)
    assert total == 2
    (one,) = [i for i in items if i["order_id"] == "o-1"]
    assert one["amount"] == 12.5 and one["product"] == "大衣" and one["store_id"] == "s-1"
    assert one["paid_at"] == "2026-03-08T11:00:00+08:00"
    assert stored_orders(session, ["o-1", "o-9"]) == {"o-1": ("u-1", "s-1")}


def test_upsert_orders_refuses_text_it_cannot_store(session: Session) -> None:
    with pytest.raises(InputError, match="customer_id of order 'o-1' contains a NUL"):
        upsert_orders(session, [order("o-1", "u\x00", "2026-03-08T11:00:00")])


# ----------------------------------------------------------------------------- attribution


def test_an_order_converts_its_conversation_in_columns_outcome_and_report(
    session: Session,
) -> None:
    store_chat(session, "c-1", "u-1", "2026-03-08T10:00:00+08:00", "2026-03-08T10:05:00+08:00")
    assert outcome(session, "c-1") == (None, None, (None, None))
    changed = post(
        session,
        order("o-1", "u-1", "2026-03-08T02:30:00Z", 99.9),  # 10:30 China time
        order("o-2", "u-1", "2026-03-09T10:00:00+08:00", 0.1),
    )
    assert changed == ["c-1"]
    assert outcome(session, "c-1") == (
        True,
        {"converted": True, "order_amount": 100.0},
        (True, 100.0),
    )
    assert order_placements(session, ["o-1", "o-2"]) == {"o-1": ("c-1", None), "o-2": ("c-1", None)}
    # the scorecards read the stored reports
    (card,) = build_scorecards(iter_reports(session, ADMIN), by="guide")
    assert card.to_dict()["conversion_rate"] == 1.0
    assert post(session, order("o-2", "u-1", "2026-03-09T10:00:00+08:00", 0.1)) == []


def test_an_order_waits_for_its_conversation_and_moves_to_a_later_one(session: Session) -> None:
    assert post(session, order("o-1", "u-1", "2026-03-08T12:00:00+08:00")) == []
    assert order_placements(session, ["o-1"]) == {"o-1": (None, "unknown_customer")}
    store_chat(session, "c-early", "u-1", "2026-03-08T09:00:00+08:00")
    assert order_placements(session, ["o-1"]) == {"o-1": ("c-early", None)}
    store_chat(session, "c-late", "u-1", "2026-03-08T11:00:00+08:00")
    assert order_placements(session, ["o-1"]) == {"o-1": ("c-late", None)}
    assert outcome(session, "c-early")[:2] == (False, {"converted": False})
    assert outcome(session, "c-late")[:2] == (True, {"converted": True, "order_amount": 10.0})


def test_orders_only_touch_conversations_they_go_to(session: Session) -> None:
    store_chat(session, "c-other", "u-2", "2026-03-08T09:00:00+08:00")
    store_chat(session, "c-anon", None, "2026-03-08T09:00:00+08:00")
    assert post(session, order("o-1", "u-1", "2026-03-08T12:00:00+08:00")) == []
    assert outcome(session, "c-other")[0] is None and outcome(session, "c-anon")[0] is None


def test_an_order_of_a_store_goes_to_that_stores_conversation(session: Session) -> None:
    store_chat(session, "c-s1", "u-1", "2026-03-08T09:00:00+08:00", store="s-1")
    store_chat(session, "c-s2", "u-1", "2026-03-08T10:00:00+08:00", store="s-2")
    post(session, order("o-1", "u-1", "2026-03-08T12:00:00+08:00", store_id="s-1"))
    post(session, order("o-2", "u-1", "2026-03-08T12:00:00+08:00", store_id="s-3"))
    assert order_placements(session, ["o-1", "o-2"]) == {
        "o-1": ("c-s1", None),
        "o-2": (None, "other_store"),
    }


# ----------------------------------------------------------------------------- lists


def test_list_orders_scopes_filters_and_pages(session: Session) -> None:
    store_chat(session, "c-1", "u-1", "2026-03-08T09:00:00+08:00")
    post(
        session,
        order("o-1", "u-1", "2026-03-08T10:00:00+08:00", store_id="s-1"),
        order("o-2", "u-1", "2026-03-09T10:00:00+08:00", store_id="s-2"),
        order("o-3", "u-2", "2026-03-10T10:00:00+08:00"),
        order("o-4", "u-1", "2026-03-01T10:00:00+08:00", store_id="s-1"),
    )

    def ids(principal: Principal = ADMIN, **filters: Any) -> list[str]:
        return [item["order_id"] for item in list_orders(session, principal, **filters)[1]]

    assert ids() == ["o-3", "o-2", "o-1", "o-4"]
    assert ids(SUPERVISOR) == ["o-1", "o-4"] and ids(GUIDE) == []
    assert ids(customer_id="u-2") == ["o-3"] and ids(store_id="s-2") == ["o-2"]
    assert ids(conversation_id="c-1") == ["o-1"]
    assert ids(attributed=True) == ["o-1"]
    assert ids(attributed=False) == ["o-3", "o-2", "o-4"]
    assert ids(since=datetime(2026, 3, 9, tzinfo=UTC)) == ["o-3", "o-2"]
    assert ids(limit=2, offset=1) == ["o-2", "o-1"]
    total, items = list_orders(session, ADMIN, limit=0)
    assert (total, items) == (4, [])
    (item,) = list_orders(session, ADMIN, customer_id="u-2")[1]
    assert item["reason"] == "unknown_customer" and item["conversation_id"] is None
    with pytest.raises(InputError, match="is not before until"):
        list_orders(session, ADMIN, since=datetime(2026, 3, 9), until=datetime(2026, 3, 8))


# ----------------------------------------------------------------------------- concurrency


# PostgreSQL only: SQLite has one writer at a time, and the server retries a stale writer.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_customer_lock_keeps_concurrent_orders_from_losing_an_amount(
    engine: Engine, database_url: str
) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        store_chat(session, "c-1", "u-1", "2026-03-08T09:00:00+08:00")
    first_locked, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with factory() as session:
                lock_customers(session, {"u-1"})
                upsert_orders(session, [order("o-1", "u-1", "2026-03-08T10:00:00+08:00", 10)])
                attribute_customers(session, {"u-1"}, hours=72)
                first_locked.set()
                release.wait(10)
                session.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)
            first_locked.set()

    def second() -> None:
        try:
            with factory() as session:
                post(session, order("o-2", "u-1", "2026-03-08T11:00:00+08:00", 20))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_locked.wait(10)
    threads[1].start()
    threads[1].join(0.3)
    assert threads[1].is_alive(), "the second writer should wait for the first one's lock"
    release.set()
    for thread in threads:
        thread.join(10)
    assert not errors, errors
    with factory() as session:
        assert outcome(session, "c-1")[1] == {"converted": True, "order_amount": 30.0}
