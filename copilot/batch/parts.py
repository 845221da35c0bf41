"""The work directory of a scoring job: its manifest, finished parts, and the final merge.

A job writing ``OUT`` keeps its state in ``OUT.parts/``::

    OUT.parts/
      job.json                  the manifest: input fingerprint, bundle, rubric, batch size, ...
      .lock                     held (flock) by the run that owns the directory
      part-00000000.jsonl.gz    chunk 0: one line per input item, in input order
      part-00000001.jsonl.gz    ...

The input stream is cut into chunks of ``batch_size`` items (an item is a conversation or an
unreadable record), numbered from 0. A finished chunk is written to a temporary file and renamed
to its part name, so a part is either complete or absent, whatever moment the job is killed at.
Each part line is ``{"report": {...}}`` or ``{"quarantine": {"line", "error", "raw"}}``.

``--resume`` re-reads the input, skips the chunks whose part exists and scores the others. When
every part exists, :func:`merge_parts` writes the output and the quarantine (each to a temporary
file renamed into place), then the summary, and only then is the work directory removed. A job
killed during the merge still has every part, so resuming it merges again: every input item ends
in the output or the quarantine exactly once.

Test hook (not for production use): when the environment variable
``COPILOT_BATCH_TEST_PAUSE_AT`` names a checkpoint, the job creates the file named by
``COPILOT_BATCH_TEST_PAUSE_FILE`` and sleeps there for up to a minute, so a test can kill it at
that exact point. Checkpoints: ``chunk-done-<k>`` (the k-th chunk of this run is written; with
several workers others may be in flight), ``merge`` (every part exists, nothing merged),
``merge-output`` (the output is in place, the quarantine not yet), ``merge-summary`` (all three
files are in place, the work directory not yet removed).
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from copilot.errors import InputError
from copilot.io import open_record_writer

__all__ = [
    "MANIFEST_NAME",
    "PAUSE_ENV",
    "PAUSE_FILE_ENV",
    "MergeStats",
    "WorkDir",
    "checkpoint",
    "digest_file",
    "encode_entry",
    "iter_part_entries",
    "merge_parts",
    "quarantine_path",
    "remove_stale_temporaries",
    "summary_path",
    "work_dir_path",
    "write_json_atomic",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "job.json"
PAUSE_ENV = "COPILOT_BATCH_TEST_PAUSE_AT"
PAUSE_FILE_ENV = "COPILOT_BATCH_TEST_PAUSE_FILE"
_PART = re.compile(r"^part-(\d{8})\.jsonl\.gz$")
_HEX12 = re.compile(r"[0-9a-f]{12}")
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
# Parts are scratch space read once by the merge: the fastest gzip level keeps them ~5x smaller
# than plain JSON for a few seconds of CPU per 100k reports.
_PART_COMPRESSION = 1


def work_dir_path(output: Path) -> Path:
    """``OUT.parts`` beside the output ``OUT``."""
    return output.with_name(output.name + ".parts")


def quarantine_path(output: Path) -> Path:
    """``OUT.quarantine.jsonl`` beside the output ``OUT``."""
    return output.with_name(output.name + ".quarantine.jsonl")


def summary_path(output: Path) -> Path:
    """``OUT.summary.json`` beside the output ``OUT``."""
    return output.with_name(output.name + ".summary.json")


def checkpoint(point: str) -> None:
    """Test hook: pause at ``point`` when ``COPILOT_BATCH_TEST_PAUSE_AT`` names it.

    Creates the file named by ``COPILOT_BATCH_TEST_PAUSE_FILE`` (so the test knows the job got
    there), then sleeps up to 60 s, long enough for the test to kill the process.
    """
    if os.environ.get(PAUSE_ENV) != point:
        return
    marker = os.environ.get(PAUSE_FILE_ENV)
    logger.warning("test hook: pausing at checkpoint %r", point)
    if marker:
        Path(marker).write_text(f"{point} {os.getpid()}\n", encoding="utf-8")
    time.sleep(60)


def encode_entry(kind: str, payload: Mapping[str, Any]) -> bytes:
    """One part line: ``{"report": payload}`` or ``{"quarantine": payload}``."""
    return orjson.dumps({kind: payload}, option=_JSON_OPTIONS)


def _fsync_dir(directory: Path) -> None:
    # Makes a rename durable across a power cut; a kill -9 needs only the rename itself.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, orjson.dumps(obj, option=orjson.OPT_INDENT_2 | _JSON_OPTIONS) + b"\n")


def remove_stale_temporaries(output: Path) -> int:
    """Remove temporary files a killed run left beside ``OUT`` (its output, quarantine, summary).

    Only call this while holding the work directory's lock: a running job's temporaries look
    the same.
    """
    removed = 0
    for target in (output, quarantine_path(output), summary_path(output)):
        # The writers' names: ".NAME.<12 hex digits>.tmp" (and nothing of another output's).
        for tmp in target.parent.glob(f".{glob.escape(target.name)}.{'?' * 12}.tmp"):
            if _HEX12.fullmatch(tmp.name[len(target.name) + 2 : -4]):
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed


class WorkDir:
    """The ``OUT.parts`` directory of one job (see the module docstring).

    Args:
        path: the directory, usually :func:`work_dir_path` of the output.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: IO[bytes] | None = None

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    def exists(self) -> bool:
        """True when the directory exists (a run was started and did not finish)."""
        return self.path.is_dir()

    def create(self) -> None:
        """Create the directory (its parent too); fine when it exists already."""
        self.path.mkdir(parents=True, exist_ok=True)

    def lock(self) -> None:
        """Take the directory for this process until :meth:`unlock` or exit.

        Raises:
            InputError: another live process holds it (two runs writing the same output).
        """
        try:
            import fcntl
        except ImportError:  # not on POSIX: no protection against two concurrent runs
            return
        handle = open(self.path / ".lock", "a+b")  # noqa: SIM115 - held until unlock()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise InputError(
                f"another `copilot score` run is writing {str(self.path)!r}; wait for it to end "
                "(or stop it) before starting or resuming this job"
            ) from exc
        self._lock = handle

    def unlock(self) -> None:
        """Release the lock taken by :meth:`lock`."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def read_manifest(self) -> dict[str, Any] | None:
        """The job manifest, or None when the run was killed before writing it."""
        try:
            data = self.manifest_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            manifest = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"the job manifest {str(self.manifest_path)!r} is unreadable ({exc}); delete "
                f"{str(self.path)!r} to start the job over"
            ) from exc
        if not isinstance(manifest, dict):
            raise InputError(
                f"the job manifest {str(self.manifest_path)!r} is not a JSON object; delete "
                f"{str(self.path)!r} to start the job over"
            )
        return manifest

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Write ``job.json`` atomically."""
        write_json_atomic(self.manifest_path, dict(manifest))

    def remove_temporaries(self) -> int:
        """Remove half-written part files of a killed run; return how many."""
        removed = 0
        for tmp in self.path.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed

    def part_path(self, index: int) -> Path:
        """The file of chunk ``index``."""
        return self.path / f"part-{index:08d}.jsonl.gz"

    def completed(self) -> set[int]:
        """Indexes of the chunks whose part file exists (and is therefore complete)."""
        found: set[int] = set()
        if not self.path.is_dir():
            return found
        for entry in os.scandir(self.path):
            match = _PART.match(entry.name)
            if match:
                found.add(int(match.group(1)))
        return found

    def write_part(self, index: int, lines: Sequence[bytes]) -> None:
        """Write the part of chunk ``index`` (encoded entries, in input order) atomically."""
        data = b"".join(line + b"\n" for line in lines)
        _atomic_write(
            self.part_path(index), gzip.compress(data, compresslevel=_PART_COMPRESSION, mtime=0)
        )

    def read_part(self, index: int) -> list[dict[str, Any]]:
        """The entries of one part, in order.

        Raises:
            InputError: the part is missing or unreadable.
        """
        path = self.part_path(index)
        try:
            data = gzip.decompress(path.read_bytes())
            return [orjson.loads(line) for line in data.splitlines() if line]
        except FileNotFoundError as exc:
            raise InputError(
                f"part {path.name} of the job in {str(self.path)!r} is missing; rerun with --resume "
                "to score its chunk again"
            ) from exc
        except (OSError, EOFError, orjson.JSONDecodeError) as exc:
            raise InputError(
                f"part {str(path)!r} is damaged ({exc}); delete that file and rerun with --resume "
                "to score its chunk again"
            ) from exc

    def remove(self) -> None:
        """Delete the directory and everything in it (after a successful merge)."""
        self.unlock()
        shutil.rmtree(self.path, ignore_errors=True)


