"""Tests of the evaluation report: files, images, Markdown content, missing sections, JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from copilot.taxonomy import default_taxonomy
from eval.report import write_report
from models.evaluate import classification_metrics

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TAXONOMY = default_taxonomy()
NAMES = {label.id: label.name for label in (*TAXONOMY.intents, *TAXONOMY.actions)}


def fake_classification(
    labels: tuple[str, ...], n: int, accuracy: float, seed: int
) -> dict[str, Any]:
    """``classification_metrics`` of a noisy classifier on random gold labels (no model trained)."""
    rng = np.random.default_rng(seed)
    # The last label never occurs in gold, as a rare label can miss from a small evaluation set.
    gold = rng.choice(labels[:-1], size=n).tolist()
    pred = [g if rng.random() < accuracy else str(rng.choice(labels)) for g in gold]
    return classification_metrics(gold, pred, labels)


def make_metrics() -> dict[str, Any]:
    """A metrics dict shaped like ``evaluate_bundle``'s."""
    return {
        "conversations": 120,
        "intent": fake_classification(TAXONOMY.intent_ids, 600, 0.85, seed=1),
        "act": fake_classification(TAXONOMY.action_ids, 500, 0.75, seed=2),
        "next_best_action": {
            "n": 340,
            "top1": 0.6235,
            "top3": 0.8412,
            "baseline_top1": 0.4794,
            "baseline_top3": 0.8529,
            "baseline": "most frequent winning action for the intent",
        },
        "outcome": {
            "n": 120,
            "positive_rate": 0.35,
            "auc": 0.8123,
            "brier": 0.1734,
            "calibration": [
                {"bin": 0.0, "n": 30, "predicted": 0.0612, "observed": 0.0667},
                {"bin": 0.2, "n": 25, "predicted": 0.2488, "observed": 0.2},
                {"bin": 0.4, "n": 20, "predicted": 0.4451, "observed": 0.5},
                {"bin": 0.6, "n": 25, "predicted": 0.6502, "observed": 0.6},
                {"bin": 0.9, "n": 20, "predicted": 0.9311, "observed": 0.85},
            ],
        },
    }


EXTRA = {
    "data": {"generator_seed": 11, "phrase_split": "held-out", "conversations": 120},
    "independent": {
        "source": "eval/data/independent_intents.csv",
        **fake_classification(TAXONOMY.intent_ids, 200, 0.7, seed=3),
    },
}

