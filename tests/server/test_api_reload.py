"""Bundle reload over real HTTP: atomic under load, refused cleanly when broken, and pins, bans
and feedback carried over reloads and restarts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.builders import conversation_dict
from tests.server.api_fixtures import LiveServer, assert_error, live_server, make_settings

SUGGEST = {
    "conversation": conversation_dict(
        "reload-1", [("customer", "这件有M码吗，今天下单什么时候发货")], guide_id=None
    ),
    "k": 3,
}


@pytest.fixture(scope="module")
def bundles(scoring_bundle_dir: Path, renamed_bundle_dir: Path) -> tuple[Path, Path]:
    """The session bundle and a copy of it under another name (so responses tell them apart)."""
    return scoring_bundle_dir, renamed_bundle_dir


@pytest.fixture(scope="module")
def settings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-reload")


@pytest.fixture(scope="module")
def server(bundles: tuple[Path, Path], settings_dir: Path) -> Iterator[LiveServer]:
    with live_server(make_settings(bundles[0], settings_dir)) as running:
        yield running


def _hammer(
    server: LiveServer, stop: threading.Event, seen: list[str], failures: list[Any], key: str
) -> None:
    """Call suggest, classify and score until told to stop; record bundles and failures."""
    with server.new_client(key) as client:
        while not stop.is_set():
            for method, path, body in (
                ("POST", "/v1/suggest", SUGGEST),
                ("POST", "/v1/classify", {"texts": ["太贵了能便宜点吗"]}),
                ("POST", "/v1/score", {"conversation": SUGGEST["conversation"]}),
            ):
                try:
                    response = client.request(method, path, json=body)
                except Exception as exc:  # a dropped connection is a failure too
                    failures.append((path, repr(exc)))
                    continue
                if response.status_code != 200:
                    failures.append((path, response.status_code, response.text[:200]))
                elif path != "/v1/score":
                    seen.append(response.json()["bundle"])


def test_reload_under_load_swaps_atomically_without_failures(
    server: LiveServer, bundles: tuple[Path, Path]
) -> None:
    original, renamed = bundles
    admin = server.client()
    before = admin.get("/readyz").json()["bundle"]
    stop, seen, failures = threading.Event(), [], []
    threads = [
        threading.Thread(target=_hammer, args=(server, stop, seen, failures, key))
        for key in ("guide_g001", "guide_g004", "admin")
    ]
    for thread in threads:
        thread.start()
    try:
        first = admin.post("/v1/admin/reload", json={"bundle_dir": str(renamed)})
        assert first.status_code == 200, first.text
        during = len(seen)
        second = admin.post("/v1/admin/reload", json={"bundle_dir": str(renamed)})
        assert second.status_code == 200, second.text
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    new = first.json()["bundle"]
    assert first.json()["previous"] == before and new.startswith("renamed@") and new != before
    assert second.json()["previous"] == new and second.json()["bundle_dir"] == str(renamed)
    assert during > 0 and len(seen) > during, "requests were served across the reloads"
    assert set(seen) <= {before, new} and seen[-1] == new
    assert admin.get("/readyz").json()["bundle"] == new
    assert admin.post("/v1/suggest", json=SUGGEST).json()["bundle"] == new
    back = admin.post("/v1/admin/reload", json={"bundle_dir": str(original)}).json()
    assert back["bundle"] == before and back["previous"] == new
    metrics = server.client(None).get("/metrics").text
    assert 'bundle_reloads_total{result="ok"} 3.0' in metrics
    assert f'bundle_info{{bundle="{before}"}} 1.0' in metrics


def test_a_broken_bundle_is_refused_and_the_current_one_keeps_serving(
    server: LiveServer, tmp_path: Path
) -> None:
    admin = server.client()
    serving = admin.get("/readyz").json()["bundle"]
    missing = admin.post("/v1/admin/reload", json={"bundle_dir": str(tmp_path / "nothing")})
    assert_error(missing, 422, "no model bundle", f"still serving {serving}")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text('{"format_version": 1}', "utf-8")
    broken = admin.post("/v1/admin/reload", json={"bundle_dir": str(tmp_path / "broken")})
    assert_error(broken, 422, "incomplete or corrupt", "still serving")
    assert_error(admin.post("/v1/admin/reload", json={"bundle": "x"}), 422, "bundle: unknown field")
    assert admin.get("/readyz").json() == {"status": "ready", "bundle": serving, "database": "ok"}
    assert admin.post("/v1/suggest", json=SUGGEST).status_code == 200
    assert 'bundle_reloads_total{result="error"} 2.0' in server.client(None).get("/metrics").text


def test_pins_bans_and_feedback_survive_reload_and_restart(
    server: LiveServer, bundles: tuple[Path, Path], settings_dir: Path
) -> None:
    guide, admin = server.client("guide_g001"), server.client()
    served = guide.post("/v1/suggest", json=SUGGEST).json()["suggestions"]
    assert len(served) >= 3
    banned, pinned, liked = (s["script_id"] for s in served[:3])
    assert (
        admin.post("/v1/scripts", json={"script_id": banned, "state": "banned"}).status_code == 200
    )
    assert (
        admin.post("/v1/scripts", json={"script_id": pinned, "state": "pinned"}).status_code == 200
    )
    feedback = {"suggestion_id": served[2]["id"], "outcome": "accepted"}
    assert guide.post("/v1/feedback", json=feedback).status_code == 201

    def check(client: Any) -> None:
        now = client.post("/v1/suggest", json=SUGGEST).json()["suggestions"]
        assert now[0]["script_id"] == pinned and banned not in [s["script_id"] for s in now]
        for state, sid in (("pinned", pinned), ("banned", banned)):
            listed = client.get("/v1/scripts", params={"state": state}).json()["items"]
            assert [item["script_id"] for item in listed] == [sid]
        rated = client.get("/v1/scripts", params={"sort": "-acceptance", "limit": 1}).json()
        assert rated["items"][0]["script_id"] == liked
        assert rated["items"][0]["acceptance_rate"] == 1.0

    check(admin)
    assert admin.post("/v1/admin/reload").status_code == 200  # the same directory again
    check(admin)
    restarted_settings = make_settings(bundles[0], settings_dir)
    with live_server(restarted_settings) as restarted:
        check(restarted.client())
        for sid in (banned, pinned):
            assert restarted.client().delete(f"/v1/scripts/{sid}").json()["state"] is None
