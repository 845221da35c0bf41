"""Labels that come beside the logs: rows of a label CSV, put onto the messages they name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from copilot.schema import Conversation, Labels

__all__ = ["LabelRow", "attach_labels"]


@dataclass(frozen=True)
class LabelRow:
    """One labelled message; ``conversation_id`` and ``message_index`` when the CSV names them."""

    text: str
    label: str
    conversation_id: str = ""
    message_index: int | None = None


def attach_labels(
    conversations: Sequence[Conversation], rows: Sequence[LabelRow], role: str
) -> tuple[list[Conversation], list[tuple[str, str]], int]:
    """Put label rows that name a message of the logs onto that message, so it keeps its context.

    A row is attached when its ``conversation_id`` and ``message_index`` (counting all messages
    of the conversation from 0) name a ``role`` message; any other row stays a bare text.

    Returns:
        ``(conversations with the labels added, bare (text, label) rows, rows attached)``.
    """
    by_id = {c.conversation_id: n for n, c in enumerate(conversations)}
    out = list(conversations)
    loose: list[tuple[str, str]] = []
    attached = 0
    for row in rows:
        n = by_id.get(row.conversation_id)
        i = row.message_index
        if n is None or i is None or not 0 <= i < len(out[n].messages):
            loose.append((row.text, row.label))
            continue
        conversation = out[n]
        if conversation.messages[i].role != role:
            loose.append((row.text, row.label))
            continue
        labels = conversation.labels.model_copy(deep=True) if conversation.labels else Labels()
        (labels.intents if role == "customer" else labels.actions)[i] = row.label
        out[n] = conversation.model_copy(update={"labels": labels})
        attached += 1
    return out, loose, attached
