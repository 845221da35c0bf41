"""How good are the quality scores? Separation of guide skill, link to conversion, timing false
alarms, sentiment on hand-labelled messages, and agreement with independent human ratings.

    python -m eval.score_quality --bundle bundles/default [--n 2000 --seed 8] [-o reports/quality]

- **Generated data** (``copilot.synth``, a seed the bundle was not trained on): AUC of the overall
  score for good vs poor guides (target >= 0.85), its correlation with conversion, and the same per
  dimension.
- **Timing false alarms**: of the customer messages that need no answer (gold intent
  ``thanks_closing``, or stickers / emoji only), the share that raised a timing flag; and of the
  messages that needed one and never got a reply, the share that was flagged.
- **Independent sets** (``eval/data``, written without reading the product code): sentiment
  accuracy on ``independent_sentiment.csv`` and the Spearman correlation of the overall score with
  the supervisor ratings of ``rated_conversations.jsonl``.

Writes ``metrics.json`` and ``report.md`` to the output directory and prints a summary.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, roc_auc_score

from copilot.analyzers import sentiment_score
from copilot.analyzers.cues import is_content_free
from copilot.io import iter_conversations
from copilot.schema import Conversation
from copilot.scoring import DIMENSIONS, Scorer
from copilot.synth import generate
from models.runtime import load_scorer

DATA = Path(__file__).resolve().parent / "data"
SENTIMENT_CUT = 0.2
"""A message scoring above +0.2 is positive, below -0.2 negative, neutral in between."""


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    ok = ~np.isnan(scores)
    if ok.sum() < 2 or len(set(labels[ok])) < 2:
        return None
    return round(float(roc_auc_score(labels[ok], scores[ok])), 3)


def skill_metrics(convs: list[Conversation], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Separation of guide skill and link to conversion, overall and per dimension."""
    skill = np.array([c.meta.get("guide_skill") for c in convs])
    converted = np.array([bool(c.outcome and c.outcome.converted) for c in convs])
    pair = np.isin(skill, ["good", "poor"])

    def column(get: Any) -> np.ndarray:
        return np.array([np.nan if (x := get(r)) is None else x for r in reports], dtype=float)

    overall = column(lambda r: r["overall"])
    ok = ~np.isnan(overall)
    out: dict[str, Any] = {
        "conversations": len(convs),
        "overall_auc_good_vs_poor": _auc(skill[pair] == "good", overall[pair]),
        "overall_auc_conversion": _auc(converted, overall),
        "overall_conversion_pointbiserial": round(
            float(pearsonr(overall[ok], converted[ok].astype(float))[0]), 3
        ),
        "overall_mean_by_skill": {
            s: round(float(np.nanmean(overall[skill == s])), 1)
            for s in ("poor", "average", "good", "star")
            if (skill == s).any()
        },
        "dimensions": {},
    }
    for d in DIMENSIONS:
        col = column(lambda r, d=d: r["dimensions"][d]["score"])
        out["dimensions"][d] = {
            "applies": round(float((~np.isnan(col)).mean()), 3),
            "auc_good_vs_poor": _auc(skill[pair] == "good", col[pair]),
            "auc_conversion": _auc(converted, col),
        }
    return out


