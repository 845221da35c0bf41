"""Data commands: generate, validate, stats."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.table import Table

from copilot.cli._common import (
    AttributionHoursOpt,
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
    err_console,
    handle_errors,
    order_columns,
    progress_bar,
    reader_options,
)
from copilot.errors import InputError

if TYPE_CHECKING:
    from copilot.orders import ConversationSpan
    from copilot.schema import Outcome
    from copilot.synth import PhraseSplit

# --------------------------------------------------------------------------- generate


@app.command()
def generate(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output file (.jsonl, .csv or .parquet).")
    ],
    n: Annotated[
        int,
        typer.Option("-n", min=1, help="Number of conversations (of customers with --journeys)."),
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Corpus seed: same seed, same bytes.")] = 0,
    split: Annotated[
        str,
        typer.Option(
            "--phrases",
            help="Draw phrasings from 'all', the 'train' part, or the 'heldout' part (for honest evaluation).",
        ),
    ] = "all",
    shop: Annotated[
        Path | None,
        typer.Option(
            "--shop",
            help="Also write the synthetic shop's catalogue and promotions: SHOP-catalog.jsonl "
            "and SHOP-promotions.jsonl (for copilot train --catalog/--promotions).",
        ),
    ] = None,
    journeys: Annotated[
        bool,
        typer.Option(
            "--journeys",
            help="Simulate -n customers who come back: 1-3 conversations each over days and "
            "weeks, with ground truth in meta.journey (for evaluating copilot followups).",
        ),
    ] = False,
    orders: Annotated[
        Path | None,
        typer.Option(
            "--orders",
            help="Also write an orders CSV: one order per converted conversation, paid minutes "
            "to hours after it (for --orders of copilot train and copilot followups).",
        ),
    ] = None,
) -> None:
    """Generate a labelled synthetic corpus (marked meta.synthetic = true).

    Example: copilot generate -n 5000 --seed 7 -o data/demo.jsonl --shop data/demo

    Example: copilot generate --journeys -n 2000 -o data/journeys.jsonl --orders data/orders.csv
    """
    from copilot.io import write_conversations
    from copilot.synth import generate as synth
    from copilot.synth import journey_orders
    from copilot.synth import journeys as synth_journeys

    with handle_errors():
        if split not in ("all", "train", "heldout"):
            raise InputError(f"--phrases must be all, train or heldout, got {split!r}")
        rows: list[dict[str, Any]] = []
        with progress_bar() as progress:
            task = progress.add_task("generating", total=None if journeys else n)

            def tick(conversations: Iterator[Any]) -> Iterator[Any]:
                for i, conversation in enumerate(conversations, 1):
                    yield conversation
                    if orders is not None:
                        rows.extend(journey_orders([conversation], seed=seed))
                    if i % 200 == 0 or i == n:
                        progress.update(task, completed=i)

            phrases = cast("PhraseSplit", split)
            make = synth_journeys if journeys else synth
            count = write_conversations(output, tick(make(n, seed=seed, split=phrases)))
        who = f" of {n:,} customers" if journeys else ""
        err_console.print(f"wrote {count:,} synthetic conversations{who} to {output}")
        if orders is not None:
            _write_orders(orders, rows)
        if shop is not None:
            write_shop(shop)


def _write_orders(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write order rows as CSV (the columns of an orders file, times in ISO with +08:00)."""
    import csv

    from copilot.orders import ORDER_COLUMNS

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ORDER_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "paid_at": row["paid_at"].isoformat()})
    err_console.print(f"wrote {len(rows):,} orders to {path}")


