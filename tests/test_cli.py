"""The command line: generate, validate and stats, with their exit codes and JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.cli import app
from tests.builders import conversation_dict

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "demo.jsonl"
    result = runner.invoke(app, ["generate", "-n", "300", "--seed", "3", "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_cli_generate_writes_requested_conversations_reproducibly(
    corpus: Path, tmp_path: Path
) -> None:
    lines = corpus.read_bytes().splitlines()
    assert len(lines) == 300
    again = tmp_path / "again.jsonl"
    assert (
        runner.invoke(app, ["generate", "-n", "300", "--seed", "3", "-o", str(again)]).exit_code
        == 0
    )
    assert again.read_bytes() == corpus.read_bytes()


def test_cli_generate_rejects_unknown_phrase_split(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["generate", "-n", "5", "--phrases", "test", "-o", str(tmp_path / "x.jsonl")]
    )
    assert result.exit_code == 2
    assert "--phrases must be all, train or heldout" in result.output


def test_cli_stats_reports_distributions_and_conversion_by_skill(corpus: Path) -> None:
    result = runner.invoke(app, ["stats", str(corpus), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["conversations"] == 300 == stats["synthetic"]
    assert set(stats["domains"]) == {"apparel", "beauty", "baby"}
    assert len(stats["intents"]) >= 12 and len(stats["actions"]) >= 12
    by_skill = stats["conversion"]["by_guide_skill"]
    assert set(by_skill) == {"poor", "average", "good", "star"}
    assert sum(row["conversations"] for row in by_skill.values()) == 300
    table = runner.invoke(app, ["stats", str(corpus)])
    assert table.exit_code == 0
    assert "conversion" in table.stdout and "价格异议" in table.stdout


def test_cli_validate_json_reports_each_broken_record_and_counts_add_up(
    corpus: Path, tmp_path: Path
) -> None:
    good = corpus.read_bytes().splitlines()[:5]
    missing_messages = conversation_dict("c-x")
    del missing_messages["messages"]
    bad_role = conversation_dict("c-y")
    bad_role["messages"][0]["role"] = "bot"
    lines = [
        good[0],
        b'{"conversation_id": "c-1", "messages": [',  # invalid JSON, line 2
        good[1],
        json.dumps(missing_messages).encode(),  # line 4
        good[2],
        json.dumps(bad_role, ensure_ascii=False).encode(),  # line 6
        b"\xff\xfe not utf-8",  # line 7
        good[3],
        good[4],
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    quarantine = tmp_path / "q.jsonl"
    result = runner.invoke(app, ["validate", str(path), "--json", "--quarantine", str(quarantine)])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert (report["read"], report["valid"], report["quarantined"]) == (9, 5, 4)
    assert report["read"] == report["valid"] + report["quarantined"]
    by_line = {entry["line"]: entry["error"] for entry in report["errors"]}
    assert sorted(by_line) == [2, 4, 6, 7]
    assert "JSON" in by_line[2]
    assert "messages" in by_line[4] and "required" in by_line[4]
    assert "role" in by_line[6] and "'bot'" in by_line[6]
    assert "UTF-8" in by_line[7]
    assert len(quarantine.read_text(encoding="utf-8").splitlines()) == 4


def test_cli_validate_clean_file_exits_zero(corpus: Path) -> None:
    result = runner.invoke(app, ["validate", str(corpus)])
    assert result.exit_code == 0, result.output
    assert "quarantined 0" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "no/such/file.jsonl"], "does not exist"),
        (["validate", "README.md", "--format", "xml"], "format"),
        (["validate", "README.md", "--column", "nonsense"], "SOURCE=TARGET"),
    ],
)
def test_cli_input_errors_exit_two_with_a_message(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_console_script_runs_as_a_process(corpus: Path) -> None:
    # The installed entry point, as a user runs it: a real process with real exit codes.
    exe = Path(sys.executable).with_name("copilot")
    ok = subprocess.run(
        [str(exe), "validate", str(corpus), "--json"], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["valid"] == 300
    missing = subprocess.run(
        [str(exe), "stats", "missing.jsonl"], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 2
    assert "missing.jsonl" in missing.stderr
