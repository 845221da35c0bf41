"""The pieces that keep the database off the suggest path, on a real SQLite file: the batched log
of served suggestions, the API-key cache, and which bundle a (re)started worker serves."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.app import _startup_bundle
from server.auth import KeyCache, Principal
from server.db import make_engine, make_session_factory, migrate, served_rows, set_bundle_state
from server.db.models import ServedSuggestion
from server.served import ServedLog
from server.settings import Settings


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'copilot.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def rows(n: int, conversation_id: str = "c-1") -> list[dict[str, Any]]:
    suggestions = [
        {"id": i, "text": f"亲，这款今天有活动哦～{i}", "action": "promotion"} for i in range(n)
    ]
    return served_rows(
        conversation_id=conversation_id,
        guide_id="g-1",
        store_id="s-1",
        message_index=2,
        suggestions=suggestions,
    )


def stored_ids(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        stmt = select(ServedSuggestion.id).order_by(ServedSuggestion.served_at)
        return list(session.scalars(stmt))


def test_rows_wait_in_the_queue_until_flushed_or_closed(factory: sessionmaker[Session]) -> None:
    log = ServedLog(factory, interval=3600).start()  # the thread will not come round in time
    first, second = rows(3), rows(2, "c-2")
    log.add(first)
    assert log.pending() == 3 and stored_ids(factory) == []
    log.flush()
    assert set(stored_ids(factory)) == {r["id"] for r in first}
    log.add(second)
    log.close()  # a clean shutdown writes the rest
    assert log.pending() == 0
    assert set(stored_ids(factory)) == {r["id"] for r in first + second}


def test_the_thread_writes_within_its_interval(factory: sessionmaker[Session]) -> None:
    log = ServedLog(factory, interval=0.05).start()
    batch = rows(3)
    log.add(batch)
    deadline = time.monotonic() + 5
    while len(stored_ids(factory)) < 3:
        assert time.monotonic() < deadline, "the writer thread did not write"
        time.sleep(0.02)
    log.close()


def test_without_an_interval_each_add_is_written_at_once(factory: sessionmaker[Session]) -> None:
    log = ServedLog(factory, interval=0).start()
    batch = rows(2)
    log.add(batch)
    assert set(stored_ids(factory)) == {r["id"] for r in batch}
    log.close()


def test_a_refused_write_keeps_the_rows_and_an_overflow_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = make_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no tables: inserts fail
    log = ServedLog(make_session_factory(broken), interval=3600, max_pending=4)
    log._thread = object()  # type: ignore[assignment]  # queue only, as with a running thread
    log.add(rows(3))
    with pytest.raises(OperationalError, match="served_suggestions"):
        log.flush()
    assert log.pending() == 3 and log.dropped == 0  # kept, in order, for the next try
    log.add(rows(3, "c-2"))
    with caplog.at_level(logging.ERROR, logger="server.served"), pytest.raises(OperationalError):
        log.flush()
    assert log.pending() == 4 and log.dropped == 2
    assert "dropped the 2 oldest served-suggestion records" in caplog.text
    broken.dispose()


def test_served_rows_get_distinct_ids_and_keep_the_script_id() -> None:
    made = rows(3)
    assert len({r["id"] for r in made}) == 3 and all(r["id"].startswith("sg_") for r in made)
    assert [r["script_id"] for r in made] == [0, 1, 2] and [r["rank"] for r in made] == [0, 1, 2]


def test_the_key_cache_trusts_a_key_for_its_ttl_only() -> None:
    principal = Principal(key_id=1, role="guide", guide_id="g-1")
    cache = KeyCache(ttl=0.2)
    assert cache.get("cpk_a") is None
    cache.put("cpk_a", principal)
    assert cache.get("cpk_a") == principal and cache.get("cpk_b") is None
    time.sleep(0.25)
    assert cache.get("cpk_a") is None  # expired: the next request asks the database
    disabled = KeyCache(ttl=0)
    disabled.put("cpk_a", principal)
    assert disabled.get("cpk_a") is None


def test_the_key_cache_stays_bounded() -> None:
    cache = KeyCache(ttl=60, max_size=3)
    for i in range(5):
        cache.put(f"cpk_{i}", Principal(key_id=i, role="admin"))
    assert sum(cache.get(f"cpk_{i}") is not None for i in range(5)) <= 3
    assert cache.get("cpk_4") is not None  # the newest is kept


def test_a_worker_follows_a_reload_of_its_own_run_only(factory: sessionmaker[Session]) -> None:
    configured = Path("models/configured")
    with factory() as session:
        assert _startup_bundle(Settings(bundle_dir=configured), session) == (configured, 0)
        set_bundle_state(session, "/models/reloaded", "run-1")
        session.commit()
        # A worker restarted during the same run serves what its siblings were reloaded to ...
        same_run = Settings(bundle_dir=configured, serve_id="run-1")
        assert _startup_bundle(same_run, session) == (Path("/models/reloaded"), 1)
        # ... a new run serves what it was configured with (and knows the generation).
        for settings in (
            Settings(bundle_dir=configured, serve_id="run-2"),
            Settings(bundle_dir=configured),
        ):
            assert _startup_bundle(settings, session) == (configured, 1)
        assert session.scalar(select(func.count()).select_from(ServedSuggestion)) == 0
