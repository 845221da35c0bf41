from __future__ import annotations

import csv
import gzip
import io
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from copilot.errors import InputError
from copilot.io import (
    RAW_LIMIT,
    LoadSummary,
    Quarantined,
    iter_conversations,
    open_conversations,
    write_conversations,
)
from copilot.schema import CHINA_TZ, Conversation
from copilot.taxonomy import default_taxonomy
from tests.builders import conversation_dict, make_conversation

Line = str | bytes | dict[str, Any] | list[Any]


def _write(path: Path, lines: list[Line]) -> Path:
    """Write one line per item: dicts/lists as JSON, str as UTF-8, bytes as they are."""
    out = []
    for line in lines:
        if isinstance(line, dict | list):
            out.append(orjson.dumps(line))
        elif isinstance(line, str):
            out.append(line.encode())
        else:
            out.append(line)
    path.write_bytes(b"".join(chunk + b"\n" for chunk in out))
    return path


def _read(
    path: Path | str, format: str = "auto", **options: Any
) -> tuple[list[Conversation], list[Quarantined], LoadSummary, list[Conversation | Quarantined]]:
    reader = open_conversations(path, format, **options)
    items = list(reader)
    conversations = [i for i in items if isinstance(i, Conversation)]
    quarantined = [i for i in items if isinstance(i, Quarantined)]
    summary = reader.summary
    assert summary.read == summary.valid + summary.quarantined
    assert summary.quarantined == len(quarantined)
    assert summary.conversations == len(conversations)
    return conversations, quarantined, summary, items


def _csv(path: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _messages(*turns: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"role": role, "text": text} for role, text in turns]


# --- canonical conversation JSONL ---------------------------------------------------------------

BAD_BYTES = b'{"conversation_id": "c-2", "messages": [{"role": "customer", "text": "\xff\xfe"}]}'
BAD_OFFSET = BAD_BYTES.index(b"\xff")

CANONICAL_BAD_CASES = [
    pytest.param(
        '{"conversation_id": "c-2", "messages": [',
        ["invalid JSON at column 41: unexpected end of data"],
        id="invalid-json",
    ),
    pytest.param([1, 2], ["expected a JSON object", "got an array"], id="not-an-object"),
    pytest.param('"just text"', ["expected a JSON object", "got a string"], id="string"),
    pytest.param(
        {"conversation_id": "c-2"},
        ["(conversation 'c-2')", "messages: field is required"],
        id="no-messages",
    ),
    pytest.param(
        {"conversation_id": "c-2", "messages": _messages(("customer", "在吗"), ("bot", "在"))},
        [
            "(conversation 'c-2')",
            "messages[1].role: input should be 'customer', 'guide' or 'system'",
            "got 'bot'",
        ],
        id="unknown-role",
    ),
    pytest.param(
        {
            "conversation_id": "c-2",
            "messages": [{"role": "customer", "text": "在吗"}, {"role": "guide"}],
        },
        ["messages[1].text: field is required"],
        id="missing-text",
    ),
    pytest.param(
        {"conversation_id": "c-2", "messages": _messages(("customer", "在吗"), ("guide", "  "))},
        ["messages[1].text: message has no text"],
        id="empty-text",
    ),
    pytest.param(BAD_BYTES, [f"invalid UTF-8 at byte offset {BAD_OFFSET}"], id="invalid-utf8"),
    pytest.param(
        {"conversation_id": "c-2", "messages": _messages(("customer", "长" * 1_000_000))},
        ["messages[0].text: message text is 1,000,000 characters; the limit is 20,000"],
        id="one-megabyte-message",
    ),
    pytest.param(
        {"conversation_id": "c-2", "messages": _messages(("customer", "在吗")), "shop": "x"},
        ["shop: unknown field"],
        id="unknown-field",
    ),
]


@pytest.mark.parametrize(("bad", "facts"), CANONICAL_BAD_CASES)
def test_canonical_bad_record_quarantined_with_reason(
    tmp_path: Path, bad: Line, facts: list[str]
) -> None:
    path = _write(tmp_path / "in.jsonl", [conversation_dict("c-1"), bad, conversation_dict("c-3")])

    conversations, quarantined, summary, _ = _read(path)

    assert [c.conversation_id for c in conversations] == ["c-1", "c-3"]
    assert [q.line for q in quarantined] == [2]
    assert quarantined[0].error.startswith("line 2")
    for fact in facts:
        assert fact in quarantined[0].error
    assert summary.to_dict() == {"read": 3, "valid": 2, "quarantined": 1, "conversations": 2}