# --------------------------------------------------------------------------- validate


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Input file (JSONL, CSV, WeCom archive; .gz ok).")],
    fmt: FormatOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quarantine: Annotated[
        Path | None,
        typer.Option("--quarantine", help="Also write every quarantine entry to this JSONL file."),
    ] = None,
    taxonomy: Annotated[
        Path | None,
        typer.Option(
            "--taxonomy", help="Check labels against this taxonomy YAML (default: built-in)."
        ),
    ] = None,
    columns: ColumnsOpt = None,
    role_map: RoleOpt = None,
    staff: StaffOpt = None,
    gap_hours: GapOpt = 12.0,
    max_message_chars: MaxCharsOpt = 20_000,
) -> None:
    """Check a file and print the summary: records read, valid and quarantined (with reasons).

    Exit code 0 when every record is valid, 2 when any record was quarantined.
    """
    from copilot.io import Quarantined, open_conversations
    from copilot.taxonomy import default_taxonomy, load_taxonomy

    with handle_errors():
        tax = load_taxonomy(taxonomy) if taxonomy else default_taxonomy()
        options = reader_options(columns, role_map, staff, gap_hours, max_message_chars)
        reader = open_conversations(file, format=fmt, taxonomy=tax, **options)
        errors: list[dict[str, Any]] = []
        sink = _quarantine_sink(quarantine)
        try:
            with progress_bar(transient=True) as progress:
                task = progress.add_task("validating", total=None)
                for i, item in enumerate(reader, 1):
                    if isinstance(item, Quarantined):
                        if len(errors) < 20:
                            errors.append(item.to_dict())
                        sink(item.to_dict())
                    if i % 500 == 0:
                        progress.update(task, completed=i)
        finally:
            sink(None)
        summary = reader.summary.to_dict()
        if as_json:
            print(
                json.dumps(
                    {**summary, "format": reader.format, "errors": errors}, ensure_ascii=False
                )
            )
        else:
            _print_validation(file, reader.format, summary, errors)
        if summary["quarantined"]:
            raise typer.Exit(2)


def _quarantine_sink(path: Path | None) -> Callable[[dict[str, Any] | None], None]:
    if path is None:
        return lambda entry: None
    handle = path.open("w", encoding="utf-8")

    def sink(entry: dict[str, Any] | None) -> None:
        if entry is None:
            handle.close()
        else:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")

    return sink


def _print_validation(
    file: Path, fmt: str, summary: dict[str, Any], errors: list[dict[str, Any]]
) -> None:
    ok = summary["quarantined"] == 0
    colour = "green" if ok else "yellow"
    console.print(
        f"[bold]{file}[/] ({fmt}): read [bold]{summary['read']:,}[/], "
        f"valid [bold green]{summary['valid']:,}[/], quarantined [bold {colour}]{summary['quarantined']:,}[/], "
        f"conversations {summary['conversations']:,}",
        highlight=False,
    )
    if summary["read"] == 0:
        console.print("[yellow]the file holds no records[/]")
    if errors:
        table = Table(title="first quarantined records", show_lines=False)
        table.add_column("line", justify="right")
        table.add_column("reason")
        for entry in errors:
            table.add_row(str(entry["line"]), entry["error"])
        console.print(table)


# --------------------------------------------------------------------------- stats


@app.command()
def stats(
    file: Annotated[Path, typer.Argument(help="Input file (JSONL, CSV, WeCom archive; .gz ok).")],
    fmt: FormatOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    columns: ColumnsOpt = None,
    role_map: RoleOpt = None,
    staff: StaffOpt = None,
    gap_hours: GapOpt = 12.0,
    max_message_chars: MaxCharsOpt = 20_000,
    orders: OrdersOpt = None,
    attribution_hours: AttributionHoursOpt = 72.0,
    order_column: OrderColumnsOpt = None,
) -> None:
    """Corpus statistics: counts, intent and action distributions, conversion by guide skill.

    With --orders, conversion comes from the orders (each goes to its customer's latest
    conversation with a message at most --attribution-hours before the payment; see
    copilot.orders), and the counts of matched conversations and orders are printed.

    Example: copilot stats chats.csv --orders orders.csv --order-column 付款时间=paid_at
    """
    from copilot.io import Quarantined, open_conversations
    from copilot.orders import attribute, check_hours, read_orders
    from copilot.taxonomy import default_taxonomy

    with handle_errors():
        options = reader_options(columns, role_map, staff, gap_hours, max_message_chars)
        loaded = None
        if orders is not None:
            check_hours(attribution_hours)
            loaded = read_orders(orders, order_columns(order_column))
        reader = open_conversations(file, format=fmt, **options)
        acc = _Stats(track=loaded is not None)
        with progress_bar(transient=True) as progress:
            task = progress.add_task("reading", total=None)
            for i, item in enumerate(reader, 1):
                if not isinstance(item, Quarantined):
                    acc.add(item)
                if i % 500 == 0:
                    progress.update(task, completed=i)
        result = acc.result(reader.summary.to_dict())
        if loaded is not None:
            order_list, quarantined = loaded
            attribution = attribute(acc.spans, order_list, attribution_hours)
            result["conversion"] = acc.conversion(attribution.outcomes)
            result["orders"] = {
                **attribution.to_dict(),
                "orders_file": str(orders),
                "quarantined": len(quarantined),
                "quarantine": [q.to_dict() for q in quarantined[:20]],
            }
        if as_json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            _print_stats(file, result, default_taxonomy().name_of)


