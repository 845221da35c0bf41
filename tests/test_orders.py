"""Orders: reading orders files (CSV, JSONL, gzip, renamed columns, quarantine) and the
attribution rule's edge cases (windows, several conversations, stores, time zones)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from copilot.cli import app
from copilot.errors import InputError
from copilot.orders import (
    ConversationSpan,
    Order,
    apply_orders,
    attribute,
    read_orders,
)
from copilot.schema import Conversation, Outcome
from tests.builders import timed_conversation_dict

runner = CliRunner()


def chat(cid: str, *stamps: str, customer: str | None = "u-1", **fields: Any) -> Conversation:
    """A conversation of ``customer`` with messages at ``stamps``."""
    record = timed_conversation_dict(cid, list(stamps), customer_id=customer, **fields)
    return Conversation.model_validate(record)


def order(paid_at: str, amount: float = 100.0, customer: str = "u-1", **fields: Any) -> Order:
    return Order.model_validate(
        {"customer_id": customer, "paid_at": paid_at, "amount": amount, **fields}
    )


def where(conversations: list[Conversation], *orders: Order, hours: float = 72) -> list[Any]:
    """``(conversation_id, reason)`` of each order."""
    result = attribute(conversations, orders, hours=hours)
    return [(m.conversation_id, m.reason) for m in result.matches]


# --------------------------------------------------------------------------- the rule


MORNING = chat("c-am", "2026-03-08T09:00:00+08:00", "2026-03-08T09:05:00+08:00")
EVENING = chat("c-pm", "2026-03-08T20:00:00+08:00", "2026-03-08T20:30:00+08:00")


@pytest.mark.parametrize(
    ("paid_at", "expected"),
    [
        # the later of two conversations before one payment gets it
        ("2026-03-09T10:00:00+08:00", ("c-pm", None)),
        # between the two: the morning one
        ("2026-03-08T12:00:00+08:00", ("c-am", None)),
        # paid during the evening conversation (first message before, last after): it counts
        ("2026-03-08T20:10:00+08:00", ("c-pm", None)),
        # paid at the very second of a message
        ("2026-03-08T20:00:00+08:00", ("c-pm", None)),
        # exactly 72 hours after the last message: still in the window
        ("2026-03-11T20:30:00+08:00", ("c-pm", None)),
        # one second later: outside it
        ("2026-03-11T20:30:01+08:00", (None, "outside_window")),
        # before any message of the customer
        ("2026-03-08T08:59:59+08:00", (None, "paid_before_chat")),
    ],
)
def test_attribute_gives_the_order_to_the_latest_conversation_before_it(
    paid_at: str, expected: tuple[str | None, str | None]
) -> None:
    assert where([MORNING, EVENING], order(paid_at)) == [expected]


def test_attribute_an_unknown_customer_matches_nothing() -> None:
    assert where([MORNING], order("2026-03-08T12:00:00+08:00", customer="u-404")) == [
        (None, "unknown_customer")
    ]


def test_attribute_no_match_leaves_the_conversation_not_converted() -> None:
    result = attribute([MORNING], [order("2026-03-20T12:00:00+08:00")])
    assert result.outcomes == {"c-am": Outcome(converted=False)}
    assert result.to_dict()["orders"]["unattributed_by_reason"]["outside_window"] == 1
    assert result.to_dict()["conversations"] == {
        "total": 1,
        "with_outcome": 1,
        "converted": 0,
        "not_converted": 1,
        "no_customer": 0,
        "no_time": 0,
    }


def test_attribute_compares_instants_across_time_zones() -> None:
    # 02:00 UTC is 10:00 China time.
    utc = chat("c-utc", "2026-03-08T02:00:00Z", "2026-03-08T02:10:00Z")
    assert where([utc], order("2026-03-08T09:59:00+08:00")) == [(None, "paid_before_chat")]
    assert where([utc], order("2026-03-08T10:00:00+08:00")) == [("c-utc", None)]
    assert where([utc], order("2026-03-08T01:59:00Z")) == [(None, "paid_before_chat")]
    # 72 h after 02:10 UTC, written in China time
    assert where([utc], order("2026-03-11T10:10:00+08:00")) == [("c-utc", None)]
    assert where([utc], order("2026-03-11T10:11:00+08:00")) == [(None, "outside_window")]


def test_attribute_reads_naive_times_as_china_time() -> None:
    utc = chat("c-utc", "2026-03-08T02:00:00Z")
    # 09:30 China time is before 10:00 China time (as UTC, 09:30 would be after 02:00)
    assert order("2026-03-08 09:30:00").paid_at.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
    assert where([utc], order("2026-03-08 09:30:00")) == [(None, "paid_before_chat")]
    assert where([utc], order("2026-03-08 10:30:00")) == [("c-utc", None)]
    naive_chat = chat("c-naive", "2026-03-08T10:00:00")
    assert where([naive_chat], order("2026-03-08T02:30:00Z")) == [("c-naive", None)]


def test_attribute_sums_the_orders_of_one_conversation() -> None:
    result = attribute(
        [MORNING, EVENING],
        [
            order("2026-03-08T21:00:00+08:00", 199.5, order_id="a"),
            order("2026-03-09T08:00:00+08:00", 100.25, order_id="b"),
            order("2026-03-08T10:00:00+08:00", 50, order_id="c"),
        ],
    )
    assert result.outcomes == {
        "c-pm": Outcome(converted=True, order_amount=299.75),
        "c-am": Outcome(converted=True, order_amount=50.0),
    }
    counts = result.to_dict()["orders"]
    assert counts["attributed"] == 3 and counts["attributed_amount"] == 349.75


def test_attribute_goes_to_one_conversation_per_order_and_breaks_ties() -> None:
    # two conversations whose last messages before the payment are at the same second: the
    # one that started later gets it, and only that one
    early = chat("c-1", "2026-03-08T08:00:00+08:00", "2026-03-08T10:00:00+08:00")
    late = chat("c-2", "2026-03-08T09:00:00+08:00", "2026-03-08T10:00:00+08:00")
    result = attribute([early, late], [order("2026-03-08T11:00:00+08:00")])
    assert [m.conversation_id for m in result.matches] == ["c-2"]
    assert result.outcomes["c-1"] == Outcome(converted=False)


def test_attribute_an_order_of_a_store_goes_to_that_store_only() -> None:
    s1 = chat("c-s1", "2026-03-08T09:00:00+08:00", store_id="s-1")
    s2 = chat("c-s2", "2026-03-08T10:00:00+08:00", store_id="s-2")
    assert where([s1, s2], order("2026-03-08T11:00:00+08:00", store_id="s-1")) == [("c-s1", None)]
    assert where([s1, s2], order("2026-03-08T11:00:00+08:00")) == [("c-s2", None)]
    assert where([s1, s2], order("2026-03-08T11:00:00+08:00", store_id="s-9")) == [
        (None, "other_store")
    ]


def test_attribute_leaves_conversations_without_customer_or_time_alone() -> None:
    anonymous = chat("c-anon", "2026-03-08T09:00:00+08:00", customer=None)
    untimed = chat("c-untimed", "", "")
    labelled = Conversation.model_validate(
        {**untimed.model_dump(), "conversation_id": "c-labelled", "outcome": {"converted": True}}
    )
    result = attribute([anonymous, untimed, labelled], [order("2026-03-08T10:00:00+08:00")])
    assert result.outcomes == {}
    assert result.matches[0].reason == "unknown_customer"
    counts = result.to_dict()["conversations"]
    assert (counts["no_customer"], counts["no_time"], counts["with_outcome"]) == (1, 2, 0)
    assert result.apply(labelled) is labelled and result.apply(anonymous).outcome is None


def test_apply_replaces_an_existing_outcome_and_copies() -> None:
    won = Conversation.model_validate(
        {**MORNING.model_dump(), "outcome": {"converted": True, "order_amount": 1.0}}
    )
    result = attribute([won], [])
    applied = result.apply(won)
    assert applied.outcome == Outcome(converted=False)
    assert won.outcome == Outcome(converted=True, order_amount=1.0)  # the input is not changed


def test_attribute_counts_a_repeated_order_id_once_as_its_last_row() -> None:
    result = attribute(
        [MORNING],
        [
            order("2026-03-08T10:00:00+08:00", 10, order_id="x"),
            order("2026-03-08T10:00:00+08:00", 30, order_id="x"),
        ],
    )
    assert result.outcomes["c-am"] == Outcome(converted=True, order_amount=30.0)
    assert result.to_dict()["orders"]["total"] == 1
    assert result.to_dict()["orders"]["duplicates"] == 1


def test_attribute_pools_a_conversation_id_given_twice_and_takes_spans() -> None:
    first = chat("c-x", "2026-03-08T09:00:00+08:00")
    second = chat("c-x", "2026-03-10T09:00:00+08:00")
    spans = [ConversationSpan.of(first), ConversationSpan.of(second)]
    result = attribute(spans, [order("2026-03-12T09:00:00+08:00")])
    assert result.matches[0].conversation_id == "c-x"
    assert result.to_dict()["conversations"]["total"] == 1


@pytest.mark.parametrize("hours", [0, -1, float("nan"), float("inf"), True])
def test_attribute_refuses_a_bad_window(hours: float) -> None:
    with pytest.raises(InputError, match="positive number of hours"):
        attribute([MORNING], [], hours=hours)


def test_a_shorter_window_leaves_more_orders_out() -> None:
    late = order("2026-03-09T10:00:00+08:00")  # 13.5 h after the evening conversation
    assert where([EVENING], late, hours=12) == [(None, "outside_window")]
    assert where([EVENING], late, hours=14) == [("c-pm", None)]


# --------------------------------------------------------------------------- orders


def test_order_without_id_gets_a_deterministic_one() -> None:
    a = order("2026-03-08T10:00:00+08:00", 99.0)
    b = order("2026-03-08T02:00:00Z", 99.0)  # the same instant
    c = order("2026-03-08T10:00:00+08:00", 98.0)
    assert a.order_id.startswith("o_") and len(a.order_id) == 18
    assert a.order_id == b.order_id != c.order_id
    assert order("2026-03-08T10:00:00+08:00", order_id=" 123 ").order_id == "123"
    assert (
        Order.model_validate(
            {"customer_id": 42, "paid_at": "2026-03-08T10:00:00", "amount": "5", "order_id": 7}
        ).model_dump()["order_id"]
        == "7"
    )


# --------------------------------------------------------------------------- reading


def _csv(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_read_orders_csv_with_renamed_columns_and_gzip(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "orders.csv.gz",
        "\ufeff订单号,客户ID,付款时间,实付金额,商品,备注\n"
        "A-1,u-1,2026-03-08 10:00:00,399.00,大衣,\n"
        ",u-2,2026-03-08T02:00:00Z,59,,加急\n",
        gz=True,
    )
    orders, bad = read_orders(
        path,
        columns={
            "订单号": "order_id",
            "客户ID": "customer_id",
            "付款时间": "paid_at",
            "实付金额": "amount",
            "商品": "product",
        },
    )
    assert bad == []
    assert [o.order_id for o in orders][0] == "A-1" and orders[1].order_id.startswith("o_")
    assert orders[0].paid_at.isoformat() == "2026-03-08T10:00:00+08:00"
    assert orders[0].amount == 399.0 and orders[0].product == "大衣"
    assert orders[1].product is None


def test_read_orders_jsonl_with_epoch_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    lines = [
        {"order_id": "x", "Customer_ID": "u-1", "paid_at": 1772935200000, "amount": 10},
        {
            "order_id": "y",
            "customer_id": "u-1",
            "paid_at": "2026-03-08T10:00:00+08:00",
            "amount": 1.5,
            "extra": "ignored",
        },
    ]
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n\n")
    orders, bad = read_orders(path)
    assert bad == []
    assert orders[0].paid_at == orders[1].paid_at  # 1772935200000 ms is 2026-03-08 02:00 UTC


@pytest.mark.parametrize(
    ("row", "fragments"),
    [
        ("o-1,u-1,yesterday,10", ["line 2 (order 'o-1')", "paid_at", "'yesterday'"]),
        ("o-2,u-1,2026-03-08,10", ["paid_at", "without a time of day", "'2026-03-08'"]),
        ("o-3,u-1,2026-03-08 10:00,-5", ["amount", "greater than or equal to 0", "-5"]),
        ("o-4,u-1,2026-03-08 10:00,¥10", ["amount", "valid number", "'¥10'"]),
        ("o-5,,2026-03-08 10:00,10", ["customer_id: field is required"]),
        ("o-6,u-1,2026-03-08 10:00,nan", ["amount", "finite number", "'nan'"]),
        ("o-7,u-1,2026-03-08 10:00,10,surplus", ["the row has 5 fields but the header has 4"]),
    ],
)
def test_read_orders_quarantines_bad_rows_naming_field_and_value(
    tmp_path: Path, row: str, fragments: list[str]
) -> None:
    path = _csv(
        tmp_path / "orders.csv",
        f"order_id,customer_id,paid_at,amount\n{row}\ngood,u-1,2026-03-08 10:00,1\n",
    )
    orders, bad = read_orders(path)
    assert [o.order_id for o in orders] == ["good"]
    assert len(bad) == 1 and bad[0].line == 2
    for fragment in fragments:
        assert fragment in bad[0].error, (fragment, bad[0].error)
    assert isinstance(bad[0].raw, dict) and bad[0].raw["order_id"] == row.split(",")[0]


def test_read_orders_quarantines_bad_jsonl_lines(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_bytes(
        b'{"customer_id": "u-1", "paid_at": "2026-03-08T10:00:00", "amount": 1}\n'
        b"not json\n"
        b"[1, 2]\n"
        b'{"customer_id": "u-1", "paid_at": "2026-03-08T10:00:00"}\n'
        b'{"customer_id": "u-1", "paid_at": "2026-03-08T10:00:00", "amount": "\xff"}\n'
    )
    orders, bad = read_orders(path)
    assert len(orders) == 1
    assert [q.line for q in bad] == [2, 3, 4, 5]
    assert "invalid JSON" in bad[0].error
    assert "expected a JSON object" in bad[1].error
    assert "amount: field is required" in bad[2].error
    assert "invalid UTF-8" in bad[3].error


@pytest.mark.parametrize(
    ("header", "columns", "message"),
    [
        ("order_id,customer,paid_at,amount", None, "lacks the column 'customer_id'"),
        ("id,customer_id,time,amount", None, "--order-column 'SOURCE=paid_at'"),
        (
            "customer_id,user,paid_at,amount",
            {"user": "customer_id"},
            "columns 'customer_id' and 'user' both map to 'customer_id'",
        ),
        ("customer_id,paid_at,amount", {"x": "price"}, "'price' is not an order column"),
    ],
)
def test_read_orders_refuses_a_file_it_cannot_use(
    tmp_path: Path, header: str, columns: dict[str, str] | None, message: str
) -> None:
    path = _csv(tmp_path / "orders.csv", f"{header}\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_orders(path, columns=columns)


def test_read_orders_of_a_missing_file() -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_orders("/nonexistent/orders.csv")


def test_apply_orders_returns_copies_with_outcomes_and_a_summary(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "orders.csv",
        "customer_id,paid_at,amount\nu-1,2026-03-08T21:00:00+08:00,88\nu-1,soon,1\n",
    )
    conversations = [MORNING, EVENING, chat("c-other", "2026-03-08T09:00:00+08:00", customer="u-2")]
    labelled, summary = apply_orders(conversations, path, hours=72)
    assert [c.conversation_id for c in labelled] == ["c-am", "c-pm", "c-other"]
    assert [c.outcome for c in labelled] == [
        Outcome(converted=False),
        Outcome(converted=True, order_amount=88.0),
        Outcome(converted=False),
    ]
    assert MORNING.outcome is None
    assert summary["orders"]["attributed"] == 1 and summary["conversations"]["converted"] == 1
    assert summary["quarantined"] == 1 and "'soon'" in summary["quarantine"][0]["error"]
    assert summary["hours"] == 72.0 and summary["orders_file"] == str(path)


# --------------------------------------------------------------------------- CLI


def test_cli_stats_with_orders_prints_the_matching_counts(tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(c.model_dump(mode="json", exclude_none=True), ensure_ascii=False)
            for c in (MORNING, EVENING, chat("c-anon", "2026-03-08T09:00:00+08:00", customer=None))
        )
        + "\n",
        encoding="utf-8",
    )
    orders = _csv(
        tmp_path / "orders.csv",
        "客户,时间,金额\nu-1,2026-03-08T21:00:00+08:00,88\nu-9,2026-03-08T21:00:00+08:00,5\n"
        "u-1,2026-03-20T21:00:00+08:00,7\nu-1,x,1\n",
    )
    args = ["stats", str(data), "--orders", str(orders), "--attribution-hours", "48"]
    args += ["--order-column", "客户=customer_id", "--order-column", "时间=paid_at"]
    args += ["--order-column", "金额=amount"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["orders"]["hours"] == 48.0
    assert stats["orders"]["orders"]["attributed"] == 1
    assert stats["orders"]["orders"]["unattributed_by_reason"] == {
        "unknown_customer": 1,
        "other_store": 0,
        "paid_before_chat": 0,
        "outside_window": 1,
    }
    assert stats["orders"]["conversations"]["converted"] == 1
    assert stats["orders"]["conversations"]["no_customer"] == 1
    assert stats["orders"]["quarantined"] == 1
    assert stats["conversion"]["with_outcome"] == 2 and stats["conversion"]["rate"] == 0.5
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "1 attributed" in table.stdout and "outside_window" in table.stdout


def test_cli_stats_refuses_a_bad_window_or_orders_file(tmp_path: Path) -> None:
    data = tmp_path / "chats.jsonl"
    data.write_text(json.dumps(MORNING.model_dump(mode="json")) + "\n", encoding="utf-8")
    orders = _csv(tmp_path / "orders.csv", "customer_id,paid_at,amount\n")
    bad_window = runner.invoke(
        app, ["stats", str(data), "--orders", str(orders), "--attribution-hours", "0"]
    )
    assert bad_window.exit_code == 2 and "positive number of hours" in bad_window.output
    missing = runner.invoke(app, ["stats", str(data), "--orders", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    bad_column = runner.invoke(
        app, ["stats", str(data), "--orders", str(orders), "--order-column", "a=b"]
    )
    assert bad_column.exit_code == 2 and "not an order column" in bad_column.output