def timing_metrics(convs: list[Conversation], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """False-alarm rate on messages needing no answer; detection of never-answered ones."""
    quiet = quiet_flagged = never = never_flagged = 0
    for conv, report in zip(convs, reports, strict=True):
        flagged = {f["message_index"] for f in report["flags"] if f["kind"] == "timing"}
        intents = conv.labels.intents if conv.labels else {}
        last_guide = max((i for i, m in enumerate(conv.messages) if m.role == "guide"), default=-1)
        for i, m in enumerate(conv.messages):
            if m.role != "customer" or i not in intents:
                continue
            if intents[i] == "thanks_closing" or is_content_free(m.text):
                quiet += 1
                quiet_flagged += i in flagged
            elif intents[i] != "other" and i > last_guide:
                never += 1
                # a run is flagged at its first waiting message: any flag at or before i in
                # the final customer run counts
                run_start = last_guide + 1
                never_flagged += any(run_start <= j <= i for j in flagged)
    return {
        "no_answer_needed": quiet,
        "false_alarms": quiet_flagged,
        "false_alarm_rate": round(quiet_flagged / quiet, 4) if quiet else None,
        "never_answered": never,
        "never_answered_flagged": never_flagged,
        "detection_rate": round(never_flagged / never, 4) if never else None,
    }


def sentiment_metrics(path: Path) -> dict[str, Any] | None:
    """3-class accuracy and macro-F1 of the sentiment lexicon on hand-labelled messages."""
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    gold = [r["label"] for r in rows]
    pred = []
    for r in rows:
        s = sentiment_score(r["text"])
        pred.append(
            "positive" if s > SENTIMENT_CUT else "negative" if s < -SENTIMENT_CUT else "neutral"
        )
    accuracy = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(rows)
    return {
        "messages": len(rows),
        "accuracy": round(accuracy, 3),
        "macro_f1": round(float(f1_score(gold, pred, average="macro")), 3),
        "per_class_f1": dict(
            zip(
                ["negative", "neutral", "positive"],
                (
                    round(float(x), 3)
                    for x in f1_score(
                        gold, pred, average=None, labels=["negative", "neutral", "positive"]
                    )
                ),
                strict=True,
            )
        ),
    }


def rating_metrics(scorer: Scorer, path: Path) -> dict[str, Any] | None:
    """Agreement of the overall score with independent supervisor ratings (1-5)."""
    if not path.is_file():
        return None
    convs = list(iter_conversations(path))
    reports = scorer.score_many(convs)
    rating = np.array([float(c.meta["rating"]) for c in convs])
    overall = np.array([r["overall"] if r["overall"] is not None else np.nan for r in reports])
    ok = ~np.isnan(overall)
    dims = {}
    for d in DIMENSIONS:
        col = np.array(
            [np.nan if (s := r["dimensions"][d]["score"]) is None else s for r in reports]
        )
        m = ~np.isnan(col)
        dims[d] = round(float(spearmanr(col[m], rating[m])[0]), 3) if m.sum() > 5 else None
    return {
        "conversations": len(convs),
        "spearman": round(float(spearmanr(overall[ok], rating[ok])[0]), 3),
        "pearson": round(float(pearsonr(overall[ok], rating[ok])[0]), 3),
        "mean_overall_by_rating": {
            int(k): round(float(np.nanmean(overall[rating == k])), 1) for k in sorted(set(rating))
        },
        "dimension_spearman": dims,
    }


def _markdown(metrics: dict[str, Any]) -> str:
    s, t = metrics["generated"], metrics["timing"]
    lines = [
        "# Quality score evaluation",
        "",
        f"Bundle `{metrics['bundle']}`, rubric `{metrics['rubric']}`; generated data: "
        f"{s['conversations']} conversations, seed {metrics['seed']} (synthetic).",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| overall AUC, good vs poor guides | {s['overall_auc_good_vs_poor']} | >= 0.85 |",
        f"| overall AUC, converted vs not | {s['overall_auc_conversion']} | > 0.5 |",
        f"| overall vs conversion, point-biserial r | {s['overall_conversion_pointbiserial']} | > 0 |",
        f"| timing false-alarm rate (no answer needed) | {t['false_alarm_rate']} "
        f"({t['false_alarms']}/{t['no_answer_needed']}) | low |",
        f"| never-answered messages flagged | {t['detection_rate']} "
        f"({t['never_answered_flagged']}/{t['never_answered']}) | high |",
    ]
    if metrics.get("sentiment"):
        m = metrics["sentiment"]
        lines.append(
            f"| sentiment accuracy / macro-F1, independent set ({m['messages']} msgs) | "
            f"{m['accuracy']} / {m['macro_f1']} | |"
        )
    if metrics.get("ratings"):
        m = metrics["ratings"]
        lines.append(
            f"| Spearman, overall vs independent ratings ({m['conversations']} convs) | "
            f"{m['spearman']} | > 0 |"
        )
    lines += [
        "",
        "Mean overall by guide skill: "
        + ", ".join(f"{k} {v}" for k, v in s["overall_mean_by_skill"].items()),
        "",
        "| dimension | applies | AUC good vs poor | AUC conversion |",
        "|---|---|---|---|",
    ]
    for d, m in s["dimensions"].items():
        lines.append(f"| {d} | {m['applies']} | {m['auc_good_vs_poor']} | {m['auc_conversion']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="bundles/default")
    parser.add_argument("--rubric", default=None)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("-o", "--output", default="reports/quality")
    args = parser.parse_args(argv)

    scorer = load_scorer(args.bundle, rubric=args.rubric)
    convs = list(generate(args.n, seed=args.seed))
    started = time.perf_counter()
    reports = scorer.score_many(convs)
    seconds = time.perf_counter() - started
    metrics: dict[str, Any] = {
        "bundle": scorer.bundle.name,
        "rubric": scorer.rubric.label,
        "seed": args.seed,
        "scoring_seconds": round(seconds, 2),
        "generated": skill_metrics(convs, reports),
        "timing": timing_metrics(convs, reports),
        "sentiment": sentiment_metrics(DATA / "independent_sentiment.csv"),
        "ratings": rating_metrics(scorer, DATA / "rated_conversations.jsonl"),
    }
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2))
    (out / "report.md").write_text(_markdown(metrics), encoding="utf-8")
    print(_markdown(metrics))
    print(f"wrote {out / 'metrics.json'} and {out / 'report.md'}")
    return metrics


if __name__ == "__main__":
    main()