class _Stats:
    """Accumulates corpus statistics in one pass, in constant memory.

    With ``track`` (for ``--orders``) it also keeps each conversation's message times, guide
    skill and outcome: a few numbers per conversation, for the attribution at the end.
    """

    def __init__(self, track: bool = False) -> None:
        self.track = track
        self.spans: list[ConversationSpan] = []
        self.tracked: dict[str, tuple[str, bool | None]] = {}  # id -> (guide skill, converted)
        self.conversations = 0
        self.messages = Counter[str]()
        self.lengths = Counter[int]()
        self.intents = Counter[str]()
        self.actions = Counter[str]()
        self.domains = Counter[str]()
        self.synthetic = 0
        self.with_outcome = 0
        self.converted = 0
        self.by_skill: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.guides: set[str] = set()
        self.chars = 0

    def add(self, conversation: Any) -> None:
        self.conversations += 1
        self.lengths[len(conversation.messages)] += 1
        for message in conversation.messages:
            self.messages[message.role] += 1
            self.chars += len(message.text)
        if conversation.labels:
            self.intents.update(conversation.labels.intents.values())
            self.actions.update(conversation.labels.actions.values())
        meta = conversation.meta
        self.synthetic += bool(meta.get("synthetic"))
        if "domain" in meta:
            self.domains[str(meta["domain"])] += 1
        if conversation.guide_id:
            self.guides.add(conversation.guide_id)
        skill = str(meta.get("guide_skill", "unknown"))
        if self.track:
            from copilot.orders import ConversationSpan

            self.spans.append(ConversationSpan.of(conversation))
            outcome = conversation.outcome
            self.tracked[conversation.conversation_id] = (
                skill,
                outcome.converted if outcome is not None else None,
            )
        if conversation.outcome is not None:
            self.with_outcome += 1
            won = int(conversation.outcome.converted)
            self.converted += won
            self.by_skill[skill][0] += 1
            self.by_skill[skill][1] += won

    def conversion(self, outcomes: Mapping[str, Outcome]) -> dict[str, Any]:
        """The conversion block again, with the outcomes the orders gave (``track`` only)."""
        with_outcome = converted = 0
        by_skill: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for cid, (skill, own) in self.tracked.items():
            given = outcomes.get(cid)
            won = given.converted if given is not None else own
            if won is None:
                continue
            with_outcome += 1
            converted += won
            by_skill[skill][0] += 1
            by_skill[skill][1] += won
        return _conversion(with_outcome, converted, by_skill)

    def result(self, summary: dict[str, Any]) -> dict[str, Any]:
        n = max(self.conversations, 1)
        total_messages = sum(self.messages.values())
        lengths = sorted(self.lengths.elements()) if self.conversations else [0]
        return {
            "summary": summary,
            "conversations": self.conversations,
            "synthetic": self.synthetic,
            "messages": dict(self.messages),
            "messages_per_conversation": {
                "mean": round(total_messages / n, 2),
                "min": lengths[0],
                "median": lengths[len(lengths) // 2],
                "max": lengths[-1],
            },
            "mean_message_chars": round(self.chars / max(total_messages, 1), 1),
            "guides": len(self.guides),
            "domains": dict(self.domains.most_common()),
            "intents": dict(self.intents.most_common()),
            "actions": dict(self.actions.most_common()),
            "conversion": _conversion(self.with_outcome, self.converted, self.by_skill),
        }


def _conversion(
    with_outcome: int, converted: int, by_skill: dict[str, list[int]]
) -> dict[str, Any]:
    return {
        "with_outcome": with_outcome,
        "rate": round(converted / with_outcome, 4) if with_outcome else None,
        "by_guide_skill": {
            skill: {"conversations": total, "rate": round(won / total, 4)}
            for skill, (total, won) in sorted(by_skill.items(), key=_skill_order)
        },
    }


_SKILL_ORDER = {"poor": 0, "average": 1, "good": 2, "star": 3}


def _skill_order(item: tuple[str, list[int]]) -> tuple[int, str]:
    return (_SKILL_ORDER.get(item[0], 9), item[0])


def _print_stats(file: Path, result: dict[str, Any], name_of: Callable[[str], str]) -> None:
    s = result["summary"]
    mpc = result["messages_per_conversation"]
    console.print(
        f"[bold]{file}[/]: {result['conversations']:,} conversations "
        f"({result['synthetic']:,} synthetic), {sum(result['messages'].values()):,} messages "
        f"{dict(result['messages'])}, {result['guides']} guides; quarantined {s['quarantined']:,}",
        highlight=False,
    )
    console.print(
        f"messages per conversation: mean {mpc['mean']}, min {mpc['min']}, median {mpc['median']}, "
        f"max {mpc['max']}; mean message length {result['mean_message_chars']} chars",
        highlight=False,
    )
    if result["domains"]:
        console.print("domains: " + ", ".join(f"{k} {v:,}" for k, v in result["domains"].items()))
    for key, title in (("intents", "customer intents"), ("actions", "guide actions")):
        counts = result[key]
        if not counts:
            continue
        total = sum(counts.values())
        table = Table(title=title)
        table.add_column("label")
        table.add_column("名称")
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        for label, count in counts.items():
            table.add_row(label, name_of(label), f"{count:,}", f"{count / total:.1%}")
        console.print(table)
    if "orders" in result:
        _print_orders(result["orders"])
    conv = result["conversion"]
    if conv["with_outcome"]:
        table = Table(title=f"conversion (overall {conv['rate']:.1%})")
        table.add_column("guide skill")
        table.add_column("conversations", justify="right")
        table.add_column("conversion rate", justify="right")
        for skill, row in conv["by_guide_skill"].items():
            table.add_row(skill, f"{row['conversations']:,}", f"{row['rate']:.1%}")
        console.print(table)


_REASON_TEXT = {
    "unknown_customer": "no conversation of that customer",
    "other_store": "the customer's conversations are in other stores",
    "paid_before_chat": "paid before any message of the customer",
    "outside_window": "last message before the payment is older than the window",
}


def _print_orders(orders: dict[str, Any]) -> None:
    c, o = orders["conversations"], orders["orders"]
    console.print(
        f"orders {orders['orders_file']} (window {orders['hours']:g} h): {o['total']:,} orders, "
        f"[bold green]{o['attributed']:,}[/] attributed (amount {o['attributed_amount']:,.2f}), "
        f"{o['unattributed']:,} unattributed; {o['duplicates']:,} repeated order ids, "
        f"{orders['quarantined']:,} rows quarantined",
        highlight=False,
    )
    console.print(
        f"conversations: {c['with_outcome']:,} of {c['total']:,} matched to the orders "
        f"(converted {c['converted']:,}, not converted {c['not_converted']:,}); outcome kept "
        f"for {c['no_customer']:,} without customer_id and {c['no_time']:,} without timestamps",
        highlight=False,
    )
    if o["unattributed"]:
        table = Table(title="unattributed orders")
        table.add_column("reason")
        table.add_column("meaning")
        table.add_column("orders", justify="right")
        for reason, n in o["unattributed_by_reason"].items():
            table.add_row(reason, _REASON_TEXT.get(reason, ""), f"{n:,}")
        console.print(table)
    for entry in orders["quarantine"][:5]:
        console.print(f"[yellow]quarantined[/] {entry['error']}", highlight=False)


def write_shop(prefix: Path) -> tuple[Path, Path]:
    """Write the synthetic shop's ``PREFIX-catalog.jsonl`` and ``PREFIX-promotions.jsonl``."""
    import orjson

    from copilot.synth import catalog

    records = catalog().to_records()
    paths = (
        prefix.with_name(prefix.name + "-catalog.jsonl"),
        prefix.with_name(prefix.name + "-promotions.jsonl"),
    )
    for path, rows in zip(paths, (records["products"], records["promotions"]), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        err_console.print(f"wrote {len(rows)} rows to {path}")
    return paths
