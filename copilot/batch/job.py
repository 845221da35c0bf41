"""A batch scoring job: read any input, score it with an engine, merge, summarise; resumable.

See :mod:`copilot.batch.parts` for the work directory and why a job killed at any moment can be
resumed with every input item ending in the output or the quarantine exactly once.
"""

from __future__ import annotations

import gzip
import logging
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from copilot.batch.chunks import Chunk, ChunkResult, Item, ScorerFactory, iter_chunks
from copilot.batch.local import ScorerSpec, run_local
from copilot.batch.outputs import report_format
from copilot.batch.parts import (
    MergeStats,
    WorkDir,
    checkpoint,
    digest_file,
    merge_parts,
    quarantine_path,
    remove_stale_temporaries,
    summary_path,
    work_dir_path,
    write_json_atomic,
)
from copilot.errors import BrokenInputError, BundleError, ConfigError, InputError

if TYPE_CHECKING:
    from copilot.io.readers import ConversationReader

__all__ = ["ENGINES", "JobSummary", "ProgressCallback", "ScoreJob", "score_file"]

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")
Engine = Literal["local", "ray"]
ProgressCallback = Callable[[str, int, int | None], None]
"""``(phase, items done, items in all or None)``; phase is ``"scoring"`` or ``"merging"``."""

_MANIFEST_VERSION = 1
# Manifest fields that decide the parts' content: a resume refuses when one differs.
_FINGERPRINT = (
    "input",
    "input_size",
    "input_mtime_ns",
    "input_format",
    "reader_options",
    "bundle_path",
    "bundle_id",
    "rubric",
    "rubric_sha256",
    "batch_size",
)


@dataclass(frozen=True)
class ScoreJob:
    """Everything a scoring run needs.

    Attributes:
        input: the input file (any format the readers take; ``"-"`` is standard input, which
            cannot be resumed).
        output: the output file; the quarantine and the summary go beside it
            (``OUT.quarantine.jsonl``, ``OUT.summary.json``), the work directory too
            (``OUT.parts/``, removed when the job ends).
        bundle: the model bundle directory.
        rubric: a rubric YAML file, or None for the default rubric.
        input_format: one of :data:`copilot.io.FORMATS`.
        output_format: ``"jsonl"``, ``"csv"`` or ``"parquet"``; default from the output name.
        reader_options: keyword options of :func:`copilot.io.open_conversations` (``columns``,
            ``role_map``, ``staff_ids``, ``gap_hours``, ``max_message_chars``).
        workers: processes (local engine) or actors (Ray engine) scoring in parallel.
        engine: ``"local"`` or ``"ray"``.
        batch_size: items per chunk: the unit of parallel work, of progress and of resume.
        resume: continue the unfinished job of the same output (see :func:`score_file`).
        ray_address: the Ray cluster (``ray://host:10001``, ``auto``); default ``RAY_ADDRESS``,
            else a local Ray instance with ``workers`` CPUs.
        scorer: the scorer factory, called as ``scorer(bundle, rubric=rubric)`` in every worker
            (keyword only, required): ``models.runtime.load_scorer`` loads the bundle's
            :class:`copilot.scoring.scorer.Scorer`. A module-level function, so it pickles.
    """

    input: str | Path
    output: Path
    bundle: Path
    rubric: Path | None = None
    input_format: str = "auto"
    output_format: str | None = None
    reader_options: Mapping[str, Any] = field(default_factory=dict)
    workers: int = 1
    engine: Engine = "local"
    batch_size: int = 500
    resume: bool = False
    ray_address: str | None = None
    scorer: ScorerFactory = field(kw_only=True)


