"""copilot scorecard and copilot calibrate from the command line, on real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from copilot.batch.outputs import open_report_writer
from copilot.cli import app
from copilot.scoring.rubric import default_rubric, load_rubric
from tests.builders import make_report

runner = CliRunner()


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JSONL score file: two guides in two stores over two weeks, one report undated."""
    path = tmp_path_factory.mktemp("scorecard") / "scores.jsonl"
    reports = [
        make_report(
            f"c-{i}",
            {"responsiveness": 40.0 + 10 * i, "closing": 90.0 - 5 * i},
            guide_id=f"g-{i % 2 + 1}",
            store_id=f"s-{i % 2 + 1}",
            started_at=f"2026-03-{2 + i:02d}T10:00:00+08:00",
            converted=i % 3 == 0,
            evidence={"responsiveness": "顾客等了很久"},
        )
        for i in range(10)
    ]
    reports.append(make_report("c-undated", guide_id="g-1", started_at=None))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reports), "utf-8")
    return path


def test_cli_scorecard_prints_the_leaderboard(scores: Path) -> None:
    result = runner.invoke(app, ["scorecard", str(scores)])
    assert result.exit_code == 0, result.output
    assert "guide leaderboard" in result.output
    assert "g-1" in result.output and "g-2" in result.output
    assert "undated" in result.output


def test_cli_scorecard_json_and_output_file(scores: Path, tmp_path: Path) -> None:
    out = tmp_path / "cards.json"
    result = runner.invoke(
        app, ["scorecard", str(scores), "--by", "store", "--json", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert json.loads(out.read_text("utf-8")) == document
    assert [row["id"] for row in document["leaderboard"]] == ["s-2", "s-1"]
    s1 = next(card for card in document["scorecards"] if card["id"] == "s-1")
    assert s1["n"] == 6 and s1["n_undated"] == 1 and s1["by"] == "store"


def test_cli_scorecard_full_card_of_one_guide(scores: Path) -> None:
    result = runner.invoke(
        app, ["scorecard", str(scores), "--id", "g-1", "--since", "2026-03-01", "--period", "day"]
    )
    assert result.exit_code == 0, result.output
    for text in ("guide g-1", "dimensions", "/day", "worst conversations", "顾客等了很久"):
        assert text in result.output


def test_cli_scorecard_reads_csv_scores(scores: Path, tmp_path: Path) -> None:
    csv = tmp_path / "scores.csv"
    with open_report_writer(csv) as out:
        for line in scores.read_text("utf-8").splitlines():
            out.write(json.loads(line))
    from_csv = runner.invoke(app, ["scorecard", str(csv), "--json"])
    from_jsonl = runner.invoke(app, ["scorecard", str(scores), "--json"])
    assert from_csv.exit_code == 0, from_csv.output
    assert json.loads(from_csv.stdout) == json.loads(from_jsonl.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--id", "g-3"], "did you mean"),
        (["--since", "2027-01-01"], "no conversations between 2027-01-01 and the end"),
        (["--since", "2026-13-01"], "--since expects a date YYYY-MM-DD"),
        (["--by", "region"], "--by must be guide or store"),
        (["--period", "year"], "--period must be day, week or month"),
        (["--rank-by", "closng"], "did you mean 'closing'"),
    ],
)
def test_cli_scorecard_explains_bad_input(scores: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["scorecard", str(scores), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_scorecard_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scorecard", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2 and "no score file" in result.output


# --------------------------------------------------------------------------- calibrate


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 generated conversations, one without an outcome, and one unreadable line."""
    from copilot.synth import generate

    path = tmp_path_factory.mktemp("calibrate") / "conversations.jsonl"
    lines = [c.model_dump_json(exclude_none=True) for c in generate(150, seed=31)]
    record = json.loads(lines[0])
    record["conversation_id"], record["outcome"] = "no-outcome", None
    lines += [json.dumps(record, ensure_ascii=False), '{"conversation_id": "broken"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _calibrate(corpus: Path, bundle: Path, *args: str) -> Any:
    return runner.invoke(app, ["calibrate", str(corpus), "--bundle", str(bundle), *args])


def test_cli_calibrate_fits_and_writes_a_rubric(
    corpus: Path, scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fitted.yaml"
    result = _calibrate(
        corpus, scoring_bundle_dir, "--target", "converted", "-o", str(out), "--json"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["quarantined"] == 1 and summary["skipped_without_target"] == 1
    assert summary["used"] == 150 == summary["n"]
    assert set(summary["before"]) == set(summary["after"]) == {"auc", "log_loss", "spearman"}
    assert sum(summary["weights_after"].values()) == pytest.approx(1.0, abs=1e-3)
    rubric = load_rubric(out)
    assert rubric.name.endswith("-calibrated") and summary["output"] == str(out)


def test_cli_calibrate_to_ratings_csv_prints_tables(
    corpus: Path, scoring_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.synth import generate

    skill = {"poor": 1, "average": 2, "good": 3, "star": 4}
    ratings = tmp_path / "ratings.csv"
    rows = [f"{c.conversation_id},{skill[c.meta['guide_skill']]}" for c in generate(150, seed=31)]
    ratings.write_text("conversation_id,rating\n" + "\n".join(rows[:120]) + "\n", "utf-8")
    monkeypatch.chdir(tmp_path)
    result = _calibrate(corpus, scoring_bundle_dir, "--target", "rating", "--ratings", str(ratings))
    assert result.exit_code == 0, result.output
    for text in ("weights", "held-out fit to rating", "spearman", "original weights"):
        assert text in result.output
    assert "31 without rating" in result.output  # 30 unrated + the one without an outcome
    assert load_rubric(tmp_path / "rubric.calibrated.yaml").version == 2


def test_cli_calibrate_reads_the_rating_field_and_fits_experience_points(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    from copilot.synth import generate

    skill = {"poor": -1.5, "average": 0.0, "good": 1.0, "star": 2.0}
    path = tmp_path / "rated.jsonl"
    lines = []
    for c in generate(120, seed=32):
        record = json.loads(c.model_dump_json(exclude_none=True))
        record["meta"]["rating_S"] = skill[c.meta["guide_skill"]]
        lines.append(json.dumps(record, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "fitted.yaml"
    args = ["--target", "rating", "--rating-field", "rating_S", "-o", str(out)]
    result = _calibrate(path, scoring_bundle_dir, *args)
    assert result.exit_code == 0, result.output
    assert "experience points" in result.output and "thanks_at_end" in result.output
    fitted = load_rubric(out)
    assert fitted.weights["experience"] > 0
    assert fitted.experience != default_rubric().experience


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "sales"], "--target must be converted or rating"),
        (["--target", "converted", "--ratings", "x.csv"], "--ratings needs --target rating"),
        (["--target", "converted", "--rating-field", "rating_S"], "--rating-field needs"),
        (["--target", "rating", "--rating-field", "stars"], "has a rating (meta.stars, or"),
        (["--target", "rating"], "has a rating (meta.rating, or --ratings CSV)"),
    ],
)
def test_cli_calibrate_explains_bad_input(
    corpus: Path, scoring_bundle_dir: Path, args: list[str], message: str
) -> None:
    result = _calibrate(corpus, scoring_bundle_dir, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_calibrate_bad_ratings_csv(
    corpus: Path, scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("id,score\nc-1,3\n", encoding="utf-8")
    result = _calibrate(corpus, scoring_bundle_dir, "--target", "rating", "--ratings", str(ratings))
    assert result.exit_code == 2
    assert "lacks column(s) conversation_id, rating" in result.output
