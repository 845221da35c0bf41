"""Summaries for a file of score reports: a post-pass over what ``copilot score`` wrote.

``copilot summarize SCORES.jsonl -o OUT.jsonl`` writes every report of ``SCORES`` (full reports,
JSONL) to ``OUT`` with one more field, ``summary``: ``{"wanted", "guide_did", "open_items",
"next_step", "prompt_version", "model"}``, or ``null`` for a conversation whose summary failed.
Reports carry no message text, so the conversations are read again from the input that was
scored (streamed; only the conversations of the reports are summarised).

Summaries run ``concurrency`` at a time (at most twice that many conversations held), with the
backend's retries and backoff on 429, 5xx and timeouts. Each one made is appended to the journal
``OUT.journal.jsonl`` (``{"conversation_id", "summary"}`` per line, flushed), so a run that is
stopped, or whose items failed, is resumed by running it again with the same ``-o``: summaries
in the journal are not made again (a line cut mid-write is dropped). ``OUT`` is written whole at
the end (a temporary file renamed); the journal is removed once every report has its summary.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.errors import InputError, LLMError
from copilot.llm.backend import Backend
from copilot.llm.prompts import Usage
from copilot.llm.tasks import Summary, summarize
from copilot.schema import Conversation

__all__ = ["SummaryRun", "journal_path", "read_journal", "summarize_reports"]

logger = logging.getLogger(__name__)


@dataclass
class SummaryRun:
    """What a run did and cost."""

    reports: int = 0
    """Reports in the score file."""
    made: int = 0
    """Summaries made by this run."""
    reused: int = 0
    """Summaries found in the journal of an earlier run."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """``(conversation_id, why)`` of the summaries that failed (retried by the next run)."""
    missing: list[str] = field(default_factory=list)
    """Conversations of reports that the input does not hold."""
    usage: Usage = field(default_factory=Usage)
    wall_seconds: float = 0.0
    prompt_version: str = ""

    def summary(self) -> dict[str, Any]:
        """The counts and costs as a flat dict."""
        n = max(self.made, 1)
        return {
            "reports": self.reports,
            "made": self.made,
            "reused": self.reused,
            "failed": len(self.failed),
            "missing": len(self.missing),
            "calls": self.usage.calls,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "seconds_per_summary": self.usage.seconds / n,
            "wall_seconds": self.wall_seconds,
            "prompt_version": self.prompt_version,
        }


def journal_path(out: Path) -> Path:
    """``OUT.journal.jsonl`` beside the output ``OUT``."""
    return out.with_name(out.name + ".journal.jsonl")


def read_journal(path: Path) -> dict[str, dict[str, Any]]:
    """``conversation_id -> summary`` of a journal (empty when absent). A last line cut off by
    an interrupted write is removed from the file first."""
    if not path.exists():
        return {}
    raw = path.read_text(encoding="utf-8")
    lines = raw.split("\n")
    done: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines[:-1], 1):
        try:
            entry = json.loads(line)
            done[str(entry["conversation_id"])] = dict(entry["summary"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"journal {str(path)!r} line {number} is not a summary entry ({exc}); delete "
                "the journal to start the summaries over"
            ) from exc
    if lines[-1]:
        logger.warning("%s: dropping a last line cut off mid-write", path)
        path.write_text("\n".join(lines[:-1]) + ("\n" if len(lines) > 1 else ""), "utf-8")
    return done


def _reports(scores: Path) -> Iterator[dict[str, Any]]:
    """The reports of a JSONL score file, streaming."""
    if not scores.is_file():
        raise InputError(f"no score file at {str(scores)!r}; write one with `copilot score`")
    with scores.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                report = json.loads(line)
            except ValueError as exc:
                raise InputError(
                    f"{scores} line {number} is not JSON ({exc}); give the .jsonl file of full "
                    "reports that `copilot score -o OUT.jsonl` writes"
                ) from exc
            if not isinstance(report, dict) or not report.get("conversation_id"):
                raise InputError(
                    f"{scores} line {number} is not a score report (no conversation_id)"
                )
            yield report


def _entry(summary: Summary, model: str) -> dict[str, Any]:
    return {
        "wanted": summary.wanted,
        "guide_did": summary.guide_did,
        "open_items": list(summary.open_items),
        "next_step": summary.next_step,
        "prompt_version": summary.prompt_version,
        "model": model,
    }


def summarize_reports(
    backend: Backend,
    scores: Path,
    conversations: Iterable[Conversation],
    out: Path,
    *,
    model: str,
    concurrency: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> SummaryRun:
    """Summarise the conversations of ``scores`` and write the reports with them to ``out``.

    Args:
        scores: full score reports, JSONL (``copilot score -o X.jsonl``).
        conversations: the input that was scored (any order; others are skipped).
        out: the JSONL to write; its journal makes a second run resume (module docstring).
        model: recorded with each summary (``openai:qwen2.5-7b-instruct``).
        concurrency: summaries in flight at once.
        on_progress: called as ``(summaries finished, summaries to make)``.

    Returns:
        The run's counts and costs; ``failed`` and ``missing`` list what has no summary.

    Raises:
        InputError: the score file is missing or not JSONL reports; a damaged journal.
    """
    started = time.monotonic()
    ids = [str(report["conversation_id"]) for report in _reports(scores)]
    journal = journal_path(out)
    done = read_journal(journal)
    todo = set(ids) - set(done)
    run = SummaryRun(reports=len(ids), reused=len(set(ids) & set(done)))
    total = len(todo)
    out.parent.mkdir(parents=True, exist_ok=True)
    with journal.open("a", encoding="utf-8") as handle, ThreadPoolExecutor(concurrency) as pool:
        running: dict[Future[Summary], str] = {}

        def settle() -> None:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                cid = running.pop(future)
                _record(future, cid, model, done, handle, run)
                if on_progress:
                    on_progress(1, total)

        for conversation in conversations:
            if conversation.conversation_id not in todo:
                continue
            todo.discard(conversation.conversation_id)  # a repeated id is summarised once
            if len(running) >= 2 * concurrency:
                settle()
            running[pool.submit(summarize, backend, conversation)] = conversation.conversation_id
        while running:
            settle()
    run.missing = sorted(todo)
    _merge(scores, done, out)
    if not run.failed and not run.missing:
        journal.unlink()
    run.wall_seconds = time.monotonic() - started
    return run


def _record(
    future: Future[Summary],
    cid: str,
    model: str,
    done: dict[str, dict[str, Any]],
    handle: Any,
    run: SummaryRun,
) -> None:
    """Journal one finished summary (or note its failure)."""
    try:
        summary = future.result()
    except LLMError as exc:
        run.failed.append((cid, str(exc)))
        logger.warning("conversation %s: %s", cid, exc)
        return
    done[cid] = _entry(summary, model)
    handle.write(json.dumps({"conversation_id": cid, "summary": done[cid]}, ensure_ascii=False))
    handle.write("\n")
    handle.flush()
    run.made += 1
    run.usage.merge(summary.usage)
    run.prompt_version = summary.prompt_version


def _merge(scores: Path, done: dict[str, dict[str, Any]], out: Path) -> None:
    """Write every report of ``scores`` with its summary (or ``null``) to ``out``, atomically."""
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            for report in _reports(scores):
                report["summary"] = done.get(str(report["conversation_id"]))
                handle.write(json.dumps(report, ensure_ascii=False) + "\n")
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