def test_canonical_mixed_file_keeps_good_records_in_order(tmp_path: Path) -> None:
    lines: list[Line] = [
        conversation_dict("c-1"),
        "{oops",
        conversation_dict("c-2"),
        [1],
        conversation_dict("c-3"),
    ]
    path = _write(tmp_path / "in.jsonl", lines)

    _, _, summary, items = _read(path)

    order = [i.conversation_id if isinstance(i, Conversation) else i.line for i in items]
    assert order == ["c-1", 2, "c-2", 4, "c-3"]
    assert (summary.read, summary.valid, summary.quarantined) == (5, 3, 2)


def test_canonical_blank_lines_skipped_not_counted(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.jsonl", [conversation_dict("c-1"), "", "   ", "{bad", ""])

    _, quarantined, summary, _ = _read(path)

    assert summary.to_dict() == {"read": 2, "valid": 1, "quarantined": 1, "conversations": 1}
    assert quarantined[0].line == 4


def test_canonical_max_message_chars_option(tmp_path: Path) -> None:
    record = conversation_dict("c-1", turns=[("customer", "x" * 50)])
    path = _write(tmp_path / "in.jsonl", [record])

    _, quarantined, _, _ = _read(path, max_message_chars=10)

    assert "message text is 50 characters; the limit is 10" in quarantined[0].error


def test_canonical_unknown_label_with_taxonomy_quarantined(tmp_path: Path) -> None:
    bad = conversation_dict("c-2", labels={"intents": {"0": "prise_inquiry"}})
    good = conversation_dict("c-1", labels={"intents": {"0": "stock"}})
    path = _write(tmp_path / "in.jsonl", [good, bad])

    conversations, quarantined, _, _ = _read(path, taxonomy=default_taxonomy())

    assert [c.conversation_id for c in conversations] == ["c-1"]
    assert quarantined[0].line == 2
    assert "unknown intent label 'prise_inquiry' at labels.intents.0" in quarantined[0].error
    assert "did you mean 'price_inquiry'" in quarantined[0].error


def test_canonical_labels_unchecked_without_taxonomy(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "in.jsonl", [conversation_dict("c-1", labels={"intents": {"0": "zzz"}})]
    )

    conversations, _, _, _ = _read(path)

    assert conversations[0].labels is not None
    assert conversations[0].labels.intents == {0: "zzz"}


# --- empty inputs, formats, sources -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jsonl", b""),
        ("blank.jsonl", b"\n  \n\n"),
        ("empty.csv", b""),
        ("header-only.csv", b"conversation_id,role,text\n"),
        ("empty.txt", b""),
    ],
)
def test_reader_empty_file_reports_empty(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    reader = open_conversations(path)
    items = list(reader)

    assert items == []
    assert reader.empty
    assert reader.summary.to_dict() == {"read": 0, "valid": 0, "quarantined": 0, "conversations": 0}


@pytest.mark.parametrize(
    ("name", "lines", "expected"),
    [
        ("a.jsonl", [conversation_dict("c-1")], ("jsonl", None)),
        ("a.txt", [conversation_dict("c-1")], ("jsonl", None)),
        (
            "a.jsonl",
            [{"conversation_id": "c-1", "role": "customer", "text": "在吗"}],
            ("rows", "jsonl"),
        ),
        ("a.jsonl", [{"msgid": "m1", "msgtype": "text"}], ("wecom", None)),
        ("a.jsonl", ["{bad", {"msgid": "m1", "action": "switch"}], ("wecom", None)),
        ("a.csv", ["conversation_id,role,text", "c-1,customer,在吗"], ("rows", "csv")),
        ("a.txt", ["conversation_id,role,text", "c-1,customer,在吗"], ("rows", "csv")),
        ("a.jsonl", ["{bad", "{worse"], ("jsonl", None)),
    ],
)
def test_open_conversations_detects_format(
    tmp_path: Path, name: str, lines: list[Line], expected: tuple[str, str | None]
) -> None:
    reader = open_conversations(_write(tmp_path / name, lines))

    assert (reader.format, reader.rows_format) == expected


def test_open_conversations_detects_rows_through_column_remap(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.jsonl", [{"会话ID": "c-1", "角色": "顾客", "内容": "在吗"}])

    reader = open_conversations(
        path, columns={"会话ID": "conversation_id", "角色": "role", "内容": "text"}
    )

    assert (reader.format, reader.rows_format) == ("rows", "jsonl")
    assert [c.conversation_id for c in reader if isinstance(c, Conversation)] == ["c-1"]


@pytest.mark.parametrize(
    ("format", "options", "facts"),
    [
        ("xml", {}, ["unknown input format 'xml'", "auto, jsonl, rows, csv, parquet, wecom"]),
        ("rows", {"rows_format": "xlsx"}, ["unknown rows format 'xlsx'", "csv, jsonl, parquet"]),
        ("auto", {"columns": {"a": "nope"}}, ["'nope' is not a message-row column"]),
        ("auto", {"role_map": {"bot": "robot"}}, ["roles are 'customer', 'guide' or 'system'"]),
        ("auto", {"gap_hours": 0}, ["gap_hours must be a positive number"]),
        ("auto", {"max_message_chars": 0}, ["max_message_chars must be a positive integer"]),
    ],
)
def test_open_conversations_bad_option_raises(
    tmp_path: Path, format: str, options: dict[str, Any], facts: list[str]
) -> None:
    path = _write(tmp_path / "a.jsonl", [conversation_dict()])

    with pytest.raises(InputError) as info:
        open_conversations(path, format, **options)

    for fact in facts:
        assert fact in str(info.value)


def test_open_conversations_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        open_conversations(tmp_path / "nope.jsonl")


def test_open_conversations_undetectable_format_raises(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", [{"foo": 1}])

    with pytest.raises(InputError, match=r"cannot tell the format .* keys \(foo\)"):
        open_conversations(path)


@pytest.mark.parametrize("name", ["in.jsonl.gz", "in.gz", "in.jsonl"])
def test_reader_reads_gzip_by_magic_bytes(tmp_path: Path, name: str) -> None:
    data = b"".join(orjson.dumps(conversation_dict(f"c-{i}")) + b"\n" for i in range(3))
    (tmp_path / name).write_bytes(gzip.compress(data))

    conversations, _, summary, _ = _read(tmp_path / name, "jsonl")

    assert [c.conversation_id for c in conversations] == ["c-0", "c-1", "c-2"]
    assert summary.valid == 3


def test_reader_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"".join(orjson.dumps(conversation_dict(f"c-{i}")) + b"\n" for i in range(30))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    reader = open_conversations("-")

    assert reader.format == "jsonl"
    ids = [c.conversation_id for c in reader if isinstance(c, Conversation)]
    assert ids == [f"c-{i}" for i in range(30)]


def test_reader_reads_csv_from_stdin_with_bom(monkeypatch: pytest.MonkeyPatch) -> None:
    data = "\ufeffconversation_id,role,text\nc-1,顾客,在吗\n".encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    reader = open_conversations("-", "csv")

    assert [c.conversation_id for c in reader if isinstance(c, Conversation)] == ["c-1"]


def test_reader_skips_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(conversation_dict("c-1")) + b"\n")

    conversations, _, _, _ = _read(path)

    assert [c.conversation_id for c in conversations] == ["c-1"]


def test_reader_is_lazy_and_single_use(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.jsonl", [conversation_dict("c-1"), conversation_dict("c-2")])
    reader = open_conversations(path)

    iterator = iter(reader)
    first = next(iterator)

    assert isinstance(first, Conversation)
    assert reader.summary.read == 1  # only what was consumed has been read
    with pytest.raises(InputError, match="already iterated"):
        iter(reader)
    reader.close()


def test_iter_conversations_sends_quarantine_to_callback(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "in.jsonl", [conversation_dict("c-1"), "{bad", conversation_dict("c-2")]
    )
    seen: list[Quarantined] = []

    ids = [c.conversation_id for c in iter_conversations(path, on_quarantine=seen.append)]

    assert ids == ["c-1", "c-2"]
    assert [q.line for q in seen] == [2]


def test_iter_conversations_missing_file_raises_at_once(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        iter_conversations(tmp_path / "nope.jsonl")


# --- quarantine entries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("short", "short"),
        ({"a": 1}, {"a": 1}),
    ],
)
def test_quarantined_to_dict_keeps_small_raw(raw: Any, expected: Any) -> None:
    assert Quarantined(3, "line 3: bad", raw).to_dict() == {
        "line": 3,
        "error": "line 3: bad",
        "raw": expected,
    }


@pytest.mark.parametrize("raw", ["x" * 1_000_000, {"text": "x" * 1_000_000}])
def test_quarantined_to_dict_truncates_big_raw(raw: Any) -> None:
    out = Quarantined(1, "line 1: too long", raw).to_dict()["raw"]

    assert isinstance(out, str)
    assert len(out) < RAW_LIMIT + 100
    assert "[truncated:" in out and "characters in all]" in out


# --- message rows -------------------------------------------------------------------------------

HEADER = ["conversation_id", "role", "text", "ts", "label"]

ROWS_BAD_CASES = [
    pytest.param(
        ["c-2", "bot", "在的", "", ""], ["unknown role 'bot'", "--role-map"], id="unknown-role"
    ),
    pytest.param(["c-2", "", "在的", "", ""], ["role: field is required"], id="empty-role"),
    pytest.param(["c-2", "guide", "", "", ""], ["text: message has no text"], id="empty-text"),
    pytest.param(
        ["c-2", "guide", "长" * 1_000_000, "", ""],
        ["message text is 1,000,000 characters"],
        id="one-megabyte-message",
    ),
    pytest.param(
        ["c-2", "guide", "在的", "yesterday", ""],
        ["ts: input should be a valid datetime"],
        id="bad-ts",
    ),
    pytest.param(
        ["c-2", "system", "系统消息", "", "stock"],
        ["label: 'stock' is on a system message"],
        id="label-on-system",
    ),
    pytest.param(
        ["c-2", "guide", "在的", "", "", "extra"],
        ["the row has 6 fields but the header has 5"],
        id="field-count",
    ),
]


@pytest.mark.parametrize(("bad_row", "facts"), ROWS_BAD_CASES)
def test_csv_rows_bad_row_quarantines_its_conversation(
    tmp_path: Path, bad_row: list[str], facts: list[str]
) -> None:
    path = _csv(
        tmp_path / "in.csv",
        [
            HEADER,
            ["c-1", "customer", "在吗", "", ""],
            ["c-1", "guide", "在的", "", ""],
            ["c-2", "customer", "有M码吗", "", ""],
            bad_row,
            ["c-3", "customer", "在吗", "", ""],
        ],
    )

    conversations, quarantined, summary, _ = _read(path)

    assert [c.conversation_id for c in conversations] == ["c-1", "c-3"]
    assert [q.line for q in quarantined] == [4, 5]
    assert quarantined[1].error.startswith("line 5 (conversation 'c-2'): ")
    for fact in facts:
        assert fact in quarantined[1].error
    assert "because line 5 is invalid" in quarantined[0].error
    assert summary.to_dict() == {"read": 5, "valid": 3, "quarantined": 2, "conversations": 2}


def test_csv_rows_invalid_utf8_quarantines_its_conversation(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(
        b"conversation_id,role,text\nc-1,customer,ok\nc-2,customer,\xe5\x9c\xff\nc-2,guide,ok\n"
    )

    conversations, quarantined, summary, _ = _read(path)

    assert [c.conversation_id for c in conversations] == ["c-1"]
    assert [q.line for q in quarantined] == [3, 4]
    assert "invalid UTF-8 at byte offset 13 of the line (byte 0xe5)" in quarantined[0].error
    assert (summary.read, summary.valid, summary.quarantined) == (3, 1, 2)


def test_csv_rows_non_utf8_header_raises(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("会话,角色,内容\n".encode("gb18030"))

    with pytest.raises(InputError, match="not UTF-8 encoded.*save it as UTF-8"):
        open_conversations(path)


def test_csv_rows_missing_required_column_raises(tmp_path: Path) -> None:
    path = _csv(tmp_path / "in.csv", [["会话ID", "role", "内容"], ["c-1", "customer", "在吗"]])

    with pytest.raises(InputError) as info:
        open_conversations(path, columns={"会话ID": "conversation_id"})

    message = str(info.value)
    assert "missing the required column 'text'" in message
    assert "found columns: '会话ID', 'role', '内容'" in message
    assert "--column" in message


def test_csv_rows_column_remap_and_role_aliases(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "in.csv",
        [
            ["会话ID", "角色", "内容", "时间", "导购ID", " Store_ID "],
            ["c-1", "顾客", "在吗", "2026-03-08 10:01:02", "g-1", "s-1"],
            ["c-1", "客服", "在的亲", "2026-03-08 10:01:40", "", ""],
            ["c-1", "Buyer", "好的", "", "", ""],
            ["c-1", "系统", "会话结束", "", "", ""],
        ],
    )
    columns = {
        "会话ID": "conversation_id",
        "角色": "role",
        "内容": "text",
        "时间": "ts",
        "导购ID": "guide_id",
    }

    conversations, quarantined, _, _ = _read(path, columns=columns)

    assert quarantined == []
    [conversation] = conversations
    assert [m.role for m in conversation.messages] == ["customer", "guide", "customer", "system"]
    assert conversation.messages[0].ts == datetime(2026, 3, 8, 10, 1, 2, tzinfo=CHINA_TZ)
    assert (conversation.guide_id, conversation.store_id) == ("g-1", "s-1")


def test_csv_rows_role_map_extends_aliases(tmp_path: Path) -> None:
    path = _csv(tmp_path / "in.csv", [HEADER[:3], ["c-1", "客人", "在吗"], ["c-1", "Bot", "在的"]])

    conversations, _, _, _ = _read(path, role_map={"客人": "customer", "bot": "guide"})

    assert [m.role for m in conversations[0].messages] == ["customer", "guide"]


def test_csv_rows_labels_become_intents_and_actions(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "in.csv",
        [
            HEADER,
            ["c-1", "customer", "有货吗", "", "stock"],
            ["c-1", "guide", "有的", "", "logistics_info"],
        ],
    )

    conversations, _, _, _ = _read(path, taxonomy=default_taxonomy())

    labels = conversations[0].labels
    assert labels is not None
    assert (labels.intents, labels.actions) == ({0: "stock"}, {1: "logistics_info"})


def test_csv_rows_unknown_label_with_taxonomy_quarantined(tmp_path: Path) -> None:
    path = _csv(tmp_path / "in.csv", [HEADER, ["c-1", "customer", "多少钱", "", "prise_inquiry"]])

    _, quarantined, _, _ = _read(path, taxonomy=default_taxonomy())

    assert quarantined[0].line == 2
    assert "unknown intent label 'prise_inquiry' in column 'label'" in quarantined[0].error
    assert "did you mean 'price_inquiry'" in quarantined[0].error


def test_csv_rows_non_contiguous_conversation_quarantined(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "in.csv",
        [
            HEADER[:3],
            ["c-7", "customer", "在吗"],
            ["c-7", "guide", "在的"],
            ["c-8", "customer", "你好"],
            ["c-7", "customer", "还在吗"],
            ["c-7", "guide", "在"],
        ],
    )

    conversations, quarantined, summary, _ = _read(path)

    assert [c.conversation_id for c in conversations] == ["c-7", "c-8"]
    assert len(conversations[0].messages) == 2
    assert [q.line for q in quarantined] == [5, 6]
    assert (
        "rows of conversation 'c-7' must be contiguous: it already ended at line 3; sort the "
        "file by conversation_id" in quarantined[0].error
    )
    assert (summary.read, summary.valid, summary.quarantined) == (5, 3, 2)


def test_csv_rows_empty_conversation_id_quarantined_alone(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "in.csv",
        [
            HEADER[:3],
            ["c-1", "customer", "在吗"],
            ["", "guide", "孤儿消息"],
            ["c-1", "guide", "在的"],
        ],
    )

    conversations, quarantined, summary, _ = _read(path)

    assert [len(c.messages) for c in conversations] == [2]
    assert quarantined[0].line == 3
    assert "conversation_id: field is required" in quarantined[0].error
    assert (summary.read, summary.valid, summary.quarantined) == (3, 2, 1)


def test_csv_rows_multiline_text_and_blank_lines_numbered_by_physical_line(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        'conversation_id,role,text\n\nc-1,customer,"第一行\n第二行"\nc-1,bot,x\n', encoding="utf-8"
    )

    _, quarantined, summary, _ = _read(path)

    assert [q.line for q in quarantined] == [3, 5]
    assert "unknown role 'bot'" in quarantined[1].error
    assert summary.read == 2


def test_csv_rows_conversation_level_error_quarantines_every_row(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "in.csv",
        [
            ["conversation_id", "role", "text", "converted"],
            ["c-1", "customer", "在吗", "maybe"],
            ["c-1", "guide", "在", ""],
        ],
    )

    _, quarantined, summary, _ = _read(path)

    assert [q.line for q in quarantined] == [2, 3]
    assert all("outcome.converted: input should be a valid boolean" in q.error for q in quarantined)
    assert summary.valid == 0


def test_csv_rows_gzip(tmp_path: Path) -> None:
    text = "conversation_id,role,text\nc-1,customer,在吗\nc-1,guide,在的\n"
    (tmp_path / "in.csv.gz").write_bytes(gzip.compress(text.encode()))

    conversations, _, _, _ = _read(tmp_path / "in.csv.gz")

    assert [m.text for m in conversations[0].messages] == ["在吗", "在的"]


JSONL_ROW_BAD_CASES = [
    pytest.param(
        '{"conversation_id": "c-2", "role": ', ["invalid JSON at column"], id="invalid-json"
    ),
    pytest.param(
        "[1]", ["expected a JSON object (one message row), got an array"], id="not-an-object"
    ),
    pytest.param(
        {"role": "customer", "text": "hi"},
        ["conversation_id: field is required"],
        id="no-conversation-id",
    ),
]


@pytest.mark.parametrize(("bad", "facts"), JSONL_ROW_BAD_CASES)
def test_jsonl_rows_unreadable_row_quarantined_alone(
    tmp_path: Path, bad: Line, facts: list[str]
) -> None:
    good = [{"conversation_id": "c-1", "role": role, "text": "x"} for role in ("customer", "guide")]
    path = _write(tmp_path / "in.jsonl", [good[0], bad, good[1]])

    conversations, quarantined, summary, _ = _read(path, "rows")

    assert [len(c.messages) for c in conversations] == [2]
    assert quarantined[0].line == 2
    for fact in facts:
        assert fact in quarantined[0].error
    assert (summary.read, summary.valid, summary.quarantined) == (3, 2, 1)


def test_jsonl_rows_missing_text_quarantines_conversation(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "in.jsonl",
        [
            {"conversation_id": 7, "role": "customer", "text": "在吗"},
            {"conversation_id": 7, "role": "guide"},
        ],
    )

    _, quarantined, _, _ = _read(path, "rows")

    assert [q.line for q in quarantined] == [1, 2]
    assert quarantined[1].error == "line 2 (conversation '7'): text: field is required"


def test_parquet_rows_read(tmp_path: Path) -> None:
    conversation = make_conversation("c-1", outcome={"converted": False})
    write_conversations(tmp_path / "in.parquet", [conversation])

    conversations, _, summary, _ = _read(tmp_path / "in.parquet")

    assert conversations == [conversation]
    assert summary.read == 2


# --- WeCom archive ------------------------------------------------------------------------------

T0 = 1_772_935_262_000  # 2026-03-08T10:01:02+08:00 in epoch ms
MINUTE = 60_000
HOUR = 60 * MINUTE


def _wecom(
    msgid: str,
    sender: str,
    to: str,
    msgtime: Any,
    content: str | None = "在吗",
    *,
    msgtype: str = "text",
    roomid: str = "",
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "msgid": msgid,
        "action": "send",
        "from": sender,
        "tolist": [to],
        "roomid": roomid,
        "msgtime": msgtime,
        "msgtype": msgtype,
    }
    if msgtype == "text":
        record["text"] = {"content": content}
    record.update(extra)
    return record


def test_wecom_interleaved_pairs_become_conversations(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "archive.jsonl",
        [
            _wecom("m1", "wmCustA", "zhangsan", T0, "在吗"),
            _wecom("m2", "woCustB", "lisi", T0 + 1000, "这件有M码吗"),
            _wecom("m3", "zhangsan", "wmCustA", T0 + 2000, "亲，在的"),
            _wecom("m4", "lisi", "woCustB", T0 + 3000, "有的哦"),
        ],
    )

    conversations, quarantined, summary, _ = _read(path)

    assert quarantined == []
    by_id = {c.conversation_id: c for c in conversations}
    a = by_id[f"wecom-zhangsan-wmCustA-{T0}"]
    b = by_id[f"wecom-lisi-woCustB-{T0 + 1000}"]
    assert [(m.role, m.text) for m in a.messages] == [("customer", "在吗"), ("guide", "亲，在的")]
    assert [(m.role, m.text) for m in b.messages] == [
        ("customer", "这件有M码吗"),
        ("guide", "有的哦"),
    ]
    assert (a.guide_id, a.customer_id, a.channel) == ("zhangsan", "wmCustA", "wecom")
    assert a.messages[0].ts == datetime(2026, 3, 8, 10, 1, 2, tzinfo=CHINA_TZ)
    assert summary.to_dict() == {"read": 4, "valid": 4, "quarantined": 0, "conversations": 2}


@pytest.mark.parametrize(
    ("gap", "conversations"),
    [(12 * HOUR, 1), (12 * HOUR + 1, 2), (13 * HOUR, 2)],
)
def test_wecom_gap_over_gap_hours_starts_new_conversation(
    tmp_path: Path, gap: int, conversations: int
) -> None:
    path = _write(
        tmp_path / "archive.jsonl",
        [
            _wecom("m1", "wmA", "g1", T0),
            _wecom("m2", "g1", "wmA", T0 + MINUTE, "在的"),
            _wecom("m3", "wmA", "g1", T0 + MINUTE + gap, "还在吗"),
        ],
    )

    found, _, _, _ = _read(path)

    assert len(found) == conversations
    assert sum(len(c.messages) for c in found) == 3


def test_wecom_quoted_msgtime_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path / "archive.jsonl", [_wecom("m1", "wmA", "g1", str(T0))])

    found, _, _, _ = _read(path)

    assert found[0].conversation_id == f"wecom-g1-wmA-{T0}"


def test_wecom_gap_hours_option(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "archive.jsonl",
        [_wecom("m1", "wmA", "g1", T0), _wecom("m2", "g1", "wmA", T0 + 2 * HOUR, "在的")],
    )

    found, _, _, _ = _read(path, gap_hours=1)

    assert [c.conversation_id for c in found] == [
        f"wecom-g1-wmA-{T0}",
        f"wecom-g1-wmA-{T0 + 2 * HOUR}",
    ]


def test_wecom_idle_conversation_flushed_before_end(tmp_path: Path) -> None:
    """Streaming: a pair idle for over gap_hours is yielded while the archive is still read."""
    path = _write(
        tmp_path / "archive.jsonl",
        [
            _wecom("m1", "wmA", "g1", T0),
            _wecom("m2", "wmB", "g2", T0 + 13 * HOUR),
            _wecom("m3", "wmB", "g2", T0 + 13 * HOUR + MINUTE, msgtype="hologram"),
        ],
    )

    _, _, _, items = _read(path)

    assert [type(i).__name__ for i in items] == ["Conversation", "Quarantined", "Conversation"]
    assert isinstance(items[0], Conversation)
    assert items[0].conversation_id == f"wecom-g1-wmA-{T0}"


PLACEHOLDER_CASES = [
    ("image", {"image": {"md5sum": "x"}}, "[图片]"),
    ("voice", {"voice": {"play_length": 3}}, "[语音]"),
    ("video", {}, "[视频]"),
    ("emotion", {}, "[表情]"),
    ("file", {"file": {"filename": "尺码表.pdf"}}, "[文件] 尺码表.pdf"),
    ("link", {"link": {"title": "春季新品", "link_url": "https://x"}}, "[链接] 春季新品"),
    ("link", {"link": {}}, "[链接]"),
    ("weapp", {"weapp": {"title": "商城"}}, "[小程序] 商城"),
    ("card", {"card": {"corpname": "x"}}, "[名片]"),
    ("location", {}, "[位置]"),
    ("revoke", {"action": "recall", "revoke": {"pre_msgid": "m0"}}, "[撤回消息]"),
    ("redpacket", {}, "[红包]"),
    ("chatrecord", {}, "[聊天记录]"),
    ("markdown", {"info": {"content": "**新品**"}}, "**新品**"),
]


@pytest.mark.parametrize(("msgtype", "extra", "text"), PLACEHOLDER_CASES)
def test_wecom_message_types_become_text_or_placeholder(
    tmp_path: Path, msgtype: str, extra: dict[str, Any], text: str
) -> None:
    path = _write(
        tmp_path / "archive.jsonl", [_wecom("m1", "wmA", "g1", T0, msgtype=msgtype, **extra)]
    )

    found, _, _, _ = _read(path)

    assert [(m.role, m.text) for m in found[0].messages] == [("customer", text)]


def test_wecom_consent_event_is_a_system_message(tmp_path: Path) -> None:
    path = _write(tmp_path / "archive.jsonl", [_wecom("m1", "wmA", "g1", T0, msgtype="agree")])

    found, _, _, _ = _read(path)

    assert [(m.role, m.text) for m in found[0].messages] == [("system", "[同意会话存档]")]


def test_wecom_staff_ids_decide_the_guide(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "archive.jsonl",
        [_wecom("m1", "u-123", "g-9", T0), _wecom("m2", "g-9", "u-123", T0 + 1000, "在的")],
    )

    found, _, _, _ = _read(path, "wecom", staff_ids={"g-9"})

    assert (found[0].guide_id, found[0].customer_id) == ("g-9", "u-123")
    assert [m.role for m in found[0].messages] == ["customer", "guide"]


WECOM_BAD_CASES = [
    pytest.param(
        _wecom("m2", "wmA", "g1", T0, roomid="room-1"),
        ["(msgid 'm2')", "group chat (roomid 'room-1')"],
        id="group-chat",
    ),
    pytest.param(
        {"msgid": "m2", "action": "switch", "time": T0, "user": "g1"},
        ["action 'switch'", "no chat message"],
        id="switch",
    ),
    pytest.param(
        _wecom("m2", "wmA", "g1", T0, msgtype="hologram"),
        ["unknown msgtype 'hologram'", "known msgtypes: text", "image"],
        id="unknown-msgtype",
    ),
    pytest.param(
        _wecom("m2", "wmA", "g1", T0, content=""),
        ["text.content: msgtype 'text' message has no text"],
        id="empty-text",
    ),
    pytest.param(
        _wecom("m2", "wmA", "g1", T0, content="长" * 1_000_000),
        ["message text is 1,000,000 characters"],
        id="one-megabyte-message",
    ),
    pytest.param(
        _wecom("m2", "g1", "g2", T0),
        ["cannot tell staff from customer", "'wo' or 'wm'"],
        id="internal-chat",
    ),
    pytest.param(
        _wecom("m2", "wmA", "g1", "yesterday"),
        ["msgtime: expected epoch milliseconds"],
        id="bad-msgtime",
    ),
    pytest.param(
        _wecom("m2", "wmA", "g1", T0, tolist=["g1", "g2"]),
        ["tolist: a one-to-one chat needs exactly one recipient"],
        id="two-recipients",
    ),
    pytest.param(
        {"msgid": "m2", "msgtype": "text", "msgtime": T0, "tolist": ["g1"]},
        ["from: field is required"],
        id="no-sender",
    ),
    pytest.param(
        _wecom("m1", "wmA", "g1", T0),
        ["duplicate msgid 'm1' (already read on line 1)"],
        id="duplicate-msgid",
    ),
    pytest.param("{oops", ["invalid JSON at column 2"], id="invalid-json"),
    pytest.param(
        "42", ["expected a JSON object (one archive message), got a number"], id="not-an-object"
    ),
    pytest.param(
        b'{"msgid": "m2", "text": {"content": "\xc3"}}',
        ["invalid UTF-8 at byte offset 37"],
        id="invalid-utf8",
    ),
]


@pytest.mark.parametrize(("bad", "facts"), WECOM_BAD_CASES)
def test_wecom_bad_line_quarantined_with_reason(
    tmp_path: Path, bad: Line, facts: list[str]
) -> None:
    path = _write(
        tmp_path / "archive.jsonl",
        [_wecom("m1", "wmA", "g1", T0), bad, _wecom("m3", "g1", "wmA", T0 + 1000, "在的")],
    )

    found, quarantined, summary, _ = _read(path, "wecom")

    assert [len(c.messages) for c in found] == [2]
    assert [q.line for q in quarantined] == [2]
    assert quarantined[0].error.startswith("line 2")
    for fact in facts:
        assert fact in quarantined[0].error
    assert summary.to_dict() == {"read": 3, "valid": 2, "quarantined": 1, "conversations": 1}


def test_wecom_staff_ids_reject_unknown_pair(tmp_path: Path) -> None:
    path = _write(tmp_path / "archive.jsonl", [_wecom("m1", "u-1", "u-2", T0)])

    _, quarantined, _, _ = _read(path, "wecom", staff_ids={"g-9"})

    assert "neither 'u-1' nor 'u-2' is in staff_ids" in quarantined[0].error


def test_conversation_json_takes_the_same_role_aliases_as_rows(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [
        {"conversation_id": "c-1", "messages": [{"role": "顾客", "text": "在吗"}, {"role": "导购", "text": "在的亲"}, {"role": "Customer", "text": "好"}]},
        {"conversation_id": "c-2", "messages": [{"role": "客人", "text": "在吗"}]},
        {"conversation_id": "c-3", "messages": [{"role": "店长", "text": "在吗"}]},
    ]  # fmt: skip
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")

    conversations, quarantined, _, _ = _read(path, role_map={"客人": "customer"})

    assert [[m.role for m in c.messages] for c in conversations] == [
        ["customer", "guide", "customer"],
        ["customer"],
    ]
    assert len(quarantined) == 1 and "店长" in quarantined[0].error
