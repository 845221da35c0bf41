"""Every endpoint of the HTTP contract over real HTTP: happy paths, auth, scopes, feedback, scripts.

One server for the module (uvicorn in a thread, a SQLite file, the session's small bundle); the
tests share its database, so each one uses conversations and scripts of its own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.logs import JsonFormatter
from tests.builders import conversation_dict
from tests.server.api_fixtures import (
    LiveServer,
    assert_error,
    live_server,
    make_settings,
    synthetic,
)

PRICE = [("customer", "这件大衣有点贵，有没有优惠券，能便宜点吗")]


@pytest.fixture(scope="module")
def server(
    scoring_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(
        scoring_bundle_dir, tmp_path_factory.mktemp("api-endpoints"), auth_cache_seconds=1.0
    )
    with live_server(settings) as running:
        yield running


@pytest.fixture(scope="module")
def stored(server: LiveServer) -> list[dict[str, Any]]:
    """30 synthetic conversations plus two per test guide, stored by the admin."""
    records = [c.model_dump(mode="json", exclude_none=True) for c in synthetic(30)]
    weak = [
        ("customer", "这件有M码吗"),
        ("guide", "有"),
        ("customer", "多少钱"),
        ("guide", "自己看"),
    ]
    for guide, store in (("g-001", "s-01"), ("g-004", "s-01")):
        for i in range(2):
            records.append(
                conversation_dict(
                    f"mine-{guide}-{i}",
                    weak,
                    guide_id=guide,
                    store_id=store,
                    outcome={"converted": i == 0},
                )
            )
    response = server.client().post("/v1/conversations", json={"conversations": records})
    assert response.status_code == 200, response.text
    return records


def _suggest_body(cid: str, turns: list[tuple[str, str]] = PRICE, **fields: Any) -> dict[str, Any]:
    """A suggest body; the conversation has no guide id unless given (a guide's is its own)."""
    record = conversation_dict(cid, turns, **{"guide_id": None, **fields})
    return {"conversation": record, "k": 3}


# --------------------------------------------------------------------------- operations


def test_health_ready_docs_and_openapi_list_every_endpoint(server: LiveServer) -> None:
    anonymous = server.client(None)
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["database"] == "ok"
    assert "swagger" in anonymous.get("/docs").text.lower()
    paths = anonymous.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/suggest",
        "/v1/classify",
        "/v1/score",
        "/v1/conversations",
        "/v1/conversations/{conversation_id}",
        "/v1/guides",
        "/v1/guides/{guide_id}/scorecard",
        "/v1/feedback",
        "/v1/scripts",
        "/v1/scripts/{script_id}",
        "/v1/admin/reload",
        "/v1/me",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    assert anonymous.get("/ui/").status_code == 200


def test_request_id_is_echoed_or_made_and_logged_as_json(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.access")
    client = server.client(None)
    given = client.get("/healthz", headers={"X-Request-ID": "trace-42.a"})
    assert given.headers["x-request-id"] == "trace-42.a"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id!"})
    assert made.headers["x-request-id"] != "bad id!" and len(made.headers["x-request-id"]) == 32
    error = client.get("/v1/me", headers={"X-Request-ID": "trace-43"})
    assert assert_error(error, 401)["request_id"] == "trace-43"

    def logged_lines() -> dict[str, dict[str, Any]]:
        records = [r for r in caplog.records if r.name == "server.access"]
        lines = [json.loads(JsonFormatter().format(r)) for r in records]
        return {line["request_id"]: line for line in lines}

    # The line is written after the response is sent: give the server thread a moment.
    deadline = time.monotonic() + 5
    while "trace-43" not in (logged := logged_lines()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert logged["trace-42.a"]["route"] == "/healthz" and logged["trace-42.a"]["status"] == 200
    assert logged["trace-43"]["status"] == 401 and logged["trace-43"]["method"] == "GET"
    assert isinstance(logged["trace-43"]["ms"], float) and logged["trace-43"]["route"] == "/v1/me"


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (None, "missing API key"),
        ("Bearer cpk_not-a-real-key", "invalid or revoked API key"),
        ("Bearer", "no API key after 'Bearer'"),
        ("Basic dXNlcjpwYXNz", "must read 'Bearer <api key>', not a 'Basic'"),
    ],
)
def test_v1_needs_a_valid_key(server: LiveServer, header: str | None, fragment: str) -> None:
    headers = {"Authorization": header} if header is not None else {}
    client = server.client(None)
    for method, path in (("GET", "/v1/me"), ("GET", "/v1/conversations"), ("POST", "/v1/classify")):
        response = client.request(method, path, headers=headers, json={"texts": ["在吗"]})
        assert_error(response, 401, fragment)
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_revoked_key_stops_working_once_its_cache_entry_expires(server: LiveServer) -> None:
    from server.db import make_engine, make_session_factory, revoke_api_key

    server.add_key("short_lived", role="guide", guide_id="g-009")
    client = server.client("short_lived")
    me = client.get("/v1/me").json()
    assert me["role"] == "guide" and me["guide_id"] == "g-009"
    engine = make_engine(server.settings.database_url)
    with make_session_factory(engine).begin() as session:
        assert revoke_api_key(session, me["key_id"])
    revoked = time.monotonic()
    engine.dispose()
    # Trusted from the cache for at most COPILOT_AUTH_CACHE_SECONDS (1 s here), then refused.
    while client.get("/v1/me").status_code == 200:
        assert time.monotonic() - revoked < server.settings.auth_cache_seconds + 0.5
        time.sleep(0.05)
    assert_error(client.get("/v1/me"), 401, "invalid or revoked")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("admin", {"role": "admin", "guide_id": None, "stores": []}),
        ("sup_s01", {"role": "supervisor", "guide_id": None, "stores": ["s-01"]}),
        ("guide_g001", {"role": "guide", "guide_id": "g-001", "stores": []}),
    ],
)
def test_me_says_who_the_key_is(server: LiveServer, key: str, expected: dict[str, Any]) -> None:
    body = server.client(key).get("/v1/me").json()
    assert {k: body[k] for k in expected} == expected and isinstance(body["key_id"], int)


