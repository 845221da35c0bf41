"""The experience dimension: evidence signals in the score, their rubric section (YAML round trip,
refused values) and calibration of their points to ratings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from copilot.analyzers.signals import SIGNAL_NAMES
from copilot.errors import ConfigError
from copilot.scoring import Scorer, default_rubric, load_rubric
from copilot.scoring.calibrate import calibrate
from copilot.scoring.fitting import fit_rubric, overall_scores
from copilot.scoring.rubric import DIMENSIONS, Rubric
from models.runtime import load_scorer
from tests.builders import conversation_dict, make_report

Turn = tuple[str, str]

THANKED: list[Turn] = [
    ("customer", "我买的电饭煲用了两天就坏了，怎么办？"),
    ("guide", "非常抱歉给您添麻烦了，我马上为您安排换新，今天就寄出"),
    ("customer", "好的，谢谢你，服务很好"),
]
LEFT_ASKING: list[Turn] = [
    ("customer", "我买的电饭煲用了两天就坏了，怎么办？"),
    ("guide", "您好"),
    ("customer", "到底能不能换？都等半天了，太失望了"),
]
LABELS = {0: "complaint", 1: "soothe_and_escalate", 2: "thanks_closing"}


@pytest.fixture(scope="module")
def gold(scoring_bundle_dir: Path) -> Scorer:
    return load_scorer(scoring_bundle_dir, use_gold_labels=True)


def _conv(turns: list[Turn], labels: dict[int, str]) -> Any:
    from copilot.schema import Conversation

    roles = [r for r, _ in turns]
    record = conversation_dict(
        "c-exp",
        turns,
        labels={
            "intents": {i: x for i, x in labels.items() if roles[i] == "customer"},
            "actions": {i: x for i, x in labels.items() if roles[i] == "guide"},
        },
    )
    return Conversation.model_validate(record)


# --------------------------------------------------------------------------- in the score


def test_experience_evidence_cites_messages_and_adds_up_to_the_score(gold: Scorer) -> None:
    report = gold.score(_conv(THANKED, LABELS))
    entry = report["dimensions"]["experience"]
    rules = default_rubric().experience
    assert entry["evidence"], "every weighted signal found is evidence"
    for e in entry["evidence"]:
        assert 0 <= e["message_index"] < len(THANKED)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in e["reason"])
        assert e["points"] != 0
    cited = {e["message_index"] for e in entry["evidence"] if e["points"] > 0}
    assert 2 in cited  # the thanks at the end
    expected = rules.start + sum(e["points"] for e in entry["evidence"])
    assert entry["score"] == pytest.approx(min(100.0, max(0.0, expected)), abs=0.6)
    assert report["signals"]["thanks_at_end"] == 1.0


def test_experience_ranks_a_thanked_conversation_above_one_left_asking(gold: Scorer) -> None:
    thanked = gold.score(_conv(THANKED, LABELS))
    asking = gold.score(_conv(LEFT_ASKING, {0: "complaint", 1: "greet_and_discover"}))
    assert (
        thanked["dimensions"]["experience"]["score"] > asking["dimensions"]["experience"]["score"]
    )
    asked = {e["message_index"] for e in asking["dimensions"]["experience"]["evidence"]}
    assert 2 in asked  # the unanswered, unhappy last question is cited


def test_experience_evidence_keeps_the_largest_effects_deductions_first(
    scoring_bundle_dir: Path,
) -> None:
    data = default_rubric().model_dump(mode="json")
    data["experience"]["points"] = {
        "guide_reply_length": -0.5,
        "customer_message_length": -0.5,
        "thanks_at_end": 25.0,
        "complaints": -8.0,
    }
    rubric = Rubric.model_validate(data)
    scorer = load_scorer(scoring_bundle_dir, rubric=rubric, use_gold_labels=True)
    turns: list[Turn] = []
    for k in range(6):
        turns += [
            ("customer", f"第{k}个问题：这个订单怎么还没到"),
            ("guide", "亲，正在为您查询物流"),
        ]
    turns.append(("customer", "好的，谢谢"))
    labels = {0: "complaint", len(turns) - 1: "thanks_closing"}
    evidence = scorer.score(_conv(turns, labels))["dimensions"]["experience"]["evidence"]
    assert len(evidence) == 8  # 13 length shares, a complaint and the thanks: the largest 8
    assert evidence[0]["points"] == -8.0 and evidence[0]["message_index"] == 0
    assert evidence[-1]["points"] == 25.0 and evidence[-1]["message_index"] == len(turns) - 1
    assert [e["points"] < 0 for e in evidence] == sorted(
        (e["points"] < 0 for e in evidence), reverse=True
    )


def test_default_overall_does_not_count_experience(gold: Scorer) -> None:
    rubric = default_rubric()
    assert rubric.weights["experience"] == 0
    report = gold.score(_conv(LEFT_ASKING, {0: "complaint", 1: "greet_and_discover"}))
    scores = {d: e["score"] for d, e in report["dimensions"].items()}
    without = {d: s for d, s in scores.items() if d != "experience"}
    assert report["overall"] == rubric.overall(without)


def test_a_brand_that_weights_experience_scores_the_ending(scoring_bundle_dir: Path) -> None:
    rubric = default_rubric().with_weights({**default_rubric().weights, "experience": 0.5})
    scorer = load_scorer(scoring_bundle_dir, rubric=rubric, use_gold_labels=True)
    plain = load_scorer(scoring_bundle_dir, use_gold_labels=True)
    thanked, asking = _conv(THANKED, LABELS), _conv(LEFT_ASKING, {0: "complaint"})
    gap = scorer.score(thanked)["overall"] - scorer.score(asking)["overall"]
    plain_gap = plain.score(thanked)["overall"] - plain.score(asking)["overall"]
    assert gap > plain_gap


# --------------------------------------------------------------------------- the rubric file


def test_rubric_experience_round_trips_through_yaml(tmp_path: Path) -> None:
    data = default_rubric().model_dump(mode="json")
    data["weights"]["experience"] = 0.3
    data["experience"]["start"] = 55.5
    data["experience"]["points"] = {"thanks_at_end": 12.5, "apologies": -2.0}
    rubric = Rubric.model_validate(data)
    path = tmp_path / "brand.yaml"
    rubric.save(path)
    text = path.read_text("utf-8")
    assert "# 结束时致谢: 1 if the customer's last word thanks" in text
    assert load_rubric(path) == rubric
    assert rubric.experience.score({"thanks_at_end": 1.0, "apologies": 2.0}) == 55.5 + 12.5 - 4
    assert rubric.experience.score({"end_sentiment": -1.0}) == 55.5  # not listed: 0 points
    assert rubric.experience.score({"thanks_at_end": 10.0}) == 100.0  # clipped


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"points": {"thanks_at_ends": 5}},
            "unknown signal 'thanks_at_ends' (did you mean 'thanks_at_end'?)",
        ),
        ({"points": {"apologies": float("nan")}}, "points of 'apologies' must be a number"),
        ({"points": {"apologies": 5000}}, "points of 'apologies' must be a number between -1000"),
        ({"points": {"apologies": "many"}}, "experience.points.apologies"),
        ({"start": float("inf")}, "start must be a number between -1000 and 1000"),
        ({"start": "high"}, "experience.start"),
        ({"complaint_intents": ["complain"]}, "(did you mean 'complaint'?)"),
        ({"pionts": {}}, "pionts"),
    ],
)
def test_rubric_refuses_bad_experience_values(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    data = default_rubric().model_dump(mode="json")
    data["experience"].update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rubric(path)
    assert message in str(caught.value)


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf")])
def test_rubric_refuses_a_weight_that_is_not_a_finite_non_negative_number(weight: float) -> None:
    with pytest.raises(ValueError, match="weights must be finite numbers >= 0"):
        Rubric(weights={"closing": 1.0, "experience": weight})


# --------------------------------------------------------------------------- calibration


def rated_reports(n: int = 400, seed: int = 0) -> tuple[list[dict[str, Any]], list[float]]:
    """Reports with random dimension scores (noise) and signals; the rating rises with thanks at
    the end and the last sentiment, and falls with complaints."""
    rng = np.random.default_rng(seed)
    reports, ratings = [], []
    for i in range(n):
        scores: dict[str, float | None] = {d: float(rng.uniform(0, 100)) for d in DIMENSIONS}
        signals = {
            "thanks_at_end": float(rng.random() < 0.3),
            "complaints": float(rng.integers(0, 4)),
            "end_sentiment": float(rng.uniform(-1, 1)),
            "apologies": float(rng.integers(0, 3)),  # unrelated to the rating
            "guide_reply_length": float(rng.uniform(0.5, 8)),  # unrelated too
        }
        report = make_report(f"c-{i}", scores)
        report["signals"] = {k: v for k, v in signals.items() if v}
        reports.append(report)
        rating = (
            1.0 * signals["thanks_at_end"]
            - 0.4 * signals["complaints"]
            + 0.5 * signals["end_sentiment"]
            + rng.normal(0, 0.3)
        )
        ratings.append(round(rating, 2))
    return reports, ratings


def test_calibrate_fits_experience_points_in_the_direction_of_the_ratings() -> None:
    reports, ratings = rated_reports()
    result = calibrate(reports, ratings, "rating", default_rubric())
    points = result.rubric.experience.points
    assert result.signals_fitted
    assert points["thanks_at_end"] > 10
    assert points["complaints"] < -3
    assert points["end_sentiment"] > 5
    assert abs(points["apologies"]) < 0.25 * abs(points["complaints"])
    weights = result.weights_after
    assert max(weights, key=weights.__getitem__) == "experience" and weights["experience"] > 0.8
    assert result.before["spearman"] is not None and result.after["spearman"] is not None
    assert result.after["spearman"] > 0.85 > result.before["spearman"] + 0.5
    # signals never seen keep the points they had
    assert set(result.unfitted_signals) == set(SIGNAL_NAMES) - set(points_seen(reports))
    assert points["late_replies"] == default_rubric().experience.points["late_replies"]


def points_seen(reports: list[dict[str, Any]]) -> set[str]:
    return {k for r in reports for k in r["signals"]}


def test_calibrated_experience_spans_the_scale_and_orders_like_the_ratings() -> None:
    reports, ratings = rated_reports(seed=1)
    fitted = fit_rubric(reports, ratings, "rating", default_rubric()).rubric
    experience = [fitted.experience.score(r["signals"]) for r in reports]
    inside = np.mean([10 - 1e-6 <= e <= 90 + 1e-6 for e in experience])
    assert 0.9 <= inside <= 0.97  # the middle 96% land on 10-90
    overall = overall_scores(fitted, reports)
    assert all(o is not None for o in overall)
    from scipy.stats import spearmanr

    assert spearmanr(overall, ratings).statistic > 0.85


def test_calibrate_without_signals_keeps_the_experience_dimension_as_it_was() -> None:
    reports, ratings = rated_reports()
    rubric = default_rubric()
    kept = fit_rubric(reports, ratings, "rating", rubric, signals=False)
    assert not kept.signals_fitted
    assert kept.rubric.experience == rubric.experience
    assert kept.rubric.weights["experience"] == 0.0
    assert set(kept.rubric.weights) - {"experience"} == set(DIMENSIONS) - {"experience"}


def test_calibrated_rubric_with_points_loads_back(tmp_path: Path) -> None:
    reports, ratings = rated_reports(n=200)
    result = calibrate(reports, ratings, "rating", default_rubric())
    path = tmp_path / "fitted.yaml"
    path.write_text(result.to_yaml(), "utf-8")
    text = path.read_text("utf-8")
    assert text.startswith("# Weights and experience points fitted by")
    assert "# Signals seen too rarely to fit kept their points: " in text
    assert "late_replies" in text.split("\n")[3]
    loaded = load_rubric(path)
    assert loaded == result.rubric
    assert all(math.isfinite(v) for v in loaded.experience.points.values())
    assert result.to_dict()["experience_after"]["points"] == loaded.experience.points