SECTIONS = ("intent", "act", "next_best_action", "outcome")
ALL_FILES = {
    "metrics",
    "report",
    "confusion_intent",
    "confusion_act",
    "confusion_independent",
    "calibration_outcome",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One full report, shared by the tests that only read it (rendering takes a second)."""
    return write_report(
        make_metrics(),
        tmp_path_factory.mktemp("report") / "out" / "nested",
        bundle_name="bundles/demo",
        data_name="data/eval.jsonl",
        names=NAMES,
        extra=EXTRA,
    )


def test_write_report_writes_every_file(report: dict[str, Path]) -> None:
    assert set(report) == ALL_FILES
    for path in report.values():
        assert path.is_file() and path.stat().st_size > 0


@pytest.mark.parametrize(
    "name", ["confusion_intent", "confusion_act", "confusion_independent", "calibration_outcome"]
)
def test_write_report_pngs_are_valid_images(report: dict[str, Path], name: str) -> None:
    assert report[name].read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(report[name])
    height, width = pixels.shape[:2]
    assert 500 <= height <= 2000 and 500 <= width <= 2500
    assert pixels.std() > 0.05  # not a blank canvas


def test_report_md_headline_and_baselines(report: dict[str, Path]) -> None:
    text = report["report"].read_text(encoding="utf-8")
    metrics = make_metrics()
    assert text.startswith("# Sales copilot evaluation\n")
    assert "`bundles/demo`" in text and "`data/eval.jsonl`" in text
    assert f"| Intent accuracy | {metrics['intent']['accuracy']:.4f} |" in text
    assert f"| Intent macro-F1 | {metrics['intent']['macro_f1']:.4f} |" in text
    assert f"| Act macro-F1 | {metrics['act']['macro_f1']:.4f} |" in text
    assert "| Next-best action top-1 | 0.6235 | 0.4794 | yes | 340 |" in text
    assert "| Next-best action top-3 | 0.8412 | 0.8529 | no | 340 |" in text
    assert "| Outcome AUC | 0.8123 | 0.5000 | yes | 120 |" in text
    # Brier of always predicting the positive rate: 0.35 * 0.65.
    assert "| Outcome Brier (lower is better) | 0.1734 | 0.2275 | yes | 120 |" in text
    assert "most frequent winning action for the intent" in text


@pytest.mark.parametrize("kind", ["intent", "act"])
def test_report_md_per_label_rows(report: dict[str, Path], kind: str) -> None:
    text = report["report"].read_text(encoding="utf-8")
    for label, row in make_metrics()[kind]["per_label"].items():
        assert (
            f"| `{label}` | {NAMES[label]} | {row['precision']:.4f} | {row['recall']:.4f} | "
            f"{row['f1']:.4f} | {row['support']} |"
        ) in text
    absent = make_metrics()[kind]["labels"][-1]
    assert f"excluded from macro-F1): `{absent}`" in text
    assert f"(confusion_{kind}.png)" in text


def test_report_md_calibration_and_extra(report: dict[str, Path]) -> None:
    text = report["report"].read_text(encoding="utf-8")
    assert "| 0.4–0.5 | 20 | 0.4451 | 0.5000 |" in text
    assert "(calibration_outcome.png)" in text
    assert "- **generator_seed**: 11" in text and "- **phrase_split**: held-out" in text
    independent = EXTRA["independent"]
    assert "## Independent set" in text
    assert "eval/data/independent_intents.csv" in text
    assert (
        f"| {independent['accuracy']:.4f} | {independent['macro_f1']:.4f} | {independent['n']} |"
        in text
    )
    for label, row in independent["per_label"].items():
        assert f"| `{label}` | {NAMES[label]} | {row['f1']:.4f} | {row['support']} |" in text


def test_report_md_without_names_has_no_name_column(tmp_path: Path) -> None:
    text = write_report(make_metrics(), tmp_path)["report"].read_text(encoding="utf-8")
    assert "| Label | Precision | Recall | F1 | Support |" in text
    assert "商品咨询" not in text


@pytest.mark.parametrize(
    ("section", "note", "gone"),
    [
        ("intent", "Intent: not evaluated", {"confusion_intent"}),
        ("act", "Act: not evaluated", {"confusion_act"}),
        ("next_best_action", "Next best action: not evaluated", set()),
        ("outcome", "Outcome: not evaluated", {"calibration_outcome"}),
    ],
)
def test_write_report_missing_section_is_noted(
    tmp_path: Path, section: str, note: str, gone: set[str]
) -> None:
    metrics = make_metrics()
    metrics[section] = {"n": 0}
    paths = write_report(metrics, tmp_path)
    assert set(paths) == ALL_FILES - {"confusion_independent"} - gone
    assert note in paths["report"].read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "metrics",
    [
        {"conversations": 0, **{k: {"n": 0} for k in SECTIONS}},
        {"conversations": 0},
        {},
    ],
    ids=["empty", "absent", "no-keys"],
)
def test_write_report_everything_missing(tmp_path: Path, metrics: dict[str, Any]) -> None:
    paths = write_report(metrics, tmp_path, extra={"independent": {"n": 0}})
    assert set(paths) == {"metrics", "report"}
    text = paths["report"].read_text(encoding="utf-8")
    assert "_Nothing was evaluated._" in text
    for section in SECTIONS:
        assert section.replace("_", " ").capitalize() + ": not evaluated" in text
    assert "Independent set: nothing evaluated" in text


def test_write_report_single_class_outcome_has_no_auc(tmp_path: Path) -> None:
    metrics = {
        "outcome": {
            "n": 10,
            "positive_rate": 0.0,
            "brier": 0.02,
            "calibration": [{"bin": 0.0, "n": 10, "predicted": 0.05, "observed": 0.0}],
        }
    }
    text = write_report(metrics, tmp_path)["report"].read_text(encoding="utf-8")
    assert "| Outcome AUC | — | 0.5000 | — | 10 |" in text
    assert "AUC is undefined" in text


def test_write_report_tie_with_baseline_does_not_beat_it(tmp_path: Path) -> None:
    metrics = {"next_best_action": {**make_metrics()["next_best_action"], "baseline_top1": 0.6235}}
    text = write_report(metrics, tmp_path)["report"].read_text(encoding="utf-8")
    assert "| Next-best action top-1 | 0.6235 | 0.6235 | no (tie) | 340 |" in text


def test_metrics_json_round_trips(report: dict[str, Path]) -> None:
    raw = report["metrics"].read_text(encoding="utf-8")
    assert "\n  " in raw  # pretty-printed
    assert json.loads(raw) == {**make_metrics(), "context": EXTRA}


def test_metrics_json_keeps_chinese_and_converts_numpy(tmp_path: Path) -> None:
    metrics = {"conversations": np.int64(3), "intent": {"n": 0}}
    paths = write_report(metrics, tmp_path, extra={"note": "独立测试集", "seeds": np.arange(2)})
    raw = paths["metrics"].read_text(encoding="utf-8")
    assert "独立测试集" in raw
    assert json.loads(raw) == {
        "conversations": 3,
        "intent": {"n": 0},
        "context": {"note": "独立测试集", "seeds": [0, 1]},
    }


def test_write_report_is_deterministic(report: dict[str, Path], tmp_path: Path) -> None:
    again = write_report(
        make_metrics(),
        tmp_path,
        bundle_name="bundles/demo",
        data_name="data/eval.jsonl",
        names=NAMES,
        extra=EXTRA,
    )
    for name, path in report.items():
        assert path.read_bytes() == again[name].read_bytes(), name


def test_write_report_removes_images_of_missing_sections(tmp_path: Path) -> None:
    metrics = {"act": make_metrics()["act"]}
    write_report(metrics, tmp_path)
    assert (tmp_path / "confusion_act.png").exists()
    paths = write_report({"act": {"n": 0}}, tmp_path)
    assert "confusion_act" not in paths
    assert not (tmp_path / "confusion_act.png").exists()
    assert "confusion_act.png" not in paths["report"].read_text(encoding="utf-8")
