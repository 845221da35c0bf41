"""LLM summaries of stored conversations (``conversation_summaries``), one per conversation.

Like :mod:`server.db.repository`, every function takes a session first, flushes what it writes
and leaves the commit to the caller. A new summary replaces the conversation's earlier one; the
summary goes when its conversation is deleted (``ON DELETE CASCADE``) and stays when it is
re-posted (``n_messages`` tells how many messages it covered).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from server.db.models import ConversationSummary, utcnow
from server.db.repository import _check_text, _iso

__all__ = ["SUMMARY_FIELDS", "get_summary", "save_summary"]

SUMMARY_FIELDS = ("wanted", "guide_did", "open_items", "next_step")
"""The fields of a summary (:class:`copilot.llm.Summary`), as stored and shown."""


def save_summary(
    session: Session,
    conversation_id: str,
    summary: Mapping[str, Any],
    *,
    prompt_version: str,
    model: str,
    n_messages: int,
    key_id: int | None = None,
) -> dict[str, Any]:
    """Store the summary of a stored conversation, replacing its earlier one.

    Args:
        summary: ``wanted``, ``guide_did``, ``open_items`` (a list) and ``next_step``.
        model: the model that wrote it (its name, never the server's URL or key).
        n_messages: the messages the conversation had when it was summarised.

    Returns:
        The stored summary as :func:`get_summary` gives it.

    Raises:
        InputError: text with a NUL character (PostgreSQL cannot store it).
    """
    values = {name: summary[name] for name in SUMMARY_FIELDS}
    for name in ("wanted", "guide_did", "next_step"):
        _check_text(values[name], f"summary {name}")
    for item in values["open_items"]:
        _check_text(item, "summary open_items")
    row = session.get(ConversationSummary, conversation_id)
    if row is None:
        row = ConversationSummary(conversation_id=conversation_id)
        session.add(row)
    row.summary = values
    row.prompt_version = prompt_version
    row.model = model
    row.n_messages = n_messages
    row.key_id = key_id
    row.created_at = utcnow()
    session.flush()
    return _public(row)


def get_summary(session: Session, conversation_id: str) -> dict[str, Any] | None:
    """The stored summary of a conversation, or ``None``: its fields, ``prompt_version``,
    ``model``, ``n_messages`` and ``created_at`` (China time)."""
    row = session.get(ConversationSummary, conversation_id)
    return None if row is None else _public(row)


def _public(row: ConversationSummary) -> dict[str, Any]:
    return {
        **{name: row.summary.get(name) for name in SUMMARY_FIELDS},
        "prompt_version": row.prompt_version,
        "model": row.model,
        "n_messages": row.n_messages,
        "created_at": _iso(row.created_at),
    }
