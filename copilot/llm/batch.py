"""Label many conversations with an LLM into a CSV that ``copilot train --intent-csv`` reads.

The CSV has the columns ``conversation_id,message_index,text,label`` (index counting all of a
conversation's messages from 0). Rows are appended and flushed as each item finishes, so a run
that is stopped can be started again with the same output: the messages already in the file are
skipped (a last row cut off mid-write is dropped first). An item is up to ``chunk`` messages of
one conversation labelled in one call; items run ``concurrency`` at a time. An item that fails
(after the backend's retries and the prompt's one retry) is reported and left out, so the next
run tries it again.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.errors import InputError, LLMError
from copilot.llm.backend import Backend
from copilot.llm.prompts import Usage
from copilot.llm.tasks import Labels, LabelTask, label
from copilot.schema import Conversation
from copilot.taxonomy import Taxonomy

__all__ = ["COLUMNS", "LabelReport", "agreement", "label_to_csv", "labelled_rows", "read_labels"]

logger = logging.getLogger(__name__)

COLUMNS = ("conversation_id", "message_index", "text", "label")
_ROLE = {"intents": "customer", "actions": "guide"}


@dataclass
class LabelReport:
    """What a run did and cost."""

    items: int = 0
    """Model tasks run (a task labels up to ``chunk`` messages of one conversation)."""
    rows: int = 0
    """Rows written by this run."""
    skipped: int = 0
    """Messages already in the output when the run started."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """``(conversation_id, why)`` of the items that failed."""
    usage: Usage = field(default_factory=Usage)
    item_seconds: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    prompt_version: str = ""

    def summary(self) -> dict[str, Any]:
        """Totals and per-item means (tokens, seconds) as a flat dict."""
        n = max(self.items, 1)
        ordered = sorted(self.item_seconds) or [0.0]
        return {
            "items": self.items,
            "rows": self.rows,
            "skipped": self.skipped,
            "failed": len(self.failed),
            "calls": self.usage.calls,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "prompt_tokens_per_item": self.usage.prompt_tokens / n,
            "completion_tokens_per_item": self.usage.completion_tokens / n,
            "seconds_per_item": sum(ordered) / n,
            "seconds_per_item_p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "wall_seconds": self.wall_seconds,
            "prompt_version": self.prompt_version,
        }


def read_labels(path: Path) -> dict[tuple[str, int], str]:
    """``(conversation_id, message_index) -> label`` of a label CSV (``COLUMNS`` in its header).

    Raises:
        InputError: the file cannot be read or lacks a column.
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise InputError(
                f"label CSV {str(path)!r} lacks column(s) {', '.join(sorted(missing))}; "
                f"the header must be {','.join(COLUMNS)}"
            )
        return {
            (row["conversation_id"], int(row["message_index"])): row["label"]
            for row in reader
            if (row.get("message_index") or "").strip().isdigit() and row.get("label")
        }


def labelled_rows(out: Path) -> set[tuple[str, int]]:
    """The messages already labelled in ``out`` (empty when it does not exist). Rows cut off by
    an interrupted write are removed from the file first.

    Raises:
        InputError: ``out`` exists with another header.
    """
    if not out.exists() or out.stat().st_size == 0:
        return set()
    raw = out.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw)))
    if not rows or tuple(rows[0]) != COLUMNS:
        raise InputError(
            f"output {str(out)!r} exists with header {','.join(rows[0]) if rows else '(none)'}; "
            f"to resume it must be {','.join(COLUMNS)} (or give another -o)"
        )
    good = [r for r in rows[1:] if len(r) == len(COLUMNS) and r[1].isdigit() and r[3]]
    if not raw.endswith("\n") or len(good) != len(rows) - 1:
        if not raw.endswith("\n") and good and rows[-1] == good[-1]:
            good.pop()  # the last row was cut off mid-write: its label may be cut too
        logger.warning("%s: dropping %d incomplete row(s)", out, len(rows) - 1 - len(good))
        buffer = io.StringIO()
        csv.writer(buffer).writerows([list(COLUMNS), *good])
        out.write_text(buffer.getvalue(), encoding="utf-8")
    return {(r[0], int(r[1])) for r in good}


