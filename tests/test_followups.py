"""The follow-up queue: each rule, what takes a customer out of it, and the rules file."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from copilot.errors import InputError
from copilot.followups import build_queue, customer_states, load_rules, resolve_come_back
from copilot.schema import CHINA_TZ, Conversation

MONDAY = datetime(2026, 11, 2, 20, 0, tzinfo=CHINA_TZ)  # a Monday evening


def chat(
    cid: str, customer: str, start: datetime, turns: list[tuple[str, str]], guide: str = "g-1"
) -> Conversation:
    return Conversation.model_validate(
        {
            "conversation_id": cid,
            "customer_id": customer,
            "guide_id": guide,
            "store_id": "s-1",
            "messages": [
                {"role": role, "text": text, "ts": (start + timedelta(minutes=i)).isoformat()}
                for i, (role, text) in enumerate(turns)
            ],
        }
    )


def queue(conversations: list[Conversation], day: date, orders: list[dict] | None = None, **kw):
    return build_queue(customer_states(conversations, orders or []).values(), day, **kw)


def test_hesitation_opens_the_next_day_with_a_message_about_the_product() -> None:
    talk = chat("c-1", "u-1", MONDAY, [
        ("customer", "这款羽绒服有黑色吗"), ("guide", "有的亲"), ("customer", "我再考虑考虑"), ("guide", "好的 随时找我"),
    ])  # fmt: skip
    assert queue([talk], MONDAY.date()) == []  # not on the day itself
    [entry] = queue([talk], MONDAY.date() + timedelta(days=1))
    assert (entry.reason, entry.customer_id, entry.guide_id) == ("hesitated", "u-1", "g-1")
    assert "羽绒服" in entry.message and not entry.needs_edit
    assert entry.trigger["message_index"] == 2 and "考虑" in entry.why
    assert entry.due == MONDAY.date() + timedelta(days=3)
    # It stays (overdue) for expire_days after it was due, then goes.
    assert queue([talk], entry.due + timedelta(days=7))
    assert queue([talk], entry.due + timedelta(days=8)) == []


def test_a_payment_or_a_later_contact_takes_the_customer_out() -> None:
    talk = chat("c-1", "u-1", MONDAY, [("customer", "太贵了 我再看看"), ("guide", "好的")])
    tuesday = MONDAY.date() + timedelta(days=1)
    order = {
        "customer_id": "u-1",
        "paid_at": MONDAY + timedelta(hours=20),
        "amount": 199,
        "product": "卫衣",
    }
    reasons = [e.reason for e in queue([talk], tuesday + timedelta(days=2), [order])]
    assert "hesitated" not in reasons
    assert reasons == []  # after-sales care opens 3 days after the order, not yet
    later = chat("c-2", "u-1", MONDAY + timedelta(days=1), [("guide", "亲，上次看的还喜欢吗")])
    assert queue([talk, later], tuesday + timedelta(days=1)) == []


def test_a_promised_come_back_is_due_on_its_day() -> None:
    talk = chat(
        "c-1", "u-1", MONDAY, [("customer", "想买那件大衣 等发工资再买"), ("guide", "好的亲")]
    )
    due = resolve_come_back("发工资", MONDAY.date())
    assert due == date(2026, 11, 10)  # the rules' pay day
    assert [e.reason for e in queue([talk], due - timedelta(days=1))] == ["hesitated"]
    [entry] = queue([talk], due)
    assert entry.reason == "come_back"
    assert "发工资" in entry.message and "大衣" in entry.message


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("明天", date(2026, 11, 3)),
        ("周末", date(2026, 11, 7)),
        ("下周三", date(2026, 11, 11)),
        ("问问老公", date(2026, 11, 3)),
        ("双十一", date(2026, 11, 11)),
        ("双十二", date(2026, 12, 12)),
        ("月底", date(2026, 11, 25)),
        ("回头", date(2026, 11, 5)),
    ],
)
def test_come_back_phrases_become_days(phrase: str, expected: date) -> None:
    assert resolve_come_back(phrase, MONDAY.date()) == expected


def test_an_unanswered_question_is_due_the_same_day_and_outranks_the_rest() -> None:
    talk = chat(
        "c-1",
        "u-1",
        MONDAY,
        [("customer", "太贵了"), ("guide", "亲 品质很好的"), ("customer", "那能包邮吗？")],
    )
    [entry] = queue([talk], MONDAY.date())
    assert entry.reason == "unanswered" and entry.trigger["message_index"] == 2
    answered = chat("c-1", "u-1", MONDAY, [("customer", "能包邮吗？"), ("guide", "可以的")])
    assert queue([answered], MONDAY.date()) == []
    thanks = chat(
        "c-1", "u-1", MONDAY, [("customer", "在吗"), ("guide", "在的"), ("customer", "好的谢谢")]
    )
    assert queue([thanks], MONDAY.date()) == []


def test_after_sales_care_a_few_days_after_an_order() -> None:
    talk = chat("c-1", "u-1", MONDAY, [("customer", "就要这件M码"), ("guide", "好的 已下单")])
    order = {
        "customer_id": "u-1",
        "paid_at": MONDAY + timedelta(minutes=5),
        "amount": 299,
        "product": "连衣裙",
    }
    assert queue([talk], MONDAY.date() + timedelta(days=2), [order]) == []
    [entry] = queue([talk], MONDAY.date() + timedelta(days=3), [order])
    assert entry.reason == "after_sales_care" and "连衣裙" in entry.message


def test_done_dismissed_and_snoozed_entries() -> None:
    talk = chat("c-1", "u-1", MONDAY, [("customer", "我再想想"), ("guide", "好的")])
    tuesday = MONDAY.date() + timedelta(days=1)
    [entry] = queue([talk], tuesday)
    assert queue([talk], tuesday, closed={entry.id: None}) == []
    snoozed = {entry.id: tuesday + timedelta(days=1)}
    assert queue([talk], tuesday, closed=snoozed) == []
    assert [e.id for e in queue([talk], tuesday + timedelta(days=1), closed=snoozed)] == [entry.id]


def test_one_entry_per_customer_and_customers_without_an_id_are_skipped() -> None:
    a = chat("c-1", "u-1", MONDAY, [("customer", "我再考虑下")])
    b = chat(
        "c-2",
        "u-2",
        MONDAY,
        [("customer", "太贵了"), ("guide", "好的"), ("customer", "有优惠吗？")],
    )
    nobody = Conversation.model_validate(
        {
            "conversation_id": "c-3",
            "messages": [{"role": "customer", "text": "我再看看", "ts": MONDAY.isoformat()}],
        }
    )
    entries = queue([a, b, nobody], MONDAY.date() + timedelta(days=1))
    assert sorted(e.customer_id for e in entries) == ["u-1", "u-2"]
    assert entries[0].reason == "unanswered"  # most urgent first


def test_a_message_without_a_known_product_is_marked_for_the_guide(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  hesitated:\n    title: 犹豫\n    after_days: 0\n    within_days: 1\n"
        "    messages: ['[商品]还在考虑吗？']\n",
        "utf-8",
    )
    talk = chat("c-1", "u-1", MONDAY, [("customer", "我再考虑下")])
    [entry] = queue([talk], MONDAY.date(), rules=load_rules(rules))
    assert entry.needs_edit and entry.slots == ["商品"]


@pytest.mark.parametrize(
    "text",
    [
        "rules: [",
        "rules:\n  nagging:\n    title: x\n    after_days: 1\n    within_days: 1\n    messages: [x]\n",
        "rules:\n  hesitated:\n    title: x\n    after_days: -1\n    within_days: 1\n    messages: [x]\n",
        "rules:\n  hesitated:\n    title: x\n",
        "pay_day: 31\nrules: {}\n",
    ],
)
def test_bad_rules_files_say_what_is_wrong(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(InputError, match="follow-up rules"):
        load_rules(path)
    with pytest.raises(InputError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------- the command line


def test_cli_followups_and_profile_from_files(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from copilot.cli import app

    logs = tmp_path / "chats.jsonl"
    talks = [
        chat("c-1", "u-1", MONDAY, [("customer", "我165 110斤 想看羽绒服"), ("guide", "推荐这款"), ("customer", "有点贵 等发工资再买")]),
        chat("c-2", "u-2", MONDAY, [("customer", "能包邮吗？")], guide="g-2"),
    ]  # fmt: skip
    logs.write_text("\n".join(t.model_dump_json() for t in talks) + "\n{broken\n", "utf-8")
    orders = tmp_path / "orders.csv"
    orders.write_text("customer_id,paid_at,amount,product\nu-2,2026-11-03 10:00,99,围巾\n", "utf-8")
    runner = CliRunner()
    result = runner.invoke(
        app, ["followups", str(logs), "--date", "2026-11-10", "--json", "--orders", str(orders)]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["quarantined"] == 1 and out["customers"] == 2 and out["orders"] == 1
    by_customer = {e["customer_id"]: e for e in out["followups"]}
    assert by_customer["u-1"]["reason"] == "come_back" and "羽绒服" in by_customer["u-1"]["message"]
    # The question of Nov 2 expired a week after it was due; the order of Nov 3 is due for care.
    assert (
        by_customer["u-2"]["reason"] == "after_sales_care"
        and "围巾" in by_customer["u-2"]["message"]
    )
    mine = runner.invoke(
        app, ["followups", str(logs), "--date", "2026-11-03", "--json", "--guide", "g-2"]
    )
    assert [e["customer_id"] for e in json.loads(mine.stdout)["followups"]] == ["u-2"]
    bad = runner.invoke(app, ["followups", str(logs), "--date", "11/10"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    profile = runner.invoke(app, ["profile", str(logs), "u-1"])
    assert profile.exit_code == 0, profile.output
    facts = {(f["type"], f["value"]) for f in json.loads(profile.stdout)["facts"]}
    assert {
        ("height_cm", 165),
        ("weight_kg", 55.0),
        ("product", "羽绒服"),
        ("come_back", "发工资"),
    } <= facts
    missing = runner.invoke(app, ["profile", str(logs), "u-404"])
    assert missing.exit_code == 2 and "u-404" in missing.output
