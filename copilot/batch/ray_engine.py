"""The Ray engine: the same chunks and parts as the local engine, scored on a Ray cluster.

The driver reads the input with the project's readers (so quarantine and chunking are exactly
those of the local engine) and gathers chunks into windows of about ``window_items`` items. Each
window becomes a ``ray.data.from_items`` dataset of its conversations (as JSON text, with their
chunk and position) mapped by :class:`RayScorer`, a callable class whose actors load the scorer
once each; the driver streams the results back, and writes each chunk's part as soon as all its
items are in. Parts, merge and ``--resume`` are therefore shared with the local engine. A Ray
Client driver (``ray://`` address), from which Ray Data cannot execute, runs each window inside a
task on the cluster instead and gets the window's results back in one piece.

Ray is an optional extra (``pip install 'sales-copilot[ray]'``), imported only here. Every node
needs this package installed and the bundle (and rubric) readable at the same path.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from copilot.batch.chunks import Chunk, ChunkResult, peek, score_conversations
from copilot.batch.local import ScorerSpec
from copilot.batch.parts import WorkDir, encode_entry
from copilot.errors import ConfigError, CopilotError
from copilot.io import Quarantined
from copilot.schema import Conversation

__all__ = ["RayScorer", "import_ray", "run_ray"]

logger = logging.getLogger(__name__)

WINDOW_ITEMS = 20_000
"""Items per Ray dataset: large enough that actor start-up (a bundle load each) is amortised,
small enough that a window's conversations and results fit in the driver's memory."""


def import_ray() -> Any:
    """The ``ray`` module with Ray Data.

    Raises:
        ConfigError: Ray is not installed; the message names the extra to install.
    """
    try:
        ray = importlib.import_module("ray")
        importlib.import_module("ray.data")
    except ImportError as exc:
        raise ConfigError(
            "the ray engine needs Ray Data, which is not installed: pip install "
            "'sales-copilot[ray]' (or use --engine local)"
        ) from exc
    return ray


class RayScorer:
    """The ``map_batches`` callable: loads the scorer once per actor, scores batches of rows.

    Args:
        spec: how to build the scorer (bundle and rubric paths must be readable on the node).

    A batch holds columns ``chunk``, ``pos`` and ``conversation`` (canonical JSON); the result
    holds ``chunk``, ``pos`` and ``line`` (the encoded part entry: a report, or a quarantine
    entry when scoring that conversation failed).
    """

    def __init__(self, spec: ScorerSpec) -> None:
        self.scorer = spec.load()
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(1)  # one CPU per actor: no oversubscribing BLAS threads
        except ImportError:
            pass

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        # Already validated by the driver's reader (with its own message limit): no limit here.
        context = {"max_message_chars": sys.maxsize}
        conversations = [
            Conversation.model_validate_json(text, context=context)
            for text in batch["conversation"]
        ]
        lines = [
            encode_entry(kind, payload).decode()
            for kind, payload in score_conversations(self.scorer, conversations)
        ]
        return {
            "chunk": np.asarray(batch["chunk"]),
            "pos": np.asarray(batch["pos"]),
            "line": np.asarray(lines, dtype=object),
        }


def _quiet_ray_logs() -> None:
    # Ray Data logs each dataset execution (and that its progress bars are off: the caller draws
    # its own) on the console; keep that for debug logging (--verbose).
    if not logger.isEnabledFor(logging.DEBUG):
        logging.getLogger("ray").setLevel(logging.WARNING)
        logging.getLogger("ray.data").setLevel(logging.ERROR)


def _windows(chunks: Iterable[Chunk], window_items: int) -> Iterator[list[Chunk]]:
    window: list[Chunk] = []
    size = 0
    for chunk in chunks:
        window.append(chunk)
        size += len(chunk.items)
        if size >= window_items:
            yield window
            window, size = [], 0
    if window:
        yield window


def _copilot_cause(exc: BaseException) -> CopilotError | None:
    """The product error inside a Ray error (Ray wraps what a task or actor raised)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CopilotError):
            return current
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else current.__cause__
    return None


