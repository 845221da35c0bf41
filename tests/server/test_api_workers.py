"""``copilot serve --workers 2``: two real server processes on one port and one SQLite file.

Each worker keeps its own models in memory; what one worker changes (a ban, feedback, a
reload) must reach the other through the database, and ``/metrics`` must add both up. The
``X-Served-By`` header tells which process answered; new connections spread over both.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from server.db import make_engine, make_session_factory
from server.db.models import ServedSuggestion
from tests.builders import conversation_dict
from tests.server.api_fixtures import create_keys, free_port

SYNC_SECONDS = 0.5
CONVERSATION = conversation_dict(
    "workers-1", [("customer", "这件有M码吗，今天下单什么时候发货")], guide_id="g-001"
)


class Workers:
    """The running server: base URL and an admin key."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}

    def fresh(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request on a new connection (so either worker may take it)."""
        return httpx.request(method, self.url + path, headers=self.headers, timeout=60, **kwargs)

    def on_each_worker(
        self, method: str, path: str, check: Callable[[httpx.Response], bool], **kwargs: Any
    ) -> dict[str, httpx.Response]:
        """Send new-connection requests until both workers answered; assert ``check`` on
        every answer. Returns the last answer of each worker."""
        answers: dict[str, httpx.Response] = {}
        for _ in range(400):
            response = self.fresh(method, path, **kwargs)
            assert check(response), (response.headers.get("x-served-by"), response.text)
            answers[response.headers["x-served-by"]] = response
            if len(answers) == 2:
                return answers
        raise AssertionError(f"only {list(answers)} answered 400 new connections")


def _start(
    bundle: Path,
    tmp: Path,
    port: int | None = None,
    wait: bool = True,
    log_level: str = "WARNING",
) -> tuple[subprocess.Popen[bytes], Workers]:
    """``copilot serve --workers 2`` on a fresh SQLite file in ``tmp``, once both answer (or
    once it exited: the caller checks why)."""
    url = f"sqlite:///{tmp / 'copilot.db'}"
    key = create_keys(url, {"admin": {"role": "admin"}})["admin"]
    port = port or free_port()
    env = {
        **os.environ,
        "COPILOT_DATABASE_URL": url,
        "COPILOT_SYNC_SECONDS": str(SYNC_SECONDS),
        "COPILOT_LOG_LEVEL": log_level,
    }
    command = [sys.executable, "-m", "copilot.cli", "serve", "--workers", "2"]
    command += ["--bundle", str(bundle), "--port", str(port)]
    with (tmp / "serve.log").open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Workers(f"http://127.0.0.1:{port}", key)
    deadline = time.monotonic() + 120
    while wait and process.poll() is None:
        assert time.monotonic() < deadline, "copilot serve --workers 2 did not start"
        try:
            server.on_each_worker("GET", "/readyz", lambda r: r.status_code == 200)
            break
        except (httpx.TransportError, AssertionError):
            time.sleep(0.5)
    return process, server


@pytest.fixture(scope="module")
def workers(
    scoring_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workers]:
    tmp = tmp_path_factory.mktemp("api-workers")
    process, server = _start(scoring_bundle_dir, tmp)
    assert process.poll() is None, (tmp / "serve.log").read_text()
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=60)


def _suggest(server: Workers) -> httpx.Response:
    return server.fresh("POST", "/v1/suggest", json={"conversation": CONVERSATION, "k": 3})


def test_both_workers_serve_and_metrics_add_them_up(workers: Workers) -> None:
    def served_total() -> float:
        text = workers.fresh("GET", "/metrics").text
        return float(re.search(r"^suggestions_served_total (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]

    before = served_total()
    by_worker: dict[str, int] = {}
    for _ in range(30):
        response = _suggest(workers)
        assert response.status_code == 200, response.text
        by_worker[response.headers["x-served-by"]] = by_worker.get(
            response.headers["x-served-by"], 0
        ) + len(response.json()["suggestions"])
    assert len(by_worker) == 2, by_worker  # 30 new connections reached both processes
    assert served_total() - before == sum(by_worker.values())


def test_a_ban_on_one_worker_reaches_the_other(workers: Workers) -> None:
    first = _suggest(workers)
    banned = first.json()["suggestions"][0]["script_id"]
    response = workers.fresh("POST", "/v1/scripts", json={"script_id": banned, "state": "banned"})
    assert response.status_code == 200, response.text
    time.sleep(3 * SYNC_SECONDS)

    def never_serves_banned(r: httpx.Response) -> bool:
        return r.status_code == 200 and banned not in [
            s["script_id"] for s in r.json()["suggestions"]
        ]

    workers.on_each_worker(
        "POST", "/v1/suggest", never_serves_banned, json={"conversation": CONVERSATION, "k": 3}
    )
    workers.fresh("DELETE", f"/v1/scripts/{banned}")


def test_feedback_on_a_suggestion_the_other_worker_served(workers: Workers) -> None:
    served = _suggest(workers)
    origin = served.headers["x-served-by"]
    suggestion_id = served.json()["suggestions"][0]["id"]
    for _ in range(400):  # at once, before that worker's batch write is due
        response = workers.fresh(
            "POST", "/v1/feedback", json={"suggestion_id": suggestion_id, "outcome": "accepted"}
        )
        assert response.status_code == 201, response.text
        if response.headers["x-served-by"] != origin:
            return
    raise AssertionError("no feedback request reached the other worker")


def test_a_reload_on_one_worker_reaches_the_other(
    workers: Workers, renamed_bundle_dir: Path
) -> None:
    response = workers.fresh(
        "POST", "/v1/admin/reload", json={"bundle_dir": str(renamed_bundle_dir)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["bundle"].startswith("renamed@")
    # The other worker loads the bundle itself at its next sync: wait for it (a loaded
    # machine takes longer than a few sync periods to load a bundle).
    deadline = time.monotonic() + 60
    while True:
        try:
            workers.on_each_worker(
                "GET",
                "/readyz",
                lambda r: r.status_code == 200 and r.json()["bundle"].startswith("renamed@"),
            )
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the other worker never served the new bundle"
            time.sleep(SYNC_SECONDS)


def test_a_killed_worker_is_replaced_and_serves_the_reloaded_bundle(workers: Workers) -> None:
    # After the reload above: the replacement must serve what its sibling serves, not the
    # bundle the server was started with.
    before = workers.on_each_worker("GET", "/readyz", lambda r: r.status_code == 200)
    victim = sorted(before)[0]
    os.kill(int(victim.rsplit("/", 1)[1]), signal.SIGKILL)
    deadline = time.monotonic() + 90
    while True:
        try:
            after = workers.on_each_worker(
                "GET",
                "/readyz",
                lambda r: r.status_code == 200 and r.json()["bundle"].startswith("renamed@"),
            )
            if victim not in after:
                break
        except (httpx.TransportError, AssertionError):
            pass
        assert time.monotonic() < deadline, "no worker replaced the killed one"
        time.sleep(0.5)
    assert len(after) == 2


def test_sigterm_stops_every_worker_and_writes_what_they_served(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    process, server = _start(scoring_bundle_dir, tmp_path, log_level="INFO")
    assert process.poll() is None, (tmp_path / "serve.log").read_text()
    served = [s["id"] for _ in range(6) for s in _suggest(server).json()["suggestions"]]
    process.terminate()
    assert process.wait(timeout=60) == 0, (tmp_path / "serve.log").read_text()
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/healthz", timeout=2)
    engine = make_engine(f"sqlite:///{tmp_path / 'copilot.db'}")
    with make_session_factory(engine)() as session:
        stored = set(session.scalars(select(ServedSuggestion.id)))
    engine.dispose()
    assert set(served) <= stored  # queued rows were written at shutdown, none lost
    lines = (tmp_path / "serve.log").read_text().splitlines()
    loggers = [json.loads(line)["logger"] for line in lines if line.startswith("{")]
    assert loggers.count("server.access") >= 6  # one JSON line per request, with its request id
    assert "uvicorn.access" not in loggers  # and not a second, plain one from uvicorn


def test_a_port_in_use_is_refused_with_a_clear_message(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, _ = _start(scoring_bundle_dir, tmp_path, port=port, wait=False)
        assert process.wait(timeout=60) == 2
    assert "cannot listen on 127.0.0.1" in (tmp_path / "serve.log").read_text()
