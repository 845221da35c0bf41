from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from copilot.errors import InputError
from copilot.io import (
    ROW_COLUMNS,
    Quarantined,
    conversation_rows,
    open_conversations,
    open_record_writer,
    write_conversations,
    write_quarantine,
)
from copilot.schema import Conversation
from tests.builders import make_conversation


def _corpus() -> list[Conversation]:
    return [
        make_conversation(
            "c-1",
            turns=[
                ("customer", "在吗？这件有M码吗"),
                ("guide", '亲，在的～"M码",有货哦\n稍等'),
                ("system", "会话结束"),
            ],
            outcome={"converted": True, "order_amount": 399.0},
            labels={"intents": {"0": "stock"}, "actions": {"1": "logistics_info"}},
            meta={"synthetic": True, "tags": ["a", "b"]},
        ),
        make_conversation("c-2", outcome={"converted": False}),
        make_conversation("c-3", guide_id=None, store_id=None, channel=None),
    ]


def _read_back(path: Path) -> list[Conversation]:
    reader = open_conversations(path)
    items = [item for item in reader if isinstance(item, Conversation)]
    assert reader.summary.quarantined == 0
    return items


@pytest.mark.parametrize(
    "name",
    ["out.jsonl", "out.csv", "out.parquet", "out.jsonl.gz", "out.csv.gz", "deep/dir/out.csv"],
)
def test_write_conversations_round_trip(tmp_path: Path, name: str) -> None:
    conversations = _corpus()

    written = write_conversations(tmp_path / name, conversations)

    assert written == 3
    assert _read_back(tmp_path / name) == conversations


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.jsonl.gz", "out.csv.gz"])
def test_write_conversations_is_deterministic(tmp_path: Path, name: str) -> None:
    write_conversations(tmp_path / "a" / name, _corpus())
    write_conversations(tmp_path / "b" / name, _corpus())

    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_write_conversations_jsonl_reader_writer_identical_bytes(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(c.to_json() + b"\n" for c in _corpus()))

    write_conversations(tmp_path / "out.jsonl", _read_back(source))

    assert (tmp_path / "out.jsonl").read_bytes() == source.read_bytes()


def test_write_conversations_csv_has_bom_header_and_labels(tmp_path: Path) -> None:
    write_conversations(tmp_path / "out.csv", _corpus())

    data = (tmp_path / "out.csv").read_bytes()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))

    assert data.startswith(b"\xef\xbb\xbfconversation_id,message_index,role,text,")
    assert list(rows[0]) == list(ROW_COLUMNS)
    assert [(r["role"], r["label"], r["converted"]) for r in rows[:3]] == [
        ("customer", "stock", "true"),
        ("guide", "logistics_info", "true"),
        ("system", "", "true"),
    ]
    assert rows[3]["converted"] == "false" and rows[5]["converted"] == ""


def test_write_conversations_parquet_typed_columns_in_row_groups(tmp_path: Path) -> None:
    write_conversations(tmp_path / "out.parquet", _corpus(), batch_size=2)

    parquet = pq.ParquetFile(tmp_path / "out.parquet")
    table = parquet.read()

    assert parquet.num_row_groups == 4  # 7 rows in groups of 2
    assert table.schema.names == list(ROW_COLUMNS)
    assert table.schema.field("message_index").type == pa.int32()
    assert table.column("converted").to_pylist()[:4] == [True, True, True, False]


