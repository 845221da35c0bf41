"""The ``copilot`` command line (Typer): data commands in ``_data``, model commands in ``_models``.

Exit codes: 0 ok, 1 runtime failure, 2 usage or input error (with a message that says what to fix).
The CLI owns the console: library code logs, the CLI prints.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from copilot import __version__
from copilot.errors import BundleError, ConfigError, CopilotError, InputError

if TYPE_CHECKING:
    pass

__all__ = ["app"]

app = typer.Typer(
    name="copilot",
    help="Self-hosted AI sales copilot for Chinese social retail (导购 × 顾客 chats).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # error messages stay whole lines

FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        help="Input format: auto, jsonl (conversations), rows or csv or parquet (one message per row), wecom.",
    ),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"copilot {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@contextmanager
def handle_errors() -> Iterator[None]:
    """Map product errors to exit codes: input/config/bundle problems 2, anything else 1."""
    try:
        yield
    except (InputError, ConfigError, BundleError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    except CopilotError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    except OSError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc


class _RateColumn(ProgressColumn):
    """Items per second."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")


def progress_bar(transient: bool = False) -> Progress:
    """A progress bar on stderr with rate and ETA; silent when stderr is not a terminal."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,
    )


def csv_rows(
    path: Path, columns: tuple[str, ...], what: str, optional: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, {column: stripped value})`` for each row of a CSV whose header must name
    ``columns`` (a BOM is fine); ``what`` names the file in errors (``"intent CSV"``). The
    ``optional`` columns are read too, as ``""`` when the file lacks them.

    Raises:
        InputError: the file cannot be read or lacks a column.
    """
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = set(columns) - set(reader.fieldnames or [])
        if missing:
            raise InputError(
                f"{what} {str(path)!r} lacks column(s) {', '.join(sorted(missing))}; "
                f"found {', '.join(reader.fieldnames or []) or 'no header'}; "
                f"the header must name {' and '.join(columns)}"
            )
        for line, row in enumerate(reader, start=2):
            yield line, {c: (row.get(c) or "").strip() for c in (*columns, *optional)}


def _parse_pairs(items: list[str] | None, option: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"{option} expects SOURCE=TARGET, got {item!r}")
        source, target = item.split("=", 1)
        out[source.strip()] = target.strip()
    return out


def reader_options(
    columns: list[str] | None,
    role_map: list[str] | None,
    staff: list[str] | None,
    gap_hours: float,
    max_message_chars: int,
) -> dict[str, Any]:
    return {
        "columns": _parse_pairs(columns, "--column") or None,
        "role_map": _parse_pairs(role_map, "--role-map") or None,
        "staff_ids": set(staff) if staff else None,
        "gap_hours": gap_hours,
        "max_message_chars": max_message_chars,
    }


ColumnsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--column", help="Rename an input column: SOURCE=TARGET (e.g. 会话ID=conversation_id)."
    ),
]
RoleOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--role-map", help="Map a role value: SOURCE=customer|guide|system (e.g. bot=guide)."
    ),
]
StaffOpt = Annotated[
    list[str] | None, typer.Option("--staff", help="WeCom: a staff (guide) user id; repeatable.")
]
GapOpt = Annotated[
    float,
    typer.Option(
        "--gap-hours", help="WeCom: a silence longer than this starts a new conversation."
    ),
]
MaxCharsOpt = Annotated[int, typer.Option("--max-message-chars", help="Longest message accepted.")]

OrdersOpt = Annotated[
    Path | None,
    typer.Option(
        "--orders",
        help="Orders CSV or JSONL (customer_id, paid_at, amount[, order_id, product, store_id]; "
        ".gz ok): a conversation is converted when its customer paid within "
        "--attribution-hours after it.",
    ),
]
AttributionHoursOpt = Annotated[
    float,
    typer.Option(
        "--attribution-hours",
        help="An order goes to its customer's latest conversation with a message at most this "
        "many hours before the payment.",
    ),
]
OrderColumnsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--order-column", help="Rename an orders column: SOURCE=TARGET (e.g. 付款时间=paid_at)."
    ),
]


def order_columns(items: list[str] | None) -> dict[str, str] | None:
    """The ``--order-column SOURCE=TARGET`` pairs as a mapping (None when there are none)."""
    return _parse_pairs(items, "--order-column") or None