# --------------------------------------------------------------------------- models


def test_classify_and_score(server: LiveServer) -> None:
    client = server.client("guide_g001")
    classified = client.post("/v1/classify", json={"texts": ["这件有M码吗", "太贵了"]}).json()
    assert [r["text"] for r in classified["results"]] == ["这件有M码吗", "太贵了"]
    assert all(r["intent"] and r["actions"] for r in classified["results"])
    assert classified["bundle"]
    record = conversation_dict("score-only", [("customer", "在吗"), ("guide", "亲，在的～")])
    report = client.post("/v1/score", json={"conversation": record}).json()
    assert report["conversation_id"] == "score-only" and "dimensions" in report
    assert server.client().get("/v1/conversations/score-only").status_code == 404, "not stored"


def test_suggest_serves_ids_for_feedback_and_attributes_the_guide(server: LiveServer) -> None:
    body = _suggest_body("live-1", store_id="s-01")
    result = server.client("guide_g001").post("/v1/suggest", json=body).json()
    assert set(result) == {"intent", "actions", "suggestions", "flags", "bundle"}
    assert 1 <= len(result["suggestions"]) <= 3
    for s in result["suggestions"]:
        assert s["id"].startswith("sg_") and isinstance(s["script_id"], int)
        assert s["text"] and s["reason"]
    # attributed to g-001: its feedback is allowed, another guide's is not
    served = result["suggestions"][0]["id"]
    other = server.client("guide_g004").post(
        "/v1/feedback", json={"suggestion_id": served, "outcome": "accepted"}
    )
    assert_error(other, 403, "g-001")


