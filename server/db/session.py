"""Engines, sessions and migrations for the database named by a URL.

SQLite (the default, a file) runs in WAL mode with foreign keys on and a busy timeout, so the
server's readers do not block its writer; PostgreSQL is any ``postgresql+psycopg://`` URL.
The schema is created and upgraded by the Alembic migrations in ``migrations/``, run
programmatically by :func:`migrate` (no ``alembic.ini`` needed at run time).

Example:
    >>> engine = make_engine("sqlite:///data/copilot.db")
    >>> migrate(engine)
    >>> Session = make_session_factory(engine)
    >>> with Session.begin() as session:
    ...     ...
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from copilot.errors import ConfigError

__all__ = [
    "MIGRATIONS_DIR",
    "begin_write",
    "describe_url",
    "make_engine",
    "make_session_factory",
    "migrate",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
"""The Alembic script directory (``env.py`` and ``versions/``)."""

_SQLITE_BUSY_TIMEOUT_MS = 5_000
_MIGRATION_LOCK = 7_310_066  # any constant: serialises concurrent migrations on PostgreSQL
_URL_HELP = (
    "use sqlite:///path/to/copilot.db (a file, created if missing) or "
    "postgresql+psycopg://user:password@host:5432/dbname"
)


def _json_dumps(value: Any) -> str:
    # UTF-8 text as is (Chinese stays readable in the database), int keys allowed.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _parse(url: str | URL) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database URL {str(url)!r} is not a valid URL; {_URL_HELP}") from exc


def describe_url(url: str | URL) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(str(url))


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url``, set up for the server.

    Args:
        url: a SQLAlchemy URL: ``sqlite:///data/copilot.db`` (relative to the working
            directory; the parent directory is created), ``sqlite://`` (in memory, one
            connection shared by every thread), or ``postgresql+psycopg://user@host:port/db``.
        **kwargs: passed on to :func:`sqlalchemy.create_engine`.

    Returns:
        The engine. Nothing connects until it is used.

    Raises:
        ConfigError: the URL cannot be parsed or names a database driver that is not installed
            (the message shows the URL with its password masked and a valid example).
    """
    parsed = _parse(url)
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        database = parsed.database or ""
        if database in ("", ":memory:"):
            kwargs.setdefault("poolclass", StaticPool)
            kwargs.setdefault("connect_args", {"check_same_thread": False})
        elif not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs.setdefault("pool_pre_ping", True)
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"database URL {describe_url(parsed)} names a driver that is not available ({exc}); "
            f"{_URL_HELP}"
        ) from exc
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; SQLite leaves foreign keys off unless asked."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; full sync on each commit is slow
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit (``expire_on_commit=False``).

    Args:
        engine: from :func:`make_engine`.

    Returns:
        The factory; ``with factory.begin() as session:`` commits on success.
    """
    return sessionmaker(engine, expire_on_commit=False)


def begin_write(session: Session) -> None:
    """Make the session's transaction a writer before it reads what it is going to change.

    Python's ``sqlite3`` (as SQLAlchemy uses it) runs reads outside any transaction and opens
    one only at the first INSERT, UPDATE or DELETE, so another process can commit between a
    read and the write that relies on it (a lost update). On SQLite this begins the transaction
    with ``BEGIN IMMEDIATE``, which takes the database's write lock at once (waiting up to the
    busy timeout), so what the transaction reads afterwards stays as read until it commits.
    A transaction that has written already holds the lock and is left as it is. On PostgreSQL
    it does nothing: lock the rows themselves (``SELECT ... FOR UPDATE``).

    Args:
        session: the session whose transaction will write; the caller commits.

    Raises:
        sqlalchemy.exc.OperationalError: "database is locked", when another writer kept the
            lock past the busy timeout (the caller may retry).
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    sqlite3_connection = connection.connection.driver_connection
    if not getattr(sqlite3_connection, "in_transaction", False):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def migrate(engine_or_url: Engine | str | URL) -> None:
    """Create or upgrade the schema to the newest migration (Alembic ``upgrade head``).

    Safe to call on every start: an up-to-date database is left as it is, and on PostgreSQL an
    advisory lock keeps two processes from migrating at once.

    Args:
        engine_or_url: an engine from :func:`make_engine`, or a URL to make one from.

    Raises:
        ConfigError: the URL is invalid or the database cannot be reached (the message names
            the URL, password masked, and the driver's reason).
    """
    from alembic import command
    from alembic.config import Config

    owned = not isinstance(engine_or_url, Engine)
    engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            _lock(connection)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except DBAPIError as exc:
        if not exc.connection_invalidated and not _is_connect_error(exc):
            raise
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(
            f"cannot open the database {describe_url(engine.url)}: {reason}; check that the "
            "server is running and the URL is right"
        ) from exc
    finally:
        if owned:
            engine.dispose()
    log.info("database %s is at the newest migration", describe_url(engine.url))


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


def _is_connect_error(exc: DBAPIError) -> bool:
    # Raised while connecting (no statement ran yet): an unreachable server, a refused login,
    # an unknown database, or a SQLite file that cannot be opened.
    return exc.statement is None or "unable to open database file" in str(exc.orig)
