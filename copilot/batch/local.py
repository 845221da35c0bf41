"""The local engine: chunks scored in this process, or in a pool of worker processes.

With ``workers > 1`` each worker process loads the scorer once (pool initializer) and, for each
chunk it is handed, scores it and writes its part file itself, returning only the counts; so
reports never travel back through the parent. At most ``2 * workers`` chunks are in flight, so
memory stays flat however long the input is. Workers are started with the ``forkserver`` method
where the platform has it (a clean process that imports the scoring code once and forks workers
from it: no threads or open files of the parent are inherited), else ``spawn``.

Workers die with the parent, however it ends (``kill -9`` included): each holds the read end of
a pipe whose only write end is the parent's, and exits when it reads end-of-file there. Orphaned
workers would otherwise wait for work forever, each holding a loaded bundle, and keep the fork
server and the resource tracker alive with them; a crash-and-``--resume`` cycle would add more.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from copilot.batch.chunks import (
    Chunk,
    ChunkResult,
    Item,
    ScorerFactory,
    ScorerLike,
    count_kinds,
    peek,
    score_items,
)
from copilot.batch.parts import WorkDir

__all__ = ["ScorerSpec", "run_local"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScorerSpec:
    """How a worker builds its scorer: ``factory(bundle, rubric=rubric)``.

    Attributes:
        bundle: the bundle directory (absolute, so workers elsewhere find it).
        rubric: the rubric file, or None for the default rubric.
        factory: the scorer factory (picklable; see :class:`copilot.batch.chunks.ScorerFactory`).
    """

    bundle: str
    rubric: str | None
    factory: ScorerFactory

    def load(self) -> ScorerLike:
        """Build the scorer (the bundle is loaded here)."""
        return self.factory(self.bundle, rubric=self.rubric)


def score_chunk(scorer: ScorerLike, work: WorkDir, chunk: Chunk) -> ChunkResult:
    """Score one chunk and write its part; return the counts."""
    lines = score_items(scorer, chunk.items)
    work.write_part(chunk.index, lines)
    scored, quarantined = count_kinds(lines)
    return ChunkResult(chunk.index, len(lines), scored, quarantined)


def run_local(
    spec: ScorerSpec,
    chunks: Iterable[Chunk],
    work: WorkDir,
    workers: int,
    on_done: Callable[[ChunkResult], None],
) -> None:
    """Score every chunk of ``chunks`` into ``work``, calling ``on_done`` as each one finishes.

    Args:
        spec: how to build the scorer.
        chunks: the chunks still to score (consumed lazily).
        work: the job's work directory (parts are written there).
        workers: 1 scores in this process; more start that many worker processes.
        on_done: called in this process with each finished chunk's counts (any order).

    Raises:
        BundleError: the bundle cannot be loaded.
        ConfigError: the rubric is invalid.
        RuntimeError: a worker process died (killed, out of memory).
    """
    pending = peek(chunks)
    if pending is None:  # every chunk was done before (a resume): no need to load anything
        return
    if workers <= 1:
        scorer = spec.load()
        for chunk in pending:
            on_done(score_chunk(scorer, work, chunk))
        return
    _run_pool(spec, pending, work, workers, on_done)


# --- the worker pool ----------------------------------------------------------------------------

_worker: dict[str, Any] = {}
# Write ends of the workers' lifelines of pools stopped by an error: their workers may still be
# finishing a chunk, so the ends stay open until this process exits.
_lifelines: list[Connection] = []


def _init_worker(spec: ScorerSpec, work_path: str, lifeline: Connection) -> None:
    """Pool initializer: load the scorer once per process; keep a failure to raise per task."""
    # Ctrl-C reaches the whole process group: the parent handles it and stops the pool, so the
    # workers need not each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(lifeline)
    _worker["work"] = WorkDir(Path(work_path))
    try:
        _worker["scorer"] = spec.load()
    except Exception as exc:  # raised from each task, where the parent sees it
        _worker["error"] = exc
        return
    _one_thread_each()


def _exit_with_parent(lifeline: Connection) -> None:
    """Exit this worker as soon as the parent's end of ``lifeline`` closes (the parent died).

    A parent-death signal (``prctl(PR_SET_PDEATHSIG)``) would not do: a forkserver worker's
    parent is the fork server, which outlives a killed parent as long as its workers do.
    """

    def watch() -> None:
        # The parent never sends: this returns (raises EOFError) only when its end closes.
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv_bytes()
        os._exit(1)

    threading.Thread(target=watch, name="copilot-lifeline", daemon=True).start()


def _one_thread_each() -> None:
    # N workers on N cores: BLAS / OpenMP pools of N threads in each would oversubscribe them.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


def _score_in_worker(index: int, items: list[Item]) -> ChunkResult:
    error = _worker.get("error")
    if error is not None:
        raise error
    return score_chunk(_worker["scorer"], _worker["work"], Chunk(index, items))


def _context(factory: ScorerFactory) -> Any:
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    context = mp.get_context(method)
    if method == "forkserver":
        # Imported once in the fork server; each worker forks from it with the modules loaded
        # (the factory's module brings the scorer and the models with it).
        context.set_forkserver_preload(["copilot.batch.local", factory.__module__])
    return context


def _run_pool(
    spec: ScorerSpec,
    chunks: Iterable[Chunk],
    work: WorkDir,
    workers: int,
    on_done: Callable[[ChunkResult], None],
) -> None:
    limit = 2 * workers
    context = _context(spec.factory)
    lifeline, parent_end = context.Pipe(duplex=False)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(spec, str(work.path), lifeline),
    )
    in_flight: set[Future[ChunkResult]] = set()

    def drain(block_until: int) -> None:
        nonlocal in_flight
        while len(in_flight) > block_until:
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                on_done(future.result())

    try:
        for chunk in chunks:
            drain(limit - 1)
            in_flight.add(pool.submit(_score_in_worker, chunk.index, chunk.items))
        drain(0)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        _lifelines.append(parent_end)
        raise
    pool.shutdown(wait=True)
    parent_end.close()
    lifeline.close()