@pytest.mark.parametrize(("name", "size"), [("e.jsonl", 0), ("e.csv", None), ("e.parquet", None)])
def test_write_conversations_empty_input(tmp_path: Path, name: str, size: int | None) -> None:
    assert write_conversations(tmp_path / name, []) == 0

    assert (tmp_path / name).exists()
    if size is not None:
        assert (tmp_path / name).stat().st_size == size
    reader = open_conversations(tmp_path / name)
    assert list(reader) == [] and reader.empty


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.parquet", "out.csv.gz"])
def test_write_conversations_crash_leaves_no_partial_file(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    target.write_bytes(b"previous")

    def failing() -> Iterator[Conversation]:
        yield from _corpus()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_conversations(target, failing(), batch_size=1)

    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize(
    ("name", "format", "message"),
    [
        ("out.txt", None, "cannot tell the output format"),
        ("out.jsonl", "xml", "unknown output format 'xml'; valid formats: jsonl, csv, parquet"),
        ("out.parquet.gz", None, "Parquet is compressed already"),
    ],
)
def test_write_conversations_bad_format_raises(
    tmp_path: Path, name: str, format: str | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        write_conversations(tmp_path / name, _corpus(), format)


def test_conversation_rows_one_per_message() -> None:
    rows = list(conversation_rows(_corpus()[0]))

    assert [r["message_index"] for r in rows] == [0, 1, 2]
    assert rows[0]["meta"] == '{"synthetic":true,"tags":["a","b"]}'
    assert rows[0]["ts"] == "2026-03-08T10:00:00+08:00"


# --- generic record writer ----------------------------------------------------------------------

RECORDS: list[dict[str, Any]] = [
    {
        "conversation_id": "c-1",
        "overall": 72.5,
        "dimensions": {"closing": {"score": 90}},
        "flags": [],
        "ok": True,
    },
    {
        "conversation_id": "c-2",
        "overall": 40.0,
        "dimensions": {},
        "flags": [{"rule": "x"}],
        "ok": False,
    },
]


def test_record_writer_jsonl(tmp_path: Path) -> None:
    with open_record_writer(tmp_path / "scores.jsonl") as out:
        for record in RECORDS:
            out.write(record)

    lines = (tmp_path / "scores.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == RECORDS
    assert out.count == 2


def test_record_writer_csv_flattens_nested_values(tmp_path: Path) -> None:
    with open_record_writer(tmp_path / "scores.csv") as out:
        out.write_many(RECORDS)

    rows = list(csv.DictReader(io.StringIO((tmp_path / "scores.csv").read_text("utf-8-sig"))))
    assert rows[0] == {
        "conversation_id": "c-1",
        "overall": "72.5",
        "dimensions": '{"closing":{"score":90}}',
        "flags": "[]",
        "ok": "true",
    }


def test_record_writer_parquet_flattens_nested_values(tmp_path: Path) -> None:
    with open_record_writer(tmp_path / "scores.parquet", batch_size=1) as out:
        out.write_many(RECORDS)

    table = pq.read_table(tmp_path / "scores.parquet")
    assert table.column("dimensions").to_pylist() == ['{"closing":{"score":90}}', "{}"]
    assert table.column("overall").to_pylist() == [72.5, 40.0]
    assert table.schema.field("ok").type == pa.bool_()


def test_record_writer_parquet_all_null_column_becomes_string(tmp_path: Path) -> None:
    with open_record_writer(tmp_path / "s.parquet", batch_size=1) as out:
        out.write({"id": "a", "note": None})
        out.write({"id": "b", "note": "later"})

    assert pq.read_table(tmp_path / "s.parquet").column("note").to_pylist() == [None, "later"]


@pytest.mark.parametrize("name", ["s.csv", "s.parquet"])
def test_record_writer_unknown_key_raises(tmp_path: Path, name: str) -> None:
    with (
        pytest.raises(ValueError, match="keys outside the .* columns: extra"),
        open_record_writer(tmp_path / name) as out,
    ):
        out.write({"id": "a"})
        out.write({"id": "b", "extra": 1})

    assert list(tmp_path.iterdir()) == []


def test_record_writer_fieldnames_fill_missing_keys(tmp_path: Path) -> None:
    with open_record_writer(tmp_path / "s.csv", fieldnames=["id", "score"]) as out:
        out.write({"id": "a"})

    assert (tmp_path / "s.csv").read_bytes() == b"\xef\xbb\xbfid,score\r\na,\r\n"


def test_record_writer_gzip_jsonl(tmp_path: Path) -> None:
    with open_record_writer(tmp_path / "s.jsonl.gz") as out:
        out.write({"id": "a"})

    assert gzip.decompress((tmp_path / "s.jsonl.gz").read_bytes()) == b'{"id":"a"}\n'


# --- quarantine ---------------------------------------------------------------------------------


def test_write_quarantine_jsonl_with_truncated_raw(tmp_path: Path) -> None:
    entries = [
        Quarantined(2, "line 2: invalid JSON at column 1: unexpected character", "{oops"),
        Quarantined(
            5,
            "line 5 (conversation 'c-5'): messages: field is required",
            {"conversation_id": "c-5"},
        ),
        Quarantined(9, "line 9: messages[0].text: too long", "x" * 1_000_000),
    ]

    assert write_quarantine(tmp_path / "out.quarantine.jsonl", entries) == 3

    lines = [
        orjson.loads(line) for line in (tmp_path / "out.quarantine.jsonl").read_bytes().splitlines()
    ]
    assert [set(line) for line in lines] == [{"line", "error", "raw"}] * 3
    assert lines[0] == {"line": 2, "error": entries[0].error, "raw": "{oops"}
    assert lines[1]["raw"] == {"conversation_id": "c-5"}
    assert (
        len(lines[2]["raw"]) < 2_100
        and "[truncated: 1,000,000 characters in all]" in lines[2]["raw"]
    )


def test_write_quarantine_from_reader(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(make_conversation("c-1").to_json() + b"\n[]\n{bad\n")
    reader = open_conversations(source)

    count = write_quarantine(
        tmp_path / "q.jsonl", (i for i in reader if isinstance(i, Quarantined))
    )

    assert count == reader.summary.quarantined == 2
