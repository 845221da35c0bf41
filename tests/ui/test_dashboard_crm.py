"""End-to-end tests of the dashboard's customer views: the profile beside a conversation, the
follow-up queue (跟进), tasks (任务), and execution on the leaderboards and scorecards.

The session's generated conversations are months old, so the follow-up queue and the task
use a few customers stored here with messages timed relative to now (module fixture), in the
supervisor's stores. What the page shows is checked against what the API says. Screenshots go
to ``test-artifacts/dashboard-*.png``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from copilot.schema import CHINA_TZ
from tests.ui.conftest import LiveServer, PageProbe
from tests.ui.test_dashboard import all_visible, assert_zh_cn_dates, screenshot, sign_in

expect = pytest.importorskip("playwright.sync_api").expect

NOW = datetime.now(CHINA_TZ).replace(microsecond=0)
TODAY = NOW.date()
SCRIPT = "亲，您上次问的卫衣今天到了新色，给您留了一件，方便的话来店里试试？"


def _post(server: LiveServer, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(
        f"{server.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {server.admin_key}"},
        timeout=60,
    )
    assert response.is_success, response.text
    return response.json()


def _chat(
    server: LiveServer, cid: str, customer: str, turns: list[tuple[str, str, float]], store: str
) -> None:
    """Store a conversation of the fixture's guide: ``(role, text, hours ago)`` per message."""
    messages = [
        {"role": role, "text": text, "ts": (NOW - timedelta(hours=hours)).isoformat()}
        for role, text, hours in turns
    ]
    record = {
        "conversation_id": cid,
        "customer_id": customer,
        "guide_id": server.guide_id,
        "store_id": store,
        "messages": messages,
    }
    _post(server, "/v1/conversations", {"conversations": [record]})


@pytest.fixture(scope="module")
def recent(live_server: LiveServer) -> LiveServer:
    """Customers of the last days: two unanswered questions (today's queue), one who told a lot
    about herself over two chats, and two who asked about 卫衣 before a task (one got the
    script and replied)."""
    store = live_server.get(f"/v1/guides/{live_server.guide_id}/scorecard")["related"][0]
    _chat(live_server, "ui-f1", "u-ui-f1", [("customer", "这件有M码吗？", 0.02)], store)
    _chat(live_server, "ui-f2", "u-ui-f2", [("customer", "今天能发货吗？", 0.02)], store)
    _chat(
        live_server,
        "ui-p1",
        "u-ui-rich",
        [
            ("customer", "我身高165 体重110斤，平时穿M", 30),
            ("guide", "好的亲，给您推荐这款羊绒大衣", 29.9),
            ("customer", "预算500以内，我是干皮", 29.8),
        ],
        store,
    )
    _chat(
        live_server,
        "ui-p2",
        "u-ui-rich",
        [
            ("customer", "给我老公买件羽绒服，喜欢黑色", 3),
            ("guide", "好的，黑色有货", 2.9),
            ("customer", "太贵了，等发工资再来", 2.8),
        ],
        store,
    )
    asked = ("customer", "这款卫衣有灰色吗？", 48)
    _chat(
        live_server,
        "ui-t1",
        "u-ui-t1",
        [asked, ("guide", SCRIPT, 24), ("customer", "好", 23)],
        store,
    )
    _chat(live_server, "ui-t2", "u-ui-t2", [asked, ("guide", "我看看库存", 24)], store)
    return live_server


# --------------------------------------------------------------------------- profile


def _groups(page: Any) -> dict[str, list[str]]:
    """The profile panel's fact groups: name -> the values shown."""
    out: dict[str, list[str]] = {}
    for group in page.get_by_test_id("fact-group").all():
        values = group.get_by_test_id("fact-value").all_inner_texts()
        out[str(group.get_attribute("data-group"))] = values
    return out


def test_dashboard_shows_the_customers_profile_beside_a_conversation(
    live_server: LiveServer, probe: PageProbe
) -> None:
    # The generated conversation whose customer the profile knows most about.
    best: tuple[int, str, dict[str, Any]] | None = None
    for item in all_visible(live_server)["items"]:
        if not item["conversation_id"].startswith("syn-"):
            continue
        cid = item["conversation_id"]
        customer = live_server.get(f"/v1/conversations/{cid}")["conversation"]["customer_id"]
        profile = live_server.get(f"/v1/customers/{customer}")
        if best is None or len(profile["facts"]) > best[0]:
            best = (len(profile["facts"]), cid, profile)
    assert best is not None and best[0] > 0, "the generated customers should state something"
    _, cid, profile = best
    page = sign_in(probe, live_server)
    page.goto(f"{live_server.url}/ui#/conversations/{cid}")
    panel = page.get_by_test_id("customer-panel")
    expect(panel.get_by_test_id("customer-id")).to_have_text(profile["customer_id"])
    expect(panel.get_by_test_id("fact")).to_have_count(len(profile["facts"]))
    stage = {"new": "新客", "considering": "考虑中", "bought": "已购买", "after_sales": "售后中"}
    expect(panel.get_by_test_id("customer-stage")).to_have_text(stage[profile["stage"]])
    if any(f["type"] == "product" for f in profile["facts"]):
        products = [f["value"] for f in profile["facts"] if f["type"] == "product"]
        assert _groups(page)["关注商品"] == products

    # A fact of this conversation scrolls to its message and highlights it.
    here = [f for f in profile["facts"] if f["conversation_id"] == cid]
    assert here
    panel.locator(
        f"[data-testid=fact][data-message-index='{here[0]['message_index']}']"
    ).first.click()
    expect(page.locator(f"#msg-{here[0]['message_index']}")).to_have_class(
        re.compile(r"\bevidence-highlight\b")
    )
    assert probe.errors == []


