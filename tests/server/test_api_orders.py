"""``/v1/orders`` over real HTTP, on SQLite and on PostgreSQL: roles and scopes, idempotency,
attribution that updates the stored conversation (and the leaderboard), orders posted before
their conversation, and conversations that take an order over.

One server per backend for the module; each test uses customers and conversations of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from tests.builders import timed_conversation_dict
from tests.server.api_fixtures import LiveServer, assert_error, empty_database, live_server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest,
    scoring_bundle_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"api-orders-{request.param}")
    admin = functools.partial(request.getfixturevalue, "postgres_admin")
    with empty_database(request.param, tmp, admin) as url:
        settings = Settings(bundle_dir=scoring_bundle_dir, data_dir=tmp, database_url=url)
        with live_server(settings) as running:
            yield running


def _chat(
    server: LiveServer, cid: str, customer: str, *stamps: str, store: str = "s-01"
) -> dict[str, Any]:
    """Store a conversation of ``customer`` (guide g-001) with messages at ``stamps``."""
    record = timed_conversation_dict(
        cid, list(stamps), customer_id=customer, guide_id="g-001", store_id=store
    )
    response = server.client().post("/v1/conversations", json=record)
    assert response.status_code == 200, response.text
    return record


def _post(server: LiveServer, body: dict[str, Any], key: str = "admin") -> dict[str, Any]:
    response = server.client(key).post("/v1/orders", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _outcome(server: LiveServer, cid: str) -> tuple[bool | None, float | None]:
    """``(converted, order_amount)`` as the stored report says, checked against the list."""
    detail = server.client().get(f"/v1/conversations/{cid}").json()
    report = detail["report"]
    listed = server.client().get("/v1/conversations", params={"guide_id": "g-001", "limit": 200})
    (item,) = [i for i in listed.json()["items"] if i["conversation_id"] == cid]
    assert item["converted"] == report["converted"]
    assert detail["conversation"].get("outcome", {}).get("converted") == report["converted"]
    return report["converted"], report.get("order_amount")


def _order(customer: str, paid_at: str, amount: float = 100.0, **fields: Any) -> dict[str, Any]:
    return {"customer_id": customer, "paid_at": paid_at, "amount": amount, **fields}


def test_openapi_lists_the_order_routes(server: LiveServer) -> None:
    paths = server.client(None).get("/openapi.json").json()["paths"]
    assert set(paths["/v1/orders"]) == {"get", "post"}


# --------------------------------------------------------------------------- roles and scopes


def test_guides_may_not_post_or_list_orders(server: LiveServer) -> None:
    guide = server.client("guide_g001")
    order = _order("u-guide", "2026-03-08T12:00:00+08:00", store_id="s-01")
    assert_error(guide.post("/v1/orders", json=order), 403, "role 'guide'", "'supervisor'")
    assert_error(guide.get("/v1/orders"), 403, "role 'guide'")


@pytest.mark.parametrize(
    ("store", "fragments"),
    [
        (None, ["names no store", "s-01"]),
        ("s-02", ["belongs to store 's-02'", "covers stores s-01 only"]),
    ],
)
def test_a_supervisor_posts_orders_of_its_own_stores_only(
    server: LiveServer, store: str | None, fragments: list[str]
) -> None:
    order = _order("u-scope", "2026-03-08T12:00:00+08:00", order_id=f"scope-{store}")
    if store is not None:
        order["store_id"] = store
    assert_error(server.client("sup_s01").post("/v1/orders", json=order), 403, *fragments)
    listed = server.client().get("/v1/orders", params={"customer_id": "u-scope"}).json()
    assert listed["total"] == 0  # nothing was stored


def test_a_supervisor_cannot_take_over_another_stores_order(server: LiveServer) -> None:
    _post(server, _order("u-take", "2026-03-08T12:00:00+08:00", order_id="take-1", store_id="s-02"))
    again = _order("u-take", "2026-03-08T12:00:00+08:00", order_id="take-1", store_id="s-01")
    response = server.client("sup_s01").post("/v1/orders", json=again)
    assert_error(response, 403, "the stored order 'take-1'", "s-02")


def test_listing_orders_is_scoped(server: LiveServer) -> None:
    _post(
        server,
        {
            "orders": [
                _order("u-list", "2026-03-08T12:00:00+08:00", order_id="list-1", store_id="s-01"),
                _order("u-list", "2026-03-08T13:00:00+08:00", order_id="list-2", store_id="s-02"),
                _order("u-list", "2026-03-08T14:00:00+08:00", order_id="list-3"),
            ]
        },
    )

    def ids(key: str, **params: Any) -> list[str]:
        response = server.client(key).get("/v1/orders", params={"customer_id": "u-list", **params})
        assert response.status_code == 200, response.text
        return [item["order_id"] for item in response.json()["items"]]

    assert ids("admin") == ["list-3", "list-2", "list-1"]  # newest payment first
    assert ids("sup_s01") == ["list-1"]
    assert ids("sup_s02") == ["list-2"]
    assert ids("admin", attributed="false", until="2026-03-08T13:30:00+08:00") == [
        "list-2",
        "list-1",
    ]
    denied = server.client("sup_s02").get("/v1/orders", params={"store_id": "s-01"})
    assert_error(denied, 403, "covers stores s-02 only", "'s-01'")


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"customer_id": "u-1", "amount": 5}, "paid_at: field is required"),
        (_order("u-1", "yesterday"), "paid_at: input should be a valid datetime"),
        (_order("u-1", "2026-03-08"), "paid_at: a date without a time of day"),
        (_order("u-1", "2026-03-08T12:00:00", -1), "amount: input should be greater than"),
        ({**_order("u-1", "2026-03-08T12:00:00"), "price": 1}, "price: unknown field"),
        ({"orders": []}, "orders: list should have at least 1 item"),
        ({"orders": [{"customer_id": "u-1"}]}, "orders[0].paid_at: field is required"),
        (
            {"orders": [_order("u-1", "2026-03-08T12:00:00", order_id=str(i)) for i in range(501)]},
            "orders: list should have at most 500 items",
        ),
        (
            {"orders": [_order("u-1", "2026-03-08T12:00:00")] * 2},
            "occurs twice in the request",
        ),
        ([1, 2], "the request body must be a JSON object, not an array"),
    ],
)
def test_bad_orders_are_refused_with_the_field_named(
    server: LiveServer, body: Any, fragment: str
) -> None:
    assert_error(server.client().post("/v1/orders", json=body), 422, fragment)


# --------------------------------------------------------------------------- attribution


def test_an_order_converts_its_conversation_and_the_leaderboard_sees_it(
    server: LiveServer,
) -> None:
    _chat(server, "ord-a", "u-a", "2026-03-10T10:00:00+08:00", "2026-03-10T10:05:00+08:00")
    assert _outcome(server, "ord-a") == (None, None)
    before = _leaderboard_row(server)
    # paid 20 minutes after the last message, written in UTC
    result = _post(server, _order("u-a", "2026-03-10T02:25:00Z", 399.0, order_id="A-1"))
    assert result["stored"] == result["created"] == result["attributed"] == 1
    assert result["items"] == [
        {"order_id": "A-1", "status": "created", "conversation_id": "ord-a", "reason": None}
    ]
    assert result["conversations_updated"] == ["ord-a"]
    assert _outcome(server, "ord-a") == (True, 399.0)
    after = _leaderboard_row(server)
    assert after["conversion_rate"] is not None
    assert before["conversion_rate"] is None or after["conversion_rate"] > before["conversion_rate"]
    listed = server.client("sup_s01").get("/v1/orders", params={"customer_id": "u-a"}).json()
    assert listed["total"] == 0  # an order without a store is an admin's
    (item,) = server.client().get("/v1/orders", params={"customer_id": "u-a"}).json()["items"]
    assert item["conversation_id"] == "ord-a" and item["paid_at"].startswith("2026-03-10T10:25")


def _leaderboard_row(server: LiveServer) -> dict[str, Any]:
    rows = server.client("sup_s01").get("/v1/guides").json()["items"]
    (row,) = [r for r in rows if r["guide_id"] == "g-001"]
    return dict(row)


def test_reposting_an_order_replaces_it_and_never_duplicates(server: LiveServer) -> None:
    _chat(server, "ord-idem", "u-idem", "2026-03-10T10:00:00+08:00")
    first = _order("u-idem", "2026-03-10T11:00:00+08:00", 100.0, order_id="I-1", store_id="s-01")
    assert _post(server, first, key="sup_s01")["items"][0]["status"] == "created"
    again = _post(server, {**first, "amount": 120.0}, key="sup_s01")
    assert again["items"][0]["status"] == "updated" and again["updated"] == 1
    assert again["conversations_updated"] == ["ord-idem"]
    same = _post(server, {**first, "amount": 120.0}, key="sup_s01")
    assert same["conversations_updated"] == []  # nothing changed
    listed = server.client().get("/v1/orders", params={"customer_id": "u-idem"}).json()
    assert listed["total"] == 1 and listed["items"][0]["amount"] == 120.0
    assert _outcome(server, "ord-idem") == (True, 120.0)
    # an order without an id gets one from its fields: posting it twice stores it once
    anonymous = _order("u-idem", "2026-03-10T12:00:00+08:00", 30.0, store_id="s-01")
    ids = {_post(server, anonymous)["items"][0]["order_id"] for _ in range(2)}
    assert len(ids) == 1 and ids.pop().startswith("o_")
    assert _outcome(server, "ord-idem") == (True, 150.0)


def test_an_order_posted_before_its_conversation_is_attributed_when_it_arrives(
    server: LiveServer,
) -> None:
    result = _post(server, _order("u-early", "2026-03-12T15:00:00+08:00", 88.0, order_id="E-1"))
    assert result["items"][0]["conversation_id"] is None
    assert result["items"][0]["reason"] == "unknown_customer"
    _chat(server, "ord-early", "u-early", "2026-03-12T14:00:00+08:00", "2026-03-12T14:30:00+08:00")
    assert _outcome(server, "ord-early") == (True, 88.0)
    (item,) = server.client().get("/v1/orders", params={"customer_id": "u-early"}).json()["items"]
    assert item["conversation_id"] == "ord-early" and item["reason"] is None


def test_a_later_conversation_takes_the_order_over(server: LiveServer) -> None:
    _chat(server, "ord-first", "u-two", "2026-03-13T09:00:00+08:00")
    _post(server, _order("u-two", "2026-03-14T09:00:00+08:00", 50.0, order_id="T-1"))
    assert _outcome(server, "ord-first") == (True, 50.0)
    # a second conversation, also before the payment, arrives later: it gets the order
    _chat(server, "ord-second", "u-two", "2026-03-13T20:00:00+08:00")
    assert _outcome(server, "ord-second") == (True, 50.0)
    assert _outcome(server, "ord-first") == (False, None)
    # a conversation after the payment changes nothing
    _chat(server, "ord-after", "u-two", "2026-03-14T10:00:00+08:00")
    assert _outcome(server, "ord-after") == (None, None)
    assert _outcome(server, "ord-second") == (True, 50.0)


def test_reposting_a_conversation_keeps_or_loses_its_orders_by_the_rule(
    server: LiveServer,
) -> None:
    _chat(server, "ord-repost", "u-repost", "2026-03-15T09:00:00+08:00")
    _post(server, _order("u-repost", "2026-03-15T10:00:00+08:00", 70.0, order_id="R-1"))
    _chat(
        server, "ord-repost", "u-repost", "2026-03-15T09:00:00+08:00", "2026-03-15T09:30:00+08:00"
    )
    assert _outcome(server, "ord-repost") == (True, 70.0)  # the re-post's own outcome is overruled
    # re-posted with another customer: the order goes back to waiting
    _chat(server, "ord-repost", "u-someone-else", "2026-03-15T09:00:00+08:00")
    assert _outcome(server, "ord-repost") == (False, None)
    (item,) = server.client().get("/v1/orders", params={"customer_id": "u-repost"}).json()["items"]
    assert item["conversation_id"] is None and item["reason"] == "unknown_customer"


def test_orders_that_go_nowhere_say_why(server: LiveServer) -> None:
    _chat(server, "ord-why", "u-why", "2026-03-16T09:00:00+08:00", store="s-01")
    result = _post(
        server,
        {
            "orders": [
                _order("u-why", "2026-03-16T08:00:00+08:00", order_id="W-1"),
                _order("u-why", "2026-03-20T09:00:00+08:00", order_id="W-2"),
                _order("u-why", "2026-03-16T10:00:00+08:00", order_id="W-3", store_id="s-02"),
                _order("u-nobody", "2026-03-16T10:00:00+08:00", order_id="W-4"),
            ]
        },
    )
    assert [(i["conversation_id"], i["reason"]) for i in result["items"]] == [
        (None, "paid_before_chat"),
        (None, "outside_window"),
        (None, "other_store"),
        (None, "unknown_customer"),
    ]
    assert result["attributed"] == 0 and result["conversations_updated"] == []
    assert _outcome(server, "ord-why") == (None, None)  # no order went to it: left as posted


def test_moving_an_order_to_another_customer_unconverts_the_old_conversation(
    server: LiveServer,
) -> None:
    _chat(server, "ord-move-1", "u-move-1", "2026-03-17T09:00:00+08:00")
    _chat(server, "ord-move-2", "u-move-2", "2026-03-17T09:00:00+08:00")
    _post(server, _order("u-move-1", "2026-03-17T10:00:00+08:00", 10.0, order_id="M-1"))
    assert _outcome(server, "ord-move-1") == (True, 10.0)
    moved = _post(server, _order("u-move-2", "2026-03-17T10:00:00+08:00", 10.0, order_id="M-1"))
    assert moved["conversations_updated"] == ["ord-move-1", "ord-move-2"]
    assert _outcome(server, "ord-move-1") == (False, None)
    assert _outcome(server, "ord-move-2") == (True, 10.0)