@dataclass
class JobSummary:
    """The outcome of a job, as written to ``OUT.summary.json``.

    ``read == scored + quarantined`` always: ``read`` counts the items of the input (each
    conversation, and each record that could not be read), ``scored`` the reports in the output
    and ``quarantined`` the lines of the quarantine file (unreadable records plus conversations
    whose scoring failed). ``records`` is the reader's own count (rows for message-row files).
    ``conversations_per_s`` is the rate of this run (items scored now / ``elapsed_s``); a resumed
    run reuses ``chunks_reused`` chunks scored before. ``input_error`` is None, or the reader's
    message when the input broke off part-way (a cut ``.gz``): the counts are then of the items
    read before the break, which were scored and written like any others.
    """

    read: int
    scored: int
    quarantined: int
    records: dict[str, int]
    elapsed_s: float
    conversations_per_s: float
    overall_mean: float | None
    workers: int
    engine: str
    batch_size: int
    chunks: int
    chunks_reused: int
    resumed: bool
    bundle: str
    bundle_path: str
    rubric: str | None
    input: str
    input_format: str
    output: str
    output_format: str
    quarantine: str
    summary: str
    finished_at: str
    input_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict."""
        return asdict(self)


def _bundle_manifest(bundle: Path) -> dict[str, Any]:
    path = bundle / "manifest.json"
    if not path.is_file():
        hint = " (train one with `copilot train DATA -o DIR`)" if not bundle.exists() else ""
        raise BundleError(f"no model bundle at {str(bundle)!r}: manifest.json not found{hint}")
    try:
        manifest = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{path} is not a JSON object; retrain the bundle with `copilot train`")
    return manifest


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sorted(options.items()):
        if isinstance(value, set | frozenset):
            value = sorted(value)
        elif isinstance(value, Mapping):
            value = dict(sorted(value.items()))
        out[key] = value
    return out


def _manifest(job: ScoreJob, output_format: str, reader_format: str) -> dict[str, Any]:
    bundle = job.bundle.resolve()
    bundle_manifest = _bundle_manifest(bundle)
    rubric = job.rubric.resolve() if job.rubric is not None else None
    if rubric is not None and not rubric.is_file():
        raise ConfigError(f"no rubric file at {str(job.rubric)!r}; pass an existing YAML file")
    stdin = str(job.input) == "-"
    source = None if stdin else Path(job.input).resolve()
    stat = source.stat() if source is not None else None
    return {
        "version": _MANIFEST_VERSION,
        "input": "-" if source is None else str(source),
        "input_size": stat.st_size if stat else None,
        "input_mtime_ns": stat.st_mtime_ns if stat else None,
        "input_format": reader_format,
        "reader_options": _jsonable(job.reader_options),
        "bundle_path": str(bundle),
        "bundle_id": bundle_manifest.get("id"),
        "bundle": f"{bundle_manifest.get('name', 'bundle')}@{str(bundle_manifest.get('id', ''))[:10]}",
        "rubric": str(rubric) if rubric else None,
        "rubric_sha256": digest_file(rubric) if rubric else None,
        "batch_size": job.batch_size,
        "output_format": output_format,
        "scorer": _factory_name(job.scorer),
    }


def _factory_name(factory: ScorerFactory) -> str:
    """``module:qualname`` of the scorer factory, as the job manifest records it."""
    name = getattr(factory, "__qualname__", type(factory).__qualname__)
    return f"{factory.__module__}:{name}"


def _check_same_job(work: WorkDir, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    changed = [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in _FINGERPRINT
        if old.get(key) != new.get(key)
    ]
    if changed:
        raise InputError(
            f"cannot resume the job in {str(work.path)!r}: it was started with other inputs or "
            f"settings ({'; '.join(changed)}). Rerun with the original input and options, or "
            f"delete {str(work.path)!r} to score from the start"
        )


def _count_lines(path: Path) -> int | None:
    """Lines of a (possibly gzip) file: about the items of a conversation JSONL file.

    Only for the progress bar's total and ETA; blank lines are counted too. None when the file
    cannot be read to its end (a cut ``.gz``): the reader reports that, with its message.
    """
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        handle: Any = gzip.GzipFile(fileobj=raw) if gzipped else raw
        count, last = 0, b"\n"
        try:
            for block in iter(lambda: handle.read(1 << 20), b""):
                count += block.count(b"\n")
                last = block[-1:]
        except (OSError, EOFError, zlib.error):
            return None
        return count + (last != b"\n")


def _open_job(job: ScoreJob, output: Path, manifest: dict[str, Any]) -> tuple[WorkDir, bool]:
    """The work directory, locked: created fresh, or reopened (and checked) on resume."""
    work = WorkDir(work_dir_path(output))
    resumed = False
    if work.exists():
        if not job.resume:
            # A live run holds the lock: say so (lock() raises) rather than advise deleting the
            # parts it is writing. Only a directory nobody holds may be deleted.
            work.lock()
            work.unlock()
            raise InputError(
                f"an unfinished scoring job of {str(output)!r} is in {str(work.path)!r} and no "
                f"run is using it; pass --resume to finish it, or delete that directory to score "
                f"from the start"
            )
        work.lock()
        try:
            old = work.read_manifest()
            if old is None:  # killed before the manifest was written: nothing to reuse
                work.write_manifest(manifest)
            else:
                _check_same_job(work, old, manifest)
                if old.get("output_format") != manifest["output_format"]:
                    # Parts hold full reports: any output format can be merged from them.
                    logger.info("output format changed to %s on resume", manifest["output_format"])
                    work.write_manifest(manifest)
                resumed = True
            work.remove_temporaries()
            remove_stale_temporaries(output)
        except BaseException:
            work.unlock()
            raise
        return work, resumed
    if job.resume:
        logger.info("no unfinished job in %s: starting from the beginning", work.path)
    work.create()
    work.lock()
    try:
        work.write_manifest(manifest)
        remove_stale_temporaries(output)
    except BaseException:
        work.unlock()
        raise
    return work, resumed


def _validate(job: ScoreJob) -> None:
    if job.engine not in ENGINES:
        raise InputError(f"unknown engine {job.engine!r}; valid engines: {', '.join(ENGINES)}")
    if job.workers < 1:
        raise InputError(f"workers must be at least 1, got {job.workers}")
    if job.batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {job.batch_size}")
    if str(job.input) == "-" and job.resume:
        raise InputError(
            "cannot resume a job that reads standard input; write the input to a file and score it"
        )
    if str(job.input) != "-" and Path(job.input).resolve() == job.output.resolve():
        raise InputError(f"the output {str(job.output)!r} is the input file; choose another name")


def score_file(job: ScoreJob, progress: ProgressCallback | None = None) -> JobSummary:
    """Score every conversation of an input file into a score file; resumable after a crash.

    The input is streamed and cut into chunks of ``job.batch_size`` items; each chunk is scored
    by the engine and kept as a part in ``OUT.parts/``; when all are done they are merged into
    the output (full reports in JSONL, flat rows in CSV / Parquet), ``OUT.quarantine.jsonl``
    (unreadable records and conversations whose scoring failed) and ``OUT.summary.json``, and the
    work directory is removed. An existing output is replaced only at that point.

    Args:
        job: what to score, where to, and how (see :class:`ScoreJob`).
        progress: called as ``progress(phase, done, total)`` while the job runs.

    Returns:
        The :class:`JobSummary` (also written to ``OUT.summary.json``). When the input breaks
        off part-way (a cut ``.gz``), what was read before the break is scored and written and
        ``input_error`` holds the reader's message: check it.

    Raises:
        InputError: a bad option or input file; an unfinished job exists and ``resume`` is
            false; ``resume`` with an input, bundle, rubric or batch size other than the job's.
        BundleError: no usable bundle.
        ConfigError: an invalid rubric; the Ray engine without Ray installed.
        RuntimeError: a worker process died or the Ray job failed (finished chunks are kept in
            ``OUT.parts/`` for ``resume``).

    Example::

        from models.runtime import load_scorer

        summary = score_file(ScoreJob("logs.jsonl", Path("scores.csv"), Path("bundles/default"),
                                      workers=2, scorer=load_scorer))
        print(summary.scored, summary.quarantined)
    """
    from copilot.io import open_conversations

    started = time.perf_counter()
    _validate(job)
    output = job.output
    output_format = report_format(output, job.output_format)
    reader = open_conversations(job.input, format=job.input_format, **job.reader_options)
    try:
        manifest = _manifest(job, output_format, reader.format)
        work, resumed = _open_job(job, output, manifest)
    except BaseException:
        reader.close()
        raise
    try:
        feed = _Feed(job, reader, work, progress)
        _run_engine(job, feed, work)
        summary = _merge(job, feed, work, manifest, output_format, resumed, started)
    except BaseException:
        reader.close()
        _release_failed(work, resumed)
        raise
    work.remove()
    _log_finished(summary, output)
    return summary


class _Feed:
    """The input's chunks still to score; those a resumed job finished are counted and skipped."""

    def __init__(
        self,
        job: ScoreJob,
        reader: ConversationReader,
        work: WorkDir,
        progress: ProgressCallback | None,
    ) -> None:
        self.reader = reader
        self.batch_size = job.batch_size
        total = (
            _count_lines(Path(job.input))
            if reader.format == "jsonl" and str(job.input) != "-"
            else None
        )
        self.done_before = work.completed()
        self.state = _Progress(progress, total)
        self.sizes: list[int] = []  # items per chunk, every chunk read
        self.broken: list[BrokenInputError] = []

    def _readable(self) -> Iterator[Item]:
        # An input that breaks off part-way ends the stream there; the items read before
        # the break are scored and merged, and the summary reports the break.
        try:
            yield from self.reader
        except BrokenInputError as exc:
            self.broken.append(exc)

    def pending(self) -> Iterator[Chunk]:
        """The chunks to score, read lazily; closes the reader when the input ends."""
        with self.reader:
            for chunk in iter_chunks(self._readable(), self.batch_size):
                self.sizes.append(len(chunk.items))
                if chunk.index in self.done_before:
                    self.state.advance(len(chunk.items), fresh=False)
                else:
                    yield chunk

    def on_done(self, result: ChunkResult) -> None:
        """Count a chunk the engine finished."""
        self.state.advance(result.items, fresh=True)
        checkpoint(f"chunk-done-{self.state.chunks_fresh}")


