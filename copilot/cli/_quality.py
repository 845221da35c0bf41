"""Quality commands: scorecard (per guide or store, from score files) and calibrate (fit the
rubric's weights to conversions or supervisor ratings)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.table import Table

from copilot.cli._common import (
    ColumnsOpt,
    FormatOpt,
    GapOpt,
    MaxCharsOpt,
    RoleOpt,
    StaffOpt,
    app,
    console,
    csv_rows,
    err_console,
    handle_errors,
    progress_bar,
    reader_options,
)
from copilot.errors import InputError

if TYPE_CHECKING:
    from copilot.scoring.calibrate import CalibrationResult
    from copilot.scoring.scorecard import LeaderboardEntry, Scorecard

# --------------------------------------------------------------------------- scorecard


def _parse_bound(value: str | None, option: str) -> date | datetime | None:
    """A --since / --until value: a date (YYYY-MM-DD) or an ISO 8601 time."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(
            f"{option} expects a date YYYY-MM-DD (or an ISO time such as 2026-03-08T10:00:00+08:00), "
            f"got {value!r}"
        ) from exc


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _short(name: str, dim: str) -> str:
    """Column header for a dimension: its Chinese name (four characters), else a cut id."""
    return name if name != dim else dim.replace("_", " ")[:10]


@app.command(name="scorecard")
def scorecard_command(
    scores: Annotated[
        Path,
        typer.Argument(help="A `copilot score` output (.jsonl, .csv or .parquet; .gz ok)."),
    ],
    by: Annotated[str, typer.Option("--by", help="Group by guide or store.")] = "guide",
    ids: Annotated[
        list[str] | None,
        typer.Option("--id", help="Show the full scorecard of this guide (store); repeatable."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="First day to count, YYYY-MM-DD (the conversation's date)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last day to count, YYYY-MM-DD (inclusive).")
    ] = None,
    period: Annotated[
        str, typer.Option("--period", help="Trend periods: day, week (from Monday) or month.")
    ] = "week",
    rank_by: Annotated[
        str,
        typer.Option("--rank-by", help="Rank by overall, conversion_rate or a dimension id."),
    ] = "overall",
    min_n: Annotated[
        int,
        typer.Option("--min-n", min=1, help="Leave entities with fewer conversations unranked."),
    ] = 1,
    examples: Annotated[
        int,
        typer.Option("--examples", min=0, help="Best and worst conversations per scorecard."),
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the JSON to this file.")
    ] = None,
) -> None:
    """Scorecards per guide or store: leaderboard, dimension profile, trend, best and worst.

    Example: copilot scorecard scores.jsonl --by guide --since 2026-03-01 --id g-12
    """
    from copilot.batch.outputs import read_reports
    from copilot.scoring.scorecard import build_scorecards, leaderboard

    with handle_errors():
        if by not in ("guide", "store"):
            raise InputError(f"--by must be guide or store, got {by!r}")
        if period not in ("day", "week", "month"):
            raise InputError(f"--period must be day, week or month, got {period!r}")
        window = {"since": _parse_bound(since, "--since"), "until": _parse_bound(until, "--until")}
        with console.status("reading score reports"):
            cards = build_scorecards(
                read_reports(scores),
                by=cast("Any", by),
                period=cast("Any", period),
                ids=ids or None,
                worst_k=examples,
                best_k=examples,
                **window,
            )
        board = leaderboard(cards, key=rank_by, min_n=min_n)
        document = {
            "by": by,
            "since": window["since"].isoformat() if window["since"] else None,
            "until": window["until"].isoformat() if window["until"] else None,
            "period": period,
            "leaderboard": [row.to_dict() for row in board],
            "scorecards": [card.to_dict() for card in cards],
        }
        text = json.dumps(document, ensure_ascii=False)
        if output is not None:
            output.write_text(text + "\n", encoding="utf-8")
        if as_json:
            print(text)
            return
        _print_leaderboard(board, cards, by, rank_by)
        for card in cards if ids else []:
            _print_card(card)
        undated = sum(card.n_undated for card in cards)
        if undated:
            console.print(
                f"[yellow]undated:[/] {undated:,} conversations have no timestamp; they count in "
                "the averages but in no trend period (a --since/--until filter leaves them out)",
                highlight=False,
            )
        if output is not None:
            err_console.print(f"wrote {len(cards):,} scorecards to {output}")


