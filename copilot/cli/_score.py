"""The batch scoring command: ``copilot score``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    err_console,
    handle_errors,
    progress_bar,
    reader_options,
)
from copilot.errors import InputError

if TYPE_CHECKING:
    from copilot.batch import JobSummary


@app.command()
def score(
    file: Annotated[
        Path, typer.Argument(help="Conversations to score (JSONL, CSV, Parquet, WeCom; .gz ok).")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Score file: .jsonl (full reports), .csv or .parquet (rows)."
        ),
    ],
    bundle: Annotated[
        Path, typer.Option("--bundle", "-b", help="Model bundle directory (from `copilot train`).")
    ],
    fmt: FormatOpt = "auto",
    output_format: Annotated[
        str | None,
        typer.Option(
            "--output-format", help="jsonl, csv or parquet (default: from the output's suffix)."
        ),
    ] = None,
    rubric: Annotated[
        Path | None,
        typer.Option("--rubric", help="Rubric YAML (default: the built-in rubric)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, help="Processes (or Ray actors) scoring.")
    ] = 1,
    engine: Annotated[
        str, typer.Option("--engine", help="local (this machine) or ray (a Ray cluster).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray cluster, e.g. ray://head:10001 (default: $RAY_ADDRESS, else a local Ray).",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Finish an interrupted run of the same output (OUT.parts/)."),
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, help="Conversations per chunk (unit of work and of resume)."
        ),
    ] = 500,
    columns: ColumnsOpt = None,
    role_map: RoleOpt = None,
    staff: StaffOpt = None,
    gap_hours: GapOpt = 12.0,
    max_message_chars: MaxCharsOpt = 20_000,
) -> None:
    """Score every conversation of a file: quality dimensions, flags, win probability.

    Writes OUTPUT, OUTPUT.quarantine.jsonl (unreadable records and conversations whose scoring
    failed) and OUTPUT.summary.json. Exit code 0 when every conversation was scored, 2 when some
    were quarantined, on a usage error, or when the input breaks off part-way (a cut .gz: what
    was read before the break is scored and written), 1 on a runtime failure; an interrupted run
    keeps its finished chunks in OUTPUT.parts/ and --resume finishes it.

    Example: copilot score logs.jsonl -o scores.csv --bundle bundles/default --workers 2
    """
    from copilot.batch import ENGINES, ScoreJob, score_file
    from models.runtime import load_scorer

    with handle_errors():
        if engine not in ENGINES:
            raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        job = ScoreJob(
            input=file,
            output=output,
            bundle=bundle,
            rubric=rubric,
            input_format=fmt,
            output_format=output_format,
            reader_options=reader_options(columns, role_map, staff, gap_hours, max_message_chars),
            workers=workers,
            engine=engine,  # type: ignore[arg-type]  # checked above
            batch_size=batch_size,
            resume=resume,
            ray_address=ray_address,
            scorer=load_scorer,
        )
        try:
            with progress_bar() as progress:
                task = progress.add_task("scoring", total=None)

                def on_progress(phase: str, done: int, total: int | None) -> None:
                    progress.update(task, description=phase, completed=done, total=total)

                summary = score_file(job, progress=on_progress)
        except KeyboardInterrupt:
            err_console.print(f"[yellow]interrupted[/]{_resume_hint(output)}", highlight=False)
            raise typer.Exit(130) from None
        except (RuntimeError, MemoryError) as exc:
            err_console.print(f"[bold red]error:[/] {exc}{_resume_hint(output)}", highlight=False)
            raise typer.Exit(1) from exc
    _print_summary(summary)
    if summary.input_error is not None:
        # The same message as `copilot validate`; what was read before the break is kept.
        err_console.print(f"[bold red]error:[/] {summary.input_error}", highlight=False)
        err_console.print(
            f"the {summary.read:,} conversations read before the break are scored in {output}",
            highlight=False,
        )
        raise typer.Exit(2)
    if summary.quarantined:
        raise typer.Exit(2)


def _resume_hint(output: Path) -> str:
    from copilot.batch.parts import work_dir_path

    work = work_dir_path(output)
    if not work.is_dir():
        return ""
    return f"\nfinished chunks are kept in {work}/; rerun the same command with --resume to finish"


def _print_summary(summary: JobSummary) -> None:
    table = Table(title="copilot score", show_header=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("conversations read", f"{summary.read:,}"),
        ("scored", f"[green]{summary.scored:,}[/]"),
        (
            "quarantined",
            f"[{'yellow' if summary.quarantined else 'green'}]{summary.quarantined:,}[/]",
        ),
        ("mean overall score", "-" if summary.overall_mean is None else f"{summary.overall_mean}"),
        ("elapsed", f"{summary.elapsed_s:,.1f} s"),
        ("rate", f"{summary.conversations_per_s:,.1f} conversations/s"),
        ("engine", f"{summary.engine}, {summary.workers} worker(s), batch {summary.batch_size}"),
        ("bundle", summary.bundle),
    ]
    if summary.resumed:
        rows.append(("resumed", f"{summary.chunks_reused:,} of {summary.chunks:,} chunks reused"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    # Paths on lines of their own, never wrapped, so they can be copied.
    lines = [f"input: {summary.input}", f"output: {summary.output} ({summary.output_format})"]
    if summary.quarantined:
        lines.append(f"quarantine: {summary.quarantine}")
    lines.append(f"summary: {summary.summary}")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)
