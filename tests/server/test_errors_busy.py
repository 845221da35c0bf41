"""A busy database is not a configuration error: 503 with Retry-After, and a message to retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from copilot.errors import BusyError, ConfigError
from server.errors import install_error_handlers, status_of


def test_busy_is_503_with_retry_after_and_not_a_config_error() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/busy")
    def busy() -> None:
        raise BusyError("the database is busy with other writes; retry the request")

    response = TestClient(app).get("/busy")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "retry" in response.json()["error"]["message"]
    assert not isinstance(BusyError("x"), ConfigError)
    assert status_of(BusyError("x")) == 503


def test_a_write_that_stays_locked_raises_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from server import service
    from server.db import make_engine, make_session_factory, migrate
    from server.db import session as db_session

    monkeypatch.setattr(db_session, "_SQLITE_BUSY_TIMEOUT_MS", 50)
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    engine = make_engine(url)
    migrate(engine)
    holder = sqlite3.connect(tmp_path / "busy.db", timeout=0.1)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with make_session_factory(engine)() as session, pytest.raises(BusyError, match="busy"):
            service._write(session, lambda: None)
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()