def _run_engine(job: ScoreJob, feed: _Feed, work: WorkDir) -> None:
    """Score the pending chunks into parts with the job's engine (local processes or Ray)."""
    spec = ScorerSpec(
        str(job.bundle.resolve()),
        str(job.rubric.resolve()) if job.rubric is not None else None,
        job.scorer,
    )
    if job.engine == "ray":
        from copilot.batch.ray_engine import run_ray

        run_ray(
            spec,
            feed.pending(),
            work,
            job.workers,
            feed.on_done,
            address=job.ray_address,
            batch_size=min(job.batch_size, 256),
        )
    else:
        run_local(spec, feed.pending(), work, job.workers, feed.on_done)


def _merge(
    job: ScoreJob,
    feed: _Feed,
    work: WorkDir,
    manifest: Mapping[str, Any],
    output_format: str,
    resumed: bool,
    started: float,
) -> JobSummary:
    """Merge the parts into the output and write the summary beside it."""
    # Every chunk has its part now; merge_parts checks each holds its whole chunk.
    sizes = feed.sizes
    merged = feed.state.merging(sum(sizes))
    stats = merge_parts(work, sizes, job.output, output_format, on_part=merged)
    elapsed = time.perf_counter() - started
    summary = _summary(
        job,
        manifest,
        feed.reader.summary.to_dict(),
        stats,
        elapsed,
        fresh=feed.state.fresh,
        chunks=len(sizes),
        reused=len(feed.done_before & set(range(len(sizes)))),
        resumed=resumed,
        input_error=str(feed.broken[0]) if feed.broken else None,
    )
    write_json_atomic(summary_path(job.output), summary.to_dict())
    checkpoint("merge-summary")
    return summary