def _print_leaderboard(
    board: list[LeaderboardEntry], cards: list[Scorecard], by: str, rank_by: str
) -> None:
    names: dict[str, str] = {}
    for card in cards:
        for d, summary in card.dimensions.items():
            names.setdefault(d, summary.name)
    dated = [(c.first_at, c.last_at) for c in cards if c.first_at and c.last_at]
    start = cards[0].since or (min(_day(a) for a, _ in dated) if dated else "start")
    end = cards[0].until or (max(_day(b) for _, b in dated) if dated else "end")
    span = f"{start} → {end}"
    table = Table(title=f"{by} leaderboard ({span}, ranked by {rank_by})")
    table.add_column("#", justify="right")
    table.add_column(by)
    table.add_column("n", justify="right")
    table.add_column("overall", justify="right")
    for d, name in names.items():
        table.add_column(_short(name, d), justify="right")
    table.add_column("conv.", justify="right")
    table.add_column("flags/conv", justify="right")
    table.add_column("trend", justify="right")
    for row in board:
        table.add_row(
            str(row.rank) if row.rank else "-",
            row.id,
            f"{row.n:,}",
            _fmt(row.overall),
            *(_fmt(row.dimensions.get(d), ".0f") for d in names),
            "-" if row.conversion_rate is None else f"{row.conversion_rate:.0%}",
            f"{row.flags_per_conversation:.2f}",
            _fmt(row.trend_slope, "+.1f"),
        )
    console.print(table)


def _day(stamp: str) -> str:
    """The calendar day of an ISO time as written (the conversation's own clock)."""
    return stamp[:10]


def _when(stamp: str | None) -> str:
    return "-" if not stamp else stamp[:16].replace("T", " ")


def _print_card(card: Scorecard) -> None:
    conversion = (
        f"conversion {card.conversion_rate:.0%} of {card.n_outcomes:,}"
        if card.conversion_rate is not None
        else "no outcomes"
    )
    console.rule(f"[bold]{card.by} {card.id}")
    console.print(
        f"{card.n:,} conversations ({_when(card.first_at)} → {_when(card.last_at)}), "
        f"overall [bold]{_fmt(card.overall)}[/], {conversion}, "
        f"win probability {_fmt(card.win_probability, '.2f')}"
        + (
            f"; {'stores' if card.by == 'guide' else 'guides'} {', '.join(card.related)}"
            if card.related
            else ""
        ),
        highlight=False,
    )
    table = Table(title="dimensions")
    table.add_column("dimension")
    table.add_column("name")
    table.add_column("average", justify="right")
    table.add_column("n", justify="right")
    table.add_column("")
    for d, s in card.dimensions.items():
        bar = "█" * round((s.mean or 0) / 10)
        table.add_row(d, s.name, _fmt(s.mean), f"{s.n:,}", bar)
    console.print(table)
    slope = _fmt(card.trend_slope, "+.2f")
    table = Table(title=f"trend {slope}/{card.period}")
    table.add_column({"day": "day", "week": "week of", "month": "month"}[card.period])
    table.add_column("n", justify="right")
    table.add_column("overall", justify="right")
    for point in card.trend:
        table.add_row(point.period_start.isoformat(), f"{point.n:,}", _fmt(point.overall))
    console.print(table)
    f = card.flags
    if f.total:
        console.print(
            f"flags: {f.total:,} in {f.conversations:,} conversations · "
            + ", ".join(f"{k} {v}" for k, v in f.by_kind.items())
            + " · "
            + ", ".join(f"{k} {v}" for k, v in f.by_rule.items()),
            highlight=False,
        )
    for title, refs in (("worst conversations", card.worst), ("best conversations", card.best)):
        if not refs:
            continue
        table = Table(title=title)
        table.add_column("conversation")
        table.add_column("overall", justify="right")
        table.add_column("started")
        table.add_column("converted")
        table.add_column("why")
        for ref in refs:
            converted = "-" if ref.converted is None else ("yes" if ref.converted else "no")
            table.add_row(
                ref.conversation_id,
                _fmt(ref.overall),
                _when(ref.started_at),
                converted,
                "; ".join(ref.reasons),
            )
        console.print(table)


# --------------------------------------------------------------------------- calibrate