@dataclass
class MergeStats:
    """What the merge wrote.

    Attributes:
        scored: reports written to the output.
        quarantined: entries written to the quarantine file.
        overall_sum: sum of the reports' ``overall`` scores (for the mean).
        overall_n: reports with an ``overall`` score.
    """

    scored: int = 0
    quarantined: int = 0
    overall_sum: float = 0.0
    overall_n: int = 0

    @property
    def overall_mean(self) -> float | None:
        return round(self.overall_sum / self.overall_n, 2) if self.overall_n else None


def merge_parts(
    work: WorkDir,
    sizes: Sequence[int],
    output: Path,
    output_format: str,
    on_part: Callable[[int], None] | None = None,
) -> MergeStats:
    """Concatenate the parts, in chunk order, into the output and ``OUT.quarantine.jsonl``.

    Both files are written to temporary names and renamed into place when complete: the output
    first, then the quarantine. An existing output is replaced only here, after a successful run.

    Args:
        work: the job's work directory; every part ``0 .. len(sizes) - 1`` must exist.
        sizes: the number of items of each chunk, to check every part holds its whole chunk.
        output: the output file.
        output_format: ``"jsonl"``, ``"csv"`` or ``"parquet"``.
        on_part: called with the number of items merged after each part.

    Returns:
        The :class:`MergeStats`.

    Raises:
        InputError: a part is missing, damaged, or does not hold its chunk's number of items.
    """
    from copilot.batch.outputs import open_report_writer

    stats = MergeStats()
    checkpoint("merge")
    quarantine = open_record_writer(quarantine_path(output), "jsonl")
    try:
        with open_report_writer(output, output_format) as out:
            for index, size in enumerate(sizes):
                entries = work.read_part(index)
                if len(entries) != size:
                    raise InputError(
                        f"part {work.part_path(index).name} holds {len(entries)} entries but its "
                        f"chunk has {size} items (was the input changed during the run?); delete "
                        f"{str(work.path)!r} and score the file again"
                    )
                for entry in entries:
                    report = entry.get("report")
                    if report is not None:
                        out.write(report)
                        stats.scored += 1
                        overall = report.get("overall")
                        if isinstance(overall, int | float):
                            stats.overall_sum += overall
                            stats.overall_n += 1
                    else:
                        quarantine.write(entry["quarantine"])
                        stats.quarantined += 1
                if on_part is not None:
                    on_part(size)
        checkpoint("merge-output")
        quarantine.close()
    except BaseException:
        quarantine.abort()
        raise
    return stats


def iter_part_entries(work: WorkDir, count: int) -> Iterator[dict[str, Any]]:
    """Every entry of parts ``0 .. count - 1``, in order (for inspection and tests)."""
    for index in range(count):
        yield from work.read_part(index)


def digest_file(path: Path) -> str:
    """SHA-256 of a file's bytes (for fingerprints of small files such as rubrics)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
