"""Execution on the leaderboards and scorecards (``/v1/guides``, ``/v1/stores`` and their
scorecards): follow-ups done on time, task execution and conversions after executed tasks, on
SQLite and on PostgreSQL.

A small controlled setup per backend, timed relative to now (entries are marked in today's
queue): five follow-ups marked (one done on time, one done after its due day, one snoozed, one
dismissed for g-001; one done on time for g-004), one left alone (g-009), and three customers
targeted by a current task (g-001 sent the script, the customer replied and paid; g-004 wrote
something else; g-009 nothing) and by a task whose window closed weeks ago.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from copilot.schema import CHINA_TZ
from server.settings import Settings
from tests.server.api_fixtures import LiveServer, assert_error, empty_database, live_server

NOW = datetime.now(CHINA_TZ).replace(microsecond=0)
TODAY = NOW.date()
SCRIPT = "亲，您上次看的羽绒服今天有满减活动，给您留了一件，要不要来试试？"
EMPTY = {
    "followups": {"due": 0, "done": 0, "done_on_time": 0, "on_time_rate": None},
    "tasks": {
        "tasks": 0,
        "targeted": 0,
        "executed": 0,
        "execution_rate": None,
        "replied": 0,
        "converted": 0,
        "conversion_rate": None,
    },
}


def _ago(hours: float) -> str:
    return (NOW - timedelta(hours=hours)).isoformat()


def _chat(
    server: LiveServer,
    customer: str,
    turns: list[tuple[str, str, float]],
    *,
    guide: str = "g-001",
    store: str = "s-01",
) -> None:
    """Store a conversation of ``customer``: ``(role, text, hours ago)`` per message."""
    record = {
        "conversation_id": f"c-{customer}",
        "customer_id": customer,
        "guide_id": guide,
        "store_id": store,
        "messages": [{"role": r, "text": t, "ts": _ago(h)} for r, t, h in turns],
    }
    response = server.client().post("/v1/conversations", json=record)
    assert response.status_code == 200, response.text


def _mark(server: LiveServer, customer: str, **body: Any) -> date:
    """Mark the customer's entry of today's queue; returns its due day."""
    queue = server.client().get("/v1/followups").json()["items"]
    (entry,) = [e for e in queue if e["customer_id"] == customer]
    response = server.client().post(f"/v1/followups/{entry['id']}", json=body)
    assert response.status_code == 200, response.text
    return date.fromisoformat(entry["due"])


@dataclass(frozen=True)
class Filled:
    """The server with the setup stored, and the due day of each entry it marked."""

    server: LiveServer
    dues: dict[str, date]

    def on_time(self, *customers: str) -> int:
        """How many of these customers' entries, marked done today, were due today or later."""
        return sum(self.dues[c] >= TODAY for c in customers)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(
    request: pytest.FixtureRequest,
    scoring_bundle_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Filled]:
    tmp = tmp_path_factory.mktemp(f"api-execution-{request.param}")
    admin = functools.partial(request.getfixturevalue, "postgres_admin")
    with empty_database(request.param, tmp, admin) as url:
        settings = Settings(bundle_dir=scoring_bundle_dir, data_dir=tmp, database_url=url)
        with live_server(settings) as running:
            yield Filled(running, _fill(running))


