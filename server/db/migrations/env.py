"""Alembic environment: runs the migrations on the connection :func:`server.db.migrate` hands
over, or (for the ``alembic`` command line, see ``alembic.ini``) on ``-x url=...``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from server.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from server.db.session import make_engine

    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit(
            "pass the database: alembic -c server/db/migrations/alembic.ini -x url=URL ..."
        )
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; pass -x url=URL")
_main()
