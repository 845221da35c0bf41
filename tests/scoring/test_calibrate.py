"""Calibrating the rubric's weights on synthetic score reports whose target one dimension drives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.errors import InputError
from copilot.scoring.calibrate import CalibrationResult, calibrate
from copilot.scoring.rubric import DIMENSIONS, Rubric, default_rubric, load_rubric
from tests.builders import make_report


def reports_driven_by(
    driver: str, target: str, n: int = 300, seed: int = 0, missing: str | None = None
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Reports with random dimension scores whose target depends on ``driver`` only (plus noise);
    ``missing`` is a dimension that does not apply in half of them."""
    rng = np.random.default_rng(seed)
    reports, targets = [], []
    for i in range(n):
        scores: dict[str, float | None] = {d: float(rng.uniform(0, 100)) for d in DIMENSIONS}
        if missing is not None and rng.random() < 0.5:
            scores[missing] = None
        reports.append(make_report(f"c-{i}", scores))
        x = scores[driver]
        if x is None:  # the driver does not apply: the target is a coin toss around the middle
            targets.append(bool(rng.random() < 0.5) if target == "converted" else 3.0)
        elif target == "converted":
            targets.append(bool(rng.random() < 1 / (1 + np.exp(-(x - 50) / 8))))
        else:
            targets.append(round(1 + 4 * x / 100 + rng.normal(0, 0.3), 1))
    return reports, targets


@pytest.mark.parametrize(
    ("target", "driver"),
    [("converted", "closing"), ("rating", "needs_discovery"), ("converted", "objection_handling")],
)
def test_calibrate_gives_the_driving_dimension_the_largest_weight(target: Any, driver: str) -> None:
    reports, targets = reports_driven_by(driver, target, missing="objection_handling")
    result = calibrate(reports, targets, target, default_rubric())
    weights = result.weights_after
    assert max(weights, key=weights.__getitem__) == driver
    assert weights[driver] > 0.6
    assert all(w >= 0 for w in weights.values())
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert result.improved


def test_calibrate_reports_held_out_metrics_before_and_after() -> None:
    reports, targets = reports_driven_by("closing", "converted")
    result = calibrate(reports, targets, "converted", default_rubric(), holdout=0.3, seed=3)
    assert set(result.before) == set(result.after) == {"auc", "log_loss", "spearman"}
    assert result.after["auc"] is not None and result.before["auc"] is not None
    assert result.after["auc"] > result.before["auc"] + 0.1
    assert result.after["log_loss"] < result.baseline["log_loss"]  # type: ignore[operator]
    assert (result.n, result.n_train + result.n_holdout) == (300, 300)
    assert result.n_holdout == pytest.approx(90, abs=1)
    assert result.primary == "auc"

    rating_reports, ratings = reports_driven_by("courtesy", "rating")
    rated = calibrate(rating_reports, ratings, "rating", default_rubric())
    assert set(rated.after) == {"spearman", "pearson", "mae"}
    assert rated.after["mae"] < rated.before["mae"]  # type: ignore[operator]
    assert rated.after["spearman"] > 0.8  # type: ignore[operator]


def test_calibrate_is_reproducible_and_the_split_follows_the_seed() -> None:
    reports, targets = reports_driven_by("closing", "converted", n=120)
    first = calibrate(reports, targets, "converted", default_rubric(), seed=1)
    again = calibrate(reports, targets, "converted", default_rubric(), seed=1)
    other = calibrate(reports, targets, "converted", default_rubric(), seed=2)
    assert first.rubric == again.rubric and first.after == again.after
    assert other.before != first.before


def test_calibrate_names_the_rubric_and_keeps_its_rules() -> None:
    rubric = default_rubric()
    reports, targets = reports_driven_by("closing", "converted", n=100)
    fitted = calibrate(reports, targets, "converted", rubric).rubric
    assert fitted.label == f"{rubric.name}-calibrated@{rubric.version + 1}"
    assert fitted.timing == rubric.timing and fitted.answers == rubric.answers
    refit = calibrate(reports, targets, "converted", fitted).rubric
    assert refit.name == fitted.name and refit.version == fitted.version + 1


def test_calibrate_keeps_the_share_of_a_dimension_that_never_applies() -> None:
    reports, targets = reports_driven_by("closing", "converted", n=100)
    for report in reports:
        report["dimensions"]["objection_handling"]["score"] = None
    result = calibrate(reports, targets, "converted", default_rubric())
    original = result.weights_before["objection_handling"]
    assert result.unfitted == ("objection_handling",)
    assert result.weights_after["objection_handling"] == pytest.approx(original, abs=1e-3)


def test_calibrate_yaml_loads_back_as_a_rubric(tmp_path: Path) -> None:
    reports, targets = reports_driven_by("closing", "converted", n=100)
    result = calibrate(reports, targets, "converted", default_rubric())
    path = tmp_path / "fitted.yaml"
    path.write_text(result.to_yaml(), encoding="utf-8")
    assert path.read_text(encoding="utf-8").startswith("# Weights fitted by `copilot calibrate`")
    assert load_rubric(path) == result.rubric
    summary = result.to_dict()
    assert summary["weights_after"] == result.weights_after and summary["improved"] is True


def _reports(n: int) -> list[dict[str, Any]]:
    return reports_driven_by("closing", "rating", n=n)[0]


@pytest.mark.parametrize(
    ("reports", "targets", "target", "options", "message"),
    [
        (_reports(20), [True, False] * 10, "converted", {}, "at least 30 conversations"),
        (_reports(40), [True] * 40, "converted", {}, "40 of 40 conversations converted"),
        (_reports(40), [True] * 3 + [False] * 37, "converted", {}, "at least 5 converted"),
        (_reports(40), [3.0] * 40, "rating", {}, "every rating is 3"),
        (_reports(40), [True] * 39, "converted", {}, "40 reports but 39 targets"),
        (_reports(40), [True, None] * 20, "converted", {}, "target 1 is None"),
        (_reports(40), ["good"] * 40, "rating", {}, "rating 0 is 'good'"),
        (_reports(40), [True, False] * 20, "converted", {"holdout": 1.5}, "holdout must be"),
        (_reports(40), [True, False] * 20, "converted", {"holdout": 0.05}, "leaves"),
        (_reports(40), [True, False] * 20, "churn", {}, "target must be"),
    ],
)
def test_calibrate_explains_bad_input(
    reports: list[dict[str, Any]],
    targets: list[Any],
    target: Any,
    options: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(InputError, match=message):
        calibrate(reports, targets, target, default_rubric(), **options)


def test_calibrate_refuses_when_no_dimension_helps() -> None:
    reports = _reports(200)
    # the better every dimension, the worse the rating
    ratings = [-sum(d["score"] for d in r["dimensions"].values()) for r in reports]
    with pytest.raises(InputError, match="no dimension relates positively to rating"):
        calibrate(reports, ratings, "rating", default_rubric())


def test_calibration_result_improved_compares_the_primary_metric() -> None:
    rubric = Rubric(weights={"closing": 1.0})
    result = CalibrationResult(
        target="converted",
        rubric=rubric,
        original=rubric,
        n=40,
        n_train=30,
        n_holdout=10,
        before={"auc": 0.7},
        after={"auc": 0.65},
        baseline={},
        primary="auc",
        unfitted=(),
        seed=0,
        holdout=0.25,
    )
    assert not result.improved
