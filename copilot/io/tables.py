"""Reading a table of records (orders, catalogue items, promotions) from CSV or JSONL.

One reader for every small table a brand hands over besides its conversations: a CSV file with
a header row, or JSONL with one object per line, ``.gz`` too, ``"-"`` for standard input (the
file handling of :mod:`copilot.io.readers`). A :class:`TableSpec` says what the table holds
(its columns, the required ones) and how messages name it; :func:`read_table` turns each row
into a record with the caller's ``parse`` and quarantines the rows it cannot use.

Columns (CSV header names or JSON keys) are matched case-insensitively to the spec's columns,
after the caller's renaming (``columns={"付款时间": "paid_at"}``); others are ignored. Blank
values are left out, so ``parse`` sees only what a row gives. A CSV header that lacks a
required column stops the read with an :class:`~copilot.errors.InputError` naming the columns
found and the ones expected; a bad row never does: it becomes a :class:`Quarantined` entry
with its line, the field and the value, and what is valid.

Example::

    spec = TableSpec("order", "orders file", ORDER_COLUMNS, ("customer_id",), "order_id",
                     "--order-column")
    orders, quarantined = read_table("orders.csv", spec, Order.model_validate)
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from pydantic import ValidationError

from copilot.errors import InputError, RecordError
from copilot.io.readers import (
    _CSV_FIELD_LIMIT,
    Quarantined,
    _decode,
    _decoded_lines,
    _numbered,
    _parse_object,
    _Source,
)
from copilot.schema import format_validation_error

__all__ = ["TableRow", "TableSpec", "quarantine_entry", "read_table", "table_rows"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class TableSpec:
    """What a table file holds and how messages name it.

    Attributes:
        noun: one record (``"order"``): "line 3 (order 'o-1')", "an order column".
        file: the file in messages (``"orders file"``).
        columns: every column, in the order the docs list them.
        required: the columns a CSV header must have.
        key: the column that names a record in messages (``"order_id"``).
        option: the CLI option that renames columns (``"--order-column"``).
        unique_hint: how to fix a ``key`` given twice, for :func:`read_table` with
            ``unique=True`` (``"put variants in attributes"``).
    """

    noun: str
    file: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    key: str
    option: str
    unique_hint: str = ""

    @property
    def expected(self) -> str:
        """The columns, required ones marked: ``"name (required), category, price"``."""
        return ", ".join(f"{c} (required)" if c in self.required else c for c in self.columns)

    def check_mapping(self, columns: Mapping[str, str] | None) -> dict[str, str]:
        """The renaming ``{source: column}`` as a dict.

        Raises:
            InputError: a target that is not one of the spec's columns.
        """
        article = "an" if self.noun[:1] in "aeiou" else "a"
        for source, target in (columns or {}).items():
            if target not in self.columns:
                raise InputError(
                    f"{self.noun} column mapping {source!r} -> {target!r}: {target!r} is not "
                    f"{article} {self.noun} column; valid columns: {', '.join(self.columns)}"
                )
        return dict(columns or {})


class TableRow(NamedTuple):
    """One row: its line, canonical values (None when unreadable), the raw record, an error."""

    line: int
    values: dict[str, Any] | None
    raw: str | dict[str, Any]
    error: str | None


def read_table(
    path: str | Path,
    spec: TableSpec,
    parse: Callable[[dict[str, Any]], T],
    columns: Mapping[str, str] | None = None,
    *,
    unique: bool = False,
) -> tuple[list[T], list[Quarantined]]:
    """Read a table file into records; rows ``parse`` refuses are quarantined.

    Args:
        path: the file (CSV or JSONL, ``.gz`` too; ``"-"`` for standard input).
        spec: what the table holds.
        parse: builds one record from a row's canonical values; raises
            :class:`~copilot.errors.InputError` (its message becomes the quarantine reason)
            or a pydantic ``ValidationError``.
        columns: source column name -> the spec's column.
        unique: a row whose ``spec.key`` repeats an earlier record's is quarantined (the
            first is kept), instead of both being returned.

    Returns:
        ``(records, quarantined)`` in file order.

    Raises:
        InputError: the file does not exist or cannot be read, a mapping names no column of
            the spec, or a CSV header lacks a required column.
    """
    records: list[T] = []
    quarantined: list[Quarantined] = []
    first_line: dict[str, int] = {}
    name, rows = table_rows(path, spec, columns)
    for line, values, raw, error in rows:
        if error is None and values is not None:
            try:
                record = parse(values)
                key = str(values.get(spec.key))
                if unique and key in first_line:
                    raise InputError(
                        f"{spec.key}: {key!r} is already on line {first_line[key]}; give each "
                        f"{spec.noun} once" + (f" ({spec.unique_hint})" if spec.unique_hint else "")
                    )
                first_line.setdefault(key, line)
                records.append(record)
                continue
            except ValidationError as exc:
                error = format_validation_error(exc)
            except RecordError as exc:
                error = exc.reason
            except InputError as exc:
                error = str(exc)
        quarantined.append(quarantine_entry(spec, line, error or "unreadable row", values, raw))
    if quarantined:
        logger.warning(
            "%s: %d %ss read, %d rows quarantined", name, len(records), spec.noun, len(quarantined)
        )
    return records, quarantined


def quarantine_entry(
    spec: TableSpec,
    line: int,
    error: str,
    values: Mapping[str, Any] | None,
    raw: str | dict[str, Any],
) -> Quarantined:
    """The entry of a refused row: ``line 3 (order 'o-1'): <error>``."""
    key = values.get(spec.key) if values else None
    where = f"line {line}" + (f" ({spec.noun} {str(key)!r})" if key not in (None, "") else "")
    return Quarantined(line=line, error=f"{where}: {error}", raw=raw)


def table_rows(
    path: str | Path, spec: TableSpec, columns: Mapping[str, str] | None = None
) -> tuple[str, Iterator[TableRow]]:
    """The file's name in messages and its rows, unparsed (the header is checked when the
    first row is read).

    Raises:
        InputError: as :func:`read_table`.
    """
    mapping = spec.check_mapping(columns)
    source = _Source(path)
    rows = (
        _csv_rows(source, spec, mapping) if _is_csv(source) else _jsonl_rows(source, mapping, spec)
    )
    return source.name, rows


def _key(name: str, columns: Mapping[str, str], spec: TableSpec) -> str | None:
    for key in (name, name.strip()):
        if key in columns:
            return columns[key]
    lowered = name.strip().lower()
    return lowered if lowered in spec.columns else None


def _is_csv(source: _Source) -> bool:
    if source.suffix == ".csv":
        return True
    if source.suffix in (".jsonl", ".json", ".ndjson"):
        return False
    first = next((line for line in source.peek(20) if line.strip()), b"")
    return not first.lstrip().startswith(b"{")


def _values(
    pairs: Iterable[tuple[str, Any]], columns: Mapping[str, str], spec: TableSpec
) -> dict[str, Any]:
    """Canonical fields from (column, value) pairs; blank values are left out."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        target = _key(str(name), columns, spec)
        if target is None or target in out:
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        out[target] = value.strip() if isinstance(value, str) else value
    return out