def _release_failed(work: WorkDir, resumed: bool) -> None:
    """Unlock the work directory of a failed job, or remove it when there is nothing to resume."""
    if not resumed and not work.completed():
        # Failed before finishing any chunk (a bad rubric, a bundle a worker cannot load):
        # there is nothing to resume, so leave no work directory to trip the next run.
        work.remove()
    else:
        work.unlock()


def _log_finished(summary: JobSummary, output: Path) -> None:
    logger.info(
        "scored %d, quarantined %d of %d in %.1fs -> %s",
        summary.scored,
        summary.quarantined,
        summary.read,
        summary.elapsed_s,
        output,
    )
    if summary.input_error is not None:
        logger.warning("the input broke off after %d items: %s", summary.read, summary.input_error)


def _summary(
    job: ScoreJob,
    manifest: Mapping[str, Any],
    records: dict[str, int],
    stats: MergeStats,
    elapsed: float,
    *,
    fresh: int,
    chunks: int,
    reused: int,
    resumed: bool,
    input_error: str | None,
) -> JobSummary:
    return JobSummary(
        read=stats.scored + stats.quarantined,
        scored=stats.scored,
        quarantined=stats.quarantined,
        records=records,
        elapsed_s=round(elapsed, 3),
        conversations_per_s=round(fresh / elapsed, 1) if elapsed > 0 else 0.0,
        overall_mean=stats.overall_mean,
        workers=job.workers,
        engine=job.engine,
        batch_size=job.batch_size,
        chunks=chunks,
        chunks_reused=reused,
        resumed=resumed,
        bundle=manifest["bundle"],
        bundle_path=manifest["bundle_path"],
        rubric=manifest["rubric"],
        input=str(job.input),
        input_format=manifest["input_format"],
        output=str(job.output),
        output_format=manifest["output_format"],
        quarantine=str(quarantine_path(job.output)),
        summary=str(summary_path(job.output)),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        input_error=input_error,
    )


class _Progress:
    """Counts items done and forwards them to the caller's callback."""

    def __init__(self, callback: ProgressCallback | None, total: int | None) -> None:
        self.callback = callback
        self.total = total
        self.done = 0
        self.fresh = 0
        self.chunks_fresh = 0

    def advance(self, n: int, *, fresh: bool) -> None:
        self.done += n
        if fresh:
            self.fresh += n
            self.chunks_fresh += 1
        if self.callback is not None:
            self.callback("scoring", self.done, self.total)

    def merging(self, total: int) -> Callable[[int], None]:
        merged = 0
        if self.callback is not None:
            self.callback("merging", 0, total)

        def on_part(n: int) -> None:
            nonlocal merged
            merged += n
            if self.callback is not None:
                self.callback("merging", merged, total)

        return on_part
