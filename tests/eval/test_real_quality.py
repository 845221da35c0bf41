"""``eval.real_quality`` on a small generated stand-in for the rated dialogues (the real ones stay
outside the project), and its clean exit when they are absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.real_quality import METHODS, TARGETS, evaluate, main


@pytest.fixture(scope="module")
def rated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 generated conversations rated from their guide's skill (A, S and E alike)."""
    from copilot.synth import generate

    skill = {"poor": -1.5, "average": 0.0, "good": 1.0, "star": 1.8}
    path = tmp_path_factory.mktemp("real_quality") / "rated.jsonl"
    lines = []
    for c in generate(150, seed=41):
        record = json.loads(c.model_dump_json(exclude_none=True))
        for k, target in enumerate(TARGETS):
            record["meta"][target] = skill[c.meta["guide_skill"]] + 0.1 * k
        lines.append(json.dumps(record, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_real_quality_evaluate_reports_every_target_and_method(
    rated: Path, scoring_bundle_dir: Path
) -> None:
    metrics = evaluate(rated, folds=3, bundle=scoring_bundle_dir)
    assert metrics["n"] == 150 and metrics["folds"] == 3
    assert set(metrics["targets"]) == set(TARGETS)
    for target in TARGETS:
        for method in METHODS:
            row = metrics["targets"][target][method]
            assert len(row["spearman_folds"]) == 3
            assert -1 <= row["spearman_pooled"] <= 1
    s = metrics["targets"]["rating_S"]
    assert s["signals"]["spearman_mean"] > s["default"]["spearman_mean"] - 0.1
    assert metrics["primary"]["spearman_mean"] == s["signals"]["spearman_mean"]
    assert metrics["fitted_on_all"]["weights"]["experience"] > 0
    with pytest.raises(ValueError, match="folds must be between 2"):
        evaluate(rated, folds=1, bundle=scoring_bundle_dir)


def test_real_quality_main_writes_json_and_prints_the_table(
    rated: Path, scoring_bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["--path", str(rated), "--folds", "2", "--bundle", str(scoring_bundle_dir)]
    metrics = main([*args, "-o", str(out)])
    assert metrics is not None
    assert json.loads((out / "metrics.json").read_text("utf-8"))["n"] == 150
    printed = capsys.readouterr().out
    assert "weights + signals" in printed and "rating_S" in printed


def test_real_quality_skips_cleanly_without_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--path", str(tmp_path / "absent.jsonl"), "-o", str(tmp_path / "out")]) is None
    assert "skipped: no rated dialogues" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
