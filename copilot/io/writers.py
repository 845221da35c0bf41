"""Streaming writers: conversations, generic dict records and the quarantine.

Every writer writes to a hidden temporary file beside the target and renames it over the target
only when it is closed without error, so a crash never leaves a half-written file under the final
name. Formats come from the extension when not given: ``.jsonl`` (also ``.json``, ``.ndjson``),
``.csv`` and ``.parquet``; JSONL and CSV may end in ``.gz`` (written reproducibly, with no
timestamp in the gzip header).

- JSONL: one compact JSON object per line, UTF-8, newline-terminated.
- CSV: UTF-8 with a byte-order mark (so Excel shows Chinese correctly; the readers skip it),
  RFC 4180 quoting, ``\\r\\n`` line ends; nested values as JSON text, ``None`` as an empty cell,
  booleans as ``true`` / ``false``.
- Parquet: streamed in row groups of ``batch_size`` records with ``pyarrow.parquet.ParquetWriter``;
  nested values as JSON text.

Conversations are written canonically as JSONL (:meth:`~copilot.schema.Conversation.to_json`,
byte-for-byte deterministic) or as message rows (:data:`~copilot.io.readers.ROW_COLUMNS`, one row
per message, conversation fields repeated on each row) that the rows reader reads back into equal
conversations.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import logging
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import orjson

from copilot.errors import InputError
from copilot.io.readers import ROW_COLUMNS, Quarantined
from copilot.schema import Conversation

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = [
    "OUTPUT_FORMATS",
    "RecordWriter",
    "conversation_rows",
    "open_record_writer",
    "write_conversations",
    "write_quarantine",
]

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = ("jsonl", "csv", "parquet")
_SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _output_format(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in OUTPUT_FORMATS:
            raise InputError(
                f"unknown output format {format!r}; valid formats: {', '.join(OUTPUT_FORMATS)}"
            )
        return format
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    found = _SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "")
    if found is None:
        raise InputError(
            f"cannot tell the output format of {str(path)!r} from its name; use a .jsonl, .csv "
            "or .parquet file name, or pass the format"
        )
    return found


class RecordWriter:
    """Writes dict records one at a time to a JSONL, CSV or Parquet file, atomically.

    Use it as a context manager (see :func:`open_record_writer`): the file appears under its
    name when the block ends without error; on an error the temporary file is removed.

    Args:
        path: the output file; its directory is created when missing.
        format: ``"jsonl"``, ``"csv"`` or ``"parquet"``; default from the extension.
        fieldnames: CSV / Parquet columns, in order; default: the keys of the first record.
        schema: Parquet only: the ``pyarrow.Schema``; default: inferred from the first batch
            (all-null columns become strings). Pass it when types may vary between batches.
        batch_size: Parquet only: records per row group.

    Raises:
        InputError: the format is unknown or cannot be told from the name.
    """

    def __init__(
        self,
        path: str | Path,
        format: str | None = None,
        *,
        fieldnames: Iterable[str] | None = None,
        schema: pa.Schema | None = None,
        batch_size: int = 10_000,
    ) -> None:
        self.path = Path(path)
        self.format = _output_format(self.path, format)
        self.count = 0
        self._compress = self.path.suffix.lower() == ".gz"
        if self._compress and self.format == "parquet":
            raise InputError(f"{str(path)!r}: Parquet is compressed already; drop the .gz")
        self._fieldnames = list(fieldnames) if fieldnames is not None else None
        if schema is not None and self._fieldnames is None:
            self._fieldnames = list(schema.names)
        self._schema = schema
        self._batch_size = batch_size
        self._batch: list[Mapping[str, Any]] = []
        self._parquet: pq.ParquetWriter | None = None
        self._csv: Any = None  # csv writer, made once the header is known
        self._done = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}.tmp")
        self._raw: io.BufferedWriter | None = None
        self._binary: BinaryIO | None = None
        self._text: io.TextIOWrapper | None = None
        if self.format != "parquet":
            raw = self._raw = open(self._tmp, "xb")  # noqa: SIM115 - closed in close()/abort()
            binary: BinaryIO = (
                cast(BinaryIO, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
                if self._compress
                else raw
            )
            self._binary = binary
            if self.format == "csv":
                self._text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")

    def write(self, record: Mapping[str, Any]) -> None:
        """Write one record.

        Raises:
            ValueError: a CSV / Parquet record has keys outside the columns.
        """
        if self.format == "jsonl":
            self._write_line(orjson.dumps(record, option=_JSON_OPTIONS))
            return
        if self._fieldnames is None:
            self._fieldnames = list(record)
        extra = [key for key in record if key not in self._fieldnames]
        if extra:
            raise ValueError(
                f"record has keys outside the {self.format} columns: {', '.join(map(str, extra))};"
                f" the columns are {', '.join(self._fieldnames)} (pass fieldnames= with all)"
            )
        if self.format == "csv":
            if self._csv is None:
                assert self._text is not None
                self._csv = csv.writer(self._text)
                self._csv.writerow(self._fieldnames)
            self._csv.writerow([_csv_cell(record.get(name)) for name in self._fieldnames])
        else:
            self._batch.append(record)
            if len(self._batch) >= self._batch_size:
                self._flush_parquet()
        self.count += 1

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Write each record; return how many."""
        before = self.count
        for record in records:
            self.write(record)
        return self.count - before

    def _write_line(self, data: bytes) -> None:
        assert self._binary is not None
        self._binary.write(data)
        self._binary.write(b"\n")
        self.count += 1

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = self._fieldnames or []
        columns = {
            name: [_parquet_cell(record.get(name)) for record in self._batch] for name in names
        }
        self._batch = []
        try:
            table = pa.Table.from_pydict(columns, schema=self._schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(
                f"a record does not fit the Parquet schema {self._schema}: {exc}; pass schema= "
                "with the types of every column"
            ) from exc
        if self._schema is None:
            self._schema = pa.schema(
                [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
            )
            table = table.cast(self._schema)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._tmp, self._schema)
        self._parquet.write_table(table)

    def close(self) -> None:
        """Finish the file and move it under its final name."""
        if self._done:
            return
        try:
            if self.format == "parquet":
                self._close_parquet()
            else:
                if self._text is not None and self._csv is None and self._fieldnames:
                    csv.writer(self._text).writerow(self._fieldnames)
                self._close_streams()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        logger.debug("wrote %d records to %s", self.count, self.path)

    def _close_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._batch:
            self._flush_parquet()
        if self._parquet is None:  # no records: an empty file with the known columns
            schema = self._schema or pa.schema([(n, pa.string()) for n in self._fieldnames or []])
            self._parquet = pq.ParquetWriter(self._tmp, schema)
        self._parquet.close()

    def _close_streams(self) -> None:
        if self._text is not None:
            self._text.flush()
            self._text.detach()
            self._text = None
        if self._binary is not None and self._binary is not self._raw:
            self._binary.close()
        if self._raw is not None:
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()

    def abort(self) -> None:
        """Discard the temporary file; the target is left as it was."""
        self._done = True
        # Close quietly, innermost first, so nothing is flushed into a closed file later.
        with contextlib.suppress(Exception):
            if self._text is not None:
                self._text.detach()
        with contextlib.suppress(Exception):
            if self._binary is not None and self._binary is not self._raw:
                self._binary.close()
        with contextlib.suppress(Exception):
            if self._raw is not None:
                self._raw.close()
        with contextlib.suppress(Exception):
            if self._parquet is not None:
                self._parquet.close()
        self._text = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def open_record_writer(
    path: str | Path,
    format: str | None = None,
    *,
    fieldnames: Iterable[str] | None = None,
    schema: pa.Schema | None = None,
    batch_size: int = 10_000,
) -> RecordWriter:
    """Open a streaming writer of dict records (e.g. score reports).

    Args:
        path: the output file.
        format: ``"jsonl"``, ``"csv"`` or ``"parquet"``; default from the extension.
        fieldnames: CSV / Parquet columns; default: the keys of the first record.
        schema: Parquet only: the ``pyarrow.Schema`` (default: inferred from the first batch).
        batch_size: Parquet only: records per row group.

    Returns:
        A :class:`RecordWriter`, to use as a context manager.

    Raises:
        InputError: the format is unknown or cannot be told from the name.

    Example::

        with open_record_writer("scores.csv") as out:
            for report in reports:
                out.write(report)
    """
    return RecordWriter(path, format, fieldnames=fieldnames, schema=schema, batch_size=batch_size)


def conversation_rows(conversation: Conversation) -> Iterator[dict[str, Any]]:
    """The message rows of a conversation (columns :data:`~copilot.io.readers.ROW_COLUMNS`).

    Conversation fields are repeated on every row; ``label`` holds the intent of a customer
    message or the action of a guide message; ``meta`` is JSON text (None when empty).
    """
    labels = conversation.labels
    outcome = conversation.outcome
    meta = orjson.dumps(conversation.meta).decode() if conversation.meta else None
    for index, message in enumerate(conversation.messages):
        label = None
        if labels is not None:
            table = labels.intents if message.role == "customer" else labels.actions
            label = table.get(index) if message.role != "system" else None
        yield {
            "conversation_id": conversation.conversation_id,
            "message_index": index,
            "role": message.role,
            "text": message.text,
            "ts": message.ts.isoformat() if message.ts is not None else None,
            "guide_id": conversation.guide_id,
            "customer_id": conversation.customer_id,
            "store_id": conversation.store_id,
            "channel": conversation.channel,
            "label": label,
            "converted": outcome.converted if outcome is not None else None,
            "order_amount": outcome.order_amount if outcome is not None else None,
            "meta": meta,
        }


def _row_schema() -> pa.Schema:
    import pyarrow as pa

    types = {"message_index": pa.int32(), "converted": pa.bool_(), "order_amount": pa.float64()}
    return pa.schema([(name, types.get(name, pa.string())) for name in ROW_COLUMNS])


def write_conversations(
    path: str | Path,
    conversations: Iterable[Conversation],
    format: str | None = None,
    *,
    batch_size: int = 10_000,
) -> int:
    """Write conversations as canonical JSONL, or as message rows in CSV or Parquet.

    Args:
        path: the output file (written atomically).
        conversations: any iterable; consumed once, streaming.
        format: ``"jsonl"``, ``"csv"`` or ``"parquet"``; default from the extension.
        batch_size: Parquet only: rows per row group.

    Returns:
        The number of conversations written.

    Raises:
        InputError: the format is unknown or cannot be told from the name.
    """
    fmt = _output_format(Path(path), format)
    written = 0
    if fmt == "jsonl":
        with RecordWriter(path, fmt) as out:
            for conversation in conversations:
                out._write_line(conversation.to_json())
                written += 1
        return written
    with RecordWriter(
        path,
        fmt,
        fieldnames=ROW_COLUMNS,
        schema=_row_schema() if fmt == "parquet" else None,
        batch_size=batch_size,
    ) as out:
        for conversation in conversations:
            out.write_many(conversation_rows(conversation))
            written += 1
    return written


def write_quarantine(path: str | Path, entries: Iterable[Quarantined]) -> int:
    """Write quarantine entries as JSONL (``{"line", "error", "raw"}`` per line).

    Args:
        path: the output file, e.g. ``OUT.quarantine.jsonl`` (written atomically).
        entries: the entries, in input order.

    Returns:
        The number of entries written.
    """
    with RecordWriter(path, "jsonl") as out:
        return out.write_many(entry.to_dict() for entry in entries)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, option=_JSON_OPTIONS).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _parquet_cell(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, option=_JSON_OPTIONS).decode()
    return value
