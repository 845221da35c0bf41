"""End-to-end dashboard tests: headless Debian chromium against the real app.

Each test signs in through the sign-in screen with a supervisor key (stores s-01 and s-02) and
checks what it sees against what the API says, so the tests do not depend on which conversations
the generator happened to write. Screenshots go to ``test-artifacts/dashboard-*.png``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.builders import conversation_dict
from tests.ui.conftest import SUPERVISOR_STORES, LiveServer, PageProbe

expect = pytest.importorskip("playwright.sync_api").expect

PAGE_SIZE = 20  # the dashboard's conversation page size
SCRIPT_PAGE_SIZE = 50  # the dashboard's script page size
BOARD_PAGE_SIZE = 20  # the dashboard's leaderboard page size
DATE_FIELDS = {"年", "月", "日", "Year", "Month", "Day"}  # a date input's fields, zh-CN or en-US
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")  # zh-CN writes 2026/03/04 or 2026年3月4日


def sign_in(probe: PageProbe, server: LiveServer, key: str | None = None) -> Any:
    """Open /ui, paste the key, submit; returns the page once the conversation list is drawn."""
    page = probe.page
    page.goto(f"{server.url}/ui")
    page.get_by_test_id("signin-key").fill(key or server.supervisor_key)
    page.get_by_test_id("signin-submit").click()
    if key is None:
        expect(page.get_by_test_id("conversation-row").first).to_be_visible()
    return page


def screenshot(page: Any, artifact_dir: Path, name: str, full_page: bool = False) -> Path:
    """Save ``test-artifacts/dashboard-<name>.png``: the 1280x800 window as a user sees it (a
    full-page shot would draw the sticky top bar wherever the page was scrolled to)."""
    path = artifact_dir / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def row_ids(page: Any) -> list[str]:
    return page.get_by_test_id("conversation-row").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )


def wait_for_count(page: Any, total: int, noun: str = "会话") -> None:
    expect(page.get_by_test_id("result-count")).to_have_text(f"共 {total} 条{noun}")


def all_visible(server: LiveServer, **params: Any) -> dict[str, Any]:
    return server.get("/v1/conversations", limit=200, **params)


def date_fields(page: Any) -> list[str]:
    """The fields of the visible date inputs as the browser draws them, in order, read from its
    accessibility tree: 年, 月, 日 per input in zh-CN (2026/12/04), Month, Day, Year in en-US."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    spinbuttons = [n for n in nodes if n.get("role", {}).get("value") == "spinbutton"]
    # A field's name may repeat a label's word (「年 年」); number inputs (分数范围) are left out.
    names = [(n["name"]["value"].split() or [""])[-1] for n in spinbuttons]
    return [name for name in names if name in DATE_FIELDS]


def assert_zh_cn_dates(page: Any) -> None:
    """Every visible date input reads 年/月/日 and no text shows an ISO date (2026-03-04)."""
    inputs = page.locator("input[type=date]:visible").count()
    assert date_fields(page) == ["年", "月", "日"] * inputs
    expect(page.locator("body")).not_to_contain_text(ISO_DAY)


