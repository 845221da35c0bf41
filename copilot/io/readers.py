"""Streaming loaders for the three conversation input formats (``docs/formats.md``).

Formats (``format=``):

- ``"jsonl"``: canonical conversation JSONL, one conversation per line.
- ``"rows"``: message rows, one message per row, in CSV, JSONL or Parquet (``rows_format=``, else
  the file extension); ``"csv"`` and ``"parquet"`` are shorthands for rows in that file format.
  Rows of one conversation must be contiguous; they are grouped in order of appearance.
- ``"wecom"``: a WeCom conversation archive (企业微信会话存档), one decrypted message per line;
  see :mod:`copilot.io.wecom`.
- ``"auto"`` (default): ``.csv`` / ``.parquet`` by extension, otherwise a peek at the first
  parsable line (``messages`` -> jsonl; ``msgtype`` or ``msgid`` -> wecom; ``role`` and
  ``conversation_id`` -> rows).

Files are read as binary lines (``.gz`` files, recognised by their magic bytes, transparently)
and each line is decoded as strict UTF-8; ``"-"`` reads standard input (not gzip or Parquet).
Memory stays bounded: one record at a time for jsonl, one conversation plus the ids of finished
ones for rows, and the open (staff, customer) threads for wecom.

Counting (:class:`LoadSummary`): a *record* is a non-blank line (jsonl, wecom, JSONL rows) or a
data row (CSV after the header, Parquet). Blank lines are skipped and not counted. Every record
ends either in a yielded conversation (``valid``) or in exactly one :class:`Quarantined` entry
(``quarantined``), so ``read == valid + quarantined`` and the number of quarantine entries equals
``quarantined``. In the row formats a conversation is kept or quarantined whole: when one of its
rows is bad (or the assembled conversation is invalid), each of its rows gets an entry. In a WeCom
archive each line is a message on its own: a bad line is quarantined and its thread goes on
without it.

Example::

    reader = open_conversations("logs.csv", columns={"会话ID": "conversation_id"})
    for item in reader:
        if isinstance(item, Quarantined):
            bad.append(item.to_dict())
        else:
            score(item)
    print(reader.summary.to_dict())
"""

from __future__ import annotations

import csv
import gzip
import logging
import sys
import zlib
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from copilot.errors import BrokenInputError, InputError, RecordError
from copilot.io.wecom import Thread, ThreadGrouper, parse_message
from copilot.schema import (
    CHINA_TZ,
    MAX_MESSAGE_CHARS,
    Conversation,
    Message,
    format_validation_error,
)
from copilot.taxonomy import Taxonomy

__all__ = [
    "DEFAULT_ROLE_ALIASES",
    "FORMATS",
    "RAW_LIMIT",
    "ROW_COLUMNS",
    "ConversationReader",
    "LoadSummary",
    "Quarantined",
    "iter_conversations",
    "open_conversations",
]

logger = logging.getLogger(__name__)

FORMATS = ("auto", "jsonl", "rows", "csv", "parquet", "wecom")
ROWS_FORMATS = ("csv", "jsonl", "parquet")
RAW_LIMIT = 2_000
"""Longest ``raw`` kept in a quarantine entry (characters of text or of the JSON of an object)."""

ROW_COLUMNS = (
    "conversation_id",
    "message_index",
    "role",
    "text",
    "ts",
    "guide_id",
    "customer_id",
    "store_id",
    "channel",
    "label",
    "converted",
    "order_amount",
    "meta",
)
"""Canonical message-row columns (what the writers produce; ``message_index`` is ignored on
reading, where the order of the rows is the order of the messages)."""
_REQUIRED_COLUMNS = ("conversation_id", "role", "text")
# Conversation-level columns: the first non-empty value among a conversation's rows wins.
_CONVERSATION_COLUMNS = ("guide_id", "customer_id", "store_id", "channel")

DEFAULT_ROLE_ALIASES: dict[str, str] = {
    **dict.fromkeys(("customer", "顾客", "客户", "买家", "user", "buyer"), "customer"),
    **dict.fromkeys(("guide", "导购", "客服", "顾问", "staff", "agent", "seller"), "guide"),
    **dict.fromkeys(("system", "系统"), "system"),
}
"""Role values accepted in message rows (case-insensitive); extend with ``role_map``."""