def _items(
    conversations: Sequence[Conversation],
    task: LabelTask,
    done: set[tuple[str, int]],
    chunk: int,
    only: Collection[tuple[str, int]] | None,
) -> tuple[list[tuple[Conversation, list[int]]], int]:
    """``(conversation, target indexes)`` still to label, in chunks; and the messages skipped."""
    items, skipped = [], 0
    for conversation in conversations:
        cid = conversation.conversation_id
        targets = [
            i
            for i, m in enumerate(conversation.messages)
            if m.role == _ROLE[task] and (only is None or (cid, i) in only)
        ]
        todo = [i for i in targets if (cid, i) not in done]
        skipped += len(targets) - len(todo)
        items += [(conversation, todo[k : k + chunk]) for k in range(0, len(todo), chunk)]
    return items, skipped


def label_to_csv(
    backend: Backend,
    conversations: Sequence[Conversation],
    out: Path,
    task: LabelTask = "intents",
    taxonomy: Taxonomy | None = None,
    *,
    concurrency: int = 4,
    chunk: int = 20,
    examples: Mapping[str, Sequence[str]] | None = None,
    only: Collection[tuple[str, int]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> LabelReport:
    """Label the customer (intents) or guide (actions) messages of ``conversations`` into ``out``.

    Args:
        out: the label CSV; appended to, so a second run resumes (see the module docstring).
        concurrency: items in flight at once (the backend bounds its own requests too).
        chunk: most messages labelled in one call.
        examples: example texts per label id, shown in the prompt.
        only: label just these ``(conversation_id, message_index)`` (an evaluation's messages).
        on_progress: called as ``(messages done by this item, messages to do in all)``.

    Returns:
        The report: items, rows written, messages skipped, failures, tokens and seconds.

    Raises:
        InputError: ``out`` exists with another header.
    """
    started = time.monotonic()
    done = labelled_rows(out)
    items, skipped = _items(conversations, task, done, chunk, only)
    report = LabelReport(skipped=skipped)
    total = sum(len(targets) for _, targets in items)
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        out.open("a", encoding="utf-8", newline="") as handle,
        ThreadPoolExecutor(concurrency) as pool,
    ):
        writer = csv.writer(handle)
        if handle.tell() == 0:
            writer.writerow(COLUMNS)
        running: dict[Future[Labels], tuple[Conversation, list[int]]] = {}
        queue = list(reversed(items))
        while queue or running:
            while queue and len(running) < 2 * concurrency:
                conversation, targets = queue.pop()
                future = pool.submit(
                    label, backend, conversation, task, taxonomy, targets=targets, examples=examples
                )
                running[future] = (conversation, targets)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                conversation, targets = running.pop(future)
                _record(future, conversation, writer, report)
                handle.flush()
                if on_progress:
                    on_progress(len(targets), total)
    report.wall_seconds = time.monotonic() - started
    return report


def _record(
    future: Future[Labels], conversation: Conversation, writer: Any, report: LabelReport
) -> None:
    """Write one finished item's rows (or note its failure) into the report."""
    report.items += 1
    try:
        result = future.result()
    except LLMError as exc:
        report.failed.append((conversation.conversation_id, str(exc)))
        logger.warning("conversation %s: %s", conversation.conversation_id, exc)
        return
    report.usage.merge(result.usage)
    report.item_seconds.append(result.usage.seconds)
    report.prompt_version = result.prompt_version
    for index, value in sorted(result.labels.items()):
        text = conversation.messages[index].text
        writer.writerow([conversation.conversation_id, index, text, value])
        report.rows += 1


def agreement(
    predicted: Mapping[tuple[str, int], str], gold: Mapping[tuple[str, int], str]
) -> dict[str, Any]:
    """How far LLM labels agree with hand labels on the messages both have.

    Returns:
        ``{"n", "accuracy", "macro_f1", "kappa", "confusions"}``; ``confusions`` lists the most
        frequent ``[gold, predicted, count]`` disagreements. ``n`` is 0 (and the rest ``None``)
        when no message has both.
    """
    from collections import Counter

    from sklearn.metrics import cohen_kappa_score, f1_score

    keys = sorted(set(predicted) & set(gold))
    if not keys:
        return {"n": 0, "accuracy": None, "macro_f1": None, "kappa": None, "confusions": []}
    y_true = [gold[k] for k in keys]
    y_pred = [predicted[k] for k in keys]
    wrong = Counter((t, p) for t, p in zip(y_true, y_pred, strict=True) if t != p)
    return {
        "n": len(keys),
        "accuracy": sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(keys),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)
        ),
        "kappa": float(cohen_kappa_score(y_true, y_pred))
        if len(set(y_true) | set(y_pred)) > 1
        else None,
        "confusions": [[t, p, n] for (t, p), n in wrong.most_common(5)],
    }