@pytest.mark.parametrize(
    ("key", "fields", "fragment"),
    [
        ("guide_g001", {"guide_id": "g-004", "store_id": "s-01"}, "guide 'g-001'"),
        ("sup_s01", {"guide_id": "g-007", "store_id": "s-02"}, "covers stores s-01"),
    ],
)
def test_suggest_outside_scope_is_forbidden(
    server: LiveServer, key: str, fields: dict[str, str], fragment: str
) -> None:
    response = server.client(key).post("/v1/suggest", json=_suggest_body("x-scope", **fields))
    assert_error(response, 403, fragment)


# --------------------------------------------------------------------------- conversations


def test_posting_again_updates_and_the_total_is_unchanged(
    server: LiveServer, stored: list[dict[str, Any]]
) -> None:
    admin = server.client()
    total = admin.get("/v1/conversations").json()["total"]
    assert total == len(stored)
    again = dict(stored[0], messages=stored[0]["messages"][:2], labels=None)
    single = admin.post("/v1/conversations", json=again).json()
    assert single["stored"] == 1 and single["updated"] == 1 and single["created"] == 0
    assert single["items"][0] == {
        "conversation_id": again["conversation_id"],
        "overall": single["items"][0]["overall"],
        "status": "updated",
    }
    assert admin.get("/v1/conversations").json()["total"] == total
    detail = admin.get(f"/v1/conversations/{again['conversation_id']}").json()
    assert len(detail["conversation"]["messages"]) == 2
    new = conversation_dict("brand-new", guide_id="g-001", store_id="s-01")
    created = server.client("guide_g001").post("/v1/conversations", json=new).json()
    assert created["created"] == 1 and created["items"][0]["status"] == "created"
    assert admin.get("/v1/conversations").json()["total"] == total + 1


@pytest.mark.parametrize(
    ("key", "record", "fragment"),
    [
        ("guide_g001", conversation_dict("p-1", guide_id="g-004", store_id="s-01"), "g-001"),
        ("sup_s01", conversation_dict("p-2", guide_id="g-007", store_id="s-02"), "s-01"),
        ("sup_s01", conversation_dict("p-3", guide_id="g-001", store_id=None), "store None"),
        # the id is stored under another guide: a guide cannot take it over
        (
            "guide_g004",
            conversation_dict("mine-g-001-0", guide_id="g-004", store_id="s-01"),
            "stored",
        ),
    ],
)
def test_storing_outside_scope_is_forbidden(
    server: LiveServer,
    stored: list[dict[str, Any]],
    key: str,
    record: dict[str, Any],
    fragment: str,
) -> None:
    response = server.client(key).post("/v1/conversations", json={"conversations": [record]})
    assert_error(response, 403, fragment)


