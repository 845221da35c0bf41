"""Chunks of an input stream, and scoring one chunk with failures isolated.

Every engine cuts the reader's stream the same way (:func:`iter_chunks`) and scores a chunk the
same way (:func:`score_items`), so the parts of a job are identical whichever engine, number of
workers or resume history produced them.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from copilot.batch.parts import encode_entry
from copilot.io import RAW_LIMIT, Quarantined
from copilot.schema import Conversation

__all__ = [
    "Chunk",
    "ChunkResult",
    "ScorerFactory",
    "ScorerLike",
    "count_kinds",
    "failure_entry",
    "iter_chunks",
    "peek",
    "score_conversations",
    "score_items",
]

logger = logging.getLogger(__name__)

Item = Conversation | Quarantined


class ScorerLike(Protocol):
    """What an engine needs from a scorer (:class:`copilot.scoring.scorer.Scorer` is one)."""

    def score_many(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]: ...


class ScorerFactory(Protocol):
    """Builds a worker's scorer: ``factory(bundle_dir, rubric=rubric_file_or_None)``.

    Engines hand it to worker processes and Ray actors, so it must pickle: a module-level
    function (``models.runtime.load_scorer``) or a classmethod of a module-level class.
    """

    def __call__(self, bundle: str, /, *, rubric: str | None) -> ScorerLike: ...


@dataclass
class Chunk:
    """``batch_size`` consecutive items of the input stream (fewer for the last one).

    Attributes:
        index: 0-based chunk number; chunk ``i`` holds items ``i * batch_size`` onwards.
        items: the conversations and unreadable records, in input order.
    """

    index: int
    items: list[Item]


@dataclass(frozen=True)
class ChunkResult:
    """A finished chunk: its number and how its items ended."""

    index: int
    items: int
    scored: int
    quarantined: int


def iter_chunks(items: Iterable[Item], batch_size: int) -> Iterator[Chunk]:
    """Cut a stream of items into :class:`Chunk` s of ``batch_size`` (the last may be shorter)."""
    buffer: list[Item] = []
    index = 0
    for item in items:
        buffer.append(item)
        if len(buffer) == batch_size:
            yield Chunk(index, buffer)
            buffer = []
            index += 1
    if buffer:
        yield Chunk(index, buffer)


def peek(chunks: Iterable[Chunk]) -> Iterator[Chunk] | None:
    """The same chunks, or None when there are none (so engines start nothing for no work)."""
    iterator = iter(chunks)
    first = next(iterator, None)
    if first is None:
        return None
    return itertools.chain([first], iterator)


def _truncate(raw: str) -> str | dict[str, Any]:
    if len(raw) <= RAW_LIMIT:
        parsed: dict[str, Any] = orjson.loads(raw)
        return parsed
    return f"{raw[:RAW_LIMIT]}… [truncated: {len(raw):,} characters in all]"


def failure_entry(conversation: Conversation, exc: BaseException) -> dict[str, Any]:
    """The quarantine entry of a conversation whose scoring raised ``exc``.

    ``line`` is None: a conversation does not know its line (the id is in the error and raw).
    """
    return {
        "line": None,
        "error": (
            f"conversation {conversation.conversation_id!r}: scoring failed: "
            f"{type(exc).__name__}: {exc}"
        ),
        "raw": _truncate(conversation.to_json().decode()),
    }


def score_conversations(
    scorer: ScorerLike, conversations: Sequence[Conversation]
) -> list[tuple[str, dict[str, Any]]]:
    """``("report", report)`` or ``("quarantine", entry)`` per conversation, in order.

    The batch is scored at once; when that raises, each conversation is scored alone so only the
    ones that fail become quarantine entries (with the error) and the rest are kept.
    """
    if not conversations:
        return []
    try:
        reports = scorer.score_many(conversations)
        if len(reports) != len(conversations):
            raise RuntimeError(
                f"the scorer returned {len(reports)} reports for {len(conversations)} conversations"
            )
        return [("report", report) for report in reports]
    except Exception as exc:  # one bad conversation must not sink its neighbours
        logger.info("a batch of %d failed (%s); scoring one at a time", len(conversations), exc)
    out: list[tuple[str, dict[str, Any]]] = []
    for conversation in conversations:
        try:
            (report,) = scorer.score_many([conversation])
        except Exception as exc:
            logger.warning(
                "scoring conversation %r failed: %s",
                conversation.conversation_id,
                exc,
                exc_info=True,
            )
            out.append(("quarantine", failure_entry(conversation, exc)))
        else:
            out.append(("report", report))
    return out


def score_items(scorer: ScorerLike, items: Sequence[Item]) -> list[bytes]:
    """The encoded part lines of a chunk: a report per conversation, an entry per bad record.

    Args:
        scorer: anything with ``score_many``.
        items: the chunk's items, in input order.

    Returns:
        One encoded entry per item (see :func:`copilot.batch.parts.encode_entry`), in order.
    """
    conversations = [item for item in items if isinstance(item, Conversation)]
    scored = iter(score_conversations(scorer, conversations))
    lines = []
    for item in items:
        if isinstance(item, Quarantined):
            lines.append(encode_entry("quarantine", item.to_dict()))
        else:
            kind, payload = next(scored)
            lines.append(encode_entry(kind, payload))
    return lines


def count_kinds(lines: Sequence[bytes]) -> tuple[int, int]:
    """``(reports, quarantine entries)`` among encoded part lines."""
    reports = sum(1 for line in lines if line.startswith(b'{"report"'))
    return reports, len(lines) - reports