def _fill(server: LiveServer) -> dict[str, date]:
    """The setup of the module docstring; returns the due day of each marked entry."""
    question = "这件有M码吗？"
    for customer, hours, guide in [
        ("u-ontime", 0.02, "g-001"),
        ("u-late", 72, "g-001"),
        ("u-snooze", 0.02, "g-001"),
        ("u-dismiss", 0.02, "g-001"),
        ("u-g004", 0.02, "g-004"),
    ]:
        _chat(server, customer, [("customer", question, hours)], guide=guide)
    _chat(server, "u-untouched", [("customer", question, 0.02)], guide="g-009", store="s-02")
    dues = {
        "u-ontime": _mark(server, "u-ontime", status="done"),
        "u-late": _mark(server, "u-late", status="done"),
        "u-snooze": _mark(
            server, "u-snooze", status="snoozed", until=(TODAY + timedelta(days=1)).isoformat()
        ),
        "u-dismiss": _mark(server, "u-dismiss", status="dismissed", reason="已到店购买"),
        "u-g004": _mark(server, "u-g004", status="done"),
    }

    asked = ("customer", "这款羽绒服有黑色吗？", 48)
    _chat(server, "u-k1", [asked, ("guide", SCRIPT, 24), ("customer", "好的，周末去看看", 23)])
    _chat(server, "u-k2", [asked, ("guide", "收到，我去仓库找找", 24)], guide="g-004")
    _chat(server, "u-k3", [asked], guide="g-009", store="s-02")
    _chat(server, "u-quiet", [("guide", "新品到了，欢迎来看看", 5)], guide="g-007")
    order = {"order_id": "x-o1", "customer_id": "u-k1", "paid_at": _ago(20), "amount": 699.0}
    assert server.client().post("/v1/orders", json=order).is_success
    for starts, deadline in [
        (_ago(36), (TODAY + timedelta(days=3)).isoformat()),
        (_ago(24 * 30), _ago(24 * 20)),  # over before any of the messages
    ]:
        body = {
            "title": "羽绒服回访",
            "variants": [SCRIPT],
            "segment": {"asked_about": ["羽绒服"]},
            "starts": starts,
            "deadline": deadline,
        }
        assert server.client().post("/v1/tasks", json=body).status_code == 201
    return dues


def _rows(server: LiveServer, path: str, key: str = "admin", **params: Any) -> dict[str, Any]:
    response = server.client(key).get(path, params=params)
    assert response.status_code == 200, response.text
    name = "guide_id" if path == "/v1/guides" else "store_id"
    return {row[name]: row["execution"] for row in response.json()["items"]}


def _tasks(tasks: int, targeted: int, executed: int, replied: int, converted: int) -> Any:
    return {
        "tasks": tasks,
        "targeted": targeted,
        "executed": executed,
        "execution_rate": round(executed / targeted, 4) if targeted else None,
        "replied": replied,
        "converted": converted,
        "conversion_rate": round(converted / executed, 4) if executed else None,
    }


def _followups(due: int, done: int, on_time: int) -> Any:
    rate = round(on_time / due, 4) if due else None
    return {"due": due, "done": done, "done_on_time": on_time, "on_time_rate": rate}


def test_the_leaderboard_counts_followups_and_tasks_per_guide(filled: Filled) -> None:
    rows = _rows(filled.server, "/v1/guides")
    assert filled.dues["u-late"] < TODAY
    assert rows["g-001"] == {
        "followups": _followups(4, 2, filled.on_time("u-ontime", "u-late")),
        # two tasks target u-k1; only the current one's window holds the script
        "tasks": _tasks(2, 2, 1, 1, 1),
    }
    assert rows["g-004"] == {
        "followups": _followups(1, 1, filled.on_time("u-g004")),
        "tasks": _tasks(2, 2, 0, 0, 0),
    }
    assert rows["g-009"] == {"followups": _followups(0, 0, 0), "tasks": _tasks(2, 2, 0, 0, 0)}
    assert rows["g-007"] == EMPTY


def test_only_tasks_whose_window_overlaps_the_period_count(filled: Filled) -> None:
    recent = _rows(filled.server, "/v1/guides", since=(TODAY - timedelta(days=10)).isoformat())
    assert recent["g-001"]["tasks"] == _tasks(1, 1, 1, 1, 1)
    assert recent["g-004"]["tasks"] == _tasks(1, 1, 0, 0, 0)
    # Up to the day u-late asked (before the current task started): the old task only, and of
    # the follow-ups only u-late's, done after its due day.
    since, until = (TODAY - timedelta(days=35)).isoformat(), filled.dues["u-late"].isoformat()
    before = _rows(filled.server, "/v1/guides", since=since, until=until)
    assert before["g-001"] == {"followups": _followups(1, 1, 0), "tasks": _tasks(1, 1, 0, 0, 0)}