_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
_PEEK_LINES = 20
_JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
# The csv module refuses fields over 128 KiB by default; a long message must reach validation
# to be reported as too long. The limit stays bounded so a stray quote cannot swallow a file.
_CSV_FIELD_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Quarantined:
    """A record that could not be read: where it was, why, and the raw record.

    Attributes:
        line: 1-based line of the record (the first line of a CSV row; the row for Parquet).
        error: the reason, starting with the line and the conversation (or msgid) when known.
        raw: the record as text, or as the parsed object when it was valid JSON.
    """

    line: int
    error: str
    raw: str | dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"line", "error", "raw"}``; a raw longer than :data:`RAW_LIMIT` is cut with a marker."""
        return {"line": self.line, "error": self.error, "raw": _truncate(self.raw)}


@dataclass
class LoadSummary:
    """Counts of one read; final once the reader is exhausted.

    ``read == valid + quarantined`` always holds then; ``conversations`` is the number of
    conversations yielded (``valid`` counts records, which differ for rows and WeCom).
    """

    read: int = 0
    valid: int = 0
    quarantined: int = 0
    conversations: int = 0

    @property
    def empty(self) -> bool:
        """True when the input had no records at all."""
        return self.read == 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class _Options:
    columns: Mapping[str, str]
    roles: Mapping[str, str]
    staff_ids: Collection[str] | None
    gap_hours: float
    max_message_chars: int
    taxonomy: Taxonomy | None

    @property
    def context(self) -> dict[str, Any]:
        return {
            "max_message_chars": self.max_message_chars,
            "limit_hint": "raise it with --max-message-chars, or max_message_chars= when reading in Python",
        }


class ConversationReader:
    """An iterable over the conversations and quarantine entries of one input, in input order.

    Made by :func:`open_conversations`; iterate it once. ``summary`` is final when exhausted.

    Attributes:
        name: the input path (``"<stdin>"`` for ``-``).
        format: the format in use: ``"jsonl"``, ``"rows"`` or ``"wecom"``.
        rows_format: ``"csv"``, ``"jsonl"`` or ``"parquet"`` for rows, else None.
        summary: the running :class:`LoadSummary`.
    """

    def __init__(
        self, source: _Source, format: str, rows_format: str | None, options: _Options
    ) -> None:
        self.name = source.name
        self.format = format
        self.rows_format = rows_format
        self.summary = LoadSummary()
        self._source = source
        self._options = options
        self._items: Generator[Conversation | Quarantined, None, None] | None = None

    @property
    def empty(self) -> bool:
        """True when the input had no records (meaningful once the reader is exhausted)."""
        return self.summary.empty

    def __iter__(self) -> Iterator[Conversation | Quarantined]:
        if self._items is not None:
            raise InputError(
                f"the reader of {self.name!r} was already iterated; call open_conversations again"
            )
        self._items = self._run()
        return self._items

    def close(self) -> None:
        """Stop reading and release the file."""
        if self._items is not None:
            self._items.close()

    def __enter__(self) -> ConversationReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> Generator[Conversation | Quarantined, None, None]:
        src, opts, summary = self._source, self._options, self.summary
        if self.format == "jsonl":
            items = _read_canonical(src, opts, summary)
        elif self.format == "wecom":
            items = _read_wecom(src, opts, summary)
        else:
            items = _assemble_rows(_row_source(src, self.rows_format, opts), opts, summary)
        for item in items:
            if isinstance(item, Quarantined):
                logger.debug("quarantined %s", item.error)
            yield item
        if summary.empty:
            logger.warning("%s has no records", self.name)
        else:
            logger.log(
                logging.WARNING if summary.quarantined else logging.INFO,
                "%s: read %d records, %d valid, %d quarantined, %d conversations",
                self.name,
                summary.read,
                summary.valid,
                summary.quarantined,
                summary.conversations,
            )


def open_conversations(
    path: str | Path,
    format: str = "auto",
    *,
    rows_format: str | None = None,
    columns: Mapping[str, str] | None = None,
    role_map: Mapping[str, str] | None = None,
    staff_ids: Collection[str] | None = None,
    gap_hours: float = 12.0,
    max_message_chars: int = MAX_MESSAGE_CHARS,
    taxonomy: Taxonomy | None = None,
) -> ConversationReader:
    """Open an input file for streaming: conversations and quarantine entries, in input order.

    Args:
        path: the input file (``.gz`` read transparently), or ``"-"`` for standard input.
        format: one of :data:`FORMATS`; ``"auto"`` detects it (see the module docstring).
        rows_format: ``"csv"``, ``"jsonl"`` or ``"parquet"`` for message rows; default by
            extension (``.csv``, ``.parquet``), else a peek (JSON object -> jsonl, else csv).
        columns: rows only: source column name -> canonical name (one of :data:`ROW_COLUMNS`),
            e.g. ``{"会话ID": "conversation_id", "内容": "text"}``.
        role_map: rows only: extra role aliases -> ``customer``, ``guide`` or ``system``, added
            to :data:`DEFAULT_ROLE_ALIASES`.
        staff_ids: wecom only: the staff (guide) ids; default: ids not starting with ``wo``/``wm``.
        gap_hours: wecom only: a longer gap between two messages of a pair starts a new
            conversation.
        max_message_chars: longest message accepted; longer ones are quarantined.
        taxonomy: when given, labels outside it are quarantined (with a did-you-mean hint).

    Returns:
        A :class:`ConversationReader`; the file is read lazily while iterating.

    Raises:
        InputError: the file does not exist, the format is unknown or cannot be detected, an
            option is invalid, or a CSV file lacks a required column.
    """
    options = _options(columns, role_map, staff_ids, gap_hours, max_message_chars, taxonomy)
    source = _Source(path)
    fmt, rows_fmt = _resolve_format(source, format, rows_format, options.columns)
    if fmt == "rows" and rows_fmt == "csv":
        header = _peek_csv_header(source)
        if header is not None:
            _column_indexes(header, options.columns, source.name)
    elif fmt == "rows" and rows_fmt == "parquet":
        _check_columns(_parquet_columns(source), options.columns, source.name)
    return ConversationReader(source, fmt, rows_fmt, options)


def iter_conversations(
    path: str | Path,
    format: str = "auto",
    *,
    on_quarantine: Callable[[Quarantined], object] | None = None,
    **options: Any,
) -> Iterator[Conversation]:
    """Only the valid conversations of an input; quarantined records go to ``on_quarantine``.

    Use :func:`open_conversations` when the :class:`LoadSummary` is needed.

    Args:
        path: as for :func:`open_conversations`.
        format: as for :func:`open_conversations`.
        on_quarantine: called with each :class:`Quarantined` entry (they are only logged at
            debug level, and counted in a warning at the end, when None).
        **options: the keyword options of :func:`open_conversations`.

    Returns:
        An iterator of conversations.

    Raises:
        InputError: as :func:`open_conversations`, at once (not on the first ``next``).
    """
    reader = open_conversations(path, format, **options)

    def conversations() -> Iterator[Conversation]:
        with reader:
            for item in reader:
                if isinstance(item, Conversation):
                    yield item
                elif on_quarantine is not None:
                    on_quarantine(item)

    return conversations()


# --- options and format -------------------------------------------------------------------------


def _options(
    columns: Mapping[str, str] | None,
    role_map: Mapping[str, str] | None,
    staff_ids: Collection[str] | None,
    gap_hours: float,
    max_message_chars: int,
    taxonomy: Taxonomy | None,
) -> _Options:
    for source_name, target in (columns or {}).items():
        if target not in ROW_COLUMNS:
            raise InputError(
                f"column mapping {source_name!r} -> {target!r}: {target!r} is not a message-row "
                f"column; valid columns: {', '.join(ROW_COLUMNS)}"
            )
    roles = dict(DEFAULT_ROLE_ALIASES)
    for alias, role in (role_map or {}).items():
        if role not in ("customer", "guide", "system"):
            raise InputError(
                f"role mapping {alias!r} -> {role!r}: roles are 'customer', 'guide' or 'system'"
            )
        roles[alias.strip().lower()] = role
    if not gap_hours > 0:
        raise InputError(f"gap_hours must be a positive number of hours (got {gap_hours!r})")
    if not isinstance(max_message_chars, int) or max_message_chars < 1:
        raise InputError(
            f"max_message_chars must be a positive integer (got {max_message_chars!r})"
        )
    return _Options(
        columns=dict(columns or {}),
        roles=roles,
        staff_ids=frozenset(staff_ids) if staff_ids is not None else None,
        gap_hours=gap_hours,
        max_message_chars=max_message_chars,
        taxonomy=taxonomy,
    )


def _resolve_format(
    source: _Source, format: str, rows_format: str | None, columns: Mapping[str, str]
) -> tuple[str, str | None]:
    if format not in FORMATS:
        raise InputError(f"unknown input format {format!r}; valid formats: {', '.join(FORMATS)}")
    if rows_format is not None and rows_format not in ROWS_FORMATS:
        raise InputError(
            f"unknown rows format {rows_format!r}; valid rows formats: {', '.join(ROWS_FORMATS)}"
        )
    if format in ("csv", "parquet"):
        return "rows", format
    if format in ("jsonl", "wecom"):
        return format, None
    suffix = source.suffix
    by_suffix = {".csv": "csv", ".parquet": "parquet"}.get(suffix)
    if rows_format is not None or format == "rows":
        if rows_format is not None:
            return "rows", rows_format
        if by_suffix is not None:
            return "rows", by_suffix
        first = next((line for line in source.peek(_PEEK_LINES) if line.strip()), b"")
        return "rows", "jsonl" if first.strip().startswith(b"{") else "csv"
    if by_suffix is not None:
        return "rows", by_suffix
    return _sniff(source, columns)


def _sniff(source: _Source, columns: Mapping[str, str]) -> tuple[str, str | None]:
    """Format of a JSON-lines file from its first parsable object."""
    lines = [line.strip() for line in source.peek(_PEEK_LINES) if line.strip()]
    if not lines:
        return "jsonl", None
    for line in lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        keys = {_canonical_key(str(key), columns) or str(key) for key in obj}
        if "messages" in keys:
            return "jsonl", None
        if "msgtype" in keys or "msgid" in keys:
            return "wecom", None
        if "role" in keys and "conversation_id" in keys:
            return "rows", "jsonl"
        if "conversation_id" in keys:
            return "jsonl", None
        shown = ", ".join(sorted(map(str, obj))[:12])
        raise InputError(
            f"cannot tell the format of {source.name!r}: its first record has the keys "
            f"({shown}); expected 'messages' (conversation JSONL), 'conversation_id' and 'role' "
            "(message rows) or 'msgid' and 'msgtype' (WeCom archive); pass the format "
            "(--format jsonl|rows|wecom) or map column names (--column)"
        )
    if not lines[0].startswith((b"{", b"[")) and b"," in lines[0]:
        return "rows", "csv"
    if source.suffix in _JSONL_SUFFIXES:
        return "jsonl", None  # every line will be quarantined with its own reason
    raise InputError(
        f"cannot tell the format of {source.name!r}: none of its first {len(lines)} lines is a "
        "JSON object; expected JSONL, CSV (.csv) or Parquet (.parquet); pass the format "
        "(--format jsonl|rows|wecom)"
    )


# --- sources ------------------------------------------------------------------------------------


class _Source:
    """A file (plain or gzip) or standard input, read as binary lines."""

    def __init__(self, path: str | Path) -> None:
        self.stdin = str(path) == "-"
        self.path = Path(path)
        self.name = "<stdin>" if self.stdin else str(path)
        self.gzip = False
        self._prefix: list[bytes] = []  # stdin lines already read by peek()
        if self.stdin:
            return
        if not self.path.exists():
            raise InputError(f"input file {self.name!r} does not exist")
        if self.path.is_dir():
            raise InputError(f"input {self.name!r} is a directory; pass a file")
        try:
            with open(self.path, "rb") as f:
                self.gzip = f.read(2) == _GZIP_MAGIC
        except OSError as exc:
            raise InputError(f"cannot read input file {self.name!r}: {exc}") from exc

    @property
    def suffix(self) -> str:
        """Lower-case extension, ignoring a trailing ``.gz``."""
        suffixes = [s.lower() for s in self.path.suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes.pop()
        return suffixes[-1] if suffixes else ""

    def peek(self, n: int) -> list[bytes]:
        """The first ``n`` lines, without consuming them (fewer when the file breaks off sooner:
        reading the lines raises the break, after the lines before it)."""
        if self.stdin:
            while len(self._prefix) < n:
                line = sys.stdin.buffer.readline()
                if not line:
                    break
                self._prefix.append(line)
            return [
                line.removeprefix(_BOM) if i == 0 else line
                for i, line in enumerate(self._prefix[:n])
            ]
        out: list[bytes] = []
        lines = self.lines()
        try:
            for line in lines:
                out.append(line)
                if len(out) >= n:
                    break
        except BrokenInputError:
            pass
        finally:
            lines.close()
        return out

    def lines(self) -> Generator[bytes, None, None]:
        """All lines, with their line endings; a first-line UTF-8 BOM is removed."""
        first = True
        for line in self._raw_lines():
            if first:
                first = False
                line = line.removeprefix(_BOM)
            yield line

    def _raw_lines(self) -> Iterator[bytes]:
        if self.stdin:
            prefix, self._prefix = self._prefix, []
            yield from prefix
            yield from sys.stdin.buffer
            return
        try:
            with gzip.open(self.path, "rb") if self.gzip else open(self.path, "rb") as f:
                yield from f
        except (OSError, EOFError, zlib.error) as exc:
            raise BrokenInputError(
                f"cannot read {self.name!r}: {exc} (is the file complete?)"
            ) from exc


def _numbered(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based line numbers (blank lines are skipped, not counted)."""
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield number, line


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(
            f"invalid UTF-8 at byte offset {exc.start} of the line (byte 0x{line[exc.start]:02x});"
            " the file must be UTF-8 encoded",
            raw=line.decode("utf-8", "replace").rstrip("\r\n"),
        ) from None


