"""Scores a store manager would distrust: a greeting taken for an unanswered question, and a
guide-only broadcast nobody answered graded 100."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from copilot.schema import CHINA_TZ, Conversation
from copilot.scoring import Scorer
from tests.builders import conversation_dict


@pytest.fixture(scope="module")
def gold(scoring_bundle_dir: Path) -> Scorer:
    from models.runtime import load_scorer

    return load_scorer(scoring_bundle_dir, use_gold_labels=True)


def _conv(turns: list[tuple[str, str]], labels: dict[int, str]) -> Conversation:
    roles = [r for r, _ in turns]
    record = conversation_dict(
        "c-trust",
        turns,
        labels={
            "intents": {i: x for i, x in labels.items() if roles[i] == "customer"},
            "actions": {i: x for i, x in labels.items() if roles[i] == "guide"},
        },
    )
    start = datetime(2026, 3, 8, 10, 0, tzinfo=CHINA_TZ)
    for i, message in enumerate(record["messages"]):
        message["ts"] = (start + timedelta(minutes=i)).isoformat()
    return Conversation.model_validate(record)


@pytest.mark.parametrize("hello", ["哈喽你好，刚加上~~", "早上好😊"])
def test_a_greeting_is_not_an_unanswered_question(gold: Scorer, hello: str) -> None:
    chat = _conv(
        [
            ("customer", hello),
            ("guide", "您好呀，有什么可以帮您的～"),
            ("customer", "这件有M码吗"),
            ("guide", "有的亲，M码现货"),
        ],
        {0: "greeting", 1: "polite_closing", 2: "stock", 3: "logistics_info"},
    )
    report = gold.score(chat)
    coverage = report["dimensions"]["answer_coverage"]
    assert coverage["score"] == 100.0
    assert not [e for e in coverage["evidence"] if e["points"] < 0]


def test_a_broadcast_nobody_answered_has_no_overall_score_but_keeps_its_flags(gold: Scorer) -> None:
    chat = _conv(
        [
            ("guide", "双十二全场8折，最好的羽绒服就在我们家"),
            ("guide", "私下转账再优惠50，加我微信"),
        ],
        {0: "share_promotion", 1: "share_promotion"},
    )
    report = gold.score(chat)
    assert report["overall"] is None
    assert report["flags"]  # the compliance problems are still there to see
    assert report["dimensions"]["compliance"]["score"] < 100
