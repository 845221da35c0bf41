"""``copilot serve``: refuses bad settings with exit code 2, and serves the API with JSON logs
and a limit on request headers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from copilot.cli import app
from tests.server.api_fixtures import assert_error, create_keys, free_port


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--bundle", "{tmp}/no-bundle"], "no model bundle"),
        (["--database-url", "nosuchdb://x"], "database URL"),
        (["--log-level", "LOUD"], "log_level"),
    ],
)
def test_serve_refuses_bad_settings(
    scoring_bundle_dir: Path, tmp_path: Path, args: list[str], fragment: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    base = ["serve", "--bundle", str(scoring_bundle_dir), "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(app, [*base, *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output


def _start_serve(
    bundle_dir: Path, database_url: str, **env: str
) -> tuple[subprocess.Popen[str], str]:
    """``copilot serve`` in a subprocess on a free port, once ``/readyz`` answers; returns the
    process (the caller terminates it) and the base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "copilot.cli",
            "serve",
            "--bundle",
            str(bundle_dir),
            "--port",
            str(port),
        ],
        env={**os.environ, "COPILOT_DATABASE_URL": database_url, **env},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read() if process.stderr else "serve exited")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("copilot serve did not become ready")
        time.sleep(0.2)


def test_serve_runs_the_api_with_json_request_logs(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    key = create_keys(url, {"admin": {"role": "admin"}})["admin"]
    process, base = _start_serve(scoring_bundle_dir, url, COPILOT_LOG_LEVEL="info")
    try:
        me = httpx.get(
            f"{base}/v1/me",
            headers={"Authorization": f"Bearer {key}", "X-Request-ID": "serve-test-1"},
        )
        assert me.status_code == 200 and me.json()["role"] == "admin"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == "serve-test-1"]
    assert access and access[0]["route"] == "/v1/me" and access[0]["status"] == 200
    assert access[0]["logger"] == "server.access" and "ms" in access[0]
    assert any(line.get("message") == "serving" for line in lines)


def test_serve_limits_request_headers_with_a_json_431(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    # uvicorn's default parser (httptools) read a 20 MB header whole; serve runs h11 with a limit.
    url = f"sqlite:///{tmp_path / 'served.db'}"
    process, base = _start_serve(scoring_bundle_dir, url, COPILOT_MAX_HEADER_BYTES="4096")
    try:
        assert httpx.get(f"{base}/healthz", headers={"X-Padding": "a" * 3_000}).status_code == 200
        response = httpx.get(f"{base}/healthz", headers={"X-Padding": "a" * 20_000})
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert_error(response, 431, "4,096 bytes", "COPILOT_MAX_HEADER_BYTES")


def test_settings_come_from_copilot_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.settings import Settings

    for name in [n for n in os.environ if n.startswith("COPILOT_")]:
        monkeypatch.delenv(name)
    defaults = Settings()
    assert defaults.database_url == "sqlite:///data/copilot.db"
    assert (defaults.max_body_bytes, defaults.max_messages, defaults.suggest_k) == (
        2_000_000,
        2_000,
        3,
    )
    monkeypatch.setenv("COPILOT_DATA_DIR", "/srv/copilot")
    monkeypatch.setenv("COPILOT_MAX_MESSAGES", "50")
    monkeypatch.setenv("COPILOT_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.database_url == "sqlite:////srv/copilot/copilot.db"
    assert settings.max_messages == 50 and settings.log_level == "DEBUG"
    assert Settings(max_messages=7).max_messages == 7, "arguments win over the environment"
    monkeypatch.setenv("COPILOT_DATABASE_URL", "postgresql+psycopg://u@db/copilot")
    assert Settings().database_url == "postgresql+psycopg://u@db/copilot"