def read_ratings_csv(path: Path) -> dict[str, float]:
    """``conversation_id -> rating`` from a CSV whose header names both columns.

    Raises:
        InputError: a missing file or column, an empty id, or a rating that is not a number.
    """
    ratings: dict[str, float] = {}
    for line, row in csv_rows(path, ("conversation_id", "rating"), "ratings CSV"):
        cid, raw = row["conversation_id"], row["rating"]
        rating = _number(raw)
        if not cid or rating is None:
            raise InputError(
                f"ratings CSV {str(path)!r} line {line}: need a conversation_id and a numeric "
                f"rating, got {cid!r} and {raw!r}"
            )
        ratings[cid] = rating
    return ratings


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _default_output(rubric_file: Path | None) -> Path:
    if rubric_file is None:
        return Path("rubric.calibrated.yaml")
    return rubric_file.with_name(f"{rubric_file.stem}.calibrated.yaml")


@app.command(name="calibrate")
def calibrate_command(
    data: Annotated[
        list[Path],
        typer.Argument(help="Conversations with outcomes or ratings (any input format)."),
    ],
    target: Annotated[
        str,
        typer.Option("--target", help="Fit to 'converted' (outcome) or 'rating' (supervisors)."),
    ],
    bundle_dir: Annotated[
        Path, typer.Option("--bundle", "-b", help="Model bundle directory (from `copilot train`).")
    ] = Path("bundles/default"),
    rubric_file: Annotated[
        Path | None,
        typer.Option("--rubric", help="Rubric YAML to start from (default: the built-in one)."),
    ] = None,
    ratings_file: Annotated[
        Path | None,
        typer.Option(
            "--ratings",
            help="CSV with columns conversation_id,rating; overrides meta.rating of the data.",
        ),
    ] = None,
    rating_field: Annotated[
        str,
        typer.Option(
            "--rating-field",
            help="The meta field that holds the rating (e.g. rating_S); default meta.rating.",
        ),
    ] = "rating",
    holdout: Annotated[
        float,
        typer.Option("--holdout", help="Share of conversations held out to compare the weights."),
    ] = 0.25,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train / holdout split.")] = 0,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Fitted rubric YAML to write (default: rubric.calibrated.yaml in the current "
            "directory, or <rubric>.calibrated.yaml beside --rubric).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    role_map: RoleOpt = None,
    staff: StaffOpt = None,
    gap_hours: GapOpt = 12.0,
    max_message_chars: MaxCharsOpt = 20_000,
) -> None:
    """Fit the rubric's weights to conversions or supervisor ratings, and compare on held-out data.

    Conversations without the target (no outcome, or no rating) are skipped and counted.

    Example: copilot calibrate data/demo.jsonl --target converted --bundle bundles/default
    """
    from copilot.io import Quarantined, open_conversations
    from copilot.scoring.calibrate import calibrate
    from models.runtime import load_scorer

    with handle_errors():
        if target not in ("converted", "rating"):
            raise InputError(f"--target must be converted or rating, got {target!r}")
        if ratings_file is not None and target != "rating":
            raise InputError("--ratings needs --target rating")
        if rating_field != "rating" and target != "rating":
            raise InputError("--rating-field needs --target rating")
        ratings = read_ratings_csv(ratings_file) if ratings_file is not None else {}
        with console.status("loading the bundle"):
            scorer = load_scorer(bundle_dir, rubric=rubric_file)
        options = reader_options(columns, role_map, staff, gap_hours, max_message_chars)
        conversations: list[Any] = []
        targets: list[float | bool] = []
        read = quarantined = skipped = 0
        with console.status("reading conversations"):
            for path in data:
                for item in open_conversations(path, format=fmt, **options):
                    if isinstance(item, Quarantined):
                        quarantined += 1
                        if quarantined <= 5:
                            err_console.print(
                                f"[yellow]skipped[/] {path}:{item.line}: {item.error}",
                                highlight=False,
                            )
                        continue
                    read += 1
                    value = _target_of(item, target, ratings, rating_field)
                    if value is None:
                        skipped += 1
                        continue
                    conversations.append(item)
                    targets.append(value)
        if quarantined:
            err_console.print(
                f"[yellow]{quarantined:,} unreadable records skipped "
                "(run `copilot validate` for all reasons)[/]"
            )
        if not conversations:
            need = "an outcome (outcome.converted)" if target == "converted" else "a rating"
            where = "" if target == "converted" else f" (meta.{rating_field}, or --ratings CSV)"
            raise InputError(
                f"none of the {read:,} readable conversations has {need}{where}; "
                f"calibrating to {target} needs them"
            )
        reports = _score(scorer, conversations)
        result = calibrate(
            reports, targets, cast("Any", target), scorer.rubric, holdout=holdout, seed=seed
        )
        path = output or _default_output(rubric_file)
        path.write_text(result.to_yaml(), encoding="utf-8")
        counts = {
            "read": read,
            "quarantined": quarantined,
            "skipped_without_target": skipped,
            "used": len(conversations),
        }
        if as_json:
            print(
                json.dumps({**counts, **result.to_dict(), "output": str(path)}, ensure_ascii=False)
            )
            return
        _print_calibration(result, counts, scorer.bundle.taxonomy.name_of, path)


