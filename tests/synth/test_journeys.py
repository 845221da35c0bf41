"""Customer journeys: customers who come back, with ground truth for the follow-up queue."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.cli import app
from copilot.errors import ConfigError
from copilot.orders import Order, attribute, read_orders
from copilot.schema import Conversation
from copilot.synth import (
    STORIES,
    JourneySimulator,
    come_back_day,
    journey_orders,
    journeys,
    load_bank,
    split_of,
)

N_CUSTOMERS = 1200
# A time or a person in a come-back promise, simplified or traditional.
_PROMISE_WORDS = re.compile(
    "明天|後天|后天|两天|兩天|几天|幾天|周末|週末|下周|下週|下礼拜|下禮拜|工资|工資|下个月|下個月|"
    "下月|月初|问|問|商量|双十一|雙十一|双11|雙11"
)


@pytest.fixture(scope="module")
def corpus() -> list[Conversation]:
    return list(journeys(N_CUSTOMERS, seed=11))


@pytest.fixture(scope="module")
def by_customer(corpus: list[Conversation]) -> dict[str, list[Conversation]]:
    out: dict[str, list[Conversation]] = defaultdict(list)
    for conversation in corpus:
        assert conversation.customer_id is not None
        out[conversation.customer_id].append(conversation)
    return out


def _truth(conversation: Conversation) -> dict:
    return conversation.meta["journey"]


def _last_customer_text(conversation: Conversation) -> str:
    return [m.text for m in conversation.messages if m.role == "customer"][-1]


def test_journeys_same_seed_same_bytes() -> None:
    first = b"\n".join(c.to_json() for c in journeys(40, seed=3))
    second = b"\n".join(c.to_json() for c in journeys(40, seed=3))
    other = b"\n".join(c.to_json() for c in journeys(40, seed=4))
    assert first == second
    assert first != other


def test_journeys_customer_keeps_id_guide_and_story_over_time(
    by_customer: dict[str, list[Conversation]],
) -> None:
    assert len(by_customer) == N_CUSTOMERS
    assert Counter(len(v) for v in by_customer.values()).keys() == {1, 2, 3}
    for chats in by_customer.values():
        assert [_truth(c)["step"] for c in chats] == list(range(1, len(chats) + 1))
        assert len({(c.guide_id, c.store_id, _truth(c)["customer_story"]) for c in chats}) == 1
        assert all(c.meta["synthetic"] for c in chats)
        stamps = [m.ts for c in chats for m in c.messages]
        assert all(a <= b for a, b in zip(stamps, stamps[1:], strict=False))  # type: ignore[operator]
        for before, after in zip(chats, chats[1:], strict=False):
            start, end = after.messages[0].ts, before.messages[-1].ts
            assert start is not None and end is not None and before.messages[0].ts is not None
            assert start >= end + timedelta(hours=2)
            assert start.date() > before.messages[0].ts.date()  # a later day


def test_journeys_story_shares_follow_the_rules(
    by_customer: dict[str, list[Conversation]],
) -> None:
    shares = load_bank().rules["journeys"]["stories"]
    counts = Counter(_truth(chats[0])["customer_story"] for chats in by_customer.values())
    assert set(counts) == set(STORIES)
    for story in STORIES:
        assert counts[story] / N_CUSTOMERS == pytest.approx(shares[story], abs=0.04), story


def test_journeys_chats_follow_their_story(by_customer: dict[str, list[Conversation]]) -> None:
    for chats in by_customer.values():
        story, first = _truth(chats[0])["customer_story"], chats[0]
        assert first.outcome is not None and first.meta["scenario"] == "pre_sale"
        assert first.outcome.converted == (story in ("buys", "after_sales"))
        assert _truth(first)["hesitated"] == (story not in ("buys", "after_sales"))
        assert len(chats) == 1 or story not in ("buys", "hesitates_gone", "promises_gone")
        if len(chats) < 2:
            assert story not in ("hesitates_followed_up", "after_sales") and "returns" not in story
            continue
        second = _truth(chats[1])
        assert second["followed_up"] == story.endswith("followed_up")
        assert second["returned_by_self"] == story.endswith("returns")
        assert chats[1].messages[0].role == ("guide" if second["followed_up"] else "customer")
        assert (chats[1].meta["scenario"] == "after_sale") == (story == "after_sales")
        outcome = chats[1].outcome
        assert outcome is not None
        assert second["converted_after_follow_up"] == (second["followed_up"] and outcome.converted)
        if len(chats) == 3:  # a later purchase, then after-sales
            assert outcome.converted and chats[2].meta["scenario"] == "after_sale"


def test_journeys_promise_ends_the_first_chat_and_sets_the_return_day(
    by_customer: dict[str, list[Conversation]],
) -> None:
    promises = 0
    for chats in by_customer.values():
        truth = _truth(chats[0])
        if not truth["customer_story"].startswith("promises"):
            assert truth["promised"] is None and truth["promised_day"] is None
            hesitations = [
                chats[0].messages[i].text
                for i, label in chats[0].labels.intents.items()  # type: ignore[union-attr]
                if label == "hesitation"
            ]
            assert not [t for t in hesitations if re.search("发工资|下个月|过两天|问问|商量", t)]
            continue
        promises += 1
        assert truth["promised"] and truth["promised"] in _last_customer_text(chats[0])
        assert _PROMISE_WORDS.search(truth["promised"]), truth["promised"]
        said = chats[0].messages[-1].ts
        promised = date.fromisoformat(truth["promised_day"])
        assert said is not None and said.date() < promised <= said.date() + timedelta(days=45)
        if len(chats) > 1:  # comes back, or is followed up, around the promised day
            start = chats[1].messages[0].ts
            assert start is not None and promised <= start.date() <= promised + timedelta(days=3)
    assert promises > 100


def test_journeys_follow_ups_win_more_customers_for_skilled_guides(
    corpus: list[Conversation],
) -> None:
    won: dict[bool, list[bool]] = defaultdict(list)
    for c in corpus:
        if _truth(c)["followed_up"]:
            assert c.outcome is not None
            won[c.meta["guide_skill"] in ("good", "star")].append(c.outcome.converted)
    rate = {skilled: sum(v) / len(v) for skilled, v in won.items()}
    assert rate[True] > rate[False] + 0.2


def test_journey_orders_match_converted_conversations(corpus: list[Conversation]) -> None:
    orders = journey_orders(corpus)
    converted = {c.conversation_id: c for c in corpus if c.outcome and c.outcome.converted}
    assert {o["order_id"].removeprefix("o-") for o in orders} == set(converted)
    for order in orders:
        chat = converted[order["order_id"].removeprefix("o-")]
        last = chat.messages[-1].ts
        assert last is not None and chat.outcome is not None
        assert order["customer_id"] == chat.customer_id and order["store_id"] == chat.store_id
        assert order["amount"] == chat.outcome.order_amount
        assert order["product"] == chat.meta["product"]
        assert last < order["paid_at"] <= last + timedelta(hours=6, minutes=1)
    # The product's attribution credits each order to the conversation it came from.
    result = attribute(corpus, [Order.model_validate(o) for o in orders])
    assert {m.order_id: m.conversation_id for m in result.matches} == {
        f"o-{cid}": cid for cid in converted
    }


@pytest.mark.parametrize(
    ("when", "said", "expected"),
    [
        ("tomorrow", date(2026, 1, 5), date(2026, 1, 6)),
        ("ask_someone", date(2026, 1, 5), date(2026, 1, 6)),
        ("few_days", date(2026, 1, 5), date(2026, 1, 7)),
        ("weekend", date(2026, 1, 5), date(2026, 1, 10)),  # Monday -> Saturday
        ("weekend", date(2026, 1, 10), date(2026, 1, 17)),  # Saturday -> next Saturday
        ("next_week", date(2026, 1, 7), date(2026, 1, 12)),  # Wednesday -> Monday
        ("payday", date(2026, 1, 5), date(2026, 1, 10)),
        ("payday", date(2026, 1, 12), date(2026, 2, 10)),
        ("next_month", date(2026, 12, 20), date(2027, 1, 1)),
        ("double_eleven", date(2026, 10, 1), date(2026, 11, 11)),
        ("double_eleven", date(2026, 11, 12), date(2027, 11, 11)),
    ],
)
def test_come_back_day_places_each_promise(when: str, said: date, expected: date) -> None:
    assert come_back_day(when, said, pay_day=10) == expected


def test_come_back_phrases_respect_the_phrase_split() -> None:
    bank = load_bank()
    for when in bank.rules["journeys"]["come_back"]:
        for split in ("train", "heldout"):
            phrases = bank.come_back(when, split)
            assert phrases and all(split_of(p.source) == split for p in phrases), (when, split)
    heldout = list(journeys(30, seed=2, split="heldout"))
    assert {c.meta["phrase_split"] for c in heldout} == {"heldout"}


def test_journey_simulator_names_a_bad_story_in_the_rules() -> None:
    bank = load_bank()
    rules = dict(bank.rules, journeys=dict(bank.rules["journeys"], stories={"buy": 1.0}))
    with pytest.raises(ConfigError, match="unknown stories \\['buy'\\]"):
        JourneySimulator(replace(bank, rules=rules), seed=0)


def test_cli_generate_journeys_writes_conversations_and_orders(tmp_path: Path) -> None:
    out, orders_csv = tmp_path / "j.jsonl", tmp_path / "orders.csv"
    args = ["generate", "--journeys", "-n", "40", "--seed", "3", "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--orders", str(orders_csv)])
    assert result.exit_code == 0, result.output
    expected = list(journeys(40, seed=3))
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(expected)
    orders, bad = read_orders(orders_csv)
    assert not bad
    assert [o.order_id for o in orders] == [o["order_id"] for o in journey_orders(expected, 3)]
    assert [o.paid_at for o in orders] == [o["paid_at"] for o in journey_orders(expected, 3)]
