"""``copilot demo`` and ``copilot serve`` on a busy port, and the demo's one live key."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from copilot.cli import app

runner = CliRunner()


def _listening() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_serve_and_demo_say_the_port_is_busy_before_doing_anything(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    sock, port = _listening()
    with sock:
        served = runner.invoke(
            app,
            [
                "serve",
                "--bundle",
                str(scoring_bundle_dir),
                "--port",
                str(port),
                "--database-url",
                f"sqlite:///{tmp_path / 'x.db'}",
            ],
        )
        assert served.exit_code == 2, served.output
        assert (
            f"cannot listen on 127.0.0.1:{port}" in served.output
            and f"--port {port + 1}" in served.output
        )
        demo = runner.invoke(
            app,
            [
                "demo",
                "-n",
                "60",
                "--data-dir",
                str(tmp_path / "d"),
                "--bundle",
                str(tmp_path / "b"),
            ],
            env={"COPILOT_PORT": str(port)},
        )
        assert demo.exit_code == 2, demo.output
        assert "cannot listen" in demo.output
        assert not (tmp_path / "d").exists()  # nothing generated, trained or minted


def test_each_demo_run_revokes_the_key_the_last_one_printed(tmp_path: Path) -> None:
    from copilot.cli._serve import demo_key
    from server.auth import Principal
    from server.db import authenticate, list_api_keys, make_engine, make_session_factory, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    migrate(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        first = demo_key(session, ["s-01", "s-02"])
        session.commit()
    with sessions() as session:
        second = demo_key(session, ["s-01", "s-02"])
        session.commit()
    with sessions() as session:
        keys = [k for k in list_api_keys(session) if k["name"] == "demo supervisor"]
        assert len(keys) == 2 and sum(k["active"] for k in keys) == 1
        assert authenticate(session, first) is None
        principal = authenticate(session, second)
        assert isinstance(principal, Principal) and principal.stores == frozenset({"s-01", "s-02"})
    engine.dispose()


def test_the_demo_has_customers_to_follow_up_today_and_a_task_in_progress(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    from copilot.cli._serve import demo_customers
    from models.runtime import load_scorer
    from server import task_service
    from server.auth import Principal
    from server.db import list_conversations, make_engine, make_session_factory, migrate
    from server.followup_service import followup_queue, today
    from server.runtime import build_runtime
    from server.settings import Settings

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = make_session_factory(engine)
    scorer = load_scorer(scoring_bundle_dir)
    admin = Principal(key_id=0, role="admin", guide_id=None, stores=frozenset())
    settings = Settings(bundle_dir=scoring_bundle_dir, data_dir=tmp_path, database_url=url)
    for _run in range(2):  # a second run moves the same customers; it adds nothing
        assert demo_customers(sessions, scorer, seed=7)
    with sessions() as session:
        stored, _ = list_conversations(session, admin, limit=1)
        queue = followup_queue(session, admin, settings, day=today())
        total, tasks = task_service.list_tasks(session, admin)
        detail = task_service.task_detail(
            session, admin, build_runtime(scoring_bundle_dir), tasks[0]["task_id"]
        )
    engine.dispose()
    assert 300 <= stored < 1000
    reasons = {e["reason"] for e in queue["items"]}
    assert {"hesitated", "after_sales_care"} <= reasons and queue["total"] >= 30
    assert total == 1
    assert detail["summary"]["overall"]["executed"] > 0
