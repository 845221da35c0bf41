"""Score files: every output format reads back as the same reports."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from copilot.batch import open_report_writer, read_reports, report_format
from copilot.errors import InputError
from copilot.scoring.report import REPORT_COLUMNS
from tests.batch.stubs import StubScorer
from tests.builders import make_conversation


@pytest.fixture(scope="module")
def reports() -> list[dict[str, Any]]:
    scorer = StubScorer.load("bundle")
    conversations = [
        make_conversation("c-1"),
        make_conversation("c-2", turns=[("customer", '这件有M码吗，"引号"\n换行')]),
        make_conversation("c-3", outcome={"converted": True, "order_amount": 399.0}),
    ]
    out = scorer.score_many(conversations)
    out[1]["overall"] = None  # a conversation no dimension applied to
    out[1]["dimensions"]["closing"]["score"] = None
    out[2]["flags"] = [{"kind": "compliance", "rule": "absolute_claim", "message_index": 1}]
    return out


@pytest.mark.parametrize("name", ["s.jsonl", "s.jsonl.gz", "s.csv", "s.csv.gz", "s.parquet"])
def test_read_reports_round_trips_every_output_format(
    reports: list[dict[str, Any]], tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    with open_report_writer(path) as out:
        for report in reports:
            out.write(report)
    assert out.count == 3
    back = list(read_reports(path))
    assert back == reports


def test_flat_files_hold_the_report_columns_with_types(
    reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "s.parquet"
    with open_report_writer(path) as out:
        for report in reports:
            out.write(report)
    table = pq.read_table(path)
    assert tuple(table.column_names) == REPORT_COLUMNS
    types = {f.name: str(f.type) for f in table.schema}
    assert types["overall"] == "double" and types["n_messages"] == "int64"
    assert types["converted"] == "bool" and types["dim_closing"] == "double"
    assert table.column("dim_closing").to_pylist()[1] is None
    csv_path = tmp_path / "s.csv"
    with open_report_writer(csv_path) as out:
        out.write(reports[0])
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbfconversation_id,")


def test_report_writer_leaves_nothing_when_it_fails(
    reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "s.csv"
    with pytest.raises(RuntimeError), open_report_writer(path) as out:
        out.write(reports[0])
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("s.txt", b"", "cannot tell the format"),
        ("missing.jsonl", None, "no score file"),
        ("s.jsonl", b'{"conversation_id": "c"}\n[1]\n', "expected one JSON object per line"),
        ("s.jsonl", b"{oops\n", "not a JSON score report"),
        ("s.csv", b"conversation_id,role,text\nc,customer,hi\n", "not a flat score file"),
    ],
)
def test_read_reports_says_what_is_wrong_with_a_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        list(read_reports(path))


def test_report_format_from_name_or_argument() -> None:
    assert report_format("a.JSONL.gz") == "jsonl"
    assert report_format("a.parquet") == "parquet"
    assert report_format("a.out", "csv") == "csv"
    with pytest.raises(InputError, match="valid formats: jsonl, csv, parquet"):
        report_format("a.csv", "xlsx")


def test_read_reports_gzip_jsonl_is_detected_by_content(
    reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "s.jsonl"
    import orjson

    path.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in reports)))
    assert list(read_reports(path)) == reports


def test_every_report_column_has_a_parquet_type(caplog: pytest.LogCaptureFixture) -> None:
    from copilot.batch.outputs import _report_schema

    schema = _report_schema()
    assert tuple(schema.names) == REPORT_COLUMNS
    assert not caplog.records, "type the new report column in copilot/batch/outputs.py"