def test_dashboard_profile_groups_facts_and_links_to_other_conversations(
    recent: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    page = sign_in(probe, recent)
    page.goto(f"{recent.url}/ui#/conversations/ui-p2")
    panel = page.get_by_test_id("customer-panel")
    expect(panel.get_by_test_id("customer-id")).to_have_text("u-ui-rich")
    expect(panel.get_by_test_id("fact-group").first).to_be_visible()
    groups = _groups(page)
    assert groups["尺码身材"] == ["身高 165 cm", "体重 55 kg", "尺码 M"]
    assert groups["预算"] == ["¥500 以内"]
    assert groups["肤质"] == ["干性"]
    assert groups["为谁购买"] == ["伴侣"]
    assert any(value.startswith("羽绒服") for value in groups["关注商品"])
    assert groups["顾虑"] == ["价格"]
    assert groups["约定回访"] == ["发工资"]
    expect(panel).to_contain_text("未提及：宝宝月龄")
    screenshot(page, artifact_dir, "profile")

    # A fact from the customer's other conversation opens it at the message.
    size = panel.locator("[data-testid=fact][data-type=size]")
    expect(size).to_have_attribute("data-conversation", "ui-p1")
    size.click()
    expect(page.get_by_test_id("conversation-id")).to_contain_text("ui-p1")
    expect(page.locator("#msg-0")).to_have_class(re.compile(r"\bevidence-highlight\b"))
    assert probe.errors == []


# --------------------------------------------------------------------------- follow-ups


def _queue(server: LiveServer) -> dict[str, dict[str, Any]]:
    return {e["customer_id"]: e for e in server.get("/v1/followups")["items"]}


def test_dashboard_followups_list_the_queue_and_done_removes_an_entry(
    recent: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    queue = _queue(recent)
    assert {"u-ui-f1", "u-ui-f2"} <= set(queue)
    page = sign_in(probe, recent)
    page.get_by_test_id("nav-followups").click()
    cards = page.get_by_test_id("followup")
    expect(cards).to_have_count(len(queue))
    assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.customer)")) == sorted(queue)
    expect(page.get_by_test_id("result-count")).to_contain_text(f"共 {len(queue)} 位顾客待跟进")
    day = f"{TODAY.year}年{TODAY.month}月{TODAY.day}日"
    expect(page.get_by_test_id("followup-day")).to_contain_text(day)

    entry = queue["u-ui-f1"]
    card = page.locator("[data-testid=followup][data-customer='u-ui-f1']")
    expect(card.get_by_test_id("followup-title")).to_have_text(entry["title"])
    expect(card.get_by_test_id("followup-why")).to_have_text(entry["why"])
    expect(card.get_by_test_id("followup-message")).to_have_text(entry["message"])
    expect(card.get_by_test_id("copy-message")).to_be_visible()
    screenshot(page, artifact_dir, "followups")

    # 稍后 asks for a day in a date input that reads 年/月/日, like the day picker above.
    card.get_by_test_id("followup-snooze").click()
    expect(card.get_by_test_id("snooze-until")).to_be_visible()
    assert_zh_cn_dates(page)

    card.get_by_test_id("followup-done").click()
    expect(card).to_have_count(0)
    expect(cards).to_have_count(len(queue) - 1)
    expect(page.get_by_test_id("result-count")).to_contain_text(f"共 {len(queue) - 1} 位")
    assert "u-ui-f1" not in _queue(recent)

    # 忽略 asks for a reason, and the entry leaves with it.
    other = page.locator("[data-testid=followup][data-customer='u-ui-f2']")
    other.get_by_test_id("followup-dismiss").click()
    other.get_by_test_id("dismiss-reason").fill("顾客已到店购买")
    other.get_by_test_id("dismiss-confirm").click()
    expect(other).to_have_count(0)
    assert "u-ui-f2" not in _queue(recent)
    assert probe.errors == []


def test_dashboard_followups_of_another_day_are_read_only(
    recent: LiveServer, probe: PageProbe
) -> None:
    page = sign_in(probe, recent)
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    queue = recent.get("/v1/followups", date=tomorrow)["items"]
    page.goto(f"{recent.url}/ui#/followups?date={tomorrow}")
    expect(page.get_by_test_id("not-today")).to_be_visible()
    expect(page.get_by_test_id("followup")).to_have_count(len(queue))
    for button in page.get_by_test_id("followup-done").all():
        expect(button).to_be_disabled()
    page.get_by_test_id("followup-today").click()
    expect(page.get_by_test_id("not-today")).to_have_count(0)
    assert probe.errors == []


# --------------------------------------------------------------------------- tasks


def test_dashboard_creates_a_task_and_shows_its_progress(
    recent: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    page = sign_in(probe, recent)
    page.get_by_test_id("nav-tasks").click()
    page.get_by_test_id("task-new").click()
    page.get_by_test_id("task-title-input").fill("卫衣新色回访")
    page.get_by_test_id("task-variants").fill(f"{SCRIPT}\n您好，卫衣到新色了，来店里看看吗？")
    page.get_by_test_id("task-asked").fill("卫衣")
    page.get_by_test_id("task-within").fill("30")
    page.get_by_test_id("task-starts").fill((TODAY - timedelta(days=2)).isoformat())
    page.get_by_test_id("task-deadline").fill((TODAY + timedelta(days=3)).isoformat())
    screenshot(page, artifact_dir, "task-form")
    page.get_by_test_id("task-submit").click()

    expect(page.get_by_test_id("task-title")).to_have_text("卫衣新色回访")
    # The window in zh-CN dates; the deadline is the whole day given.
    deadline = TODAY + timedelta(days=3)
    expect(page.locator("main")).to_contain_text(f"{deadline:%Y/%m/%d}（含当天）")
    assert_zh_cn_dates(page)
    task_id = page.url.rsplit("/", 1)[-1]
    detail = recent.get(f"/v1/tasks/{task_id}")
    overall = detail["summary"]["overall"]
    targets = {t["customer_id"]: t for t in detail["targets"]}
    assert targets["u-ui-t1"]["executed"] and not targets["u-ui-t2"]["executed"]
    expect(page.get_by_test_id("task-targeted")).to_contain_text(str(overall["targeted"]))
    expect(page.get_by_test_id("task-executed")).to_contain_text(str(overall["executed"]))
    rate = f"{round(overall['execution_rate'] * 100)}%"
    expect(page.get_by_test_id("task-rate")).to_contain_text(rate)
    rows = page.get_by_test_id("target-row")
    expect(rows).to_have_count(len(targets))
    status = page.locator(
        "[data-testid=target-row][data-customer='u-ui-t1'] [data-testid=target-status]"
    )
    expect(status).to_have_text("已执行")
    status = page.locator(
        "[data-testid=target-row][data-customer='u-ui-t2'] [data-testid=target-status]"
    )
    expect(status).to_have_text("未执行")
    guide = page.locator(
        f"[data-testid=task-guides] [data-testid=progress-row][data-id='{recent.guide_id}']"
    )
    expect(guide).to_contain_text(
        f"{round(detail['summary']['guides'][recent.guide_id]['execution_rate'] * 100)}%"
    )
    screenshot(page, artifact_dir, "task", full_page=True)

    # The list holds it, newest first.
    page.get_by_test_id("back").click()
    expect(page.get_by_test_id("task-row").first).to_have_attribute("data-id", task_id)
    assert_zh_cn_dates(page)
    assert probe.errors == []


# --------------------------------------------------------------------------- execution


def test_dashboard_leaderboards_and_scorecards_show_execution(
    recent: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    board = {g["guide_id"]: g for g in recent.get("/v1/guides")["items"]}
    page = sign_in(probe, recent)
    page.get_by_test_id("nav-guides").click()
    row = page.locator(f"[data-testid=guide-row][data-id='{recent.guide_id}']")
    tasks = board[recent.guide_id]["execution"]["tasks"]
    cell = row.get_by_test_id("cell-tasks")
    if tasks["execution_rate"] is None:
        expect(cell).to_have_text("—")
    else:
        expect(cell).to_contain_text(f"{tasks['executed']}/{tasks['targeted']}")
    expect(page.locator("th", has_text="按时跟进率")).to_be_visible()

    row.get_by_test_id("guide-link").click()
    card = recent.get(f"/v1/guides/{recent.guide_id}/scorecard")["execution"]
    followups = card["followups"]
    expect(page.get_by_test_id("tile-followups")).to_contain_text(
        f"按时完成 {followups['done_on_time']} / 到期 {followups['due']}"
    )
    expect(page.get_by_test_id("tile-tasks")).to_contain_text(
        f"已执行 {card['tasks']['executed']} / 目标顾客 {card['tasks']['targeted']}"
    )
    page.get_by_test_id("execution").scroll_into_view_if_needed()
    screenshot(page, artifact_dir, "scorecard-execution")

    # The same by store.
    stores = recent.get("/v1/stores")["items"]
    page.goto(f"{recent.url}/ui#/guides")
    page.get_by_test_id("board-stores").click()
    expect(page.get_by_test_id("store-row")).to_have_count(len(stores))
    page.get_by_test_id("store-row").first.get_by_test_id("store-link").click()
    expect(page.get_by_test_id("scorecard-title")).to_contain_text(f"门店 {stores[0]['store_id']}")
    expect(page.get_by_test_id("execution")).to_be_visible()
    assert probe.errors == []
