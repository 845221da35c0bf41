"""Initial schema: conversations, messages, flags, served suggestions, feedback, script states,
API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(), nullable=False),
        sa.Column("guide_id", sa.String(), nullable=True),
        sa.Column("store_id", sa.String(), nullable=True),
        sa.Column("customer_id", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        _ts("started_at", nullable=True),
        _ts("ended_at", nullable=True),
        sa.Column("n_messages", sa.Integer(), nullable=False),
        sa.Column("overall", sa.Float(), nullable=True),
        sa.Column("win_probability", sa.Float(), nullable=True),
        sa.Column("converted", sa.Boolean(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_conversations"),
    )
    op.create_index(
        "ix_conversations_guide_id_started_at", "conversations", ["guide_id", "started_at"]
    )
    op.create_index(
        "ix_conversations_store_id_started_at", "conversations", ["store_id", "started_at"]
    )
    op.create_index("ix_conversations_started_at", "conversations", ["started_at"])
    op.create_index("ix_conversations_overall", "conversations", ["overall"])

    op.create_table(
        "messages",
        sa.Column("conversation_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _ts("ts", nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.conversation_id"],
            name="fk_messages_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "position", name="pk_messages"),
    )

    op.create_table(
        "flags",
        sa.Column("conversation_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=True),
        sa.Column("message_index", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.conversation_id"],
            name="fk_flags_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "position", name="pk_flags"),
    )
    op.create_index("ix_flags_kind", "flags", ["kind"])
    op.create_index("ix_flags_rule", "flags", ["rule"])

    op.create_table(
        "served_suggestions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.String(), nullable=True),
        sa.Column("guide_id", sa.String(), nullable=True),
        sa.Column("store_id", sa.String(), nullable=True),
        sa.Column("message_index", sa.Integer(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("script_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("action", sa.String(), nullable=True),
        _ts("served_at"),
        sa.PrimaryKeyConstraint("id", name="pk_served_suggestions"),
    )
    for column in ("conversation_id", "guide_id", "store_id", "script_id", "served_at"):
        op.create_index(f"ix_served_suggestions_{column}", "served_suggestions", [column])

    op.create_table(
        "feedback",
        sa.Column("suggestion_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("final_text", sa.Text(), nullable=True),
        sa.Column("key_id", sa.Integer(), nullable=True),
        _ts("given_at"),
        sa.ForeignKeyConstraint(
            ["suggestion_id"],
            ["served_suggestions.id"],
            name="fk_feedback_suggestion_id_served_suggestions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("suggestion_id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_outcome", "feedback", ["outcome"])

    op.create_table(
        "script_states",
        sa.Column("script_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("set_by", sa.String(), nullable=False),
        _ts("set_at"),
        sa.PrimaryKeyConstraint("script_id", name="pk_script_states"),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("guide_id", sa.String(), nullable=True),
        sa.Column("stores", sa.JSON(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("script_states")
    op.drop_index("ix_feedback_outcome", table_name="feedback")
    op.drop_table("feedback")
    for column in ("conversation_id", "guide_id", "store_id", "script_id", "served_at"):
        op.drop_index(f"ix_served_suggestions_{column}", table_name="served_suggestions")
    op.drop_table("served_suggestions")
    op.drop_index("ix_flags_rule", table_name="flags")
    op.drop_index("ix_flags_kind", table_name="flags")
    op.drop_table("flags")
    op.drop_table("messages")
    for name in (
        "ix_conversations_overall",
        "ix_conversations_started_at",
        "ix_conversations_store_id_started_at",
        "ix_conversations_guide_id_started_at",
    ):
        op.drop_index(name, table_name="conversations")
    op.drop_table("conversations")
