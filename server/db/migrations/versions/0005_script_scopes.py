"""Script states per store: a supervisor's pin or ban holds in its own stores only, an admin's
in every store (``store_id`` ``""``, which every state stored before this migration gets).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-13
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("script_states") as batch:
        batch.add_column(sa.Column("store_id", sa.String(), nullable=False, server_default=""))
        batch.drop_constraint("pk_script_states", type_="primary")
        batch.create_primary_key("pk_script_states", ["script_id", "store_id"])


def downgrade() -> None:
    # One state per script again: the states for every store are kept, single stores' dropped.
    op.execute("DELETE FROM script_states WHERE store_id <> ''")
    with op.batch_alter_table("script_states") as batch:
        batch.drop_constraint("pk_script_states", type_="primary")
        batch.create_primary_key("pk_script_states", ["script_id"])
        batch.drop_column("store_id")
