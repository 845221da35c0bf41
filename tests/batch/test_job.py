"""score_file mechanics with a stand-in scorer: chunks, quarantine, summary, workers, resume."""

from __future__ import annotations

import contextlib
import gzip
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from copilot.batch import ScoreJob, read_reports, score_file
from copilot.batch.chunks import iter_chunks
from copilot.batch.parts import WorkDir, encode_entry, work_dir_path
from copilot.errors import BundleError, ConfigError, InputError
from copilot.io import open_conversations
from tests.batch.stubs import STUB_SCORER


def _job(source: Path, output: Path, bundle: Path, **fields: Any) -> ScoreJob:
    fields.setdefault("scorer", STUB_SCORER)
    return ScoreJob(input=source, output=output, bundle=bundle, **fields)


def _ids(output: Path) -> list[str]:
    return [r["conversation_id"] for r in read_reports(output)]


def _quarantine(output: Path) -> list[dict[str, Any]]:
    path = output.with_name(output.name + ".quarantine.jsonl")
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _summary(output: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        output.with_name(output.name + ".summary.json").read_text("utf-8")
    )
    return data


def test_score_file_quarantines_bad_records_and_failed_scoring_and_counts_add_up(
    broken_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scores.jsonl"
    summary = score_file(_job(broken_path, output, stub_bundle, batch_size=3))

    assert _ids(output) == ["ok-1", "ok-2", "ok-3"]
    entries = _quarantine(output)
    assert [set(e) for e in entries] == [{"line", "error", "raw"}] * 6
    assert [e["line"] for e in entries] == [2, 3, 4, 5, None, 9]
    assert "role" in entries[1]["error"] and "shopkeeper" in entries[1]["error"]
    failed = entries[4]
    assert failed["error"].startswith("conversation 'boom': scoring failed: ValueError")
    assert failed["raw"]["conversation_id"] == "boom"
    assert (summary.read, summary.scored, summary.quarantined) == (9, 3, 6)
    assert summary.records == {"read": 9, "valid": 4, "quarantined": 5, "conversations": 4}
    on_disk = _summary(output)
    assert on_disk == summary.to_dict()
    assert on_disk["read"] == on_disk["scored"] + on_disk["quarantined"]
    assert on_disk["bundle"] == "stub@0123456789" and on_disk["engine"] == "local"
    assert on_disk["chunks"] == 3 and not on_disk["resumed"]
    assert not work_dir_path(output).exists()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_score_file_workers_two_gives_the_output_of_one(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path, fmt: str
) -> None:
    one, two = tmp_path / f"one.{fmt}", tmp_path / f"two.{fmt}"
    score_file(_job(corpus_path, one, stub_bundle, batch_size=7))
    summary = score_file(_job(corpus_path, two, stub_bundle, batch_size=7, workers=2))
    assert summary.workers == 2 and summary.scored == 120
    if fmt == "parquet":  # Parquet files carry no timestamps, but compare content anyway
        assert list(read_reports(one)) == list(read_reports(two))
    else:
        assert one.read_bytes() == two.read_bytes()


def test_score_file_output_order_is_input_order(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scores.jsonl"
    score_file(_job(corpus_path, output, stub_bundle, batch_size=11, workers=2))
    expected = [
        json.loads(line)["conversation_id"] for line in corpus_path.read_bytes().splitlines()
    ]
    assert _ids(output) == expected


def test_score_file_resume_scores_only_missing_chunks(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference.jsonl"
    score_file(_job(corpus_path, reference, stub_bundle, batch_size=25))
    # A run killed after chunks 0 and 2: their parts (taken from a whole run) are in place.
    output = tmp_path / "scores.jsonl"
    job = _job(corpus_path, output, stub_bundle, batch_size=25)
    work = _half_done_job(job, done=(0, 2))
    (work.path / ".part-00000001.jsonl.gz.0123abcd.tmp").write_bytes(b"half")
    (output.parent / f".{output.name}.deadbeef0123.tmp").write_bytes(b"half an output")

    with pytest.raises(InputError, match="pass --resume to finish it"):
        score_file(job)
    summary = score_file(replace(job, resume=True))

    assert summary.resumed and (summary.chunks, summary.chunks_reused) == (5, 2)
    assert output.read_bytes() == reference.read_bytes()
    assert (summary.read, summary.scored, summary.quarantined) == (120, 120, 0)
    assert not work.path.exists()
    assert not list(tmp_path.glob(".*.tmp"))


def _half_done_job(job: ScoreJob, done: tuple[int, ...]) -> WorkDir:
    """The work directory of ``job`` as a run killed after finishing chunks ``done`` leaves it."""
    from copilot.batch.chunks import score_items
    from tests.batch.stubs import StubScorer

    # Start the job for real (so the manifest is the engine's own) and kill it in chunk 1.
    with pytest.raises(_Stop):
        score_file(replace(job, scorer=_killed_scorer))
    work = WorkDir(work_dir_path(job.output))
    assert work.completed() == {0}
    scorer = StubScorer.load(job.bundle)
    with open_conversations(job.input) as reader:
        for chunk in iter_chunks(reader, job.batch_size):
            if chunk.index in done:
                work.write_part(chunk.index, score_items(scorer, chunk.items))
            else:
                work.part_path(chunk.index).unlink(missing_ok=True)
    return work


class _Stop(BaseException):
    """Stands for a kill: not an ``Exception``, so nothing quarantines it."""


def _stopping_scorer(bundle: str, rubric: str | None = None) -> Any:
    raise _Stop("killed while loading")


def _killed_scorer(bundle: str, rubric: str | None = None) -> Any:
    from tests.batch.stubs import StubScorer

    class Killed(StubScorer):
        calls = 0

        def score_many(self, conversations: Any) -> list[dict[str, Any]]:
            Killed.calls += 1
            if Killed.calls > 1:
                raise _Stop("killed in the second chunk")
            return super().score_many(conversations)

    return Killed.load(bundle, rubric)


def test_score_file_resume_refuses_a_changed_input_or_batch_size(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    source = tmp_path / "input.jsonl"
    source.write_bytes(corpus_path.read_bytes())
    output = tmp_path / "scores.jsonl"
    job = _job(source, output, stub_bundle, batch_size=25)
    _half_done_job(job, done=(0,))

    with pytest.raises(InputError, match=r"batch_size: 25 -> 30.*delete .*scores\.jsonl\.parts"):
        score_file(replace(job, batch_size=30, resume=True))
    with source.open("ab") as handle:
        handle.write(orjson.dumps({"conversation_id": "late"}) + b"\n")
    with pytest.raises(InputError, match="input_size"):
        score_file(replace(job, resume=True))
    assert work_dir_path(output).is_dir()  # refused runs leave the job as it was


def test_score_file_resume_when_every_part_exists_just_merges(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scores.csv"
    job = _job(corpus_path, output, stub_bundle, batch_size=40)
    _half_done_job(job, done=(0, 1, 2))
    summary = score_file(replace(job, resume=True, scorer=_stopping_scorer))
    assert (summary.chunks, summary.chunks_reused, summary.scored) == (3, 3, 120)
    assert len(_ids(output)) == 120


def test_score_file_resume_without_a_work_dir_starts_over(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scores.jsonl"
    summary = score_file(_job(corpus_path, output, stub_bundle, resume=True))
    assert summary.scored == 120 and not summary.resumed


def test_score_file_keeps_the_old_output_until_a_run_succeeds(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scores.jsonl"
    output.write_text("previous results\n", encoding="utf-8")
    with pytest.raises(_Stop):
        score_file(
            _job(
                corpus_path,
                output,
                stub_bundle,
                batch_size=25,
                scorer=_killed_scorer,
            )
        )
    assert output.read_text("utf-8") == "previous results\n"
    score_file(_job(corpus_path, output, stub_bundle, batch_size=25, resume=True))
    assert len(_ids(output)) == 120


def test_score_file_failing_before_any_chunk_leaves_no_work_dir(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scores.jsonl"
    with pytest.raises(_Stop):
        score_file(_job(corpus_path, output, stub_bundle, scorer=_stopping_scorer))
    assert list(tmp_path.iterdir()) == []


def test_score_file_empty_input_writes_empty_outputs(stub_bundle: Path, tmp_path: Path) -> None:
    source = tmp_path / "empty.jsonl"
    source.write_bytes(b"")
    output = tmp_path / "scores.parquet"
    summary = score_file(_job(source, output, stub_bundle))
    assert (summary.read, summary.scored, summary.quarantined, summary.chunks) == (0, 0, 0, 0)
    assert list(read_reports(output)) == []
    assert _quarantine(output) == []


def test_score_file_reads_message_rows(stub_bundle: Path, tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text(
        "会话ID,role,text\nc-1,顾客,在吗\nc-1,导购,在的亲\nc-2,robot,hi\nc-3,customer,有货吗\n",
        encoding="utf-8",
    )
    output = tmp_path / "scores.jsonl"
    summary = score_file(
        _job(
            source,
            output,
            stub_bundle,
            reader_options={"columns": {"会话ID": "conversation_id"}},
        )
    )
    assert _ids(output) == ["c-1", "c-3"]
    assert (summary.read, summary.scored, summary.quarantined) == (3, 2, 1)
    assert summary.input_format == "rows"


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"workers": 0}, InputError, "workers must be at least 1"),
        ({"batch_size": 0}, InputError, "batch size must be at least 1"),
        ({"engine": "spark"}, InputError, "valid engines: local, ray"),
        ({"output_format": "xlsx"}, InputError, "valid formats: jsonl, csv, parquet"),
        ({"rubric": Path("no-such-rubric.yaml")}, ConfigError, "no rubric file"),
        ({"input_format": "xml"}, InputError, "unknown input format 'xml'"),
    ],
)
def test_score_file_rejects_bad_options_before_starting(
    corpus_path: Path,
    stub_bundle: Path,
    tmp_path: Path,
    fields: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    output = tmp_path / "scores.jsonl"
    with pytest.raises(error, match=message):
        score_file(_job(corpus_path, output, stub_bundle, **fields))
    assert not work_dir_path(output).exists()


def test_score_file_missing_bundle_is_a_bundle_error(corpus_path: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="train one with `copilot train"):
        score_file(_job(corpus_path, tmp_path / "s.jsonl", tmp_path / "nope"))


def test_score_file_refuses_a_second_run_on_the_same_output(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scores.jsonl"
    job = _job(corpus_path, output, stub_bundle, batch_size=50)
    _half_done_job(job, done=(0,))
    holder = WorkDir(work_dir_path(output))
    holder.lock()  # as a live run would hold it
    try:
        with pytest.raises(InputError, match="another `copilot score` run is writing"):
            score_file(replace(job, resume=True))
    finally:
        holder.unlock()
    assert score_file(replace(job, resume=True)).scored == 120


def test_score_file_second_run_without_resume_does_not_advise_deleting_a_live_runs_parts(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    output = tmp_path / "scores.jsonl"
    job = _job(corpus_path, output, stub_bundle, batch_size=50)
    _half_done_job(job, done=(0,))
    holder = WorkDir(work_dir_path(output))
    holder.lock()  # as a live run would hold it
    try:
        with pytest.raises(InputError, match="another `copilot score` run is writing") as caught:
            score_file(job)
    finally:
        holder.unlock()
    assert "delete" not in str(caught.value)
    assert work_dir_path(output).is_dir()
    with pytest.raises(InputError, match="pass --resume to finish it, or delete"):
        score_file(job)  # nobody holds it now: deleting it is the other way out


def test_score_file_input_cut_short_scores_what_was_read_and_reports_the_break(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    whole = gzip.compress(corpus_path.read_bytes())
    source = tmp_path / "cut.jsonl.gz"
    source.write_bytes(whole[: len(whole) // 2])
    readable = 0
    with gzip.open(source, "rb") as handle, contextlib.suppress(EOFError):
        for _ in handle:
            readable += 1
    assert 0 < readable < 120
    output = tmp_path / "scores.jsonl"

    summary = score_file(_job(source, output, stub_bundle, batch_size=7, workers=2))

    assert summary.input_error is not None
    assert "is the file complete?" in summary.input_error
    assert (summary.read, summary.scored, summary.quarantined) == (readable, readable, 0)
    expected = [
        json.loads(line)["conversation_id"]
        for line in corpus_path.read_bytes().splitlines()[:readable]
    ]
    assert _ids(output) == expected
    assert _summary(output)["input_error"] == summary.input_error
    assert not work_dir_path(output).exists()


def test_score_file_reports_progress_to_the_total(
    corpus_path: Path, stub_bundle: Path, tmp_path: Path
) -> None:
    events: list[tuple[str, int, int | None]] = []
    score_file(
        _job(corpus_path, tmp_path / "s.jsonl", stub_bundle, batch_size=50),
        progress=lambda *event: events.append(event),
    )
    scoring = [e for e in events if e[0] == "scoring"]
    assert scoring == [("scoring", 50, 120), ("scoring", 100, 120), ("scoring", 120, 120)]
    assert events[-1] == ("merging", 120, 120)


def test_parts_hold_one_line_per_item(stub_bundle: Path, broken_path: Path) -> None:
    from copilot.batch.chunks import count_kinds, score_items
    from tests.batch.stubs import StubScorer

    items = list(open_conversations(broken_path))
    lines = score_items(StubScorer.load(stub_bundle), items)
    assert len(lines) == len(items) == 9
    assert count_kinds(lines) == (3, 6)
    assert lines[0].startswith(b'{"report":')
    assert lines[1] == encode_entry("quarantine", items[1].to_dict())  # type: ignore[union-attr]
