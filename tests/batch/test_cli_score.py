"""``copilot score`` with the real scorer: formats, exit codes, and kill -9 then --resume."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from copilot.batch import read_reports
from copilot.batch.parts import PAUSE_ENV, PAUSE_FILE_ENV, work_dir_path
from copilot.cli import app
from copilot.io import write_conversations
from copilot.synth import generate
from tests.batch.conftest import BROKEN_LINES

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scored_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 generated conversations followed by the broken records of ``BROKEN_LINES``."""
    path = tmp_path_factory.mktemp("cli-score") / "logs.jsonl"
    write_conversations(path, generate(60, seed=43))
    with path.open("ab") as handle:
        handle.write(b"\n".join(BROKEN_LINES) + b"\n")
    return path


def _score(*args: str | Path) -> Any:
    return runner.invoke(app, ["score", *map(str, args)])


def _side(output: Path, suffix: str) -> Path:
    return output.with_name(output.name + suffix)


def test_cli_score_writes_reports_quarantine_and_summary_and_exits_two(
    scored_corpus: Path, scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scores.jsonl"
    result = _score(scored_corpus, "-o", output, "--bundle", scoring_bundle_dir)

    assert result.exit_code == 2, result.output
    assert "quarantined" in result.stdout and "scores.jsonl.quarantine.jsonl" in result.stdout
    reports = list(read_reports(output))
    # "boom" is readable and the real scorer scores it: 60 + ok-1, ok-2, boom, ok-3
    assert len(reports) == 64
    assert reports[0]["dimensions"] and 0 <= reports[0]["overall"] <= 100
    quarantine = _side(output, ".quarantine.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line)["line"] for line in quarantine] == [62, 63, 64, 65, 69]
    summary = json.loads(_side(output, ".summary.json").read_text("utf-8"))
    assert (summary["read"], summary["scored"], summary["quarantined"]) == (69, 64, 5)
    assert summary["workers"] == 1 and summary["engine"] == "local"
    assert {r["bundle"] for r in reports} == {summary["bundle"]}
    assert summary["conversations_per_s"] > 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_score_flat_outputs_read_back_as_the_jsonl_reports(
    scored_corpus: Path, scoring_bundle_dir: Path, tmp_path: Path, fmt: str
) -> None:
    reference = tmp_path / "scores.jsonl"
    _score(scored_corpus, "-o", reference, "-b", scoring_bundle_dir, "--batch-size", "16")
    output = tmp_path / "scores.out"
    result = _score(scored_corpus, "-o", output, "-b", scoring_bundle_dir, "--output-format", fmt)
    assert result.exit_code == 2, result.output
    assert list(read_reports(output, fmt)) == list(read_reports(reference))


def test_cli_score_two_workers_write_what_one_writes(
    scored_corpus: Path, scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    _score(scored_corpus, "-o", one, "-b", scoring_bundle_dir, "--batch-size", "9")
    result = _score(
        scored_corpus, "-o", two, "-b", scoring_bundle_dir, "--batch-size", "9", "-w", "2"
    )
    assert result.exit_code == 2, result.output
    assert one.read_bytes() == two.read_bytes()
    assert (
        _side(one, ".quarantine.jsonl").read_bytes() == _side(two, ".quarantine.jsonl").read_bytes()
    )


def test_cli_score_clean_file_exits_zero(scoring_bundle_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "clean.jsonl"
    write_conversations(source, generate(5, seed=44))
    result = _score(source, "-o", tmp_path / "s.csv", "-b", scoring_bundle_dir)
    assert result.exit_code == 0, result.output
    assert not _side(tmp_path / "s.csv", ".quarantine.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "spark"], "--engine must be one of local, ray"),
        (["--bundle", "no/such/bundle"], "no model bundle at"),
        (["--format", "xml"], "unknown input format 'xml'"),
        (["--rubric", "no-such.yaml"], "no rubric file"),
    ],
)
def test_cli_score_usage_errors_exit_two_with_a_message(
    scored_corpus: Path, scoring_bundle_dir: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = _score(scored_corpus, "-o", tmp_path / "s.jsonl", "-b", scoring_bundle_dir, *extra)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_cli_score_unfinished_job_needs_resume(
    scored_corpus: Path, scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "s.jsonl"
    work_dir_path(output).mkdir()
    result = _score(scored_corpus, "-o", output, "-b", scoring_bundle_dir)
    assert result.exit_code == 2
    assert "pass --resume to finish it" in " ".join(result.stderr.split())


def test_cli_score_cut_gzip_input_says_what_validate_says_and_keeps_what_was_read(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "logs.jsonl"
    write_conversations(whole, generate(40, seed=46))
    packed = gzip.compress(whole.read_bytes())
    source = tmp_path / "cut.jsonl.gz"
    source.write_bytes(packed[: len(packed) // 2])
    output = tmp_path / "scores.jsonl"

    validated = runner.invoke(app, ["validate", str(source)])
    result = _score(source, "-o", output, "-b", scoring_bundle_dir)

    assert validated.exit_code == result.exit_code == 2, result.output
    message = " ".join(validated.stderr.split())
    assert message.startswith("error: cannot read") and "is the file complete?" in message
    assert message in " ".join(result.stderr.split())
    summary = json.loads(_side(output, ".summary.json").read_text("utf-8"))
    assert 0 < summary["read"] == summary["scored"] < 40
    assert summary["input_error"] in message
    ids = [orjson.loads(line)["conversation_id"] for line in whole.read_bytes().splitlines()]
    assert [r["conversation_id"] for r in read_reports(output)] == ids[: summary["read"]]
    assert not work_dir_path(output).exists()


# --------------------------------------------------------------------------- kill -9 and resume


def _start(
    source: Path, output: Path, bundle: Path, workers: int, pause: str | None, marker: Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, PAUSE_FILE_ENV: str(marker)}
    env.pop(PAUSE_ENV, None)
    if pause:
        env[PAUSE_ENV] = pause
    command = [
        sys.executable, "-m", "copilot.cli", "score", str(source), "-o", str(output),
        "--bundle", str(bundle), "--batch-size", "10", "--workers", str(workers), "--resume",
    ]  # fmt: skip
    # A session of its own, so killing its process group kills the workers too.
    with (marker.parent / "stderr.log").open("ab") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip


def _stderr(marker: Path) -> str:
    return (marker.parent / "stderr.log").read_text("utf-8", errors="replace")[-3000:]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _wait_for(condition: Any, process: subprocess.Popen[bytes], what: str, marker: Path) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if process.poll() is not None:
            raise AssertionError(
                f"the run ended (rc {process.returncode}) before {what}: {_stderr(marker)}"
            )
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_cli_score_killed_anywhere_then_resumed_scores_each_conversation_once(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "logs.jsonl"
    write_conversations(source, generate(240, seed=45))
    with source.open("ab") as handle:  # unreadable records among the last chunks
        handle.write(b"\n".join(BROKEN_LINES) + b"\n")
    output = tmp_path / "out" / "scores.jsonl"
    work = work_dir_path(output)
    marker = tmp_path / "paused"

    def parts() -> int:
        return len(list(work.glob("part-*.jsonl.gz"))) if work.is_dir() else 0

    # 1. killed as soon as the first part is written (two workers, others in flight)
    process = _start(source, output, scoring_bundle_dir, 2, None, marker)
    _wait_for(lambda: parts() >= 1, process, "the first part", marker)
    _kill_group(process)
    # 2. killed mid-way, after the 12th chunk of this run (one worker)
    process = _start(source, output, scoring_bundle_dir, 1, "chunk-done-12", marker)
    _wait_for(marker.exists, process, "chunk 12", marker)
    marker.unlink()
    _kill_group(process)
    done_before_merge = parts()
    assert 12 <= done_before_merge < 25
    # 3. killed during the merge: the output is in place, the quarantine not yet
    process = _start(source, output, scoring_bundle_dir, 2, "merge-output", marker)
    _wait_for(marker.exists, process, "the merge", marker)
    marker.unlink()
    _kill_group(process)
    assert output.exists() and parts() == 25
    # 4. killed after the summary, before the work directory is removed
    process = _start(source, output, scoring_bundle_dir, 1, "merge-summary", marker)
    _wait_for(marker.exists, process, "the end of the merge", marker)
    _kill_group(process)
    # 5. the last resume just merges again
    process = _start(source, output, scoring_bundle_dir, 1, None, marker)
    assert process.wait(timeout=120) == 2, _stderr(marker)

    expected = [
        orjson.loads(line)["conversation_id"] for line in source.read_bytes().splitlines()[:240]
    ]
    expected += ["ok-1", "ok-2", "boom", "ok-3"]
    assert [r["conversation_id"] for r in read_reports(output)] == expected
    quarantine = [
        json.loads(x) for x in _side(output, ".quarantine.jsonl").read_bytes().splitlines()
    ]
    assert [q["line"] for q in quarantine] == [242, 243, 244, 245, 249]
    summary = json.loads(_side(output, ".summary.json").read_text("utf-8"))
    assert (summary["read"], summary["scored"], summary["quarantined"]) == (249, 244, 5)
    assert summary["resumed"] and summary["chunks"] == summary["chunks_reused"] == 25
    assert not work.exists()
    assert sorted(p.name for p in output.parent.iterdir()) == [
        "scores.jsonl", "scores.jsonl.quarantine.jsonl", "scores.jsonl.summary.json",
    ]  # fmt: skip


def _session_members(session: int) -> set[int]:
    """The live (not zombie) processes of ``session``, read from /proc."""
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text("utf-8")
        except OSError:  # ended meanwhile
            continue
        # After "(comm)": state, ppid, pgrp, session, ...
        state, _, _, sid = stat[stat.rindex(")") + 2 :].split()[:4]
        if int(sid) == session and state not in ("Z", "X"):
            members.add(int(entry.name))
    return members


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_cli_score_killed_parent_takes_its_workers_with_it(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "logs.jsonl"
    write_conversations(source, generate(300, seed=47))
    output = tmp_path / "scores.jsonl"
    work = work_dir_path(output)
    marker = tmp_path / "paused"
    # Its own session: every process it starts (fork server, resource tracker, workers) is in
    # it, and stays in it when orphaned.
    process = _start(source, output, scoring_bundle_dir, 2, None, marker)
    try:
        _wait_for(
            lambda: work.is_dir() and any(work.glob("part-*.jsonl.gz")),
            process,
            "the first part",
            marker,
        )
        children = _session_members(process.pid) - {process.pid}
        assert len(children) >= 3, children  # the fork server and two workers at least

        os.kill(process.pid, signal.SIGKILL)  # the parent only, as `kill -9 PID` does
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _session_members(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _session_members(process.pid), _stderr(marker)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.poll()
