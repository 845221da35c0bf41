from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from copilot.analyzers import needs_answer, working_seconds
from copilot.analyzers.cues import asks_question, is_acknowledgement, is_content_free
from copilot.prediction import Prediction
from copilot.schema import CHINA_TZ
from copilot.scoring import default_rubric

RULES = default_rubric().timing


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=CHINA_TZ)


@pytest.mark.parametrize(
    ("start", "end", "hours", "expected"),
    [
        (_at(8, 10), _at(8, 10, 5), (9, 22), 300),
        (_at(8, 21, 50), _at(9, 9, 5), (9, 22), 15 * 60),  # overnight: 10 + 5 minutes
        (_at(8, 23), _at(9, 8), (9, 22), 0),  # all outside working hours
        (_at(8, 10), _at(8, 9), (9, 22), 0),  # end before start
        (_at(8, 21, 50), _at(9, 9, 5), (0, 24), 11 * 3600 + 15 * 60),
        (_at(1, 10), _at(11, 10), (9, 22), 10 * 13 * 3600),  # ten whole working days
        (_at(1, 10), _at(1, 10) + timedelta(days=400), (9, 22), 400 * 13 * 3600),
    ],
)
def test_working_seconds_counts_only_working_hours(
    start: datetime, end: datetime, hours: tuple[int, int], expected: float
) -> None:
    assert working_seconds(start, end, hours) == pytest.approx(expected)


def test_working_seconds_other_time_zones_are_read_in_china_time() -> None:

    utc_start = datetime(2026, 3, 8, 13, 50, tzinfo=UTC)  # 21:50 in China
    assert working_seconds(utc_start, _at(9, 9, 5), (9, 22)) == pytest.approx(15 * 60)


@pytest.mark.parametrize(
    ("text", "label", "confidence", "expected"),
    [
        ("好的谢谢", "thanks_closing", 0.9, False),
        ("好的谢谢", "price_inquiry", 0.9, False),  # the rule wins over a wrong model
        ("嗯嗯", "other", 0.4, False),
        ("收到啦～", None, 0.0, False),
        ("[微笑]", "other", 0.9, False),
        ("😊😊👍", "other", 0.2, False),
        ("。。。", "other", 0.2, False),
        ("拜拜[再见]", "thanks_closing", 0.6, False),
        ("哈哈哈", "other", 0.8, False),
        ("今天好冷", "other", 0.8, False),  # small talk the model is sure of
        ("今天好冷", "other", 0.3, True),  # ... and not sure of
        ("这件有M码吗", "stock", 0.9, True),
        ("在吗", "greeting", 0.9, True),
        ("好的，那什么时候发货？", "thanks_closing", 0.7, True),  # it asks something
        ("拍了", "purchase_intent", 0.8, True),
        ("我再考虑下", "hesitation", 0.8, True),
        ("[图片]", "product_inquiry", 0.6, True),  # a picture is content, not a sticker
        ("等了三天还没发货", "complaint", 0.9, True),
    ],
)
def test_needs_answer_rules_and_model_together(
    text: str, label: str | None, confidence: float, expected: bool
) -> None:
    prediction = Prediction(label, confidence) if label else None
    assert needs_answer(text, prediction, RULES) is expected


@pytest.mark.parametrize(
    ("text", "free", "ack", "question"),
    [
        ("好的谢谢", False, True, False),
        ("OK👌", False, True, False),
        ("好滴～", False, True, False),
        ("[強]", True, False, False),  # traditional sticker name is folded first
        ("？？", True, False, True),  # asks, but content-free wins in needs_answer
        ("这件多少钱", False, False, True),
        ("有沒有S碼", False, False, True),
        ("好的，还有别的颜色吗", False, False, True),
        ("我想要个大一点的包包", False, False, False),
    ],
)
def test_cues_table(text: str, free: bool, ack: bool, question: bool) -> None:
    assert is_content_free(text) is free
    assert is_acknowledgement(text) is ack
    assert asks_question(text) is question
