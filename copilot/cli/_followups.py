"""``copilot followups`` and ``copilot profile``: the follow-up queue and customer profiles from files."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from copilot.cli._common import (
    ColumnsOpt,
    FormatOpt,
    GapOpt,
    MaxCharsOpt,
    OrderColumnsOpt,
    OrdersOpt,
    RoleOpt,
    StaffOpt,
    app,
    console,
    handle_errors,
    order_columns,
    reader_options,
)
from copilot.errors import InputError

_DateOpt = Annotated[
    str | None,
    typer.Option("--date", help="Day of the queue, YYYY-MM-DD (default: today, China time)."),
]


def _day(value: str | None) -> date:
    from copilot.schema import CHINA_TZ

    if value is None:
        return datetime.now(CHINA_TZ).date()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"--date must be a day as YYYY-MM-DD, got '{value}'") from exc


def _load(file: Path, fmt: str, options: dict, orders: Path | None, order_column: list[str] | None):
    """The conversations (unreadable records skipped with their reasons, as train does, and
    counted) and the orders of the input files."""
    from copilot.cli._models import _load_conversations
    from copilot.orders import read_orders

    loaded_orders: list = []
    if orders is not None:
        loaded_orders, _ = read_orders(orders, order_columns(order_column))
    with console.status("reading conversations"):
        conversations, quarantined = _load_conversations([file], fmt, options)
    return conversations, [o.model_dump() for o in loaded_orders], quarantined


@app.command()
def followups(
    file: Annotated[Path, typer.Argument(help="Chat logs (JSONL, CSV, WeCom archive; .gz ok).")],
    day: _DateOpt = None,
    orders: OrdersOpt = None,
    order_column: OrderColumnsOpt = None,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Follow-up rules YAML (default: the built-in file)."),
    ] = None,
    guide: Annotated[str | None, typer.Option("--guide", help="Only this guide's queue.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    role_map: RoleOpt = None,
    staff: StaffOpt = None,
    gap_hours: GapOpt = 12.0,
    max_message_chars: MaxCharsOpt = 20_000,
) -> None:
    """The day's follow-up queue per guide: whom to contact, why, by when, and a first message.

    Rules (copilot/data/followups.yaml, or --rules): an unanswered question, a promised
    come-back time that is due, a hesitation without a purchase, after-sales care after an
    order. A customer who paid or was contacted since drops out.

    Example: copilot followups chats.csv --orders orders.csv --date 2026-11-20 --guide g-12
    """
    from copilot.followups import build_queue, customer_states, load_rules

    with handle_errors():
        when = _day(day)
        loaded_rules = load_rules(rules)
        options = reader_options(columns, role_map, staff, gap_hours, max_message_chars)
        conversations, order_rows, quarantined = _load(file, fmt, options, orders, order_column)
        states = customer_states(conversations, order_rows)
        entries = build_queue(states.values(), when, loaded_rules)
        if guide is not None:
            entries = [e for e in entries if e.guide_id == guide]
        result = {
            "date": when.isoformat(),
            "rules": loaded_rules.source,
            "customers": len(states),
            "orders": len(order_rows),
            "quarantined": quarantined,
            "followups": [e.to_dict(when) for e in entries],
        }
        if as_json:
            print(json.dumps(result, ensure_ascii=False))
            return
        table = Table(title=f"Follow-ups for {when} ({len(entries)} of {len(states)} customers)")
        for name in ("guide", "customer", "why", "due", "first message"):
            table.add_column(name, overflow="fold")
        for e in entries:
            late = " (overdue)" if when > e.due else ""
            message = e.message + (f"  [需编辑: {', '.join(e.slots)}]" if e.needs_edit else "")
            table.add_row(
                e.guide_id or "-", e.customer_id, f"{e.title}: {e.why}", f"{e.due}{late}", message
            )
        console.print(table)


@app.command()
def profile(
    file: Annotated[Path, typer.Argument(help="Chat logs (JSONL, CSV, WeCom archive; .gz ok).")],
    customer: Annotated[str, typer.Argument(help="The customer id.")],
    orders: OrdersOpt = None,
    order_column: OrderColumnsOpt = None,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    role_map: RoleOpt = None,
    staff: StaffOpt = None,
    gap_hours: GapOpt = 12.0,
    max_message_chars: MaxCharsOpt = 20_000,
) -> None:
    """A customer's profile from the logs: each fact with the message it came from (JSON).

    Example: copilot profile chats.csv u-9 --orders orders.csv
    """
    from copilot.profile import build_profile

    with handle_errors():
        options = reader_options(columns, role_map, staff, gap_hours, max_message_chars)
        conversations, order_rows, _ = _load(file, fmt, options, orders, order_column)
        mine = [c for c in conversations if c.customer_id == customer]
        if not mine:
            raise InputError(f"no conversation of customer '{customer}' in '{file}'")
        paid = [o for o in order_rows if str(o.get("customer_id")) == customer]
        print(
            json.dumps(
                build_profile(customer, mine, paid).to_dict(), ensure_ascii=False, default=str
            )
        )
