"""The dashboard's files over plain HTTP: content types, the CSP header, nothing from outside."""

from __future__ import annotations

import re

import httpx
import pytest

from server.routes.ui import CONTENT_SECURITY_POLICY, UI_DIR
from tests.ui.conftest import LiveServer

# XML namespace names look like URLs but are identifiers the browser never fetches.
_NAMESPACES = {"http://www.w3.org/2000/svg"}
_URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'`)]*""")


def test_ui_serves_index_with_csp(live_server: LiveServer) -> None:
    for path in ("/ui", "/ui/"):
        response = httpx.get(f"{live_server.url}{path}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        assert '<script src="/ui/static/app.js"' in response.text
        assert '<script src="/ui/static/crm.js"' in response.text
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("crm.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_ui_serves_assets_with_their_content_type(
    live_server: LiveServer, name: str, content_type: str
) -> None:
    response = httpx.get(f"{live_server.url}/ui/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.content == (UI_DIR / "static" / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    ["/ui/static/missing.js", "/ui/static/..%2Fapp.py", "/ui/static/.hidden.js", "/ui/static/x.py"],
)
def test_ui_static_refuses_unknown_files(live_server: LiveServer, path: str) -> None:
    response = httpx.get(f"{live_server.url}{path}")
    assert response.status_code == 404


def test_ui_assets_reference_no_external_urls(live_server: LiveServer) -> None:
    names = ["/ui"] + [f"/ui/static/{p.name}" for p in sorted((UI_DIR / "static").iterdir())]
    assert len(names) >= 4  # the page, its script, its style sheet, its icon
    for path in names:
        text = httpx.get(f"{live_server.url}{path}").text
        urls = {u for u in _URL.findall(text) if u not in _NAMESPACES}
        assert not urls, f"{path} references {sorted(urls)}; the dashboard must work offline"
        assert "@import" not in text and "@font-face" not in text, path


def test_ui_taxonomy_gives_chinese_names(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/ui/taxonomy.json")
    assert response.status_code == 200
    names = response.json()
    assert names["intents"]["stock"]["name"] == "库存到货"
    assert names["actions"]["close_sale"]["name"] == "促成下单"
    assert names["dimensions"]["compliance"]["name"] == "合规表现"  # high is good, not risky
