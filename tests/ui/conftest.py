"""Fixtures for the dashboard tests: the real app on a loopback port, and Debian's chromium.

The app runs in a background thread under uvicorn, with a SQLite file and the small session bundle
(``scoring_bundle_dir``), filled once per session with generated conversations through the API
itself. Chromium is the system browser (``/usr/bin/chromium``, installed by ``make browser``),
driven by Playwright; ``playwright install`` is never needed. Without the browser the browser
tests skip, except under ``make test`` (``COPILOT_REQUIRE_BROWSER=1``) or CI (``CI`` set), where
they fail: a CI machine without the browser must not pass quietly.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
N_CONVERSATIONS = 40
SUPERVISOR_STORES = ("s-01", "s-02")


@dataclass(frozen=True)
class LiveServer:
    """The running app: its base URL and the API keys the tests use."""

    url: str
    admin_key: str
    supervisor_key: str
    guide_key: str
    guide_id: str

    def get(self, path: str, key: str | None = None, **params: Any) -> Any:
        """GET a /v1 path with a key (the supervisor's by default) and return the JSON."""
        response = httpx.get(
            f"{self.url}{path}",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {key or self.supervisor_key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="session")
def artifact_dir() -> Path:
    """Where screenshots go (``test-artifacts/``, git-ignored; CI keeps it as an artifact)."""
    path = Path(os.environ.get("COPILOT_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _serve(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    # Bind first and hand the socket over, so no other process can take the port in between.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # h11 and no websockets: nothing optional gets imported in the server thread.
    config = uvicorn.Config(app, log_level="warning", http="h11", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start (see the log above)")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def live_server(
    scoring_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The real app serving the session bundle, with 40 stored conversations and three keys:
    an admin's (used to store them), a supervisor's for stores s-01 and s-02, and a guide's."""
    from copilot.synth import generate
    from server.app import create_app
    from server.db import create_api_key, make_engine, make_session_factory
    from server.settings import Settings

    data_dir = tmp_path_factory.mktemp("ui-server")
    database_url = f"sqlite:///{data_dir / 'copilot.db'}"
    settings = Settings(bundle_dir=scoring_bundle_dir, data_dir=data_dir, database_url=database_url)
    server, thread, url = _serve(create_app(settings))
    try:
        conversations = [c.model_dump(mode="json") for c in generate(N_CONVERSATIONS, seed=21)]
        guide_id = next(c["guide_id"] for c in conversations if c["store_id"] in SUPERVISOR_STORES)
        # The app has migrated the database at start-up; keys go straight into it, as
        # `copilot keys create` does.
        engine = make_engine(database_url)
        with make_session_factory(engine)() as session:
            admin_key, _ = create_api_key(session, "admin", name="ui tests")
            supervisor_key, _ = create_api_key(
                session, "supervisor", stores=SUPERVISOR_STORES, name="店长"
            )
            guide_key, _ = create_api_key(session, "guide", guide_id=guide_id, name="导购")
            session.commit()
        engine.dispose()
        response = httpx.post(
            f"{url}/v1/conversations",
            json={"conversations": conversations},
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=300,
        )
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == N_CONVERSATIONS
        yield LiveServer(url, admin_key, supervisor_key, guide_key, guide_id)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's headless chromium under Playwright (one per session)."""
    if not CHROMIUM.exists():
        message = (
            f"{CHROMIUM} is missing; run `make browser` (apt-get install chromium fonts-noto-cjk)"
        )
        if os.environ.get("COPILOT_REQUIRE_BROWSER") or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    # The browser writes its profile and caches under XDG dirs: keep them out of $HOME.
    xdg = tmp_path_factory.mktemp("chromium-xdg")
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(xdg / "config"),
        "XDG_CACHE_HOME": str(xdg / "cache"),
        # The browser's own language, as a supervisor's would be: date inputs then read
        # 2026/12/04, not 12/04/2026 (needs Debian's chromium-l10n, which `make browser` installs).
        "LANGUAGE": "zh_CN",
    }
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageProbe:
    """A page plus everything it did that a test may want to assert on afterwards."""

    page: Any
    requests: list[str]
    errors: list[str]


@pytest.fixture
def probe(browser: Any) -> Iterator[PageProbe]:
    """A fresh 1280x800 page (its own session storage) that records requests and errors.

    Errors are uncaught exceptions and console errors (a CSP violation is one); the test ends by
    asserting there were none.
    """
    # Reduced motion: the page then scrolls to a highlighted message at once, not over 300 ms.
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="zh-CN", reduced_motion="reduce"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    found = PageProbe(page, [], [])
    page.on("request", lambda request: found.requests.append(request.url))
    page.on("pageerror", lambda error: found.errors.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: (
            found.errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    try:
        yield found
    finally:
        context.close()
