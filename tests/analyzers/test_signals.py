"""Evidence signals on hand-written conversations: each signal is found where it happens and
cites that message; values add up as the module table says."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from copilot.analyzers import SentimentAnalyzer, SignalsAnalyzer, TimingAnalyzer
from copilot.analyzers.cues import apologises, thanks
from copilot.analyzers.signals import SIGNAL_NAMES, SIGNALS, Signals
from copilot.pipeline import Analyzer, Doc, Pipeline
from copilot.prediction import Prediction
from copilot.schema import CHINA_TZ, Conversation
from copilot.scoring import default_rubric
from tests.builders import conversation_dict

Turn = tuple[str, str]
RUBRIC = default_rubric()


class _GoldLabels(Analyzer):
    """Labels from a fixed table (message index -> label), ``other`` / ``answer_product_question``
    elsewhere: the signals are tested apart from the classifiers."""

    name = "labels"
    assigns = ("labels", "acts")

    def __init__(self, labels: dict[int, str]) -> None:
        self.table = labels

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        out = []
        for doc in docs:
            labels = [
                Prediction(
                    self.table.get(
                        i, "other" if m.role == "customer" else "answer_product_question"
                    ),
                    0.9,
                )
                for i, m in enumerate(doc.conversation.messages)
            ]
            acts = [frozenset([p.label]) for p in labels]
            out.append({"labels": labels, "acts": acts})
        return out


def _signals(
    turns: list[Turn], labels: dict[int, str] | None = None, minutes: list[float] | None = None
) -> Signals:
    record = conversation_dict("c-signals", turns)
    start = datetime(2026, 3, 9, 10, 0, tzinfo=CHINA_TZ)
    for i, message in enumerate(record["messages"]):
        message["ts"] = (start + timedelta(minutes=minutes[i] if minutes else i)).isoformat()
    pipeline = Pipeline(
        [
            _GoldLabels(labels or {}),
            SentimentAnalyzer(),
            TimingAnalyzer(RUBRIC.timing),
            SignalsAnalyzer(RUBRIC.experience),
        ]
    )
    [doc] = pipeline([Conversation.model_validate(record)])
    signals: Signals = doc["signals"]
    return signals


def _cited(signals: Signals) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for s in signals.found:
        out.setdefault(s.name, []).append(s.message_index)
    return out


THANKED: list[Turn] = [
    ("customer", "我的订单三天了还没发货，怎么回事？"),
    ("guide", "非常抱歉让您久等了，已经帮您催仓库，今天一定发出"),
    ("customer", "好的，谢谢你"),
]
STILL_ASKING: list[Turn] = [
    ("customer", "退款什么时候到账？"),
    ("guide", "您好，退款申请已经提交了"),
    ("customer", "提交了多久能到账？都一个星期了，太慢了"),
]
REPEATED: list[Turn] = [
    ("customer", "这款耳机支持主动降噪吗"),
    ("guide", "您看的是哪一款呢？"),
    ("customer", "这款耳机支持主动降噪吗？"),
    ("guide", "支持的，降噪深度可以调节"),
]


@pytest.mark.parametrize(
    ("turns", "labels", "expected", "absent"),
    [
        (
            THANKED,
            {0: "complaint", 2: "thanks_closing"},
            {
                "thanks_at_end": [2],
                "end_sentiment": [2],
                "apologies": [1],
                "complaints": [0],
                "lowest_sentiment": [0],
            },
            {"question_at_end", "unanswered", "follow_ups", "repeated_questions"},
        ),
        (
            STILL_ASKING,
            {},
            {"question_at_end": [2], "unanswered": [2], "follow_ups": [2], "end_sentiment": [2]},
            {"thanks_at_end", "apologies", "repeated_questions", "complaints"},
        ),
        (
            REPEATED,
            {},
            # the customer's last word asks, even though the guide answered it
            {"repeated_questions": [2], "guide_questions": [1], "question_at_end": [2]},
            {"thanks_at_end", "unanswered", "apologies"},
        ),
    ],
    ids=["thanked", "still-asking", "repeated"],
)
def test_signals_cite_the_messages_they_were_seen_in(
    turns: list[Turn],
    labels: dict[int, str],
    expected: dict[str, list[int]],
    absent: set[str],
) -> None:
    cited = _cited(_signals(turns, labels))
    for name, indexes in expected.items():
        assert cited.get(name) == indexes, name
    assert not absent & set(cited)


def test_signals_reasons_are_chinese_and_quote_their_message() -> None:
    signals = _signals(THANKED, {0: "complaint", 2: "thanks_closing"})
    by_name = {s.name: s for s in signals.found}
    assert by_name["thanks_at_end"].reason == "顾客最后表示感谢「好的，谢谢你」"
    assert by_name["apologies"].reason.startswith("导购致歉「非常抱歉让您久等了")
    assert "积极" in by_name["end_sentiment"].reason
    assert all(s.reason and s.message_index < len(THANKED) for s in signals.found)


def test_signals_end_sentiment_is_the_last_customer_mood() -> None:
    happy = _signals(THANKED).totals()
    sour = _signals(STILL_ASKING).totals()
    assert happy["end_sentiment"] > 0.2 > -0.2 > sour["end_sentiment"]
    assert happy["lowest_sentiment"] < 0  # the complaint that opened it


def test_signals_negative_messages_count_at_most_three() -> None:
    turns: list[Turn] = []
    for k in range(5):
        turns += [("customer", "太差劲了，什么垃圾服务"), ("guide", f"非常抱歉，我们马上处理{k}")]
    signals = _signals(turns)
    cited = _cited(signals)
    assert cited["negative_messages"] == [0, 2, 4]
    assert cited["apologies"] == [1, 3, 5]  # capped too
    assert signals.totals()["negative_messages"] == 3.0
    assert signals.totals()["follow_ups"] == 4.0  # every customer message after the first reply


def test_signals_lengths_are_the_average_in_tens_of_characters_each_reply_citing_its_share() -> (
    None
):
    turns: list[Turn] = [
        ("customer", "这件衣服起球吗"),  # 7 characters
        ("guide", "不会"),  # 2
        ("customer", "那洗了会不会缩水呢，我比较担心这个问题"),  # 19
        ("guide", "不会缩水的，面料是预缩处理过的，可以放心机洗，建议冷水轻柔模式"),  # 31
    ]
    signals = _signals(turns)
    totals = signals.totals()
    assert totals["guide_reply_length"] == pytest.approx((2 + 31) / 2 / 10)
    assert totals["customer_message_length"] == pytest.approx((7 + 19) / 2 / 10)
    assert _cited(signals)["guide_reply_length"] == [1, 3]
    shares = [s.value for s in signals.found if s.name == "guide_reply_length"]
    assert shares == pytest.approx([0.1, 1.55])


def test_signals_late_replies_need_timestamps_and_cite_the_reply() -> None:
    turns = [("customer", "在吗？我想投诉一下快递"), ("guide", "您好，请说")]
    late = _signals(turns, {0: "complaint"}, minutes=[0, 45])  # complaints wait 10 minutes
    assert _cited(late)["late_replies"] == [1]
    assert "45 分钟" in next(s.reason for s in late.found if s.name == "late_replies")
    assert "late_replies" not in _cited(_signals(turns, {0: "complaint"}, minutes=[0, 2]))


def test_signals_without_a_reply_have_no_ending_and_flag_the_wait() -> None:
    cited = _cited(_signals([("customer", "你好，请问明天能发货吗？")]))
    assert cited["unanswered"] == [0]
    assert "question_at_end" not in cited and "thanks_at_end" not in cited
    assert "guide_reply_length" not in cited


def test_signals_totals_are_ordered_as_the_table_and_skip_zeros() -> None:
    signals = _signals(THANKED, {0: "complaint", 2: "thanks_closing"})
    names = [s.name for s in signals.found]
    assert names == sorted(names, key=SIGNAL_NAMES.index)
    assert all(v != 0 for v in signals.totals().values())
    assert [s.name for s in SIGNALS] == list(SIGNAL_NAMES)


@pytest.mark.parametrize(
    ("text", "apology", "thank"),
    [
        ("非常抱歉给您带来不便", True, False),
        ("对不起，是我们的失误", True, False),
        ("给您带来的不便敬请谅解", True, False),
        ("好的，谢谢亲", False, True),
        ("辛苦了！", False, True),
        ("这件有M码吗", False, False),
        ("不好意思，久等了，感谢耐心等待", True, True),
    ],
)
def test_cues_apologises_and_thanks(text: str, apology: bool, thank: bool) -> None:
    assert apologises(text) is apology
    assert thanks(text) is thank
