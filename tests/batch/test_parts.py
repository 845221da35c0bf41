"""The work directory: atomic parts, completed chunks, merge checks."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from copilot.batch.parts import (
    WorkDir,
    encode_entry,
    merge_parts,
    quarantine_path,
    remove_stale_temporaries,
    summary_path,
    work_dir_path,
)
from copilot.errors import InputError


def test_paths_sit_beside_the_output() -> None:
    output = Path("out/scores.csv")
    assert work_dir_path(output) == Path("out/scores.csv.parts")
    assert quarantine_path(output) == Path("out/scores.csv.quarantine.jsonl")
    assert summary_path(output) == Path("out/scores.csv.summary.json")


def test_parts_are_complete_or_absent(tmp_path: Path) -> None:
    work = WorkDir(tmp_path / "w")
    work.create()
    lines = [encode_entry("quarantine", {"line": 1, "error": "bad", "raw": "x"})]
    work.write_part(3, lines)
    (work.path / ".part-00000004.jsonl.gz.abc.tmp").write_bytes(b"half")  # a killed write
    assert work.completed() == {3}
    assert work.read_part(3) == [{"quarantine": {"line": 1, "error": "bad", "raw": "x"}}]
    assert work.remove_temporaries() == 1
    assert sorted(p.name for p in work.path.iterdir()) == ["part-00000003.jsonl.gz"]


def test_merge_refuses_a_part_that_does_not_hold_its_chunk(tmp_path: Path) -> None:
    work = WorkDir(tmp_path / "w")
    work.create()
    work.write_part(0, [encode_entry("quarantine", {"line": 1, "error": "e", "raw": None})])
    output = tmp_path / "s.jsonl"
    with pytest.raises(InputError, match="holds 1 entries but its chunk has 2 items"):
        merge_parts(work, [2], output, "jsonl")
    with pytest.raises(InputError, match="part-00000001.jsonl.gz .*is missing"):
        merge_parts(work, [1, 1], output, "jsonl")
    work.part_path(0).write_bytes(gzip.compress(b"{broken\n"))
    with pytest.raises(InputError, match="is damaged"):
        merge_parts(work, [1], output, "jsonl")
    assert not output.exists() and not quarantine_path(output).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_unreadable_manifest_says_how_to_start_over(tmp_path: Path) -> None:
    work = WorkDir(tmp_path / "w")
    work.create()
    assert work.read_manifest() is None
    work.manifest_path.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="delete .* to start the job over"):
        work.read_manifest()


def test_stale_temporaries_of_this_output_only_are_removed(tmp_path: Path) -> None:
    output = tmp_path / "scores.jsonl"
    mine = [
        ".scores.jsonl.0123456789ab.tmp",
        ".scores.jsonl.quarantine.jsonl.0123456789ab.tmp",
        ".scores.jsonl.summary.json.0123456789ab.tmp",
    ]
    others = [".scores.jsonl.backup.0123456789ab.tmp", "scores.jsonl", ".other.0123456789ab.tmp"]
    for name in mine + others:
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale_temporaries(output) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)
