"""The supervisor dashboard: static files under ``/ui``, served by the app itself (no CDN).

``/ui`` and ``/ui/`` answer the single page (``server/ui/index.html``); its script, style sheet
and any other asset live in ``server/ui/static/`` and are served from ``/ui/static/<name>``;
``/ui/taxonomy.json`` gives the Chinese display names of the labels of the bundle being served. The page signs in with an
API key and then talks only to ``/v1`` on the same origin, so every response here carries a
Content-Security-Policy that allows nothing but ``'self'``: no inline script, no inline style
attribute, no remote font, image or connection, no framing.

The dashboard needs no server-side routes of its own (it routes on the URL hash), and nothing here
needs a key: the assets hold no data, and the data comes from ``/v1`` with the key.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response

from copilot.taxonomy import Taxonomy
from server.deps import RuntimeDep

__all__ = ["CONTENT_SECURITY_POLICY", "UI_DIR", "router"]

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
"""Where the dashboard's files live (shipped as package data of ``server``)."""

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""Only the app's own origin; ``data:`` images are the one exception (none are used today)."""

_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The files change with every release and are small: revalidate rather than serve stale JS.
    "Cache-Control": "no-cache",
}

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}

# A plain file name with a known suffix: no directories, so no way out of static/.
_ASSET_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")

router = APIRouter(tags=["ui"], include_in_schema=False)


def _file_response(path: Path) -> Response:
    content_type = _CONTENT_TYPES.get(path.suffix)
    if content_type is None or not path.is_file():
        raise HTTPException(status_code=404, detail=f"no dashboard file {path.name!r}")
    return Response(
        content=path.read_bytes(), media_type=content_type, headers=dict(_SECURITY_HEADERS)
    )


@router.api_route("/ui", methods=["GET", "HEAD"])
@router.api_route("/ui/", methods=["GET", "HEAD"])
def index() -> Response:
    """The dashboard page."""
    return _file_response(UI_DIR / "index.html")


@router.api_route("/ui/static/{name}", methods=["GET", "HEAD"])
def asset(name: str) -> Response:
    """One static asset of the dashboard (script, style sheet, icon)."""
    if not _ASSET_NAME.match(name):
        raise HTTPException(status_code=404, detail=f"no dashboard file {name!r}")
    return _file_response(UI_DIR / "static" / name)


@lru_cache(maxsize=4)
def _names(taxonomy: Taxonomy) -> dict[str, Any]:
    return {
        kind: {label.id: {"name": label.name, "definition": label.definition} for label in labels}
        for kind, labels in (
            ("intents", taxonomy.intents),
            ("actions", taxonomy.actions),
            ("dimensions", taxonomy.dimensions),
        )
    }


@router.get("/ui/taxonomy.json")
def taxonomy_names(runtime: RuntimeDep) -> JSONResponse:
    """The Chinese display names and definitions of intents, actions and dimensions.

    They come from the live bundle's taxonomy (a brand may ship its own), so they follow a
    reload. The dashboard shows names, never raw ids; a label missing here is shown by its id.
    """
    return JSONResponse(_names(runtime.bundle.taxonomy), headers=dict(_SECURITY_HEADERS))
