"""Score-report files: write them in JSONL, CSV or Parquet, and read any of them back.

- JSONL holds the full report dicts (``docs/formats.md``, "Score report"), one per line.
- CSV and Parquet hold the flat rows of :func:`~copilot.scoring.report.flatten_report` (columns
  :data:`~copilot.scoring.report.REPORT_COLUMNS`: scalars, ``dim_<id>`` scores, nested parts as
  JSON text); Parquet columns are typed (floats, integers, booleans, strings).

:func:`read_reports` turns every form back into report dicts (through
:func:`~copilot.scoring.report.unflatten_report` for the flat forms), so downstream code such as
the scorecards reads one shape whatever file it is given.

Example::

    with open_report_writer("scores.parquet") as out:
        for report in reports:
            out.write(report)
    for report in read_reports("scores.parquet"):
        print(report["conversation_id"], report["overall"])
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from copilot.errors import InputError
from copilot.io import OUTPUT_FORMATS, RecordWriter, open_record_writer

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ReportWriter", "open_report_writer", "read_reports", "report_format"]

logger = logging.getLogger(__name__)

_SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}
_GZIP_MAGIC = b"\x1f\x8b"
_CSV_FIELD_LIMIT = 64 * 1024 * 1024


def report_format(path: str | Path, format: str | None = None) -> str:
    """The score-file format: ``format`` when given, else from the name (``.gz`` ignored).

    Raises:
        InputError: the format is unknown or cannot be told from the name.
    """
    if format is not None:
        if format not in OUTPUT_FORMATS:
            raise InputError(
                f"unknown score-file format {format!r}; valid formats: {', '.join(OUTPUT_FORMATS)}"
            )
        return format
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    found = _SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "")
    if found is None:
        raise InputError(
            f"cannot tell the format of {str(path)!r} from its name; use a .jsonl, .csv or "
            f".parquet file name, or pass the format ({', '.join(OUTPUT_FORMATS)})"
        )
    return found


def _report_schema() -> pa.Schema:
    """Typed Parquet columns for the flat rows: numbers stay numbers for analysts' tools."""
    import pyarrow as pa

    from copilot.scoring.report import REPORT_COLUMN_KINDS

    types = {
        "str": pa.string(),
        "json": pa.string(),
        "float": pa.float64(),
        "int": pa.int64(),
        "bool": pa.bool_(),
    }
    return pa.schema([(name, types[kind]) for name, kind in REPORT_COLUMN_KINDS.items()])


class ReportWriter:
    """Writes score reports to one file, atomically (see :class:`copilot.io.RecordWriter`).

    Made by :func:`open_report_writer`; use it as a context manager. ``count`` is the number of
    reports written so far.
    """

    def __init__(self, path: str | Path, format: str | None = None) -> None:
        self.path = Path(path)
        self.format = report_format(self.path, format)
        self._flat = self.format != "jsonl"
        if self._flat:
            from copilot.scoring.report import REPORT_COLUMNS

            self._out: RecordWriter = open_record_writer(
                self.path,
                self.format,
                fieldnames=REPORT_COLUMNS,
                schema=_report_schema() if self.format == "parquet" else None,
            )
        else:
            self._out = open_record_writer(self.path, "jsonl")

    @property
    def count(self) -> int:
        """Reports written so far."""
        return self._out.count

    def write(self, report: Mapping[str, Any]) -> None:
        """Write one report dict (flattened for CSV and Parquet).

        Raises:
            ValueError: a report does not fit the flat columns or the Parquet types.
        """
        if self._flat:
            from copilot.scoring.report import flatten_report

            self._out.write(flatten_report(dict(report)))
        else:
            self._out.write(report)

    def close(self) -> None:
        """Finish the file and move it under its final name."""
        self._out.close()

    def abort(self) -> None:
        """Discard what was written; an existing file under the name is left as it was."""
        self._out.abort()

    def __enter__(self) -> ReportWriter:
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


def open_report_writer(path: str | Path, fmt: str | None = None) -> ReportWriter:
    """Open a streaming, atomic writer of score reports.

    Args:
        path: the output file (``.jsonl``, ``.csv`` or ``.parquet``; JSONL and CSV may end in
            ``.gz``). It appears under its name only when the writer closes without error.
        fmt: ``"jsonl"`` (full reports), ``"csv"`` or ``"parquet"`` (flat rows); default from
            the name.

    Returns:
        A :class:`ReportWriter`, to use as a context manager.

    Raises:
        InputError: the format is unknown or cannot be told from the name.
    """
    return ReportWriter(path, fmt)


def read_reports(path: str | Path, fmt: str | None = None) -> Iterator[dict[str, Any]]:
    """The score reports of a file written by ``copilot score`` (any output format), streaming.

    Args:
        path: a JSONL, CSV or Parquet score file (JSONL and CSV may be gzip-compressed).
        fmt: ``"jsonl"``, ``"csv"`` or ``"parquet"``; default from the name.

    Returns:
        An iterator of report dicts in file order; flat rows are turned back into reports with
        :func:`~copilot.scoring.report.unflatten_report`.

    Raises:
        InputError: the file is missing, its format cannot be told, a JSONL line is not a JSON
            object, or a CSV / Parquet file lacks the report columns.
    """
    path = Path(path)
    format = report_format(path, fmt)
    if not path.is_file():
        raise InputError(f"no score file at {str(path)!r} (write one with `copilot score`)")
    if format == "jsonl":
        return _read_jsonl(path)
    if format == "csv":
        return _read_csv(path)
    return _read_parquet(path)


def _open_binary(path: Path) -> BinaryIO:
    with path.open("rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else path.open("rb")  # type: ignore[return-value]


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with _open_binary(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                report = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not a JSON score report ({exc})") from exc
            if not isinstance(report, dict):
                raise InputError(
                    f"{path}:{number}: expected one JSON object per line, got {type(report).__name__}"
                )
            yield report


def _check_columns(path: Path, found: list[str]) -> None:
    missing = [name for name in ("conversation_id", "overall", "dimensions") if name not in found]
    if missing:
        raise InputError(
            f"{str(path)!r} is not a flat score file: column(s) {', '.join(missing)} missing "
            f"(found {', '.join(found[:12]) or 'no columns'}); write it with `copilot score`"
        )


def _read_csv(path: Path) -> Iterator[dict[str, Any]]:
    from copilot.scoring.report import unflatten_report

    # Nested parts are JSON text and may pass the csv module's 128 KiB default field limit.
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    with _open_binary(path) as binary, io.TextIOWrapper(binary, "utf-8-sig", newline="") as text:
        reader = csv.DictReader(text)
        _check_columns(path, list(reader.fieldnames or []))
        for row in reader:
            yield unflatten_report(row)


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from copilot.scoring.report import unflatten_report

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"cannot read Parquet score file {str(path)!r}: {exc}") from exc
    with parquet:
        _check_columns(path, list(parquet.schema_arrow.names))
        for batch in parquet.iter_batches(batch_size=2_000):
            for row in batch.to_pylist():
                yield unflatten_report(row)
