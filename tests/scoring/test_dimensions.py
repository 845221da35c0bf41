"""Hand-built conversations prove the evidence: each fault lowers its dimension and cites its
message. Most cases carry gold labels (``use_gold_labels``) so they test the rubric itself; the
end-to-end cases at the bottom go through the trained models as users would."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from copilot.schema import CHINA_TZ, Conversation
from copilot.scoring import Scorer, default_rubric
from copilot.scoring.rubric import Rubric
from models.runtime import load_scorer
from tests.builders import conversation_dict, make_conversation

Turn = tuple[str, str]


@pytest.fixture(scope="module")
def gold(scoring_bundle_dir: Path) -> Scorer:
    return load_scorer(scoring_bundle_dir, use_gold_labels=True)


@pytest.fixture(scope="module")
def scorer(scoring_bundle_dir: Path) -> Scorer:
    return load_scorer(scoring_bundle_dir)


def _conv(
    turns: list[Turn],
    labels: dict[int, str],
    minutes: list[float] | None = None,
    start: datetime = datetime(2026, 3, 8, 10, 0, tzinfo=CHINA_TZ),
) -> Conversation:
    """A conversation whose message ``i`` is sent ``minutes[i]`` after ``start`` (one a minute
    by default), with gold labels by message index."""
    roles = [r for r, _ in turns]
    record = conversation_dict(
        "c-hand",
        turns,
        labels={
            "intents": {i: x for i, x in labels.items() if roles[i] == "customer"},
            "actions": {i: x for i, x in labels.items() if roles[i] == "guide"},
        },
    )
    stamps = minutes if minutes is not None else range(len(turns))
    for message, t in zip(record["messages"], stamps, strict=True):
        message["ts"] = (start + timedelta(minutes=t)).isoformat()
    return Conversation.model_validate(record)


def _dim(report: dict[str, Any], dim: str) -> dict[str, Any]:
    return report["dimensions"][dim]


def _cited(report: dict[str, Any], dim: str) -> set[int]:
    return {e["message_index"] for e in _dim(report, dim)["evidence"] if e["points"] < 0}


GOOD_SALE: list[Turn] = [
    ("customer", "在吗？这件大衣还有M码吗"),
    ("guide", "亲，在的～M码有货哦"),
    ("guide", "您平时穿什么码？身高体重方便说下吗"),
    ("customer", "165，52kg"),
    ("guide", "按您的身材M码正合适，这款羊毛含量高，版型显瘦，很适合通勤"),
    ("customer", "好的，那我拍了"),
    ("guide", "好的亲，这是下单链接，今天下单明天就发顺丰～"),
    ("customer", "好的谢谢"),
]
GOOD_LABELS = {
    0: "stock",
    1: "logistics_info",
    2: "greet_and_discover",
    3: "size_fit",
    4: "size_advice",
    5: "purchase_intent",
    6: "close_sale",
    7: "thanks_closing",
}


def test_scorer_good_sale_scores_high_without_flags(gold: Scorer) -> None:
    report = gold.score(_conv(GOOD_SALE, GOOD_LABELS))
    assert report["flags"] == []
    assert report["overall"] >= 90
    assert _dim(report, "responsiveness")["score"] == 100
    assert _dim(report, "answer_coverage")["score"] == 100
    assert _dim(report, "closing")["score"] == 100
    assert _dim(report, "objection_handling")["score"] is None  # no objection: does not apply


def test_responsiveness_unanswered_question_is_cited(gold: Scorer) -> None:
    turns = [*GOOD_SALE[:5], ("customer", "这件有什么颜色？什么时候能发货")]
    labels = {**{i: GOOD_LABELS[i] for i in range(5)}, 5: "logistics"}
    report = gold.score(_conv(turns, labels))
    baseline = gold.score(_conv(GOOD_SALE[:5], {i: GOOD_LABELS[i] for i in range(5)}))
    assert _dim(report, "responsiveness")["score"] < _dim(baseline, "responsiveness")["score"]
    assert 5 in _cited(report, "responsiveness")
    assert 5 in _cited(report, "answer_coverage")
    assert any(f["rule"] == "unanswered" and f["message_index"] == 5 for f in report["flags"])
    assert report["timing"]["unanswered"] == 1


def test_responsiveness_slow_reply_is_flagged_with_its_wait(gold: Scorer) -> None:
    minutes = [0, 1, 1.5, 3, 4, 5, 95, 96]  # the purchase signal waits 90 minutes
    report = gold.score(_conv(GOOD_SALE, GOOD_LABELS, minutes))
    flags = [f for f in report["flags"] if f["rule"] == "slow_reply"]
    assert [f["message_index"] for f in flags] == [5]
    assert "1.5 小时" in flags[0]["explanation"]
    assert 5 in _cited(report, "responsiveness")


def test_responsiveness_night_wait_counts_only_working_hours(gold: Scorer) -> None:
    # 21:56 purchase signal, 09:02 answer: six working minutes, not eleven hours.
    minutes = [0, 1, 1.5, 3, 4, 5, 5 + 11 * 60 + 6, 5 + 11 * 60 + 7]
    night = datetime(2026, 3, 8, 21, 51, tzinfo=CHINA_TZ)
    report = gold.score(_conv(GOOD_SALE, GOOD_LABELS, minutes, start=night))
    assert not [f for f in report["flags"] if f["kind"] == "timing"]
    assert report["dimensions"]["responsiveness"]["score"] >= 90


def test_objection_handling_ignored_price_objection_is_cited(gold: Scorer) -> None:
    turns: list[Turn] = [
        ("customer", "这款面霜多少钱"),
        ("guide", "亲，这款299，现在下单送小样哦"),
        ("customer", "太贵了，别家便宜50"),
        ("guide", "这款还有另外两个色号可以选哦"),
        ("customer", "那算了"),
    ]
    labels = {
        0: "price_inquiry",
        1: "share_promotion",
        2: "price_objection",
        3: "recommend_product",
        4: "hesitation",
    }
    report = gold.score(_conv(turns, labels))
    assert _dim(report, "objection_handling")["score"] == 0
    assert 2 in _cited(report, "objection_handling")
    handled = {**labels, 3: "handle_price_objection"}
    turns[3] = ("guide", "理解您～我们是品牌直营保证正品，算下来每天不到一块钱，还送同款小样")
    better = gold.score(_conv(turns, handled))
    assert _dim(better, "objection_handling")["score"] > _dim(report, "objection_handling")["score"]


def test_compliance_absolute_claim_flags_its_span(gold: Scorer) -> None:
    text = "亲，我们这款是全网第一，放心买"
    turns: list[Turn] = [("customer", "这款羽绒服怎么样"), ("guide", text), ("customer", "好的")]
    report = gold.score(
        _conv(turns, {0: "product_inquiry", 1: "answer_product_question", 2: "thanks_closing"})
    )
    flags = [f for f in report["flags"] if f["kind"] == "compliance"]
    assert [(f["rule"], f["message_index"]) for f in flags] == [("absolute_claim", 1)]
    span = text[flags[0]["start"] : flags[0]["end"]]
    assert "第一" in span
    assert _dim(report, "compliance")["score"] < 100
    assert 1 in _cited(report, "compliance")


def test_timing_closing_thanks_raises_no_timeout(gold: Scorer) -> None:
    turns = [*GOOD_SALE[:7], ("customer", "好的谢谢[抱拳]")]
    report = gold.score(_conv(turns, GOOD_LABELS))
    assert report["timing"]["unanswered"] == 0
    assert not [f for f in report["flags"] if f["kind"] == "timing"]


def test_courtesy_rude_reply_costs_points_and_is_cited(gold: Scorer) -> None:
    turns: list[Turn] = [
        ("customer", "这件会起球吗"),
        ("guide", "爱买不买，问那么多干嘛"),
    ]
    report = gold.score(_conv(turns, {0: "trust_objection", 1: "build_trust"}))
    assert _dim(report, "courtesy")["score"] <= 60
    assert 1 in _cited(report, "courtesy")
    assert any(f["rule"] == "rude" for f in report["flags"])


def test_needs_discovery_recommending_blind_scores_lower_than_asking_first(gold: Scorer) -> None:
    blind = gold.score(
        _conv(
            [("customer", "想买个面霜"), ("guide", "推荐这款修护霜，卖得最火")],
            {0: "product_inquiry", 1: "recommend_product"},
        )
    )
    asked = gold.score(
        _conv(
            [
                ("customer", "想买个面霜"),
                ("guide", "亲是什么肤质呀？平时容易干吗？"),
                ("customer", "干皮"),
                ("guide", "干皮推荐这款修护霜，保湿很好"),
            ],
            {0: "product_inquiry", 1: "greet_and_discover", 2: "size_fit", 3: "recommend_product"},
        )
    )
    assert _dim(blind, "needs_discovery")["score"] < _dim(asked, "needs_discovery")["score"]
    assert 1 in _cited(blind, "needs_discovery")


def test_closing_purchase_signal_without_close_is_cited(gold: Scorer) -> None:
    turns: list[Turn] = [("customer", "就要这个了，怎么下单"), ("guide", "嗯嗯")]
    report = gold.score(_conv(turns, {0: "purchase_intent", 1: "polite_closing"}))
    assert _dim(report, "closing")["score"] == 0
    assert 0 in _cited(report, "closing")


def test_overall_weighted_mean_skips_dimensions_that_do_not_apply() -> None:
    rubric = default_rubric()
    scores = {"responsiveness": 100.0, "objection_handling": None, "compliance": 50.0}
    w_r, w_c = rubric.weights["responsiveness"], rubric.weights["compliance"]
    assert rubric.overall(scores) == round((100 * w_r + 50 * w_c) / (w_r + w_c), 1)
    assert rubric.overall({"closing": None}) is None


def test_rubric_weights_change_the_overall(gold: Scorer, scoring_bundle_dir: Path) -> None:
    conv = _conv(
        [("customer", "这款面霜多少钱"), ("guide", "299，全网最低价，100%有效")],
        {0: "price_inquiry", 1: "share_promotion"},
    )
    only_compliance = Rubric.model_validate(
        {**default_rubric().model_dump(), "weights": {"compliance": 1.0}}
    )
    strict = load_scorer(scoring_bundle_dir, rubric=only_compliance, use_gold_labels=True)
    assert strict.score(conv)["overall"] == strict.score(conv)["dimensions"]["compliance"]["score"]
    assert strict.score(conv)["overall"] < gold.score(conv)["overall"]


def test_report_evidence_reasons_are_chinese_and_point_at_messages(gold: Scorer) -> None:
    report = gold.score(_conv(GOOD_SALE[:5], {i: GOOD_LABELS[i] for i in range(5)}))
    n = len(report["messages"])
    for dim in report["dimensions"].values():
        for e in dim["evidence"]:
            assert 0 <= e["message_index"] < n
            assert any("\u4e00" <= ch <= "\u9fff" for ch in e["reason"])


# ------------------------------------------------------------------ end to end, predicted labels


def test_scorer_predicted_labels_cite_the_unanswered_question(scorer: Scorer) -> None:
    turns: list[Turn] = [
        ("customer", "你好，这件外套有黑色吗"),
        ("guide", "亲，黑色有货的哦～"),
        ("customer", "那什么时候发货？发什么快递"),
    ]
    report = scorer.score(make_conversation("c-e2e", turns))
    assert report["messages"][0]["role"] == "customer" and "intent" in report["messages"][0]
    assert report["messages"][1]["role"] == "guide" and "action" in report["messages"][1]
    assert any(f["rule"] == "unanswered" and f["message_index"] == 2 for f in report["flags"])
    assert 2 in _cited(report, "responsiveness")


def test_scorer_predicted_labels_thanks_needs_no_reply(scorer: Scorer) -> None:
    turns: list[Turn] = [
        ("customer", "这件外套有黑色吗"),
        ("guide", "亲，黑色有货的哦～"),
        ("customer", "好的谢谢"),
    ]
    report = scorer.score(make_conversation("c-e2e", turns))
    assert report["timing"]["unanswered"] == 0
    assert not [f for f in report["flags"] if f["kind"] == "timing"]


@pytest.mark.parametrize(
    "text",
    [
        "[微笑]",
        "😂😂😂",
        "？？？",
        "x" * 20000,
        "<script>alert(1)</script>",
        "這件衣服質量太差了！！",
    ],
)
def test_scorer_odd_customer_text_never_raises(scorer: Scorer, text: str) -> None:
    turns: list[Turn] = [("customer", text), ("guide", "亲，在的"), ("customer", text)]
    report = scorer.score(make_conversation("c-odd", turns))
    assert report["overall"] is None or 0 <= report["overall"] <= 100