def _parse_object(text: str, what: str) -> dict[str, Any]:
    text = text.rstrip("\r\n")
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"invalid JSON at column {exc.pos + 1}: {exc.msg}", raw=text) from None
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object ({what}), got {_json_kind(obj)}", raw=text)
    return obj


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def _entry(line: int, reason: str, raw: object, *, cid: object = None) -> Quarantined:
    where = f"line {line}"
    if isinstance(cid, str | int) and not isinstance(cid, bool) and str(cid):
        where += f" (conversation {str(cid)!r})"
    kept = raw if isinstance(raw, str | dict) else None
    return Quarantined(line=line, error=f"{where}: {reason}", raw=kept)


def _truncate(raw: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        text = orjson.dumps(raw, default=str).decode()
        if len(text) <= RAW_LIMIT:
            return raw
    else:
        text = raw
    if len(text) <= RAW_LIMIT:
        return text
    return f"{text[:RAW_LIMIT]}… [truncated: {len(text):,} characters in all]"


# --- canonical conversation JSONL ---------------------------------------------------------------


def _aliased_roles(obj: dict[str, Any], roles: Mapping[str, str]) -> dict[str, Any]:
    """``obj`` with message roles given as aliases (顾客, 导购, --role-map ...) made canonical,
    as the row readers do; anything else is left for validation to report."""
    messages = obj.get("messages")
    if not isinstance(messages, list) or not any(
        isinstance(m, dict) and isinstance(m.get("role"), str) and m["role"] not in _ROLES
        for m in messages
    ):
        return obj
    fixed = [
        {**m, "role": roles.get(m["role"].strip().lower(), m["role"])}
        if isinstance(m, dict) and isinstance(m.get("role"), str)
        else m
        for m in messages
    ]
    return {**obj, "messages": fixed}


_ROLES = frozenset(("customer", "guide", "system"))


def _read_canonical(
    src: _Source, opts: _Options, summary: LoadSummary
) -> Iterator[Conversation | Quarantined]:
    for number, line in _numbered(src.lines()):
        summary.read += 1
        obj: dict[str, Any] | None = None
        try:
            obj = _parse_object(_decode(line), "one conversation")
            conversation = Conversation.model_validate(
                _aliased_roles(obj, opts.roles), context=opts.context
            )
            if opts.taxonomy is not None:
                _check_labels(conversation, opts.taxonomy)
        except ValidationError as exc:
            summary.quarantined += 1
            yield _entry(number, format_validation_error(exc), obj, cid=_cid_of(obj))
        except RecordError as exc:
            summary.quarantined += 1
            yield _entry(number, exc.reason, exc.raw)
        except InputError as exc:  # an unknown label
            summary.quarantined += 1
            yield _entry(number, str(exc), obj, cid=_cid_of(obj))
        else:
            summary.valid += 1
            summary.conversations += 1
            yield conversation


def _cid_of(obj: object) -> object:
    return obj.get("conversation_id") if isinstance(obj, dict) else None


def _check_labels(conversation: Conversation, taxonomy: Taxonomy) -> None:
    if conversation.labels is None:
        return
    for index, label in conversation.labels.intents.items():
        taxonomy.check("intent", label, where=f"at labels.intents.{index}")
    for index, label in conversation.labels.actions.items():
        taxonomy.check("action", label, where=f"at labels.actions.{index}")


# --- message rows -------------------------------------------------------------------------------


@dataclass
class _Row:
    """One row: canonical values (None when unparsable), the raw record, or an error."""

    line: int
    values: dict[str, Any] | None
    raw: str | dict[str, Any]
    error: str | None = None


def _canonical_key(key: str, columns: Mapping[str, str]) -> str | None:
    if key in columns:
        return columns[key]
    key = key.strip()
    if key in columns:
        return columns[key]
    lowered = key.lower()
    return lowered if lowered in ROW_COLUMNS else None


def _check_columns(names: list[str], columns: Mapping[str, str], source: str) -> None:
    """Raise when a required column is missing or two columns map to one name."""
    seen: dict[str, str] = {}
    for name in names:
        target = _canonical_key(name, columns)
        if target is None:
            continue
        if target in seen:
            raise InputError(
                f"{source!r}: columns {seen[target]!r} and {name!r} both map to {target!r}; "
                "keep one (or remap the other with --column)"
            )
        seen[target] = name
    missing = [c for c in _REQUIRED_COLUMNS if c not in seen]
    if missing:
        found = ", ".join(repr(n) for n in names) or "none"
        example = f"--column 'SOURCE={missing[0]}'"
        raise InputError(
            f"{source!r} is missing the required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)}; found columns: {found}. Map your column "
            f"names with {example} (API: columns={{'SOURCE': {missing[0]!r}}})"
        )


def _column_indexes(
    header: list[str], columns: Mapping[str, str], source: str
) -> list[tuple[int, str]]:
    _check_columns(header, columns, source)
    return [
        (i, target)
        for i, name in enumerate(header)
        if (target := _canonical_key(name, columns)) is not None
    ]


def _map_keys(obj: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        target = _canonical_key(str(key), columns)
        if target is not None and target not in out:
            out[target] = value
    return out


def _row_source(src: _Source, rows_format: str | None, opts: _Options) -> Iterator[_Row]:
    if rows_format == "csv":
        return _csv_rows(src, opts)
    if rows_format == "parquet":
        return _parquet_rows(src, opts)
    return _jsonl_rows(src, opts)


def _jsonl_rows(src: _Source, opts: _Options) -> Iterator[_Row]:
    for number, line in _numbered(src.lines()):
        try:
            obj = _parse_object(_decode(line), "one message row")
        except RecordError as exc:
            yield _Row(number, None, exc.raw if isinstance(exc.raw, str) else "", exc.reason)
            continue
        yield _Row(number, _map_keys(obj, opts.columns), obj)


def _decoded_lines(lines: Iterable[bytes], bad: dict[int, str]) -> Iterator[str]:
    """Decode each line for the csv module; record undecodable lines in ``bad``."""
    for number, line in enumerate(lines, 1):
        try:
            text = _decode(line)
        except RecordError as exc:
            bad[number] = exc.reason
            text = line.decode("utf-8", "replace")
        yield text


def _peek_csv_header(src: _Source) -> list[str] | None:
    def decoded() -> Iterator[str]:
        for line in src.peek(_PEEK_LINES):
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{src.name!r} is not UTF-8 encoded ({exc.reason} at byte {exc.start} of "
                    "the header); save it as UTF-8 (Excel: 'CSV UTF-8') or convert it with "
                    "iconv -f GB18030 -t UTF-8"
                ) from None

    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    for row in csv.reader(decoded()):  # pulls only the lines up to the header
        if any(cell.strip() for cell in row):
            return row
    return None


def _csv_rows(src: _Source, opts: _Options) -> Iterator[_Row]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    bad: dict[int, str] = {}
    reader = csv.reader(_decoded_lines(src.lines(), bad))
    indexes: list[tuple[int, str]] | None = None
    header: list[str] = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if indexes is None:
                raise InputError(f"{src.name!r}: cannot read the CSV header: {exc}") from exc
            yield _Row(start, None, "", f"unreadable CSV row: {exc}")
            continue
        errors = [bad.pop(n) for n in range(start, reader.line_num + 1) if n in bad]
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if indexes is None:
            header = row
            indexes = _column_indexes(header, opts.columns, src.name)
            continue
        values = {target: row[i] for i, target in indexes if i < len(row)}
        raw = dict(zip(header, row, strict=False))
        if errors:
            yield _Row(start, values, raw, errors[0])
        elif len(row) != len(header):
            yield _Row(
                start,
                values,
                raw,
                f"the row has {len(row)} fields but the header has {len(header)}; check the "
                "quoting of commas, quotes and line breaks in the text",
            )
        else:
            yield _Row(start, values, raw)


def _parquet_columns(src: _Source) -> list[str]:
    import pyarrow.parquet as pq

    if src.stdin or src.gzip:
        raise InputError(f"{src.name!r}: Parquet input must be a plain file (not stdin or gzip)")
    try:
        return list(pq.read_schema(src.path).names)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise InputError(f"{src.name!r} is not a readable Parquet file: {exc}") from exc


def _parquet_rows(src: _Source, opts: _Options) -> Iterator[_Row]:
    import pyarrow.parquet as pq

    number = 0
    with pq.ParquetFile(src.path) as parquet:
        for batch in parquet.iter_batches(batch_size=8_192):
            for record in batch.to_pylist():
                number += 1
                yield _Row(number, _map_keys(record, opts.columns), record)


@dataclass
class _Group:
    """The rows of one conversation being assembled."""

    cid: str
    rows: list[tuple[int, str | dict[str, Any]]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    intents: dict[int, str] = field(default_factory=dict)
    actions: dict[int, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    def add(self, row: _Row, opts: _Options) -> None:
        self.rows.append((row.line, row.raw))
        if row.error is not None or row.values is None:
            self.errors[row.line] = row.error or "unreadable row"
            return
        try:
            self._add_message(row.values, opts)
        except ValidationError as exc:
            self.errors[row.line] = format_validation_error(exc)
        except InputError as exc:
            self.errors[row.line] = exc.reason if isinstance(exc, RecordError) else str(exc)

    def _add_message(self, values: dict[str, Any], opts: _Options) -> None:
        role = _role(values.get("role"), opts.roles)
        message: dict[str, Any] = {"role": role}
        text = values.get("text")
        if text is not None:
            message["text"] = text
        if not _blank(values.get("ts")):
            message["ts"] = _strip(values["ts"])
        parsed = Message.model_validate(message, context=opts.context)
        label = values.get("label")
        if not _blank(label):
            label = str(label).strip()
            if role == "system":
                raise RecordError(
                    f"label: {label!r} is on a system message; labels go on customer (intent) "
                    "and guide (action) rows"
                )
            if opts.taxonomy is not None:
                kind = "intent" if role == "customer" else "action"
                opts.taxonomy.check(kind, label, where="in column 'label'")
            (self.intents if role == "customer" else self.actions)[len(self.messages)] = label
        meta = values.get("meta")
        if not _blank(meta) and "meta" not in self.fields:
            self.fields["meta"] = _meta(meta)
        for name in (*_CONVERSATION_COLUMNS, "converted", "order_amount"):
            value = values.get(name)
            if name not in self.fields and not _blank(value):
                self.fields[name] = _strip(value)
        self.messages.append(parsed)

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"conversation_id": self.cid, "messages": self.messages}
        record.update((k, self.fields[k]) for k in _CONVERSATION_COLUMNS if k in self.fields)
        if "converted" in self.fields or "order_amount" in self.fields:
            record["outcome"] = {
                k: self.fields[k] for k in ("converted", "order_amount") if k in self.fields
            }
        if self.intents or self.actions:
            record["labels"] = {"intents": self.intents, "actions": self.actions}
        if "meta" in self.fields:
            record["meta"] = self.fields["meta"]
        return record


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _meta(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise RecordError(f"meta: invalid JSON at column {exc.colno}: {exc.msg}") from None
    if not isinstance(value, dict):
        raise RecordError(f"meta: expected a JSON object, got {_json_kind(value)}")
    return value


_ROLE_LIST = "customer (顾客, 客户, 买家, user, buyer), guide (导购, 客服, 顾问, staff, agent, seller) or system (系统)"


def _role(value: object, roles: Mapping[str, str]) -> str:
    if _blank(value):
        raise RecordError("role: field is required (the value is empty)")
    role = roles.get(str(value).strip().lower())
    if role is None:
        raise RecordError(
            f"role: unknown role {value!r}; expected {_ROLE_LIST}; add an alias with "
            f"--role-map '{value}=guide' (API: role_map={{{str(value)!r}: 'guide'}})"
        )
    return role


def _row_cid(row: _Row) -> str | None:
    if row.values is None:
        return None
    value = row.values.get("conversation_id")
    if isinstance(value, bool) or _blank(value):
        return None
    return str(_strip(value))


def _assemble_rows(
    rows: Iterable[_Row], opts: _Options, summary: LoadSummary
) -> Iterator[Conversation | Quarantined]:
    current: _Group | None = None
    finished: dict[str, int] = {}  # conversation id -> its last line; all the memory rows need
    for row in rows:
        summary.read += 1
        cid = _row_cid(row)
        if cid is None:
            summary.quarantined += 1
            reason = row.error or "conversation_id: field is required (the value is empty)"
            yield _entry(row.line, reason, row.raw)
            continue
        if current is not None and current.cid != cid:
            finished[current.cid] = current.rows[-1][0]
            yield from _flush(current, opts, summary)
            current = None
        if current is None:
            if cid in finished:
                summary.quarantined += 1
                yield _entry(
                    row.line,
                    f"rows of conversation {cid!r} must be contiguous: it already ended at line "
                    f"{finished[cid]}; sort the file by conversation_id (keeping the message "
                    "order)",
                    row.raw,
                    cid=cid,
                )
                continue
            current = _Group(cid)
        current.add(row, opts)
    if current is not None:
        yield from _flush(current, opts, summary)


def _flush(
    group: _Group, opts: _Options, summary: LoadSummary
) -> Iterator[Conversation | Quarantined]:
    if group.errors:
        first_line, first_reason = next(iter(group.errors.items()))
        summary.quarantined += len(group.rows)
        for line, raw in group.rows:
            reason = group.errors.get(line) or (
                f"quarantined with the rest of its conversation because line {first_line} is "
                f"invalid: {first_reason}"
            )
            yield _entry(line, reason, raw, cid=group.cid)
        return
    try:
        conversation = Conversation.model_validate(group.record(), context=opts.context)
    except ValidationError as exc:
        reason = format_validation_error(exc)
        summary.quarantined += len(group.rows)
        for line, raw in group.rows:
            yield _entry(line, reason, raw, cid=group.cid)
        return
    summary.valid += len(group.rows)
    summary.conversations += 1
    yield conversation


# --- WeCom archive ------------------------------------------------------------------------------


def _read_wecom(
    src: _Source, opts: _Options, summary: LoadSummary
) -> Iterator[Conversation | Quarantined]:
    grouper = ThreadGrouper(opts.gap_hours)
    for number, line in _numbered(src.lines()):
        summary.read += 1
        obj: dict[str, Any] | None = None
        try:
            obj = _parse_object(_decode(line), "one archive message")
            message = parse_message(obj, opts.staff_ids)
            Message.model_validate(
                {"role": message.role, "text": message.text}, context=opts.context
            )
        except RecordError as exc:
            summary.quarantined += 1
            yield _wecom_entry(number, exc.reason, obj if obj is not None else exc.raw)
            continue
        except ValidationError as exc:
            summary.quarantined += 1
            yield _wecom_entry(number, format_validation_error(exc), obj)
            continue
        for thread in grouper.advance(message.msgtime):
            yield from _thread_conversation(thread, opts, summary)
        try:
            closed = grouper.add(number, message)
        except RecordError as exc:
            summary.quarantined += 1
            yield _wecom_entry(number, exc.reason, obj)
            continue
        for thread in closed:
            yield from _thread_conversation(thread, opts, summary)
    for thread in grouper.finish():
        yield from _thread_conversation(thread, opts, summary)


def _wecom_entry(line: int, reason: str, raw: object) -> Quarantined:
    msgid = raw.get("msgid") if isinstance(raw, dict) else None
    where = f"line {line}" + (f" (msgid {msgid!r})" if isinstance(msgid, str) and msgid else "")
    return Quarantined(
        line=line, error=f"{where}: {reason}", raw=raw if isinstance(raw, str | dict) else None
    )


def _ms_to_datetime(msgtime: int) -> datetime:
    return datetime.fromtimestamp(msgtime // 1000, CHINA_TZ) + timedelta(
        milliseconds=msgtime % 1000
    )


def _thread_conversation(
    thread: Thread, opts: _Options, summary: LoadSummary
) -> Iterator[Conversation | Quarantined]:
    record = {
        "conversation_id": thread.conversation_id,
        "guide_id": thread.staff,
        "customer_id": thread.customer,
        "channel": "wecom",
        "messages": [
            {"role": m.role, "text": m.text, "ts": _ms_to_datetime(m.msgtime)}
            for _, m in thread.items
        ],
    }
    try:
        conversation = Conversation.model_validate(record, context=opts.context)
    except ValidationError as exc:  # pragma: no cover - every message was validated on its line
        reason = format_validation_error(exc)
        summary.quarantined += len(thread.items)
        for line, m in thread.items:
            yield _entry(line, reason, m.text, cid=thread.conversation_id)
        return
    summary.valid += len(thread.items)
    summary.conversations += 1
    yield conversation
