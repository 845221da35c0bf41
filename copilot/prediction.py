"""What a message classifier reads and returns, as the core sees it.

A classifier reads each message with its *context*, the latest earlier message of the other side
(:func:`message_contexts`), and returns a :class:`Prediction`. Both live here, below the models,
so the analyzers and the trained models (``models.bundle``) share them without the core importing
the models.
"""

from __future__ import annotations

from dataclasses import dataclass

from copilot.schema import Conversation

__all__ = ["Prediction", "message_contexts"]


@dataclass(frozen=True)
class Prediction:
    """A label with its calibrated probability."""

    label: str
    confidence: float


def message_contexts(conversation: Conversation) -> list[str]:
    """For each message, the latest earlier message of the other side ("" when none)."""
    last = {"customer": "", "guide": ""}
    out = []
    for message in conversation.messages:
        other = "guide" if message.role == "customer" else "customer"
        out.append(last.get(other, "") if message.role != "system" else "")
        if message.role in last:
            last[message.role] = message.text
    return out
