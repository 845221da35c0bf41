"""``copilot label`` and ``copilot summarize``: the optional LLM over files (``COPILOT_LLM_*``
settings).

``label``'s output CSV (``conversation_id,message_index,text,label``) is what ``copilot train
--intent-csv`` (intents) and ``--act-csv`` (actions) read. ``summarize`` adds a summary to each
report of a ``copilot score`` JSONL (:mod:`copilot.llm.summaries`). Running either again with the
same ``-o`` resumes: what is already done is skipped.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from copilot.cli._common import (
    ColumnsOpt,
    FormatOpt,
    GapOpt,
    RoleOpt,
    StaffOpt,
    app,
    console,
    err_console,
    handle_errors,
    progress_bar,
    reader_options,
)
from copilot.errors import InputError

if TYPE_CHECKING:
    from copilot.llm.batch import LabelReport

__all__: list[str] = []


@app.command("label")
def label_command(
    logs: Annotated[list[Path], typer.Argument(help="Chat logs (any input format).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Label CSV to write, or to resume.")
    ],
    task: Annotated[
        str, typer.Option("--task", help="intents (customer messages) or actions (guide ones).")
    ] = "intents",
    taxonomy: Annotated[
        Path | None,
        typer.Option("--taxonomy", help="A brand's own taxonomy YAML (default: built-in)."),
    ] = None,
    examples: Annotated[
        Path | None,
        typer.Option(
            "--examples", help="CSV text,label: up to three example texts per label for the prompt."
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, help="Items in flight (default COPILOT_LLM_MAX_CONCURRENCY)."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Label only the first N conversations.")
    ] = None,
    agreement: Annotated[
        Path | None,
        typer.Option(
            "--agreement",
            help="Hand-labelled CSV (conversation_id,message_index,text,label): report agreement "
            "on the messages both have (skipped when the file is absent).",
        ),
    ] = None,
    report_json: Annotated[
        Path | None, typer.Option("--report", help="Write the run's numbers as JSON here.")
    ] = None,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    role_map: RoleOpt = None,
    staff: StaffOpt = None,
    gap_hours: GapOpt = 12.0,
) -> None:
    """Label customer intents or guide actions with an LLM, into a CSV for `copilot train`.

    Needs COPILOT_LLM_BACKEND (openai or transformers) and its settings; see the README
    section "Optional LLM layer". Stopped runs resume with the same -o.

    Example: copilot label export.csv --task intents -o llm_intents.csv --limit 200
    """
    from copilot.cli._models import _load_conversations, read_label_csv
    from copilot.llm import LLMSettings, build_backend
    from copilot.llm.batch import label_to_csv
    from copilot.schema import MAX_MESSAGE_CHARS
    from copilot.taxonomy import default_taxonomy, load_taxonomy

    with handle_errors():
        if task not in ("intents", "actions"):
            raise InputError(f"--task must be intents or actions, got {task!r}")
        settings = LLMSettings()
        tax = load_taxonomy(taxonomy) if taxonomy else default_taxonomy()
        shown: dict[str, list[str]] = {}
        for row in read_label_csv(examples, "examples CSV") if examples else []:
            shown.setdefault(row.label, []).append(row.text)
        options = reader_options(columns, role_map, staff, gap_hours, MAX_MESSAGE_CHARS)
        conversations, _ = _load_conversations(logs, fmt, options)
        backend = build_backend(settings)
        with closing(backend), progress_bar() as progress:
            bar = progress.add_task(f"labelling {task}", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(bar, advance=done, total=total)

            report = label_to_csv(
                backend,
                conversations[:limit],
                output,
                "intents" if task == "intents" else "actions",
                tax,
                concurrency=concurrency or settings.max_concurrency,
                examples=shown,
                on_progress=advance,
            )
        summary = report.summary()
        _print_report(report, summary, output)
        if agreement is not None:
            summary["agreement"] = _agreement(output, agreement)
        if report_json is not None:
            report_json.write_text(json.dumps(summary, ensure_ascii=False, indent=2), "utf-8")
        if report.failed:
            raise typer.Exit(1)


def _print_report(report: LabelReport, summary: dict[str, Any], output: Path) -> None:
    console.print(
        f"{summary['rows']:,} labels written to {output} ({summary['skipped']:,} already there); "
        f"{summary['items']:,} items, {summary['calls']:,} model calls, prompt {summary['prompt_version']}"
    )
    console.print(
        f"per item: {summary['prompt_tokens_per_item']:.0f} prompt + "
        f"{summary['completion_tokens_per_item']:.0f} completion tokens, "
        f"{summary['seconds_per_item']:.2f} s (p95 {summary['seconds_per_item_p95']:.2f} s); "
        f"wall {summary['wall_seconds']:.1f} s"
    )
    for conversation_id, why in report.failed[:5]:
        err_console.print(f"[red]failed[/] {conversation_id}: {why}", highlight=False)
    if report.failed:
        err_console.print(
            f"[yellow]{len(report.failed):,} item(s) failed; run the same command again to retry them[/]"
        )


def _agreement(output: Path, gold_path: Path) -> dict[str, Any] | None:
    from copilot.llm.batch import agreement, read_labels

    if not gold_path.is_file():
        err_console.print(f"[yellow]agreement skipped: {gold_path} does not exist[/]")
        return None
    result = agreement(read_labels(output), read_labels(gold_path))
    if not result["n"]:
        console.print(f"agreement: no message of {gold_path} was labelled")
        return result
    kappa = "n/a" if result["kappa"] is None else f"{result['kappa']:.3f}"
    console.print(
        f"agreement with {gold_path} on {result['n']:,} messages: accuracy {result['accuracy']:.3f}, "
        f"macro-F1 {result['macro_f1']:.3f}, kappa {kappa}"
    )
    for gold, predicted, count in result["confusions"]:
        console.print(f"  {gold} -> {predicted}: {count}")
    return result


@app.command("summarize")
def summarize_command(
    scores: Annotated[
        Path, typer.Argument(help="Full score reports from `copilot score -o X.jsonl`.")
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="JSONL to write: each report with a summary field."),
    ],
    input_path: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="The chat logs that were scored (default: the input SCORES.summary.json names).",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            help="Summaries in flight (default COPILOT_LLM_MAX_CONCURRENCY).",
        ),
    ] = None,
    report_json: Annotated[
        Path | None, typer.Option("--report", help="Write the run's numbers as JSON here.")
    ] = None,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    role_map: RoleOpt = None,
    staff: StaffOpt = None,
    gap_hours: GapOpt = 12.0,
) -> None:
    """Add an LLM summary (wanted, guide_did, open_items, next_step) to each score report.

    Needs COPILOT_LLM_BACKEND (openai or transformers) and its settings. Reports carry no chat
    text, so the scored input is read again (--input, or the one SCORES.summary.json names;
    give the same --format/--column options as to `copilot score`). Run it again with the same
    -o to resume: summaries already made (OUT.journal.jsonl) are not made again.

    Example: copilot summarize scores.jsonl -o scores.summarized.jsonl
    """
    from copilot.io import Quarantined, open_conversations
    from copilot.llm import LLMSettings, build_backend
    from copilot.llm.summaries import summarize_reports
    from copilot.schema import MAX_MESSAGE_CHARS

    with handle_errors():
        settings = LLMSettings()
        backend = build_backend(settings)  # ConfigError (exit 2) when no LLM is configured
        source, source_format = _scored_input(scores, input_path, fmt)
        options = reader_options(columns, role_map, staff, gap_hours, MAX_MESSAGE_CHARS)
        reader = open_conversations(source, format=source_format, **options)
        with closing(backend), reader, progress_bar() as progress:
            bar = progress.add_task("summarising", total=None)
            run = summarize_reports(
                backend,
                scores,
                (c for c in reader if not isinstance(c, Quarantined)),
                output,
                model=f"{settings.backend}:{settings.model}",
                concurrency=concurrency or settings.max_concurrency,
                on_progress=lambda done, total: progress.update(bar, advance=done, total=total),
            )
        summary = run.summary()
        console.print(
            f"{run.reports:,} reports written to {output}: {run.made:,} summaries made, "
            f"{run.reused:,} from an earlier run; {summary['calls']:,} model calls, "
            f"prompt {run.prompt_version or '-'}, {run.wall_seconds:.1f} s"
        )
        if report_json is not None:
            report_json.write_text(json.dumps(summary, ensure_ascii=False, indent=2), "utf-8")
        for cid, why in run.failed[:5]:
            err_console.print(f"[red]failed[/] {cid}: {why}", highlight=False)
        if run.missing:
            err_console.print(
                f"[yellow]{len(run.missing):,} report(s) have no conversation in {source} "
                f"(first: {run.missing[0]}); is it the input that was scored?[/]"
            )
        if run.failed or run.missing:
            err_console.print(
                "[yellow]their summary is null; run the same command again to retry them[/]"
            )
            raise typer.Exit(1)


def _scored_input(scores: Path, given: Path | None, fmt: str) -> tuple[Path, str]:
    """The input ``scores`` was scored from, and its format: ``given``, or what
    ``SCORES.summary.json`` (written by ``copilot score``) records."""
    if given is not None:
        return given, fmt
    recorded = scores.with_name(scores.name + ".summary.json")
    try:
        data = json.loads(recorded.read_text("utf-8"))
        source = str(data["input"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"which chat logs were scored into {str(scores)!r}? {recorded.name} names none; "
            "pass them with --input (and the --format/--column options of `copilot score`)"
        ) from None
    if source == "-":
        raise InputError(f"{scores} was scored from standard input; pass the logs with --input")
    return Path(source), fmt if fmt != "auto" else str(data.get("input_format") or "auto")
