"""Fixtures for the server tests: a fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL comes from ``COPILOT_TEST_POSTGRES_URL`` (``make test`` sets it through
``scripts/postgres.sh run``); without it, the first test that needs it starts the private
server with ``scripts/postgres.sh start`` and the session stops it at the end (only if this
session started it). Each test gets its own schema, dropped afterwards, so tests never see
each other's rows and can run beside other test sessions on the same server.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from server.db import make_engine, make_session_factory, migrate
from tests.server.api_fixtures import empty_database

ROOT = Path(__file__).resolve().parents[2]
PG_SCRIPT = ROOT / "scripts" / "postgres.sh"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The test PostgreSQL server's URL; skips the PostgreSQL cases when none can be started."""
    url = os.environ.get("COPILOT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    was_running = subprocess.run([PG_SCRIPT, "status"], capture_output=True).returncode == 0
    started = subprocess.run(
        [PG_SCRIPT, "start"], capture_output=True, text=True, timeout=900, check=False
    )
    if started.returncode != 0:
        message = f"no PostgreSQL for the tests: {started.stderr.strip()[-400:]}"
        if os.environ.get("COPILOT_REQUIRE_POSTGRES") or os.environ.get("CI"):
            pytest.fail(message)  # make test and CI must run them, not skip them
        pytest.skip(message)
    try:
        yield started.stdout.strip()
    finally:
        if not was_running:
            subprocess.run([PG_SCRIPT, "stop"], capture_output=True, check=False)


@pytest.fixture(scope="session")
def postgres_admin(postgres_url: str) -> Iterator[Engine]:
    """An engine on the test database's default schema, for creating and dropping schemas."""
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    admin = functools.partial(request.getfixturevalue, "postgres_admin")
    with empty_database(request.param, tmp_path, admin) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on the test's database."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the migrated database; the test commits when it needs to."""
    with make_session_factory(engine)() as session:
        yield session