def run_ray(
    spec: ScorerSpec,
    chunks: Iterable[Chunk],
    work: WorkDir,
    workers: int,
    on_done: Callable[[ChunkResult], None],
    *,
    address: str | None = None,
    batch_size: int = 256,
    window_items: int = WINDOW_ITEMS,
) -> None:
    """Score every chunk of ``chunks`` on Ray into ``work``, calling ``on_done`` per chunk.

    Args:
        spec: how actors build the scorer.
        chunks: the chunks still to score (consumed lazily, a window at a time).
        work: the job's work directory (the driver writes the parts there).
        workers: actors (one CPU each); also the CPUs of a local Ray instance.
        on_done: called with each finished chunk's counts.
        address: the cluster to join (``ray://host:10001``, ``auto``); default the
            ``RAY_ADDRESS`` environment variable, else a new local instance. A Ray already
            initialised in this process is used as it is.
        batch_size: conversations per ``map_batches`` call.
        window_items: items per Ray dataset (see :data:`WINDOW_ITEMS`).

    Raises:
        ConfigError: Ray is not installed.
        BundleError: (from an actor) the bundle cannot be loaded on a node.
        RuntimeError: the Ray job failed for another reason.
    """
    ray = import_ray()
    pending = peek(chunks)
    if pending is None:  # every chunk was done before (a resume): no cluster needed
        return
    started_here = False
    if not ray.is_initialized():
        options: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": logging.WARNING,
            "log_to_driver": False,
        }
        target = address or os.environ.get("RAY_ADDRESS")
        if target:
            ray.init(address=target, **options)
        else:
            ray.init(num_cpus=workers, **options)
        started_here = True
    try:
        _quiet_ray_logs()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        for window in _windows(pending, window_items):
            _run_window(ray, spec, window, work, workers, on_done, batch_size)
    except CopilotError:
        raise
    except Exception as exc:
        cause = _copilot_cause(exc)
        if cause is not None:
            raise cause from exc
        raise RuntimeError(f"the Ray job failed: {exc}") from exc
    finally:
        if started_here:
            ray.shutdown()


def _run_window(
    ray: Any,
    spec: ScorerSpec,
    window: list[Chunk],
    work: WorkDir,
    workers: int,
    on_done: Callable[[ChunkResult], None],
    batch_size: int,
) -> None:
    lines: dict[int, list[str | None]] = {}
    missing: dict[int, int] = {}
    rows: list[dict[str, Any]] = []
    for chunk in window:
        slots: list[str | None] = [None] * len(chunk.items)
        for pos, item in enumerate(chunk.items):
            if isinstance(item, Quarantined):
                slots[pos] = encode_entry("quarantine", item.to_dict()).decode()
            else:
                rows.append(
                    {"chunk": chunk.index, "pos": pos, "conversation": item.to_json().decode()}
                )
        lines[chunk.index] = slots
        missing[chunk.index] = sum(slot is None for slot in slots)

    def finish(index: int) -> None:
        slots = lines.pop(index)
        encoded = [slot.encode() for slot in slots if slot is not None]
        work.write_part(index, encoded)
        scored = sum(1 for slot in encoded if slot.startswith(b'{"report"'))
        on_done(ChunkResult(index, len(encoded), scored, len(encoded) - scored))

    for index in [i for i, n in missing.items() if n == 0]:
        finish(index)
    if not rows:
        return
    if _client_mode(ray):
        # Ray Data cannot execute from a Ray Client driver: run the window in a task on the
        # cluster (no CPU of its own) and bring its results back in one piece.
        collect = ray.remote(num_cpus=0)(_collect_window)
        results: Iterable[tuple[int, int, str]] = ray.get(
            collect.remote(rows, spec, workers, batch_size)
        )
    else:
        results = _iter_window(ray, rows, spec, workers, batch_size)
    for index, pos, line in results:
        lines[index][pos] = line
        missing[index] -= 1
        if missing[index] == 0:
            finish(index)
    if lines:
        raise RuntimeError(
            f"the Ray job returned no result for some conversations of chunk(s) "
            f"{', '.join(map(str, sorted(lines)))}; rerun with --resume"
        )


def _client_mode(ray: Any) -> bool:
    """True when this process is a Ray Client (``ray://``) driver."""
    try:
        return bool(ray.util.client.ray.is_connected())
    except AttributeError:
        return False


def _iter_window(
    ray: Any, rows: list[dict[str, Any]], spec: ScorerSpec, workers: int, batch_size: int
) -> Iterator[tuple[int, int, str]]:
    """``(chunk, position, encoded entry)`` of every row, streamed as actors finish batches."""
    blocks = max(workers, -(-len(rows) // batch_size))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
        RayScorer,
        fn_constructor_args=(spec,),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
    )
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for index, pos, line in zip(batch["chunk"], batch["pos"], batch["line"], strict=True):
            yield int(index), int(pos), str(line)


def _collect_window(
    rows: list[dict[str, Any]], spec: ScorerSpec, workers: int, batch_size: int
) -> list[tuple[int, int, str]]:
    """:func:`_iter_window` run inside the cluster (a task), for a Ray Client driver."""
    ray = import_ray()
    ray.data.DataContext.get_current().enable_progress_bars = False
    return list(_iter_window(ray, rows, spec, workers, batch_size))