def test_list_filters_sort_and_pages(server: LiveServer, stored: list[dict[str, Any]]) -> None:
    admin = server.client()
    everything = admin.get("/v1/conversations", params={"limit": 200}).json()
    items = everything["items"]
    assert everything["total"] == len(items) >= len(stored)
    by_overall = admin.get("/v1/conversations", params={"sort": "-overall", "limit": 200}).json()
    scores = [i["overall"] for i in by_overall["items"] if i["overall"] is not None]
    assert scores == sorted(scores, reverse=True)
    page = admin.get("/v1/conversations", params={"limit": 5, "offset": 5}).json()
    assert page["limit"] == 5 and page["offset"] == 5 and page["items"] == items[5:10]
    s01 = admin.get("/v1/conversations", params={"store_id": "s-01", "limit": 200}).json()
    assert s01["total"] == sum(i["store_id"] == "s-01" for i in items) > 0
    mine = admin.get("/v1/conversations", params={"guide_id": "g-004"}).json()
    assert {i["guide_id"] for i in mine["items"]} == {"g-004"}
    low = admin.get("/v1/conversations", params={"max_score": 60, "limit": 200}).json()
    assert all(i["overall"] <= 60 for i in low["items"])
    high = admin.get("/v1/conversations", params={"min_score": 60, "limit": 200}).json()
    assert low["total"] + high["total"] >= everything["total"] - sum(
        i["overall"] is None for i in items
    )
    flagged = [i for i in items if i["flags"]]
    if flagged:
        rule = flagged[0]["flags"][0]
        hits = admin.get("/v1/conversations", params={"flag": rule, "limit": 200}).json()
        assert hits["total"] == sum(rule in i["flags"] for i in items)
    dated = sorted(i["started_at"] for i in items if i["started_at"])
    since = dated[len(dated) // 2][:10]
    later = admin.get("/v1/conversations", params={"since": since, "limit": 200}).json()
    assert 0 < later["total"] < everything["total"]
    assert all(i["started_at"][:10] >= since for i in later["items"])
    until = admin.get("/v1/conversations", params={"until": since, "limit": 200}).json()
    assert all(i["started_at"][:10] <= since for i in until["items"])


def test_list_items_carry_the_customers_last_words_and_product(server: LiveServer) -> None:
    admin = server.client()
    turns = [
        ("customer", "这款羽绒服有黑色吗"),
        ("guide", "有的亲，黑色M码有货"),
        ("customer", "那我考虑下"),
        ("guide", "好的，有需要随时找我"),
    ]
    record = conversation_dict("words-1", turns, guide_id="g-words", store_id="s-01")
    assert admin.post("/v1/conversations", json=record).status_code == 200
    silent = conversation_dict("words-2", [("guide", "亲，新款卫衣到了")], guide_id="g-words")
    assert admin.post("/v1/conversations", json=silent).status_code == 200
    page = admin.get("/v1/conversations", params={"guide_id": "g-words"})
    assert page.status_code == 200
    items = {i["conversation_id"]: i for i in page.json()["items"]}
    assert (items["words-1"]["last_customer_text"], items["words-1"]["product"]) == (
        "那我考虑下",
        "羽绒服",
    )
    # Without the customer's words, the product is the one the guide talked about.
    assert (items["words-2"]["last_customer_text"], items["words-2"]["product"]) == (None, "卫衣")
    schema = admin.get("/openapi.json").json()["components"]["schemas"]["ConversationSummary"]
    assert {"last_customer_text", "product"} <= set(schema["properties"])


@pytest.mark.parametrize(
    ("key", "visible"),
    [
        ("guide_g001", lambda i: i["guide_id"] == "g-001"),
        ("sup_s01", lambda i: i["store_id"] == "s-01"),
    ],
)
def test_each_key_lists_only_its_scope(
    server: LiveServer, stored: list[dict[str, Any]], key: str, visible: Any
) -> None:
    everything = server.client().get("/v1/conversations", params={"limit": 200}).json()["items"]
    listed = server.client(key).get("/v1/conversations", params={"limit": 200}).json()
    assert listed["total"] == sum(1 for i in everything if visible(i)) > 0
    assert all(visible(i) for i in listed["items"])


@pytest.mark.parametrize(
    ("key", "params", "fragment"),
    [
        ("guide_g001", {"guide_id": "g-004"}, "only see guide 'g-001'"),
        ("sup_s01", {"store_id": "s-02"}, "covers stores s-01"),
    ],
)
def test_listing_outside_scope_is_forbidden(
    server: LiveServer, key: str, params: dict[str, str], fragment: str
) -> None:
    assert_error(server.client(key).get("/v1/conversations", params=params), 403, fragment)


def test_conversation_detail_has_report_and_coaching(
    server: LiveServer, stored: list[dict[str, Any]]
) -> None:
    detail = server.client("guide_g001").get("/v1/conversations/mine-g-001-0")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["conversation"]["conversation_id"] == "mine-g-001-0"
    assert body["report"]["conversation_id"] == "mine-g-001-0" and body["report"]["dimensions"]
    assert body["coaching"], "the curt replies are weak"
    for item in body["coaching"]:
        assert body["conversation"]["messages"][item["message_index"]]["role"] == "guide"
        assert item["points"] < 0 and item["reason"]
        assert item["suggestion"] is None or item["suggestion"]["text"]
    assert_error(server.client().get("/v1/conversations/nope"), 404, "no conversation 'nope'")


@pytest.mark.parametrize(
    ("key", "fragment"),
    [("guide_g004", "only see guide 'g-004'"), ("sup_s02", "covers stores s-02")],
)
def test_reading_another_scope_is_forbidden(
    server: LiveServer, stored: list[dict[str, Any]], key: str, fragment: str
) -> None:
    response = server.client(key).get("/v1/conversations/mine-g-001-0")
    assert_error(response, 403, fragment)


# --------------------------------------------------------------------------- guides


def test_leaderboard_by_role(server: LiveServer, stored: list[dict[str, Any]]) -> None:
    every = server.client().get("/v1/guides").json()["items"]
    assert {"g-001", "g-004"} <= {g["guide_id"] for g in every}
    ranks = [g["rank"] for g in every if g["rank"]]
    assert ranks == sorted(ranks) and ranks[0] == 1
    first = every[0]
    assert set(first) == {
        "rank",
        "guide_id",
        "stores",
        "n",
        "overall",
        "dimensions",
        "conversion_rate",
        "flags",
        "acceptance_rate",
        "execution",
    }
    assert set(first["execution"]) == {"followups", "tasks"}
    mine = server.client("sup_s01").get("/v1/guides").json()["items"]
    assert mine and all(g["stores"] == ["s-01"] for g in mine)
    only = server.client().get("/v1/guides", params={"store_id": "s-02"}).json()["items"]
    assert only and all("s-02" in g["stores"] for g in only)
    assert_error(server.client("guide_g001").get("/v1/guides"), 403, "needs role")
    assert_error(
        server.client("sup_s01").get("/v1/guides", params={"store_id": "s-02"}), 403, "s-01"
    )


def test_scorecard_by_role(server: LiveServer, stored: list[dict[str, Any]]) -> None:
    card = server.client("guide_g001").get("/v1/guides/g-001/scorecard").json()
    assert card["id"] == "g-001" and card["n"] >= 2 and card["period"] == "week"
    assert set(card["acceptance"]) >= {"shown", "accepted", "edited", "rejected", "acceptance_rate"}
    assert card["worst"] and "dimensions" in card
    daily = server.client("sup_s01").get("/v1/guides/g-001/scorecard", params={"period": "day"})
    assert daily.json()["period"] == "day"
    assert_error(server.client("guide_g001").get("/v1/guides/g-004/scorecard"), 403, "g-001")
    assert_error(server.client("sup_s02").get("/v1/guides/g-001/scorecard"), 403, "s-02")
    assert_error(server.client().get("/v1/guides/g-999/scorecard"), 404, "g-999")
    bad = server.client().get("/v1/guides/g-001/scorecard", params={"period": "year"})
    assert_error(bad, 422, "period")


# --------------------------------------------------------------------------- feedback


def test_feedback_outcomes_and_errors(server: LiveServer) -> None:
    guide = server.client("guide_g001")
    served = guide.post("/v1/suggest", json=_suggest_body("fb-1", store_id="s-01")).json()
    ids = [s["id"] for s in served["suggestions"]]
    assert len(ids) >= 2
    accepted = guide.post("/v1/feedback", json={"suggestion_id": ids[0], "outcome": "accepted"})
    assert accepted.status_code == 201
    assert accepted.json() == {"suggestion_id": ids[0], "outcome": "accepted"}
    edited = {"suggestion_id": ids[1], "outcome": "edited", "final_text": "亲，今天下单送运费险哦"}
    assert guide.post("/v1/feedback", json=edited).status_code == 201
    no_text = guide.post("/v1/feedback", json={"suggestion_id": ids[1], "outcome": "edited"})
    assert_error(no_text, 422, "needs final_text")
    unknown = guide.post("/v1/feedback", json={"suggestion_id": "sg_nope", "outcome": "rejected"})
    assert_error(unknown, 404, "sg_nope")
    wrong = guide.post("/v1/feedback", json={"suggestion_id": ids[0], "outcome": "liked"})
    assert_error(wrong, 422, "outcome")
    metrics = server.client(None).get("/metrics").text
    assert 'feedback_total{outcome="accepted"} ' in metrics
    assert 'feedback_total{outcome="edited"} 1.0' in metrics


def test_rejections_sink_a_script_and_acceptance_shows_to_supervisors(
    server: LiveServer, stored: list[dict[str, Any]]
) -> None:
    guide = server.client("guide_g001")
    body = _suggest_body("fb-rank", [("customer", "你们家发什么快递，几天能到")], store_id="s-01")
    first = guide.post("/v1/suggest", json=body).json()["suggestions"][0]
    target, before = first["script_id"], first["score"]
    rejected = 0
    for _ in range(25):
        served = guide.post("/v1/suggest", json=body).json()["suggestions"]
        hit = next((s for s in served if s["script_id"] == target), None)
        if hit is None:
            break
        response = guide.post(
            "/v1/feedback", json={"suggestion_id": hit["id"], "outcome": "rejected"}
        )
        assert response.status_code == 201
        rejected += 1
    assert rejected >= 1
    after = guide.post("/v1/suggest", json=body).json()["suggestions"]
    still = [s for s in after if s["script_id"] == target]
    assert not still or still[0]["score"] < before - 0.05, (before, still)
    # a script guides accept: its rate shows in /v1/scripts and the guide's in /v1/guides
    liked = next(s for s in after if s["script_id"] != target)
    ok = guide.post("/v1/feedback", json={"suggestion_id": liked["id"], "outcome": "accepted"})
    assert ok.status_code == 201
    supervisor = server.client("sup_s01")
    scripts = supervisor.get("/v1/scripts", params={"sort": "-acceptance", "limit": 200}).json()
    rates = {s["script_id"]: s for s in scripts["items"]}
    assert rates[target]["acceptance_rate"] == 0.0 and rates[target]["shown"] >= rejected
    assert rates[liked["script_id"]]["acceptance_rate"] == 1.0
    assert scripts["items"][0]["acceptance_rate"] == 1.0, "sorted by acceptance"
    guides = {g["guide_id"]: g for g in supervisor.get("/v1/guides").json()["items"]}
    assert (
        guides["g-001"]["acceptance_rate"] is not None and guides["g-001"]["acceptance_rate"] < 0.5
    )
    card = guide.get("/v1/guides/g-001/scorecard").json()
    assert card["acceptance"]["rejected"] >= rejected


# --------------------------------------------------------------------------- scripts


def test_scripts_list_filters_and_sorts(server: LiveServer) -> None:
    client = server.client("guide_g001")
    page = client.get("/v1/scripts", params={"limit": 5}).json()
    assert page["total"] > 5 and len(page["items"]) == 5
    lifts = [s["lift"] for s in page["items"]]
    assert lifts == sorted(lifts, reverse=True)
    action = page["items"][0]["action"]
    same = client.get("/v1/scripts", params={"action": action, "limit": 200}).json()
    assert same["total"] >= 1 and all(s["action"] == action for s in same["items"])
    by_n = client.get("/v1/scripts", params={"sort": "-n", "limit": 10}).json()["items"]
    assert [s["n"] for s in by_n] == sorted((s["n"] for s in by_n), reverse=True)
    needle = page["items"][0]["text"][:4]
    found = client.get("/v1/scripts", params={"q": needle, "limit": 200}).json()
    assert found["total"] >= 1 and all(needle in s["text"] for s in found["items"])
    intent = page["items"][0]["intent"]
    assert all(
        s["intent"] == intent
        for s in client.get("/v1/scripts", params={"intent": intent}).json()["items"]
    )


def test_scripts_sort_by_the_lower_bound_of_lift(server: LiveServer) -> None:
    # A script used once can have the highest lift; its lower bound is what holds evidence.
    client = server.client("guide_g001")
    everything = client.get("/v1/scripts", params={"limit": 200}).json()["items"]
    assert all(s["lift_lower"] <= s["lift"] for s in everything)
    by_lower = client.get("/v1/scripts", params={"sort": "-lift_lower", "limit": 20}).json()
    lowers = [s["lift_lower"] for s in by_lower["items"]]
    assert lowers == sorted(lowers, reverse=True)
    once = [s for s in everything if s["n"] == 1]
    if once:
        assert max(s["lift_lower"] for s in once) < lowers[0]


def test_pin_leads_ban_removes_and_delete_clears(server: LiveServer) -> None:
    guide, supervisor = server.client("guide_g001"), server.client("sup_s01")
    body = _suggest_body("pins", [("customer", "这件有M码吗，我平时穿M")], store_id="s-01")
    first = guide.post("/v1/suggest", json=body).json()["suggestions"]
    assert len(first) >= 2
    banned, pinned = first[0]["script_id"], first[1]["script_id"]
    ban = supervisor.post("/v1/scripts", json={"script_id": banned, "state": "banned"})
    assert ban.status_code == 200 and ban.json()["state"] == "banned"
    pin = supervisor.post("/v1/scripts", json={"script_id": pinned, "state": "pinned"})
    assert pin.json()["state"] == "pinned"
    try:
        now = guide.post("/v1/suggest", json=body).json()["suggestions"]
        assert now[0]["script_id"] == pinned and "置顶" in now[0]["reason"]
        assert banned not in [s["script_id"] for s in now]
        in_store = {"state": "banned", "store_id": "s-01"}
        states = guide.get("/v1/scripts", params=in_store).json()["items"]
        assert [s["script_id"] for s in states] == [banned]
    finally:
        for sid in (banned, pinned):
            cleared = supervisor.delete(f"/v1/scripts/{sid}")
            assert cleared.status_code == 200 and cleared.json()["state"] is None
    again = guide.post("/v1/suggest", json=body).json()["suggestions"]
    assert banned in [s["script_id"] for s in again]


def test_a_supervisors_pins_and_bans_hold_in_its_stores_and_an_admins_in_every_store(
    server: LiveServer,
) -> None:
    guide_a, guide_b = server.client("guide_g001"), server.client("guide_g004")
    supervisor_a, supervisor_b = server.client("sup_s01"), server.client("sup_s02")
    admin = server.client()
    turns = [("customer", "这件有M码吗，我平时穿M")]
    in_a = _suggest_body("scoped-a", turns, store_id="s-01")
    in_b = _suggest_body("scoped-b", turns, store_id="s-02")  # g-004 helping out in s-02

    def served(client: httpx.Client, body: dict[str, Any]) -> list[tuple[int, str]]:
        suggestions = client.post("/v1/suggest", json=body).json()["suggestions"]
        return [(s["script_id"], s["reason"]) for s in suggestions]

    def listed(client: httpx.Client, **params: str) -> list[int]:
        items = client.get("/v1/scripts", params=params).json()["items"]
        return [s["script_id"] for s in items]

    before = served(guide_b, in_b)
    assert len(before) >= 3 and served(guide_a, in_a) == before
    banned, pinned = before[0][0], before[-1][0]
    try:
        ban = supervisor_a.post("/v1/scripts", json={"script_id": banned, "state": "banned"})
        pin = supervisor_a.post("/v1/scripts", json={"script_id": pinned, "state": "pinned"})
        assert (ban.json()["state"], pin.json()["state"]) == ("banned", "pinned")
        # store A: the pin leads, the ban is gone; store B: exactly as before
        now_a = served(guide_a, in_a)
        assert now_a[0][0] == pinned and "置顶" in now_a[0][1]
        assert banned not in [sid for sid, _ in now_a]
        assert served(guide_b, in_b) == before
        assert listed(supervisor_a, state="banned") == [banned]
        assert listed(supervisor_b, state="banned") == []
        assert listed(guide_a, state="pinned", store_id="s-01") == [pinned]
        assert listed(guide_a, state="pinned") == []  # not pinned in every store
        outside = supervisor_b.get("/v1/scripts", params={"store_id": "s-01"})
        assert_error(outside, 403, "covers stores s-02 only", "'s-01'")
        # supervisor B clearing the script in its stores leaves store A's ban
        assert supervisor_b.delete(f"/v1/scripts/{banned}").json()["state"] is None
        assert banned not in [sid for sid, _ in served(guide_a, in_a)]

        # an admin's pin and ban hold in every store, over what store A had set
        admin.post("/v1/scripts", json={"script_id": pinned, "state": "pinned"})
        admin.post("/v1/scripts", json={"script_id": banned, "state": "banned"})
        for guide, body in ((guide_a, in_a), (guide_b, in_b)):
            now = served(guide, body)
            assert now[0][0] == pinned and "置顶" in now[0][1]
            assert banned not in [sid for sid, _ in now]
        assert listed(supervisor_b, state="pinned") == [pinned]
        refused = supervisor_b.post("/v1/scripts", json={"script_id": banned, "state": "pinned"})
        assert_error(refused, 403, f"script {banned} is banned in every store", "ask an admin")
    finally:
        for sid in (banned, pinned):
            assert admin.delete(f"/v1/scripts/{sid}").json()["state"] is None
    assert served(guide_a, in_a) == before and served(guide_b, in_b) == before


def test_script_changes_need_a_supervisor_and_a_real_script(server: LiveServer) -> None:
    guide = server.client("guide_g001")
    assert_error(guide.post("/v1/scripts", json={"script_id": 0, "state": "pinned"}), 403, "role")
    assert_error(guide.delete("/v1/scripts/0"), 403, "role")
    missing = server.client().post("/v1/scripts", json={"script_id": 10**6, "state": "banned"})
    assert_error(missing, 404, "no script 1000000")
    bad_state = server.client().post("/v1/scripts", json={"script_id": 0, "state": "boosted"})
    assert_error(bad_state, 422, "state")


@pytest.mark.parametrize("key", ["guide_g001", "sup_s01"])
def test_only_an_admin_reloads(server: LiveServer, key: str) -> None:
    assert_error(server.client(key).post("/v1/admin/reload"), 403, "needs role 'admin'")


def test_metrics_expose_route_histograms_and_counters(server: LiveServer) -> None:
    client = server.client("guide_g001")
    served = client.post("/v1/suggest", json=_suggest_body("metrics", store_id="s-01")).json()
    client.get("/v1/conversations/some-id")
    anonymous = server.client(None)
    anonymous.get("/docs")
    anonymous.get("/not/a/route/42")
    text = anonymous.get("/metrics").text
    buckets = [
        line
        for line in text.splitlines()
        if line.startswith("http_request_duration_seconds_bucket{")
    ]
    assert any(
        'method="POST"' in b and 'route="/v1/suggest"' in b and 'status="200"' in b for b in buckets
    )
    assert 'route="/v1/conversations/{conversation_id}"' in text, "templates, not raw paths"
    assert "some-id" not in text and "/not/a/route" not in text
    assert 'route="/docs"' in text and 'route="<unmatched>",status="404"' in text
    count = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("suggestions_served_total ")
    )
    assert count >= len(served["suggestions"]) > 0
    assert "bundle_info{bundle=" in text


def test_post_conversations_same_new_id_at_once_never_fails(server: LiveServer) -> None:
    """Two requests creating one new id at the same moment: both succeed, one row is kept."""
    from concurrent.futures import ThreadPoolExecutor

    records = [c.model_dump(mode="json", exclude_none=True) for c in synthetic(8, seed=77)]
    clients = [server.new_client() for _ in range(4)]
    try:
        for record in records:
            with ThreadPoolExecutor(4) as pool:
                posts = [pool.submit(c.post, "/v1/conversations", json=record) for c in clients]
                statuses = [p.result().status_code for p in posts]
            assert statuses == [200] * 4, statuses
    finally:
        for client in clients:
            client.close()
    client = server.client()
    for record in records:
        got = client.get(f"/v1/conversations/{record['conversation_id']}")
        assert got.status_code == 200
    ids = {r["conversation_id"] for r in records}
    total = client.get("/v1/conversations", params={"limit": 200}).json()
    assert sum(item["conversation_id"] in ids for item in total["items"]) <= len(ids)