def _target_of(
    conversation: Any, target: str, ratings: dict[str, float], field: str = "rating"
) -> float | bool | None:
    if target == "converted":
        outcome = conversation.outcome
        return None if outcome is None else bool(outcome.converted)
    if conversation.conversation_id in ratings:
        return ratings[conversation.conversation_id]
    return _number(conversation.meta.get(field))


def _score(scorer: Any, conversations: list[Any]) -> list[dict[str, Any]]:
    """Score with a progress bar; keep only what calibration reads (memory)."""
    reports: list[dict[str, Any]] = []
    with progress_bar() as progress:
        task = progress.add_task("scoring", total=len(conversations))
        for report in scorer.pipe(conversations):
            reports.append(
                {
                    "conversation_id": report["conversation_id"],
                    "dimensions": {
                        d: {"score": entry.get("score")}
                        for d, entry in (report.get("dimensions") or {}).items()
                    },
                    "signals": report.get("signals"),
                }
            )
            progress.advance(task)
    return reports


def _print_experience(result: CalibrationResult) -> None:
    """The experience dimension's start and points per signal, before and after."""
    from copilot.analyzers.signals import SIGNALS

    before, after = result.original.experience, result.rubric.experience
    table = Table(
        title=f"experience points (start {before.start:g} → {after.start:g}; "
        "points per unit of each signal)"
    )
    table.add_column("signal")
    table.add_column("name")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for spec in SIGNALS:
        note = " (kept)" if spec.name in result.unfitted_signals else ""
        table.add_row(
            spec.name,
            spec.label,
            f"{before.points.get(spec.name, 0.0):+g}",
            f"{after.points.get(spec.name, 0.0):+g}{note}",
        )
    console.print(table)


def _print_calibration(
    result: CalibrationResult, counts: dict[str, int], name_of: Any, path: Path
) -> None:
    console.print(
        f"read {counts['read']:,} conversations ({counts['quarantined']:,} quarantined, "
        f"{counts['skipped_without_target']:,} without {result.target}); fitted on "
        f"{result.n_train:,}, compared on {result.n_holdout:,} held out (seed {result.seed})",
        highlight=False,
    )
    table = Table(title=f"weights ({result.original.label} → {result.rubric.label})")
    table.add_column("dimension")
    table.add_column("name")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_column("change", justify="right")
    before, after = result.weights_before, result.weights_after
    for d in after:
        change = after[d] - before.get(d, 0.0)
        note = " (kept)" if d in result.unfitted else ""
        table.add_row(
            d, name_of(d), f"{before.get(d, 0.0):.3f}", f"{after[d]:.3f}{note}", f"{change:+.3f}"
        )
    console.print(table)
    if result.signals_fitted:
        _print_experience(result)
    table = Table(title=f"held-out fit to {result.target} (n={result.n_holdout:,})")
    table.add_column("metric")
    table.add_column("original weights", justify="right")
    table.add_column("fitted weights", justify="right")
    table.add_column("constant baseline", justify="right")
    lower_better = {"log_loss", "mae"}
    for key, value in result.after.items():
        old = result.before.get(key)
        better = (
            value is not None
            and old is not None
            and (value < old if key in lower_better else value > old)
        )
        style = "green" if better else ""
        table.add_row(
            key + (" (lower is better)" if key in lower_better else ""),
            _fmt(old, ".4f"),
            f"[{style}]{_fmt(value, '.4f')}[/]" if style else _fmt(value, ".4f"),
            _fmt(result.baseline.get(key), ".4f") if key in result.baseline else "",
        )
    console.print(table)
    if result.improved:
        console.print(
            f"[green]the fitted weights improve held-out {result.primary}[/]", highlight=False
        )
    else:
        console.print(
            f"[yellow]the fitted weights do not improve held-out {result.primary}; "
            "keep the current rubric unless you have more data[/]",
            highlight=False,
        )
    console.print(
        f"fitted rubric written to {path}; score with it: copilot score ... --rubric {path}",
        highlight=False,
    )