def test_dashboard_signs_in_and_out(live_server: LiveServer, probe: PageProbe) -> None:
    page = probe.page
    page.goto(f"{live_server.url}/ui")
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    expect(page.get_by_test_id("nav")).to_be_hidden()

    sign_in(probe, live_server)
    total = all_visible(live_server)["total"]
    wait_for_count(page, total)
    expect(page.get_by_test_id("whoami")).to_contain_text("主管")
    for store in SUPERVISOR_STORES:
        expect(page.get_by_test_id("whoami")).to_contain_text(store)
    stores = page.get_by_test_id("cell-store").all_inner_texts()
    assert stores and set(stores) <= set(SUPERVISOR_STORES)
    assert page.evaluate("sessionStorage.getItem('copilot.apiKey')") == live_server.supervisor_key

    page.get_by_test_id("signout").click()
    expect(page.get_by_test_id("signin-form")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('copilot.apiKey')") is None
    assert probe.errors == []


@pytest.mark.parametrize(
    ("which", "message"),
    [("guide", "看板仅供主管或管理员使用"), ("bogus", "密钥无效或已被撤销")],
)
def test_dashboard_rejects_keys_that_are_not_a_supervisors(
    live_server: LiveServer, probe: PageProbe, which: str, message: str
) -> None:
    key = live_server.guide_key if which == "guide" else "cpk_not-a-real-key"
    page = sign_in(probe, live_server, key)
    expect(page.get_by_test_id("signin-error")).to_contain_text(message)
    expect(page.get_by_test_id("nav")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('copilot.apiKey')") is None
    # The browser logs the refused /v1/me (401) as a failed resource; nothing else may fail.
    assert [e for e in probe.errors if "401" not in e] == []


def test_dashboard_filters_sorts_and_pages_conversations(
    live_server: LiveServer, probe: PageProbe
) -> None:
    page = sign_in(probe, live_server)
    everything = all_visible(live_server)
    assert everything["total"] > PAGE_SIZE, "the fixture should give more than one page"
    wait_for_count(page, everything["total"])

    # By flag: a rule some conversations have and others do not.
    rules = [rule for item in everything["items"] for rule in set(item["flags"])]
    flag = max(set(rules), key=rules.count)
    flagged = all_visible(live_server, flag=flag)
    assert 0 < flagged["total"] < everything["total"]
    page.get_by_test_id("filter-flag").select_option(flag)
    page.get_by_test_id("filter-apply").click()
    wait_for_count(page, flagged["total"])
    assert sorted(row_ids(page)) == sorted(i["conversation_id"] for i in flagged["items"])
    for cell in page.get_by_test_id("cell-flags").all():
        expect(cell.locator(f"[data-rule='{flag}']")).to_have_count(1)
    assert f"flag={flag}" in page.url

    # By guide (typed), the flag cleared again.
    page.get_by_test_id("filter-reset").click()
    wait_for_count(page, everything["total"])
    guide = live_server.guide_id
    by_guide = all_visible(live_server, guide_id=guide)
    page.get_by_test_id("filter-guide").fill(guide)
    page.get_by_test_id("filter-apply").click()
    wait_for_count(page, by_guide["total"])
    assert set(page.get_by_test_id("cell-guide").all_inner_texts()) == {guide}

    # By score range.
    page.get_by_test_id("filter-reset").click()
    in_range = all_visible(live_server, min_score=70, max_score=95)
    page.get_by_test_id("filter-min").fill("70")
    page.get_by_test_id("filter-max").fill("95")
    page.get_by_test_id("filter-apply").click()
    wait_for_count(page, in_range["total"])
    for text in page.get_by_test_id("cell-score").all_inner_texts():
        assert 70 <= float(text) <= 95

    # By date: from the middle of the period to its end.
    page.get_by_test_id("filter-reset").click()
    days = sorted(i["started_at"][:10] for i in everything["items"] if i["started_at"])
    since, until = days[len(days) // 2], days[-1]
    by_date = all_visible(live_server, since=since, until=until)
    assert 0 < by_date["total"] < everything["total"]
    page.get_by_test_id("filter-since").fill(since)
    page.get_by_test_id("filter-until").fill(until)
    page.get_by_test_id("filter-apply").click()
    wait_for_count(page, by_date["total"])
    assert sorted(row_ids(page)) == sorted(i["conversation_id"] for i in by_date["items"])

    # Nothing matches: the empty state says so.
    page.get_by_test_id("filter-reset").click()
    page.get_by_test_id("filter-guide").fill("g-nobody")
    page.get_by_test_id("filter-apply").click()
    expect(page.get_by_test_id("empty")).to_contain_text("没有符合条件的会话")

    # Sorting: the select applies at once; the page matches the API's first page.
    page.get_by_test_id("filter-reset").click()
    wait_for_count(page, everything["total"])
    page.get_by_test_id("sort").select_option("overall")
    expect(page).to_have_url(re.compile(r"sort=overall"))
    lowest = live_server.get("/v1/conversations", sort="overall", limit=PAGE_SIZE)["items"]
    expect(page.get_by_test_id("conversation-row").first).to_have_attribute(
        "data-id", lowest[0]["conversation_id"]
    )
    assert row_ids(page) == [i["conversation_id"] for i in lowest]
    scores = [float(t) for t in page.get_by_test_id("cell-score").all_inner_texts() if t != "—"]
    assert scores == sorted(scores)
    # The column header toggles to descending.
    page.get_by_test_id("sort-overall").click()
    expect(page).to_have_url(re.compile(r"sort=-overall"))
    highest = live_server.get("/v1/conversations", sort="-overall", limit=PAGE_SIZE)["items"]
    expect(page.get_by_test_id("conversation-row").first).to_have_attribute(
        "data-id", highest[0]["conversation_id"]
    )

    # Pagination.
    expect(page.get_by_test_id("page-info")).to_have_text(
        f"第 1 / {-(-everything['total'] // PAGE_SIZE)} 页"
    )
    page.get_by_test_id("page-next").click()
    expect(page.get_by_test_id("page-info")).to_contain_text("第 2 /")
    second = live_server.get(
        "/v1/conversations", sort="-overall", limit=PAGE_SIZE, offset=PAGE_SIZE
    )["items"]
    expect(page.get_by_test_id("conversation-row")).to_have_count(len(second))
    assert probe.errors == []


def test_dashboard_list_shows_the_customers_last_words_and_product(
    live_server: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    page = sign_in(probe, live_server)
    first = live_server.get("/v1/conversations", limit=PAGE_SIZE)["items"]
    expect(page.get_by_test_id("conversation-row")).to_have_count(len(first))
    assert row_ids(page) == [i["conversation_id"] for i in first]
    words = page.get_by_test_id("cell-last-words").all_inner_texts()
    assert words == [
        f"顾客：{i['last_customer_text']}" if i["last_customer_text"] else "顾客还没有发言"
        for i in first
    ]
    products = page.get_by_test_id("cell-product").all_inner_texts()
    assert products == [i["product"] or "—" for i in first]
    assert any(i["product"] for i in first), "the fixture should name products on page one"
    # A long last message is cut by the API and kept to one line here.
    heights = page.get_by_test_id("cell-last-words").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().height)"
    )
    assert max(heights) < 2 * min(heights)
    screenshot(page, artifact_dir, "conversations")
    assert probe.errors == []


def _conversation_to_review(server: LiveServer) -> tuple[dict[str, Any], dict[str, Any]]:
    """The visible conversation with the most to show: compliance spans, negative evidence on
    guide replies (hence coaching), then the most flags."""
    best: tuple[tuple[int, int, int], dict[str, Any], dict[str, Any]] | None = None
    for item in all_visible(server)["items"]:
        detail = server.get(f"/v1/conversations/{item['conversation_id']}")
        spans = sum(1 for f in detail["report"]["flags"] if f.get("start") is not None)
        rank = (min(spans, 1), min(len(detail["coaching"]), 1), len(item["flags"]))
        if best is None or rank > best[0]:
            best = (rank, item, detail)
    assert best is not None
    return best[1], best[2]


def test_dashboard_conversation_shows_tags_evidence_flags_and_coaching(
    live_server: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    item, detail = _conversation_to_review(live_server)
    conversation, report, coaching = detail["conversation"], detail["report"], detail["coaching"]
    assert coaching, "the fixture should hold a conversation with a weak guide reply"
    cid = conversation["conversation_id"]
    page = sign_in(probe, live_server)

    # Open it from the list, as a supervisor would.
    page.goto(f"{live_server.url}/ui#/conversations?sort=-started_at&guide_id={item['guide_id']}")
    page.locator(f"[data-testid=conversation-row][data-id='{cid}']").click()
    expect(page.get_by_test_id("conversation-id")).to_contain_text(cid)

    # Every message is there, each with one intent / action tag in Chinese.
    messages = page.get_by_test_id("message")
    expect(messages).to_have_count(len(conversation["messages"]))
    tags = page.get_by_test_id("message-tag").all_inner_texts()
    assert len(tags) == len(conversation["messages"])
    names = httpx.get(f"{live_server.url}/ui/taxonomy.json").json()
    for label, tag in zip(report["messages"], tags, strict=True):
        if "intent" in label:
            assert tag.startswith(f"意图：{names['intents'][label['intent']]['name']}"), tag
        elif "action" in label:
            assert tag.startswith(f"动作：{names['actions'][label['action']]['name']}"), tag
        else:
            assert tag, "an unlabelled message still gets a tag"

    # Messages cited by negative evidence are marked from the start.
    negative = {
        e["message_index"]
        for d in report["dimensions"].values()
        for e in d["evidence"]
        if e["points"] < 0
    }
    marked = page.locator(".msg.evidence-negative").evaluate_all(
        "els => els.map(e => Number(e.dataset.index))"
    )
    assert set(marked) == negative

    # Clicking an evidence item highlights the message it cites, and only that one.
    evidence = page.locator("[data-testid=evidence].neg")
    assert evidence.count() > 0
    first = int(evidence.first.get_attribute("data-message-index"))
    evidence.first.click()
    expect(page.locator(f"#msg-{first}")).to_have_class(re.compile(r"\bevidence-highlight\b"))
    expect(page.locator(".evidence-highlight")).to_have_count(1)
    other = page.locator(f"[data-testid=evidence]:not([data-message-index='{first}'])")
    if other.count():
        second = int(other.first.get_attribute("data-message-index"))
        other.first.click()
        expect(page.locator(f"#msg-{second}")).to_have_class(re.compile(r"evidence-highlight"))
        expect(page.locator(f"#msg-{first}")).not_to_have_class(re.compile(r"evidence-highlight"))

    # Compliance flags: a chip on the flagged message, and the span wrapped in <mark> (the
    # first span of each message; overlapping later ones are not marked twice).
    for flag in report["flags"]:
        chip = (
            f"#msg-{flag['message_index']} [data-testid=message-flag][data-rule='{flag['rule']}']"
        )
        expect(page.locator(chip).first).to_be_visible()
    spans = sorted(
        (f for f in report["flags"] if f.get("start") is not None),
        key=lambda f: (f["message_index"], f["start"]),
    )
    assert spans, "the fixture should hold a conversation with a compliance span"
    for index in sorted({f["message_index"] for f in spans}):
        flag = next(f for f in spans if f["message_index"] == index)
        text = conversation["messages"][index]["text"]
        mark = page.locator(f"#msg-{index} mark[data-testid=flag-span]").first
        expect(mark).to_have_text(text[flag["start"] : flag["end"]])
        expect(mark).to_have_attribute("data-rule", flag["rule"])

    # The engine's suggestion at each weak guide reply.
    cards = page.get_by_test_id("coaching")
    expect(cards).to_have_count(len(coaching))
    for card, entry in zip(cards.all(), coaching, strict=True):
        assert card.get_attribute("data-index") == str(entry["message_index"])
        if entry["suggestion"] and entry["suggestion"].get("text"):
            expect(card.get_by_test_id("coaching-text")).to_have_text(entry["suggestion"]["text"])

    evidence.first.click()  # the highlight in the picture
    screenshot(page, artifact_dir, "conversation")
    assert probe.errors == []


def test_dashboard_leaderboard_and_scorecard_charts(
    live_server: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    board = live_server.get("/v1/guides")["items"]
    first = board[:BOARD_PAGE_SIZE]
    page = sign_in(probe, live_server)
    page.get_by_test_id("nav-guides").click()
    rows = page.get_by_test_id("guide-row")
    expect(rows).to_have_count(len(first))
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.id)") == [g["guide_id"] for g in first]
    screenshot(page, artifact_dir, "leaderboard")

    busiest = max(board, key=lambda g: g["n"])["guide_id"]
    card = live_server.get(f"/v1/guides/{busiest}/scorecard")
    page.locator(f"[data-testid=guide-row][data-id='{busiest}']").click()
    expect(page.get_by_test_id("scorecard-title")).to_contain_text(busiest)

    trend = page.get_by_test_id("trend-chart")
    expect(trend).to_be_visible()
    points = [p for p in card["trend"] if p["overall"] is not None]
    expect(trend.locator("circle")).to_have_count(len(points))
    expect(trend.locator("path.line")).to_have_count(1)
    profile = page.get_by_test_id("profile-chart")
    expect(profile).to_be_visible()
    expect(profile.locator("polygon.radar-guide")).to_have_count(1)
    expect(profile.locator("text")).to_have_count(len(card["dimensions"]))
    shown = float(page.get_by_test_id("scorecard-overall").inner_text())
    assert shown == pytest.approx(card["overall"], abs=0.051)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, artifact_dir, "scorecard", full_page=True)

    # The worst conversations link to their detail.
    worst = card["worst"][0]["conversation_id"]
    page.get_by_test_id("worst-list").get_by_test_id("ref-link").first.click()
    expect(page.get_by_test_id("conversation-id")).to_contain_text(worst)
    assert probe.errors == []


def test_dashboard_leaderboard_pages_twenty_at_a_time(
    live_server: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    # An admin sees every store: give it more guides than a page holds, in a store of their own
    # (s-09, outside the supervisor's key, so the other tests see nothing of them).
    admin = live_server.admin_key
    extra = max(0, BOARD_PAGE_SIZE + 5 - len(live_server.get("/v1/guides", key=admin)["items"]))
    records = [
        conversation_dict(f"ui-board-{i:02d}", guide_id=f"g-board-{i:02d}", store_id="s-09")
        for i in range(extra)
    ]
    response = httpx.post(
        f"{live_server.url}/v1/conversations",
        json={"conversations": records},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    board = live_server.get("/v1/guides", key=admin)["items"]
    assert len(board) > BOARD_PAGE_SIZE
    pages = -(-len(board) // BOARD_PAGE_SIZE)

    page = sign_in(probe, live_server, admin)
    expect(page.get_by_test_id("conversation-row").first).to_be_visible()
    page.get_by_test_id("nav-guides").click()
    rows = page.get_by_test_id("guide-row")
    expect(rows).to_have_count(BOARD_PAGE_SIZE)
    ids = "rs => rs.map(r => r.dataset.id)"
    assert rows.evaluate_all(ids) == [g["guide_id"] for g in board[:BOARD_PAGE_SIZE]]
    expect(page.get_by_test_id("result-count")).to_have_text(f"共 {len(board)} 位导购")
    expect(page.get_by_test_id("page-info")).to_have_text(f"第 1 / {pages} 页")
    expect(page.get_by_test_id("page-prev")).to_have_attribute("aria-disabled", "true")
    expect(page.get_by_test_id("page-next")).to_have_text("下一页")
    screenshot(page, artifact_dir, "leaderboard-pages", full_page=True)

    page.get_by_test_id("page-next").click()
    expect(page.get_by_test_id("page-info")).to_have_text(f"第 2 / {pages} 页")
    second = board[BOARD_PAGE_SIZE : 2 * BOARD_PAGE_SIZE]
    expect(rows).to_have_count(len(second))
    assert rows.evaluate_all(ids) == [g["guide_id"] for g in second]
    # Ranks run on across pages.
    rank = second[0]["rank"]
    expect(rows.first.locator("td").first).to_have_text(str(rank) if rank else "—")
    page.get_by_test_id("page-prev").click()
    expect(page.get_by_test_id("page-info")).to_have_text(f"第 1 / {pages} 页")
    assert probe.errors == []


def test_dashboard_names_dimensions_for_a_high_score_and_shows_every_one(
    live_server: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    # Compliance scores high when the guide kept to the rules: 「合规风险 99.5」 read as very
    # risky, so it is 合规表现 wherever the dashboard names dimensions.
    cid = all_visible(live_server)["items"][0]["conversation_id"]
    report = live_server.get(f"/v1/conversations/{cid}")["report"]
    assert report["dimensions"]["compliance"]["name"] == "合规表现"
    page = sign_in(probe, live_server)
    page.goto(f"{live_server.url}/ui#/conversations/{cid}")
    panel = page.get_by_test_id("score-panel")
    blocks = panel.get_by_test_id("dimension")
    expect(blocks).to_have_count(len(report["dimensions"]))
    assert "合规表现" in panel.get_by_test_id("dimension-name").all_inner_texts()
    expect(panel).to_contain_text("越高越好")
    # Every dimension without an inner scroll: the panel is as tall as what it holds.
    assert panel.evaluate("el => getComputedStyle(el).overflowY") == "visible"
    assert panel.evaluate("el => el.scrollHeight - el.clientHeight") <= 1
    blocks.last.scroll_into_view_if_needed()
    expect(blocks.last).to_be_in_viewport()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, artifact_dir, "score-panel", full_page=True)

    # The leaderboard's columns, and a scorecard's radar and tiles in words that say what counts.
    page.get_by_test_id("nav-guides").click()
    expect(page.get_by_test_id("dimension-header").first).to_be_visible()
    assert "合规表现" in page.get_by_test_id("dimension-header").all_inner_texts()
    board = live_server.get("/v1/guides")["items"]
    busiest = max(board, key=lambda g: g["n"])["guide_id"]
    card = live_server.get(f"/v1/guides/{busiest}/scorecard")
    page.goto(f"{live_server.url}/ui#/guides/{busiest}")
    expect(page.get_by_test_id("profile-chart")).to_contain_text("合规表现")
    expect(page.get_by_test_id("tile-conversion")).to_contain_text(
        f"成交 {card['n_converted']} / 结果已知 {card['n_outcomes']} 个会话"
    )
    per = format(float(f"{card['flags']['per_conversation']:.2f}"), "g")
    expect(page.get_by_test_id("tile-flags")).to_contain_text(f"平均每个会话 {per} 个")
    screenshot(page, artifact_dir, "scorecard-tiles")

    # A bundle and reports from before the rename still say 合规风险: shown as 合规表现 too.
    def older(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=response.text().replace("合规表现", "合规风险"))

    page.route(re.compile(r"/ui/taxonomy\.json|/v1/(conversations|guides)/"), older)
    page.reload()
    expect(page.get_by_test_id("profile-chart")).to_contain_text("合规表现")
    expect(page.locator("body")).not_to_contain_text("合规风险")
    page.goto(f"{live_server.url}/ui#/conversations/{cid}")
    expect(panel.get_by_test_id("dimension")).to_have_count(len(report["dimensions"]))
    assert "合规表现" in panel.get_by_test_id("dimension-name").all_inner_texts()
    expect(page.locator("body")).not_to_contain_text("合规风险")
    assert probe.errors == []


def test_dashboard_pins_and_clears_a_script(
    live_server: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    page = sign_in(probe, live_server)
    page.get_by_test_id("nav-scripts").click()
    expect(page.get_by_test_id("script-row").first).to_be_visible()
    row = page.locator("[data-testid=script-row]:has([data-testid=script-state][data-state=''])")
    row = row.first
    script_id = int(row.get_attribute("data-script-id"))
    row_of = page.locator(f"[data-testid=script-row][data-script-id='{script_id}']")

    row_of.get_by_test_id("pin").click()
    expect(row_of.get_by_test_id("script-state")).to_have_attribute("data-state", "pinned")
    expect(row_of.get_by_test_id("pin")).to_be_disabled()
    pinned = live_server.get("/v1/scripts", state="pinned", limit=200)
    assert script_id in [s["script_id"] for s in pinned["items"]]
    screenshot(page, artifact_dir, "scripts")

    # The state filter shows it among the pinned ones.
    page.get_by_test_id("script-filter-state").select_option("pinned")
    page.get_by_test_id("script-filter-apply").click()
    wait_for_count(page, pinned["total"], "话术")
    expect(row_of).to_have_count(1)

    row_of.get_by_test_id("clear").click()
    expect(row_of.get_by_test_id("script-state")).to_have_attribute("data-state", "")
    pinned = live_server.get("/v1/scripts", state="pinned", limit=200)
    assert script_id not in [s["script_id"] for s in pinned["items"]]
    assert probe.errors == []


def _lift(value: float) -> str:
    return f"×{value:.2f}"


def test_dashboard_scripts_sort_by_the_lower_bound_and_filter_by_intent(
    live_server: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    page = sign_in(probe, live_server)
    page.get_by_test_id("nav-scripts").click()
    expect(page.get_by_test_id("script-row").first).to_be_visible()

    # By default the lower bound of lift leads, with the uses beside it, as the API sorts it.
    expect(page.get_by_test_id("script-sort")).to_have_value("-lift_lower")
    top = live_server.get("/v1/scripts", sort="-lift_lower", limit=SCRIPT_PAGE_SIZE)["items"]
    rows = page.get_by_test_id("script-row")
    expect(rows).to_have_count(len(top))
    ids = rows.evaluate_all("rs => rs.map(r => Number(r.dataset.scriptId))")
    assert ids == [s["script_id"] for s in top]
    assert page.get_by_test_id("script-lift-lower").all_inner_texts() == [
        _lift(s["lift_lower"]) for s in top
    ]
    assert page.get_by_test_id("script-n").all_inner_texts() == [str(s["n"]) for s in top]
    headers = page.get_by_test_id("script-table").locator("th").all_inner_texts()
    assert headers[3:5] == ["提升下限", "使用次数"]

    # The intent filter: the complaints' scripts, still by the lower bound.
    names = httpx.get(f"{live_server.url}/ui/taxonomy.json").json()["intents"]
    intent = "complaint"
    scripts = live_server.get("/v1/scripts", intent=intent, sort="-lift_lower", limit=200)
    assert scripts["total"] > 1, "the session bundle should hold scripts for complaints"
    page.get_by_test_id("script-filter-intent").select_option(intent)
    page.get_by_test_id("script-filter-apply").click()
    expect(page).to_have_url(re.compile(f"intent={intent}"))
    wait_for_count(page, scripts["total"], "话术")
    first = scripts["items"][0]
    expect(rows.first).to_have_attribute("data-script-id", str(first["script_id"]))
    assert first["lift_lower"] == max(s["lift_lower"] for s in scripts["items"])
    cells = rows.locator("td:nth-child(3)").all_inner_texts()
    assert set(cells) == {names[intent]["name"]}
    screenshot(page, artifact_dir, "scripts-by-lower-bound")
    assert probe.errors == []


def test_dashboard_dates_read_zh_cn_in_inputs_and_text(
    live_server: LiveServer, probe: PageProbe, artifact_dir: Path
) -> None:
    page = sign_in(probe, live_server)
    days = sorted(i["started_at"][:10] for i in all_visible(live_server)["items"])
    since, until = days[len(days) // 2], days[-1]

    # The list: the date filter, the start times.
    page.get_by_test_id("filter-since").fill(since)
    page.get_by_test_id("filter-until").fill(until)
    page.get_by_test_id("filter-apply").click()
    expect(page).to_have_url(re.compile(f"since={since}"))
    expect(page.get_by_test_id("conversation-row").first).to_be_visible()
    assert page.locator("input[type=date]:visible").count() == 2
    assert_zh_cn_dates(page)
    for text in page.get_by_test_id("cell-started").all_inner_texts():
        assert re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}", text), text
    screenshot(page, artifact_dir, "dates-list")

    # A conversation's time span.
    page.get_by_test_id("conversation-link").first.click()
    expect(page.get_by_test_id("message").first).to_be_visible()
    assert_zh_cn_dates(page)

    # The leaderboard's date filter, a scorecard's period, trend axis and conversations.
    page.goto(f"{live_server.url}/ui#/guides?since={since}&until={until}")
    expect(page.get_by_test_id("guide-row").first).to_be_visible()
    assert page.locator("input[type=date]:visible").count() == 2
    assert_zh_cn_dates(page)
    page.get_by_test_id("guide-link").first.click()
    expect(page.get_by_test_id("trend-chart")).to_be_visible()
    assert_zh_cn_dates(page)

    # 跟进 (its day in Chinese) and a new task's window.
    page.get_by_test_id("nav-followups").click()
    expect(page.get_by_test_id("followup-day")).to_contain_text("年")
    assert_zh_cn_dates(page)
    page.goto(f"{live_server.url}/ui#/tasks/new")
    expect(page.get_by_test_id("task-starts")).to_be_visible()
    assert_zh_cn_dates(page)
    screenshot(page, artifact_dir, "dates-task-form")
    assert probe.errors == []


def test_dashboard_shows_the_api_error_message(live_server: LiveServer, probe: PageProbe) -> None:
    sign_in(probe, live_server)
    response = httpx.get(
        f"{live_server.url}/v1/conversations/no-such-conversation",
        headers={"Authorization": f"Bearer {live_server.supervisor_key}"},
    )
    assert response.status_code == 404
    page = probe.page
    page.goto(f"{live_server.url}/ui#/conversations/no-such-conversation")
    error = page.get_by_test_id("error")
    expect(error).to_contain_text("请求失败（404）")
    expect(error).to_contain_text(response.json()["error"]["message"])
    # The browser logs the 404 as a failed resource; nothing else may fail.
    assert [e for e in probe.errors if "404" not in e] == []


def test_dashboard_requests_stay_on_loopback(live_server: LiveServer, probe: PageProbe) -> None:
    page = sign_in(probe, live_server)
    first = page.get_by_test_id("conversation-row").first.get_attribute("data-id")
    page.goto(f"{live_server.url}/ui#/conversations/{first}")
    expect(page.get_by_test_id("message").first).to_be_visible()
    page.get_by_test_id("nav-guides").click()
    page.get_by_test_id("guide-row").first.click()
    expect(page.get_by_test_id("trend-chart")).to_be_visible()
    page.get_by_test_id("nav-scripts").click()
    expect(page.get_by_test_id("script-row").first).to_be_visible()

    assert probe.requests
    outside = [
        url
        for url in probe.requests
        if urlsplit(url).scheme not in ("http", "data")
        or urlsplit(url).hostname
        not in (
            "127.0.0.1",
            None,
        )
    ]
    assert outside == [], f"the dashboard reached beyond the app: {outside}"
    paths = {urlsplit(url).path for url in probe.requests}
    assert {"/ui", "/ui/static/app.js", "/ui/static/app.css", "/v1/me"} <= paths
    assert probe.errors == []
