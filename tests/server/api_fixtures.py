"""The real app over real HTTP, for the API tests: uvicorn in a thread, a SQLite file, API keys.

A test module starts one server (module-scoped fixture) with :func:`live_server` and talks to it
with httpx, exactly as a client would::

    with live_server(settings, KEYS) as server:
        r = server.client("guide_g001").post("/v1/suggest", json={...})
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, make_url, text

from copilot.llm import LLMSettings
from copilot.schema import Conversation
from copilot.synth import generate
from server.app import create_app
from server.db import create_api_key, make_engine, make_session_factory, migrate
from server.protocol import uvicorn_options
from server.settings import Settings

__all__ = [
    "KEYS",
    "LiveServer",
    "assert_error",
    "create_keys",
    "free_port",
    "live_server",
    "make_settings",
    "synthetic",
]

KEYS: dict[str, dict[str, Any]] = {
    "admin": {"role": "admin"},
    "sup_s01": {"role": "supervisor", "stores": ["s-01"]},
    "sup_s02": {"role": "supervisor", "stores": ["s-02"]},
    "guide_g001": {"role": "guide", "guide_id": "g-001"},  # works in s-01
    "guide_g004": {"role": "guide", "guide_id": "g-004"},  # works in s-01
}
"""API keys every test server gets, by name (the synthetic corpus has guides g-001..g-015 in
stores s-01..s-03)."""


def make_settings(bundle_dir: Path, tmp: Path, **overrides: Any) -> Settings:
    """Settings for a test server: the bundle, a SQLite file in ``tmp``, any overrides."""
    return Settings(
        bundle_dir=bundle_dir,
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'copilot.db'}",
        **overrides,
    )


def synthetic(n: int, seed: int = 11) -> list[Conversation]:
    """``n`` labelled synthetic conversations with outcomes (guides g-001.., stores s-01..)."""
    return list(generate(n, seed=seed))


@dataclass
class LiveServer:
    """A running server: its base URL, app, settings and API keys (name -> plaintext)."""

    url: str
    app: FastAPI
    settings: Settings
    keys: dict[str, str]
    _clients: dict[str | None, httpx.Client] = field(default_factory=dict)

    def client(self, key: str | None = "admin") -> httpx.Client:
        """The shared httpx client authenticated with the named key (``None``: no key).

        Closed when the server stops; use :meth:`new_client` for one of your own.
        """
        if key not in self._clients:
            self._clients[key] = self.new_client(key)
        return self._clients[key]

    def new_client(self, key: str | None = "admin", **kwargs: Any) -> httpx.Client:
        """A new httpx client on the server with the named key; the caller closes it."""
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0, **kwargs)

    def close_clients(self) -> None:
        """Close the shared clients."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def add_key(self, name: str, **spec: Any) -> str:
        """Create one more key in the server's database; returns its plaintext."""
        engine = make_engine(self.settings.database_url)
        try:
            with make_session_factory(engine).begin() as session:
                plaintext, _ = create_api_key(session, **spec)
        finally:
            engine.dispose()
        self.keys[name] = plaintext
        return plaintext


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_keys(url: str, keys: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Migrate the database at ``url`` and create API keys in it (name -> spec); returns
    name -> plaintext."""
    engine = make_engine(url)
    try:
        migrate(engine)
        with make_session_factory(engine).begin() as session:
            return {name: create_api_key(session, **spec)[0] for name, spec in keys.items()}
    finally:
        engine.dispose()


@contextmanager
def empty_database(backend: str, tmp: Path, admin: Callable[[], Engine]) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in ``tmp``, or a fresh PostgreSQL schema
    (made with ``admin()``, the ``postgres_admin`` engine, and dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'copilot.db'}"
        return
    engine = admin()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(engine.url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@contextmanager
def live_server(
    settings: Settings,
    keys: Mapping[str, Mapping[str, Any]] = KEYS,
    timeout: float = 120.0,
    llm: LLMSettings | None = None,
) -> Iterator[LiveServer]:
    """Run ``create_app(settings, llm)`` under uvicorn on a free loopback port until the block
    ends. ``llm``: the optional LLM's settings; none (off), whatever the environment says,
    when ``None``.

    Raises:
        RuntimeError: the server did not start (its start-up error is chained).
    """
    plaintexts = create_keys(settings.database_url, keys)
    app = create_app(settings, llm=llm or LLMSettings(backend="none"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # No websockets (their import warns) and no logging set-up: the app logs, pytest captures.
    # The HTTP protocol and its limits are those of `copilot serve`.
    config = uvicorn.Config(
        app,
        lifespan="on",
        ws="none",
        log_config=None,
        access_log=False,
        **uvicorn_options(settings),
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit from a failed start-up, too
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the test server did not start: {failure}") from (
                failure[0] if failure else None
            )
        time.sleep(0.02)
    running = LiveServer(f"http://127.0.0.1:{port}", app, settings, plaintexts)
    try:
        yield running
    finally:
        running.close_clients()
        server.should_exit = True
        thread.join(30)
        sock.close()


def assert_error(response: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    """Assert an error response: the status, the JSON error shape, and message fragments."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["status"] == status and error["request_id"], error
    assert error["request_id"] == response.headers["x-request-id"]
    for fragment in fragments:
        assert fragment in error["message"], (fragment, error["message"])
    return dict(error)
