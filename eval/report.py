"""Render the metrics of ``models.evaluate.evaluate_bundle`` as a report folder.

::

    out_dir/
      metrics.json              the metrics as given, plus ``extra`` under "context"
      report.md                 headline table beside the baselines, per-label tables,
                                calibration table, evaluation context, links to the images
      confusion_intent.png      row-normalised confusion matrix of the intents
      confusion_act.png         the same for the guide acts (when evaluated)
      confusion_independent.png the same for ``extra["independent"]`` (when given)
      calibration_outcome.png   reliability diagram of the win probabilities (when evaluated)

A section the evaluation could not fill (``{"n": 0}``, or absent) becomes a one-line note in the
report and no image. Figures use matplotlib's object API (``Figure``), so no global backend or
pyplot state is touched, and the same metrics give byte-identical files.

Example::

    metrics = evaluate_bundle(load_bundle("bundle/"), conversations)
    paths = write_report(metrics, Path("report/"), bundle_name="bundle/", data_name="eval.jsonl",
                         names={l.id: l.name for l in (*taxonomy.intents, *taxonomy.actions)})
    paths["report"]  # Path("report/report.md")
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_report"]

logger = logging.getLogger(__name__)

_DPI = 120
# Annotating every cell stays legible up to about this many labels per axis.
_MAX_ANNOTATED_LABELS = 24
# Scalars in a context table; anything else is shown as compact JSON.
_SCALARS = (str, int, float, bool, type(None))

_SECTION_NOTES = {
    "intent": "no labelled customer messages in the evaluation data",
    "act": "no labelled guide messages in the evaluation data",
    "next_best_action": "no decision points in converted, labelled conversations",
    "outcome": "no conversations with a recorded outcome, or the bundle has no outcome model",
}


def write_report(
    metrics: Mapping[str, Any],
    out_dir: Path,
    *,
    title: str = "Sales copilot evaluation",
    bundle_name: str = "",
    data_name: str = "",
    names: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write metrics.json, report.md and the figures of one evaluation into ``out_dir``.

    Args:
        metrics: the dict returned by ``evaluate_bundle``; any section may be ``{"n": 0}`` or
            absent.
        out_dir: the folder to write into, created if missing. Figures this call does not
            produce (their section is missing) are removed, so the folder never mixes two runs.
        title: first heading of the report.
        bundle_name: how to name the evaluated bundle (e.g. its path).
        data_name: how to name the evaluation data (e.g. its path).
        names: label id -> display name (the taxonomy's Chinese names), shown in the
            per-label tables. Figures keep the ASCII ids, so they need no CJK font.
        extra: context to record and render: how the data was generated (seed, phrase split),
            and under ``"independent"`` the ``classification_metrics`` of an independent set.

    Returns:
        Written file by name: ``metrics``, ``report``, and those of ``confusion_intent``,
        ``confusion_act``, ``confusion_independent``, ``calibration_outcome`` that apply.

    Raises:
        OSError: ``out_dir`` cannot be created or written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = dict(names or {})
    extra = dict(extra or {})
    paths: dict[str, Path] = {}

    record = dict(metrics)
    if extra:
        record["context"] = extra
    paths["metrics"] = out_dir / "metrics.json"
    paths["metrics"].write_text(
        json.dumps(record, ensure_ascii=False, indent=2, default=_json_default) + "\n",
        encoding="utf-8",
    )

    independent = extra.get("independent")
    figures: dict[str, tuple[Any, str]] = {
        "confusion_intent": (_section(metrics, "intent"), "Intent confusion"),
        "confusion_act": (_section(metrics, "act"), "Act confusion"),
        "confusion_independent": (
            independent if isinstance(independent, Mapping) else {},
            "Independent set confusion",
        ),
    }
    for name, (section, fig_title) in figures.items():
        path = out_dir / f"{name}.png"
        if _has_confusion(section):
            _confusion_figure(section, path, fig_title)
            paths[name] = path
        else:
            path.unlink(missing_ok=True)
    path = out_dir / "calibration_outcome.png"
    outcome = _section(metrics, "outcome")
    if outcome.get("calibration"):
        _calibration_figure(outcome, path)
        paths["calibration_outcome"] = path
    else:
        path.unlink(missing_ok=True)

    paths["report"] = out_dir / "report.md"
    markdown = _markdown(metrics, title, bundle_name, data_name, names, extra, set(paths))
    paths["report"].write_text(markdown, encoding="utf-8")
    logger.info("wrote evaluation report to %s (%s)", out_dir, ", ".join(sorted(paths)))
    return paths


# --------------------------------------------------------------------------------------------
# Markdown


def _markdown(
    metrics: Mapping[str, Any],
    title: str,
    bundle_name: str,
    data_name: str,
    names: Mapping[str, str],
    extra: Mapping[str, Any],
    written: set[str],
) -> str:
    """The whole report.md text."""
    lines = [f"# {title}", ""]
    if bundle_name:
        lines.append(f"- **Bundle:** `{bundle_name}`")
    if data_name:
        lines.append(f"- **Evaluation data:** `{data_name}`")
    if "conversations" in metrics:
        lines.append(f"- **Conversations:** {metrics['conversations']}")
    lines += ["", "## Headline", "", *_headline(metrics), ""]

    for key, heading, image in (
        ("intent", "Intents (customer messages)", "confusion_intent"),
        ("act", "Acts (guide messages)", "confusion_act"),
    ):
        lines += [f"## {heading}", ""]
        section = _section(metrics, key)
        if _missing(section):
            lines += [_note(key), ""]
            continue
        lines += _per_label_table(section, names, full=True)
        lines += _label_notes(section)
        if image in written:
            lines += ["", f"![{heading}: confusion matrix]({image}.png)"]
        lines.append("")

    lines += ["## Outcome calibration", ""]
    outcome = _section(metrics, "outcome")
    if _missing(outcome):
        lines += [_note("outcome"), ""]
    elif not outcome.get("calibration"):
        lines += ["_No calibration table in the outcome metrics._", ""]
    else:
        lines += _calibration_table(outcome["calibration"])
        if "calibration_outcome" in written:
            lines += ["", "![Outcome reliability diagram](calibration_outcome.png)"]
        lines.append("")

    retrieval = metrics.get("retrieval")
    if isinstance(retrieval, Mapping) and retrieval.get("methods"):
        lines += ["## Script retrieval", "", *_retrieval(retrieval), ""]

    if "independent" in extra:
        lines += ["## Independent set", "", *_independent(extra["independent"], names, written), ""]
    context = {k: v for k, v in extra.items() if k != "independent"}
    if context:
        lines += ["## Evaluation context", ""]
        for key, value in context.items():
            lines += _bullets(str(key), value, 0)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _headline(metrics: Mapping[str, Any]) -> list[str]:
    """Headline table (metric, model, baseline, beats baseline, n) and its footnotes."""
    rows: list[tuple[str, Any, Any, bool, Any]] = []  # metric, model, baseline, higher_is_better, n
    notes: list[str] = []
    for key, label in (("intent", "Intent"), ("act", "Act")):
        section = _section(metrics, key)
        if _missing(section):
            notes.append(_note(key))
            continue
        majority = _majority_share(section)
        rows.append((f"{label} accuracy", section.get("accuracy"), majority, True, section["n"]))
        rows.append((f"{label} macro-F1", section.get("macro_f1"), None, True, section["n"]))
    nba = _section(metrics, "next_best_action")
    if _missing(nba):
        notes.append(_note("next_best_action"))
    else:
        for k in (1, 3):
            rows.append(
                (
                    f"Next-best action top-{k}",
                    nba.get(f"top{k}"),
                    nba.get(f"baseline_top{k}"),
                    True,
                    nba["n"],
                )
            )
    outcome = _section(metrics, "outcome")
    if _missing(outcome):
        notes.append(_note("outcome"))
    else:
        rows.append(("Outcome AUC", outcome.get("auc"), 0.5, True, outcome["n"]))
        rate = outcome.get("positive_rate")
        reference = None if rate is None else round(rate * (1 - rate), 4)
        rows.append(
            (
                "Outcome Brier (lower is better)",
                outcome.get("brier"),
                reference,
                False,
                outcome["n"],
            )
        )
    if not rows:
        return ["_Nothing was evaluated._", *[x for note in notes for x in ("", note)]]

    table = ["| Metric | Model | Baseline | Beats baseline | n |", "|---|---:|---:|:---:|---:|"]
    for metric, model, baseline, higher, n in rows:
        table.append(
            f"| {metric} | {_num(model)} | {_num(baseline)} | "
            f"{_beats(model, baseline, higher)} | {n} |"
        )
    baselines = []
    if any(r[0].endswith("accuracy") and r[2] is not None for r in rows):
        baselines.append("accuracy: always predict the most frequent gold label")
    if not _missing(nba):
        baselines.append(f"next-best action: {nba.get('baseline', 'the bundle baseline')}")
    if not _missing(outcome):
        baselines.append(
            "AUC: 0.5 (chance); Brier: always predict the positive rate "
            f"({_num(outcome.get('positive_rate'))})"
        )
    if outcome.get("n") and outcome.get("auc") is None:
        notes.append("_Outcome AUC is undefined: the evaluation data has only one outcome class._")
    footer = ["", "Baselines — " + "; ".join(baselines) + "."] if baselines else []
    return table + footer + [x for note in notes for x in ("", note)]


def _per_label_table(
    section: Mapping[str, Any], names: Mapping[str, str], *, full: bool
) -> list[str]:
    """Per-label rows in taxonomy order; ``full`` adds precision and recall."""
    per_label: Mapping[str, Mapping[str, Any]] = section.get("per_label", {})
    order = [label for label in section.get("labels", []) if label in per_label]
    order += [label for label in per_label if label not in order]
    with_names = any(label in names for label in order)
    head = ["Label", *(["Name"] if with_names else [])]
    stats = ["Precision", "Recall", "F1", "Support"] if full else ["F1", "Support"]
    lines = [
        "| " + " | ".join(head + stats) + " |",
        "|" + "---|" * len(head) + "---:|" * len(stats),
    ]
    for label in order:
        row = per_label[label]
        cells = [f"`{label}`", *([_cell(names.get(label, ""))] if with_names else [])]
        cells += [_num(row.get(stat.lower())) for stat in stats]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _label_notes(section: Mapping[str, Any], worst: int = 3, confusions: int = 5) -> list[str]:
    """One-line summaries: weakest labels, most frequent confusions, labels absent from gold."""
    per_label: Mapping[str, Mapping[str, Any]] = section.get("per_label", {})
    lines: list[str] = []
    ranked = sorted(per_label.items(), key=lambda item: (item[1].get("f1", 0.0), item[0]))
    if len(ranked) > worst:
        weakest = ", ".join(f"`{label}` ({_num(row.get('f1'))})" for label, row in ranked[:worst])
        lines.append(f"- Lowest F1: {weakest}")
    if _has_confusion(section):
        labels = list(section["labels"])
        matrix = np.asarray(section["confusion"], dtype=int)
        off = [
            (int(matrix[i, j]), labels[i], labels[j])
            for i in range(len(labels))
            for j in range(len(labels))
            if i != j and matrix[i, j] > 0
        ]
        off.sort(key=lambda item: (-item[0], item[1], item[2]))
        if off:
            top = ", ".join(f"`{g}` → `{p}` ({c})" for c, g, p in off[:confusions])
            lines.append(f"- Most frequent confusions (gold → predicted): {top}")
    absent = [label for label in section.get("labels", []) if label not in per_label]
    if absent:
        lines.append(
            "- Not in the evaluation data (excluded from macro-F1): "
            + ", ".join(f"`{label}`" for label in absent)
        )
    return [""] + lines if lines else []


def _retrieval(section: Mapping[str, Any]) -> list[str]:
    """The engine beside BM25 only, dense only and random-within-intent."""
    columns = (
        "recall@1",
        "recall@3",
        "recall@10",
        "mrr",
        "R10@1",
        "R10@2",
        "R10@5",
    )  # mrr is MRR@10
    lines = [
        f"Guide turns of winning conversations: {section.get('turns', 0)}; the actual reply matched a "
        f"mined script in {_num(section.get('coverage'))} of them ({section.get('evaluated', 0)} evaluated). "
        f"Response selection: the true reply against 9 replies of other conversations at the same intent "
        f"({section.get('response_selection_n', 0)} turns).",
        "",
        "| method | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for method, row in section["methods"].items():
        lines.append(f"| {method} | " + " | ".join(_num(row.get(c)) for c in columns) + " |")
    verdict = "yes" if section.get("engine_beats_baselines") else "no"
    lines += ["", f"Engine beats every baseline on recall@3, MRR and R10@1: **{verdict}**."]
    return lines


def _calibration_table(calibration: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| Bin | n | Predicted | Observed |", "|---|---:|---:|---:|"]
    for row in calibration:
        low = float(row.get("bin", 0.0))
        lines.append(
            f"| {low:.1f}–{low + 0.1:.1f} | {row.get('n', '')} | {_num(row.get('predicted'))} | "
            f"{_num(row.get('observed'))} |"
        )
    return lines


def _independent(section: Any, names: Mapping[str, str], written: set[str]) -> list[str]:
    """Headline (accuracy, macro-F1, n) and per-label F1 of an independent intent set."""
    if not isinstance(section, Mapping):
        return _bullets("independent", section, 0)
    lines: list[str] = []
    known = {"n", "accuracy", "macro_f1", "per_label", "labels", "confusion"}
    for key, value in section.items():
        if key not in known:
            lines += _bullets(str(key), value, 0)
    if _missing(section):
        return [*lines, *([""] if lines else []), "_Independent set: nothing evaluated (n = 0)._"]
    if lines:
        lines.append("")
    lines += [
        "| Accuracy | Macro-F1 | n |",
        "|---:|---:|---:|",
        f"| {_num(section.get('accuracy'))} | {_num(section.get('macro_f1'))} | {section['n']} |",
    ]
    if section.get("per_label"):
        lines += ["", *_per_label_table(section, names, full=False)]
    if "confusion_independent" in written:
        lines += ["", "![Independent set: confusion matrix](confusion_independent.png)"]
    return lines


def _bullets(key: str, value: Any, depth: int) -> list[str]:
    """A context entry as (nested) Markdown bullets."""
    pad = "  " * depth
    if isinstance(value, Mapping) and value:
        lines = [f"{pad}- **{_cell(key)}**:"]
        for k, v in value.items():
            lines += _bullets(str(k), v, depth + 1)
        return lines
    if isinstance(value, list | tuple) and all(isinstance(v, _SCALARS) for v in value):
        shown = ", ".join(_scalar(v) for v in value) or "(none)"
    elif isinstance(value, _SCALARS):
        shown = _scalar(value)
    else:
        shown = "`" + json.dumps(value, ensure_ascii=False, default=_json_default) + "`"
    return [f"{pad}- **{_cell(key)}**: {shown}"]


# --------------------------------------------------------------------------------------------
# Figures


def _confusion_figure(section: Mapping[str, Any], path: Path, title: str) -> None:
    """Row-normalised confusion heatmap with ASCII label ids, percentages and a colourbar."""
    from matplotlib.figure import Figure

    labels = [str(label) for label in section["labels"]]
    counts = np.asarray(section["confusion"], dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    # Percentages, so the colour scale reads like the numbers written in the cells.
    share = 100 * np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    k = len(labels)
    # Grows with the label count so ids stay legible, up to a size a report viewer still shows.
    side = min(max(5.0, 0.5 * k + 3.0), 18.0)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=100.0, aspect="equal")
    fig.colorbar(image, ax=ax, shrink=0.8, label="% of the gold row")
    ax.set_xticks(range(k), labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(
        range(k), [f"{label} ({int(t)})" for label, t in zip(labels, totals[:, 0], strict=True)]
    )
    if k > _MAX_ANNOTATED_LABELS:
        ax.tick_params(labelsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold (support)")
    n = int(counts.sum())
    accuracy = float(np.trace(counts) / n) if n else 0.0
    ax.set_title(f"{title} (row-normalised; n={n}, accuracy={accuracy:.3f})")
    if k <= _MAX_ANNOTATED_LABELS:
        size = 9 if k <= 12 else 7
        for i in range(k):
            for j in range(k):
                if counts[i, j] > 0:
                    ax.text(
                        j,
                        i,
                        f"{share[i, j]:.0f}" if share[i, j] >= 0.5 else "<1",
                        ha="center",
                        va="center",
                        fontsize=size,
                        color="white" if share[i, j] > 55 else "black",
                    )
    _save(fig, path)


def _calibration_figure(outcome: Mapping[str, Any], path: Path) -> None:
    """Reliability diagram over the bins, with the bin counts as bars in a panel beneath."""
    from matplotlib.figure import Figure

    rows = outcome["calibration"]
    low = np.array([float(r.get("bin", 0.0)) for r in rows])
    predicted = np.array([float(r.get("predicted", np.nan)) for r in rows])
    observed = np.array([float(r.get("observed", np.nan)) for r in rows])
    n = np.array([int(r.get("n", 0)) for r in rows])

    fig = Figure(figsize=(6.0, 7.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot(
        [0, 1], [0, 1], linestyle="--", color="gray", linewidth=1, label="perfectly calibrated"
    )
    top.plot(predicted, observed, marker="o", color="tab:blue", label="outcome model")
    if outcome.get("positive_rate") is not None:
        top.axhline(
            float(outcome["positive_rate"]),
            color="tab:orange",
            linestyle=":",
            linewidth=1,
            label="positive rate",
        )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("observed win rate")
    top.legend(loc="upper left", fontsize=8)
    parts = [f"n={outcome.get('n', int(n.sum()))}"]
    if outcome.get("auc") is not None:
        parts.append(f"AUC={float(outcome['auc']):.3f}")
    if outcome.get("brier") is not None:
        parts.append(f"Brier={float(outcome['brier']):.3f}")
    top.set_title("Outcome calibration (" + ", ".join(parts) + ")")
    bottom.bar(low + 0.05, n, width=0.09, color="tab:blue", alpha=0.6)
    bottom.set_xlabel("predicted win probability")
    bottom.set_ylabel("conversations")
    bottom.set_xticks(np.linspace(0, 1, 11))
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    # No "Software" entry: the bytes then depend on the metrics only, not the matplotlib version.
    fig.savefig(path, dpi=_DPI, metadata={"Software": None})


# --------------------------------------------------------------------------------------------
# Small helpers


def _section(metrics: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A metrics section, ``{}`` when absent or not a mapping."""
    section = metrics.get(key)
    return section if isinstance(section, Mapping) else {}


def _missing(section: Mapping[str, Any]) -> bool:
    return not section.get("n")


def _note(key: str) -> str:
    label = key.replace("_", " ").capitalize()
    return f"_{label}: not evaluated — {_SECTION_NOTES[key]} (n = 0)._"


def _has_confusion(section: Mapping[str, Any]) -> bool:
    labels = section.get("labels") or []
    confusion = section.get("confusion") or []
    return bool(labels) and np.shape(confusion) == (len(labels), len(labels))


def _majority_share(section: Mapping[str, Any]) -> float | None:
    """Accuracy of always predicting the most frequent gold label."""
    support = [row.get("support", 0) for row in section.get("per_label", {}).values()]
    n = section.get("n") or 0
    return round(max(support) / n, 4) if support and n else None


def _beats(model: Any, baseline: Any, higher_is_better: bool) -> str:
    if model is None or baseline is None:
        return "—"
    if model == baseline:
        return "no (tie)"
    better = model > baseline if higher_is_better else model < baseline
    return "yes" if better else "no"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return _cell(str(value))
    if isinstance(value, int | np.integer):
        return str(value)
    return f"{float(value):.4f}"


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _cell(value)
    return json.dumps(value)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays, paths and sets in metrics or context become plain JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")
