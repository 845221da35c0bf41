"""Re-posting the same conversations from two processes at once, on SQLite and on PostgreSQL.

``copilot serve --workers 2`` with clients re-posting hot ids once left a conversation row that
said 3 messages and score 71.5 beside 2 message rows and a report of 97.7: a process read the
stored row, another committed a new version, and the first then wrote its messages while its
UPDATE left out the columns it believed unchanged. Here two OS processes run the server's save
path (:func:`server.service.store_conversations`) on the same database, and afterwards every
stored row must agree with its message rows and its report.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from copilot.schema import Conversation
from server import service
from server.auth import Principal
from server.db import make_engine, make_session_factory, migrate
from server.db.models import ConversationRow, MessageRow
from server.settings import Settings
from tests.builders import make_conversation, make_report

HOT_IDS = [f"hot-{i:02d}" for i in range(12)]
PER_POST = 4
SECONDS = 1.0
SHORT = [("customer", "在吗？这件有M码吗"), ("guide", "亲，在的～M码有货哦")]
LONG = [*SHORT, ("customer", "好的，今天下单能发货吗")]
SCORES = {len(SHORT): 97.7, len(LONG): 71.5}


def _version(cid: str, long: bool) -> tuple[Conversation, dict[str, Any]]:
    """One of the two versions of a conversation, with a report that agrees with it."""
    turns = LONG if long else SHORT
    report = make_report(cid, {"responsiveness": SCORES[len(turns)]}, n_messages=len(turns))
    return make_conversation(cid, turns), report


class _Reports:
    """Stands in for the runtime's scorer: the prepared report of each conversation."""

    def __init__(self, reports: dict[str, dict[str, Any]]) -> None:
        self.scorer = self
        self._reports = reports

    def score_many(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
        return [self._reports[c.conversation_id] for c in conversations]


def _disagreements(session: Session, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """Stored rows of ``ids`` that disagree with their message rows or their report, read in
    one statement (one snapshot, on either backend)."""
    n_rows = (
        select(func.count())
        .where(MessageRow.conversation_id == ConversationRow.conversation_id)
        .scalar_subquery()
    )
    stmt = select(
        ConversationRow.conversation_id,
        ConversationRow.n_messages,
        n_rows,
        ConversationRow.overall,
        ConversationRow.report,
    ).where(ConversationRow.conversation_id.in_(ids))
    return [
        (cid, n, rows, overall, report["n_messages"], report["overall"])
        for cid, n, rows, overall, report in session.execute(stmt)
        if not (n == rows == report["n_messages"] and overall == report["overall"] == SCORES[n])
    ]


def repost(url: str, seed: int, ready: str, seconds: float) -> dict[str, Any]:
    """A writer process: re-post random versions of random hot ids for ``seconds``, once every
    writer has started (each touches its file in the ``ready`` directory and waits for two).

    After each post it reads back the ids it posted: whoever wrote last, every committed state
    must be consistent.

    Returns:
        ``{"posts": how many, "wrong": [what :func:`_disagreements` found after each]}``.
    """
    admin = Principal(key_id=1, role="admin")
    settings = Settings(database_url=url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    (Path(ready) / str(seed)).touch()
    deadline = time.monotonic() + 60
    while len(list(Path(ready).iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    rng = random.Random(seed)
    posts, wrong = 0, []
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        pairs = [_version(cid, rng.random() < 0.5) for cid in rng.sample(HOT_IDS, PER_POST)]
        runtime: Any = _Reports({c.conversation_id: r for c, r in pairs})
        with factory() as session:
            service.store_conversations(runtime, session, admin, [c for c, _ in pairs], settings)
            wrong += _disagreements(session, [c.conversation_id for c, _ in pairs])
        posts += 1
    engine.dispose()
    return {"posts": posts, "wrong": wrong}


def _run_writers(url: str, ready: Path) -> list[dict[str, Any]]:
    """Run two :func:`repost` processes on ``url`` at once; returns what each found.

    They fork from a forkserver that imported this module (and so the server) once, so a
    writer starts in milliseconds instead of the seconds an import of the models takes.
    """
    ready.mkdir()
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    context = mp.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([__name__, "server.service"])
    with context.Pool(2) as pool:
        jobs = [(url, seed, str(ready), SECONDS) for seed in (1, 2)]
        return pool.starmap(repost, jobs)


def test_reposting_hot_ids_from_two_processes_keeps_each_row_consistent(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url)
    results = _run_writers(database_url, tmp_path / "ready")
    posts = [r["posts"] for r in results]
    assert min(posts) >= 5, f"each writer should have posted a few times at once, got {posts}"
    seen = [tuple(w) for r in results for w in r["wrong"]]
    assert not seen, f"{len(seen)} times a row disagreed after a post, e.g. {seen[:3]}"
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(ConversationRow)) == len(HOT_IDS)
            assert _disagreements(session, HOT_IDS) == []
            for row in session.scalars(select(ConversationRow)):
                expected = LONG if row.n_messages == len(LONG) else SHORT
                assert [m.text for m in row.messages] == [text for _, text in expected]
    finally:
        engine.dispose()