def test_only_followups_due_in_the_period_count(filled: Filled) -> None:
    today = _execution(filled.server, "g-001", since=TODAY.isoformat())
    due_today = [c for c in ("u-ontime", "u-snooze", "u-dismiss") if filled.dues[c] == TODAY]
    assert today["followups"] == _followups(
        len(due_today), int("u-ontime" in due_today), int("u-ontime" in due_today)
    )


def _execution(server: LiveServer, guide: str, key: str = "admin", **params: Any) -> Any:
    response = server.client(key).get(f"/v1/guides/{guide}/scorecard", params=params)
    assert response.status_code == 200, response.text
    return response.json()["execution"]


def test_a_scorecard_shows_the_same_execution_to_every_key_that_sees_it(filled: Filled) -> None:
    leaderboard = _rows(filled.server, "/v1/guides")["g-001"]
    for key in ("admin", "sup_s01", "guide_g001"):
        assert _execution(filled.server, "g-001", key) == leaderboard, key
    assert _execution(filled.server, "g-007") == EMPTY


def test_stores_have_a_leaderboard_and_scorecards_with_execution(filled: Filled) -> None:
    server = filled.server
    rows = _rows(server, "/v1/stores")
    assert rows["s-01"] == {
        "followups": _followups(5, 3, filled.on_time("u-ontime", "u-late", "u-g004")),
        "tasks": _tasks(2, 4, 1, 1, 1),
    }
    assert rows["s-02"] == {"followups": _followups(0, 0, 0), "tasks": _tasks(2, 2, 0, 0, 0)}
    assert set(_rows(server, "/v1/stores", "sup_s01")) == {"s-01"}
    card = server.client("sup_s01").get("/v1/stores/s-01/scorecard").json()
    assert card["id"] == "s-01" and card["by"] == "store"
    assert card["execution"] == rows["s-01"]
    assert set(card["related"]) >= {"g-001", "g-004", "g-007"}
    denied = server.client("sup_s02").get("/v1/stores/s-01/scorecard")
    assert_error(denied, 403, "covers stores s-02 only", "not store 's-01'")
    assert_error(server.client("guide_g001").get("/v1/stores"), 403, "needs role")
    assert_error(server.client().get("/v1/stores/s-99/scorecard"), 404, "store 's-99'")


# --------------------------------------------------------------------------- storage


@pytest.mark.parametrize(
    ("done_at", "on_time"),
    [
        # 23:59 China time on the due day is 15:59 UTC: on time.
        (datetime(2026, 3, 10, 15, 59, tzinfo=UTC), True),
        # 00:01 China time the next day is still 10 March in UTC: late all the same.
        (datetime(2026, 3, 10, 16, 1, tzinfo=UTC), False),
        (datetime(2026, 3, 9, 1, 0, tzinfo=UTC), True),
    ],
)
def test_done_on_time_is_read_in_china_time(
    session: Session, done_at: datetime, on_time: bool
) -> None:
    from server.auth import Principal
    from server.db.followups import due_counts
    from server.db.models import FollowUpAction

    due = date(2026, 3, 10)
    for entry, status in [("e-1", "done"), ("e-2", "snoozed"), ("e-3", "done")]:
        session.add(
            FollowUpAction(
                entry_id=entry,
                status=status,
                customer_id=f"u-{entry}",
                guide_id="g-1",
                store_id="s-1" if entry != "e-3" else "s-2",
                due=due if entry != "e-3" else due + timedelta(days=5),
                created_at=done_at,
                updated_at=done_at,
            )
        )
    session.commit()
    admin = Principal(key_id=0, role="admin")
    rows = due_counts(session, admin, since=due, until=due)
    assert rows == [("g-1", "s-1", 2, 1, int(on_time))]
    everything = sorted(due_counts(session, admin))
    assert everything == [("g-1", "s-1", 2, 1, int(on_time)), ("g-1", "s-2", 1, 1, 1)]
    supervisor = Principal(key_id=0, role="supervisor", stores=frozenset({"s-2"}))
    assert due_counts(session, supervisor) == [("g-1", "s-2", 1, 1, 1)]
