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
