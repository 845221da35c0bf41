"""``/v1/customers``, ``/v1/followups`` and ``/v1/tasks`` over real HTTP, on SQLite and on
PostgreSQL: profiles with the message behind each fact, the day's queue per role, marking
entries done, snoozed or dismissed, customers leaving the queue when they pay or a guide writes,
and tasks with their targets' execution per guide and store.

One server per backend for the module; each test uses customers of its own, and messages are
timed relative to now, since the queue an entry is marked in is today's (China time).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from copilot.followups import DEFAULT_RULES
from copilot.schema import CHINA_TZ
from server.settings import Settings
from tests.server.api_fixtures import (
    LiveServer,
    assert_error,
    empty_database,
    live_server,
    make_settings,
)

NOW = datetime.now(CHINA_TZ).replace(microsecond=0)
TODAY = NOW.date()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest,
    scoring_bundle_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"api-crm-{request.param}")
    admin = functools.partial(request.getfixturevalue, "postgres_admin")
    with empty_database(request.param, tmp, admin) as url:
        settings = Settings(bundle_dir=scoring_bundle_dir, data_dir=tmp, database_url=url)
        with live_server(settings) as running:
            running.add_key("guide_g009", role="guide", guide_id="g-009")  # works in s-02
            yield running


def _ago(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).isoformat()


def _chat(
    server: LiveServer,
    cid: str,
    customer: str,
    turns: list[tuple[str, str, float]],
    *,
    guide: str = "g-001",
    store: str = "s-01",
) -> None:
    """Store a conversation of ``customer``: ``(role, text, hours ago)`` per message."""
    record = {
        "conversation_id": cid,
        "customer_id": customer,
        "guide_id": guide,
        "store_id": store,
        "messages": [{"role": r, "text": t, "ts": _ago(h)} for r, t, h in turns],
    }
    response = server.client().post("/v1/conversations", json=record)
    assert response.status_code == 200, response.text


def _queue(server: LiveServer, key: str = "admin", **params: Any) -> dict[str, dict[str, Any]]:
    """The queue the key sees: customer id -> entry."""
    response = server.client(key).get("/v1/followups", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return {item["customer_id"]: item for item in body["items"]}


def _mark(server: LiveServer, entry_id: str, key: str = "admin", **body: Any) -> Any:
    return server.client(key).post(f"/v1/followups/{entry_id}", json=body)


def _ask(server: LiveServer, customer: str, *, guide: str = "g-001", store: str = "s-01") -> str:
    """A customer whose question of an hour ago nobody answered; returns the entry id."""
    _chat(
        server,
        f"c-{customer}",
        customer,
        [("customer", "这件有M码吗？", 1)],
        guide=guide,
        store=store,
    )
    return str(_queue(server)[customer]["id"])


def test_openapi_lists_the_routes(server: LiveServer) -> None:
    paths = server.client(None).get("/openapi.json").json()["paths"]
    assert set(paths["/v1/customers/{customer_id}"]) == {"get"}
    assert set(paths["/v1/followups"]) == {"get"}
    assert set(paths["/v1/followups/{followup_id}"]) == {"post"}
    assert set(paths["/v1/tasks"]) == {"get", "post"}
    assert set(paths["/v1/tasks/{task_id}"]) == {"get"}


# --------------------------------------------------------------------------- profiles


def test_a_profile_cites_the_message_of_each_fact(server: LiveServer) -> None:
    _chat(
        server,
        "prof-1",
        "u-prof",
        [
            ("customer", "有没有羊绒大衣？", 50),
            ("guide", "有的亲，您平时穿什么码？", 49.9),
            ("customer", "我身高165 体重110斤，平时穿M", 49.8),
        ],
    )
    order = {"customer_id": "u-prof", "paid_at": _ago(49), "amount": 899.0, "product": "大衣"}
    assert server.client().post("/v1/orders", json={**order, "order_id": "prof-o1"}).is_success
    body = server.client("guide_g001").get("/v1/customers/u-prof").json()
    facts = {f["type"]: f for f in body["facts"]}
    assert {k: facts[k]["value"] for k in ("height_cm", "weight_kg", "size", "product")} == {
        "height_cm": 165,
        "weight_kg": 55.0,
        "size": "M",
        "product": "大衣",
    }
    size = facts["size"]
    assert (size["conversation_id"], size["message_index"]) == ("prof-1", 2)
    assert size["text"] == "我身高165 体重110斤，平时穿M"
    assert datetime.fromisoformat(size["at"]) == NOW - timedelta(hours=49.8)
    assert body["stage"] == "bought" and body["conversations"] == ["prof-1"]
    assert [(o["order_id"], o["amount"]) for o in body["orders"]] == [("prof-o1", 899.0)]
    assert datetime.fromisoformat(body["last_contact"]) == NOW - timedelta(hours=49.8)


def test_a_profile_is_built_from_the_conversations_the_key_may_see(server: LiveServer) -> None:
    _chat(server, "scope-1", "u-scope", [("customer", "平时穿L码", 30)])
    _chat(server, "scope-2", "u-scope", [("customer", "鞋子37码", 20)], guide="g-004")

    def conversations(key: str) -> list[str]:
        response = server.client(key).get("/v1/customers/u-scope")
        assert response.status_code == 200, response.text
        return list(response.json()["conversations"])

    assert conversations("admin") == ["scope-1", "scope-2"]
    assert conversations("sup_s01") == ["scope-1", "scope-2"]
    assert conversations("guide_g001") == ["scope-1"]
    assert conversations("guide_g004") == ["scope-2"]
    for key in ("sup_s02", "guide_g009"):
        response = server.client(key).get("/v1/customers/u-scope")
        assert_error(response, 404, "no stored conversation of customer 'u-scope'")
    assert_error(server.client().get("/v1/customers/u-nobody"), 404, "'u-nobody'")


# --------------------------------------------------------------------------- the queue


def test_each_role_sees_its_own_customers_in_the_queue(server: LiveServer) -> None:
    _ask(server, "u-q1")
    _ask(server, "u-q2", guide="g-004")
    _ask(server, "u-q3", guide="g-009", store="s-02")
    mine = {"u-q1", "u-q2", "u-q3"}

    def seen(key: str, **params: Any) -> set[str]:
        return set(_queue(server, key, **params)) & mine

    assert seen("admin") == mine
    assert seen("sup_s01") == {"u-q1", "u-q2"}
    assert seen("sup_s02") == {"u-q3"}
    assert seen("guide_g001") == {"u-q1"}
    assert seen("guide_g004") == {"u-q2"}
    assert seen("admin", guide_id="g-004") == {"u-q2"}
    assert seen("admin", store_id="s-02") == {"u-q3"}
    entry = _queue(server, "guide_g001")["u-q1"]
    assert entry["reason"] == "unanswered" and entry["guide_id"] == "g-001"
    assert entry["trigger"]["text"] == "这件有M码吗？" and entry["message"]
    denied = server.client("guide_g001").get("/v1/followups", params={"guide_id": "g-004"})
    assert_error(denied, 403, "may only see guide 'g-001'")
    denied = server.client("sup_s01").get("/v1/followups", params={"store_id": "s-02"})
    assert_error(denied, 403, "covers stores s-01 only")


def test_the_queue_reads_the_intents_the_bundle_gave_when_the_chat_was_stored(
    server: LiveServer,
) -> None:
    # 「容我三思」 has none of the rules' words for hesitating; the bundle's classifier knows it.
    _chat(
        server,
        "c-intent",
        "u-intent",
        [
            ("customer", "这件大衣有黑色吗", 30),
            ("guide", "有的亲", 29.9),
            ("customer", "容我三思！！", 29.8),
            ("guide", "好的", 29.7),
        ],
    )
    entry = _queue(server)["u-intent"]
    assert entry["reason"] == "hesitated" and entry["trigger"]["text"] == "容我三思！！"


def test_the_queue_of_another_day(server: LiveServer) -> None:
    _chat(server, "day-1", "u-day", [("customer", "太贵了，我再考虑考虑", 48)])
    said = (NOW - timedelta(hours=48)).date()
    assert "u-day" not in _queue(server, date=said.isoformat())  # hesitations wait a day
    entry = _queue(server, date=(said + timedelta(days=1)).isoformat())["u-day"]
    assert entry["reason"] == "hesitated" and entry["opens"] == str(said + timedelta(days=1))
    later = _queue(server, date=(said + timedelta(days=5)).isoformat())["u-day"]
    assert later["overdue"] is True


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("yesterday", "date: 'yesterday' is not a day"), ("1900-01-01", "1970 to 2100")],
)
def test_a_bad_day_is_refused(server: LiveServer, value: str, fragment: str) -> None:
    assert_error(server.client().get("/v1/followups", params={"date": value}), 422, fragment)


def test_a_payment_or_a_later_guide_message_takes_the_customer_out(server: LiveServer) -> None:
    hesitation = ("customer", "太贵了，我再考虑考虑", 40)
    _chat(server, "out-pay", "u-pay", [hesitation])
    _chat(server, "out-msg", "u-msg", [hesitation])
    assert {"u-pay", "u-msg"} <= set(_queue(server))
    order = {"customer_id": "u-pay", "paid_at": _ago(20), "amount": 199.0, "store_id": "s-01"}
    assert server.client().post("/v1/orders", json=order).is_success
    _chat(server, "out-msg", "u-msg", [hesitation, ("guide", "您好，还在考虑吗？", 20)])
    assert not {"u-pay", "u-msg"} & set(_queue(server))


def test_the_rules_file_is_a_setting(scoring_bundle_dir: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    text = DEFAULT_RULES.read_text("utf-8")
    rules.write_text(text.replace("不好意思久等了", "久等啦"), "utf-8")
    settings = make_settings(scoring_bundle_dir, tmp_path, followup_rules=rules)
    with live_server(settings) as running:
        _chat(running, "rules-1", "u-rules", [("customer", "这件有M码吗？", 1)])
        assert _queue(running)["u-rules"]["message"].startswith("久等啦")
        rules.write_text("rules: [", "utf-8")  # read once per process: still the good one
        assert "u-rules" in _queue(running)
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("within_days: 0", "within_days: -1"), "utf-8")
    settings = make_settings(scoring_bundle_dir, tmp_path, followup_rules=broken)
    with live_server(settings) as running:
        response = running.client().get("/v1/followups")
        assert_error(response, 503, "are not valid", "COPILOT_FOLLOWUP_RULES")


# --------------------------------------------------------------------------- marking entries


def test_done_leaves_the_queue_and_keeps_its_due_day(server: LiveServer) -> None:
    entry_id = _ask(server, "u-done")
    due = _queue(server)["u-done"]["due"]
    response = _mark(server, entry_id, "guide_g001", status="done")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": entry_id,
        "status": "done",
        "reason": None,
        "until": None,
        "customer_id": "u-done",
        "guide_id": "g-001",
        "store_id": "s-01",
        "due": due,
        "replaced": False,
    }
    assert "u-done" not in _queue(server)
    again = _mark(server, entry_id, "guide_g001", status="done")
    assert again.status_code == 200 and again.json()["replaced"] is True


def test_a_snoozed_entry_comes_back_on_its_day(server: LiveServer) -> None:
    entry_id = _ask(server, "u-snooze")
    until = TODAY + timedelta(days=2)
    response = _mark(server, entry_id, status="snoozed", until=until.isoformat())
    assert response.status_code == 200, response.text
    assert response.json()["until"] == until.isoformat()
    assert "u-snooze" not in _queue(server)
    assert "u-snooze" not in _queue(server, date=(until - timedelta(days=1)).isoformat())
    assert _queue(server, date=until.isoformat())["u-snooze"]["id"] == entry_id
    # Marked again while snoozed: the action is replaced.
    done = _mark(server, entry_id, "sup_s01", status="done")
    assert done.status_code == 200 and done.json()["replaced"] is True
    assert "u-snooze" not in _queue(server, date=until.isoformat())


def test_a_dismissed_entry_keeps_its_reason(server: LiveServer) -> None:
    entry_id = _ask(server, "u-dismiss")
    response = _mark(server, entry_id, status="dismissed", reason="顾客已到店购买")
    assert response.status_code == 200, response.text
    assert response.json()["reason"] == "顾客已到店购买"
    assert "u-dismiss" not in _queue(server)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"status": "dismissed"}, "status 'dismissed' needs a reason"),
        ({"status": "dismissed", "reason": "  "}, "needs a reason"),
        ({"status": "snoozed"}, "status 'snoozed' needs until"),
        ({"status": "snoozed", "until": TODAY.isoformat()}, "is not after today"),
        ({"status": "snoozed", "until": "next week"}, "until: input should be a valid date"),
        ({"status": "done", "until": "2030-01-01"}, "until is only for status 'snoozed'"),
        ({"status": "later"}, "status: input should be 'done', 'snoozed' or 'dismissed'"),
        ({"status": "done", "note": "x"}, "note: unknown field"),
        ({"status": "dismissed", "reason": 3}, "reason: input should be a valid string"),
    ],
)
def test_bad_actions_are_refused_with_the_field_named(
    server: LiveServer, body: dict[str, Any], fragment: str
) -> None:
    entry_id = _ask(server, "u-bad")
    assert_error(_mark(server, entry_id, **body), 422, fragment)
    assert "u-bad" in _queue(server)


@pytest.mark.parametrize("key", ["guide_g004", "sup_s02", "guide_g009"])
def test_only_an_entry_of_the_callers_queue_can_be_marked(server: LiveServer, key: str) -> None:
    entry_id = _ask(server, "u-other")
    response = _mark(server, entry_id, key, status="done")
    assert_error(response, 404, f"no follow-up '{entry_id}' in this API key's queue today")
    assert "u-other" in _queue(server)
    assert_error(_mark(server, "0123456789abcdef", status="done"), 404, "GET /v1/followups")


# --------------------------------------------------------------------------- tasks

SCRIPT = "亲，您上次看的羽绒服今天有满减活动，给您留了一件，要不要来试试？"


def _task(segment: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "title": "羽绒服回访",
        "variants": [SCRIPT, "您好，羽绒服现在有活动，方便来店里看看吗？"],
        "segment": segment,
        "starts": _ago(36),
        "deadline": (TODAY + timedelta(days=3)).isoformat(),
        **fields,
    }


def _create(server: LiveServer, body: dict[str, Any], key: str = "admin") -> dict[str, Any]:
    response = server.client(key).post("/v1/tasks", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def task_customers(server: LiveServer) -> None:
    """Three customers who asked about down jackets two days ago: g-001 sent the script (and
    the customer replied), g-004 wrote something else, g-009 (store s-02) nothing."""
    asked = ("customer", "这款羽绒服有黑色吗？", 48)
    _chat(
        server,
        "task-1",
        "u-t1",
        [asked, ("guide", SCRIPT, 24), ("customer", "好的，周末过去看看", 23)],
    )
    _chat(server, "task-2", "u-t2", [asked, ("guide", "收到，我去仓库找找", 24)], guide="g-004")
    _chat(server, "task-3", "u-t3", [asked], guide="g-009", store="s-02")


def _detail(server: LiveServer, task_id: str, key: str = "admin") -> dict[str, Any]:
    response = server.client(key).get(f"/v1/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _ids(server: LiveServer, key: str) -> list[str]:
    response = server.client(key).get("/v1/tasks")
    assert response.status_code == 200, response.text
    return [item["task_id"] for item in response.json()["items"]]


def test_a_tasks_progress_per_guide_and_store(server: LiveServer, task_customers: None) -> None:
    task = _create(server, _task({"asked_about": ["羽绒服"], "within_days": 30, "bought": False}))
    assert task["task_id"].startswith("tk_") and task["stores"] == []
    assert datetime.fromisoformat(task["deadline"]) == datetime.combine(
        TODAY + timedelta(days=4), datetime.min.time(), tzinfo=CHINA_TZ
    )
    detail = _detail(server, task["task_id"])
    targets = {t["customer_id"]: t for t in detail["targets"]}
    assert set(targets) == {"u-t1", "u-t2", "u-t3"}
    one = targets["u-t1"]
    assert one["executed"] and one["replied"] and not one["converted"]
    assert one["message"] == SCRIPT and one["similarity"] > 0.99
    assert datetime.fromisoformat(one["executed_at"]) == NOW - timedelta(hours=24)
    assert not targets["u-t2"]["executed"] and targets["u-t2"]["executed_at"] is None
    summary = detail["summary"]
    assert summary["overall"]["targeted"] == 3 and summary["overall"]["executed"] == 1
    assert summary["guides"]["g-001"]["execution_rate"] == 1.0
    assert summary["guides"]["g-004"]["execution_rate"] == 0.0
    assert summary["stores"]["s-01"]["targeted"] == 2 and summary["stores"]["s-02"]["executed"] == 0


def test_each_role_sees_its_own_targets(server: LiveServer, task_customers: None) -> None:
    task_id = _create(server, _task({"asked_about": ["羽绒服"]}))["task_id"]
    for key, expected in [
        ("guide_g001", ["u-t1"]),
        ("guide_g004", ["u-t2"]),
        ("sup_s01", ["u-t1", "u-t2"]),
        ("sup_s02", ["u-t3"]),
    ]:
        detail = _detail(server, task_id, key)
        assert sorted(t["customer_id"] for t in detail["targets"]) == expected, key
        assert detail["summary"]["overall"]["targeted"] == len(expected)
        assert task_id in _ids(server, key)


def test_a_supervisors_task_covers_its_stores(server: LiveServer, task_customers: None) -> None:
    task = _create(server, _task({"asked_about": ["羽绒服"]}), "sup_s01")
    assert task["stores"] == ["s-01"] and task["segment"]["stores"] == ["s-01"]
    detail = _detail(server, task["task_id"], "sup_s01")
    assert sorted(t["customer_id"] for t in detail["targets"]) == ["u-t1", "u-t2"]
    assert task["task_id"] not in _ids(server, "sup_s02")
    assert task["task_id"] not in _ids(server, "guide_g009")
    denied = server.client("sup_s02").get(f"/v1/tasks/{task['task_id']}")
    assert_error(denied, 403, "covers stores s-02 only")
    denied = server.client("guide_g009").get(f"/v1/tasks/{task['task_id']}")
    assert_error(denied, 403, "targets none of guide 'g-009'")
    response = server.client("sup_s01").post(
        "/v1/tasks", json=_task({"asked_about": ["羽绒服"], "stores": ["s-01", "s-02"]})
    )
    assert_error(response, 403, "names store 's-02'", "covers stores s-01 only")


def test_guides_may_not_create_tasks(server: LiveServer) -> None:
    response = server.client("guide_g001").post("/v1/tasks", json=_task({}))
    assert_error(response, 403, "role 'guide'")
    assert_error(server.client().get("/v1/tasks/tk_nothing"), 404, "no task 'tk_nothing'")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"variants": []}, "variants: list should have at least 1 item"),
        ({"variants": ["a"] * 6}, "variants: list should have at most 5 items"),
        ({"variants": [" "]}, "variants[0]: string should match pattern"),
        ({"title": ""}, "title: string should have at least 1 character"),
        ({"deadline": _ago(48)}, "is not after starts"),
        ({"segment": {"stages": ["vip"]}}, "segment.stages[0]: input should be 'new'"),
        ({"segment": {"within_days": "30"}}, "segment.within_days: input should be a valid"),
        ({"segment": {"spend": 3}}, "segment.spend: unknown field"),
        ({"starts": "soon"}, "starts: input should be a valid datetime"),
    ],
)
def test_bad_tasks_are_refused_with_the_field_named(
    server: LiveServer, change: dict[str, Any], fragment: str
) -> None:
    body = {**_task({}), **change}
    assert_error(server.client().post("/v1/tasks", json=body), 422, fragment)


def test_suggestions_know_what_the_customers_earlier_chats_said(server: LiveServer) -> None:
    from copilot.schema import Conversation
    from server.auth import Principal
    from server.customer_service import known_about
    from server.db import make_engine, make_session_factory

    _chat(
        server,
        "c-known-1",
        "u-known",
        [("customer", "我平时穿M，想看看羽绒服", 50), ("guide", "好的亲", 49.9)],
    )
    now = {
        "conversation_id": "c-known-2",
        "customer_id": "u-known",
        "guide_id": "g-001",
        "store_id": "s-01",
        "messages": [{"role": "customer", "text": "还有货吗", "ts": _ago(1)}],
    }
    response = server.client("guide_g001").post("/v1/suggest", json={"conversation": now, "k": 3})
    assert response.status_code == 200, response.text
    engine = make_engine(server.settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            guide = Principal(key_id=1, role="guide", guide_id="g-001", stores=frozenset())
            other = Principal(key_id=2, role="guide", guide_id="g-004", stores=frozenset())
            chat = Conversation.model_validate(now)
            assert known_about(session, guide, chat) == {"size": "M", "product": "羽绒服"}
            assert known_about(session, other, chat) == {}  # not that guide's customer
            assert known_about(session, guide, chat.model_copy(update={"customer_id": None})) == {}
    finally:
        engine.dispose()