def _check_header(
    header: list[str], columns: Mapping[str, str], spec: TableSpec, name: str
) -> None:
    seen: dict[str, str] = {}
    for column in header:
        target = _key(column, columns, spec)
        if target is None:
            continue
        if target in seen:
            raise InputError(
                f"{name!r}: columns {seen[target]!r} and {column!r} both map to {target!r}; "
                f"keep one (or remap the other with {spec.option})"
            )
        seen[target] = column
    missing = [c for c in spec.required if c not in seen]
    if missing:
        found = ", ".join(repr(c) for c in header) or "none"
        raise InputError(
            f"{spec.file} {name!r} lacks the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)}; found columns: {found}; expected columns: "
            f"{spec.expected}. Map your column names with {spec.option} 'SOURCE={missing[0]}' "
            f"(API: columns={{'SOURCE': {missing[0]!r}}})"
        )


def _csv_rows(source: _Source, spec: TableSpec, columns: Mapping[str, str]) -> Iterator[TableRow]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    bad: dict[int, str] = {}
    reader = csv.reader(_decoded_lines(source.lines(), bad))
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if header is None:
                raise InputError(f"{source.name!r}: cannot read the CSV header: {exc}") from exc
            yield TableRow(start, None, "", f"unreadable CSV row: {exc}")
            continue
        errors = [bad.pop(n) for n in range(start, reader.line_num + 1) if n in bad]
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            if errors:
                raise InputError(f"{source.name!r}: the CSV header is not UTF-8 ({errors[0]})")
            header = row
            _check_header(header, columns, spec, source.name)
            continue
        raw = dict(zip(header, row, strict=False))
        values = _values(zip(header, row, strict=False), columns, spec)
        if errors:
            yield TableRow(start, values, raw, errors[0])
        elif len(row) != len(header):
            yield TableRow(
                start,
                values,
                raw,
                f"the row has {len(row)} fields but the header has {len(header)}; check the "
                "quoting of commas and quotes",
            )
        else:
            yield TableRow(start, values, raw, None)


def _jsonl_rows(source: _Source, columns: Mapping[str, str], spec: TableSpec) -> Iterator[TableRow]:
    for line, data in _numbered(source.lines()):
        try:
            obj = _parse_object(_decode(data), f"one {spec.noun}")
        except RecordError as exc:
            yield TableRow(line, None, exc.raw if isinstance(exc.raw, str) else "", exc.reason)
            continue
        yield TableRow(line, _values(obj.items(), columns, spec), obj, None)
