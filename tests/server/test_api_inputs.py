"""Bad input over real HTTP: every case is a 4xx with a clear message in the JSON error shape,
never a 5xx. One server with small limits for the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.builders import conversation_dict
from tests.server.api_fixtures import LiveServer, assert_error, live_server, make_settings

MAX_BODY = 1_000_000


@pytest.fixture(scope="module")
def server(
    scoring_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(
        scoring_bundle_dir,
        tmp_path_factory.mktemp("api-inputs"),
        max_body_bytes=MAX_BODY,
        max_messages=50,
        max_conversations=5,
    )
    with live_server(settings) as running:
        yield running


def _json(value: Any) -> dict[str, Any]:
    return {"content": json.dumps(value, ensure_ascii=False).encode(), "headers": _JSON}


_JSON = {"Content-Type": "application/json"}
_CONVERSATION = conversation_dict("c-in")
_LONG = {
    "conversation_id": "c-long",
    "messages": [{"role": "customer", "text": "在吗"}] * 10_000,
}


def _nested(depth: int) -> bytes:
    return b'{"texts": ' + b"[" * depth + b"]" * depth + b"}"


# (method, path, request kwargs, status, fragments of the message)
CASES: list[tuple[str, str, dict[str, Any], int, tuple[str, ...]]] = [
    # not JSON at all
    (
        "POST",
        "/v1/suggest",
        {"content": b'{"conversation": ', "headers": _JSON},
        400,
        ("not valid JSON", "line 1 column 18"),
    ),
    ("POST", "/v1/classify", {"content": b"{'texts': ['x']}", "headers": _JSON}, 400, ("JSON",)),
    ("POST", "/v1/classify", {"content": _nested(20_000), "headers": _JSON}, 400, ("JSON",)),
    (
        "POST",
        "/v1/classify",
        {"content": b'{"texts": ["\xff\xfe caf\xe9"]}', "headers": _JSON},
        400,
        ("not valid UTF-8", "0xff", "position 12"),
    ),
    (
        "POST",
        "/v1/classify",
        {"content": b'{"texts": ["\\ud800 alone"]}', "headers": _JSON},
        400,
        ("\\ud800", "surrogate"),
    ),
    (
        "POST",
        "/v1/conversations",
        {"content": b'{"conversation_id": "c\\u0000", "messages": []}', "headers": _JSON},
        400,
        ("\\u0000", "NUL"),
    ),
    # no body, or not an object
    ("POST", "/v1/suggest", {}, 422, ("needs a JSON body",)),
    ("POST", "/v1/classify", _json(["在吗"]), 422, ("must be a JSON object, not an array",)),
    ("POST", "/v1/score", _json(None), 422, ("must be a JSON object, not null",)),
    ("POST", "/v1/conversations", _json("c-1"), 422, ("must be a JSON object, not a string",)),
    (
        "POST",
        "/v1/classify",
        {"content": b"texts=hi", "headers": {"Content-Type": "text/plain"}},
        422,
        ("must be JSON sent with Content-Type: application/json",),
    ),
    # unknown fields, wrong types, empty lists
    ("POST", "/v1/classify", _json({"texts": ["x"], "lang": "zh"}), 422, ("lang: unknown field",)),
    (
        "POST",
        "/v1/suggest",
        _json({"conversation": {**_CONVERSATION, "mood": "happy"}}),
        422,
        ("conversation.mood: unknown field", "meta"),
    ),
    (
        "POST",
        "/v1/conversations",
        _json({**_CONVERSATION, "mood": "happy"}),
        422,
        ("mood: unknown field", "meta"),
    ),
    (
        "POST",
        "/v1/conversations",
        _json({"conversations": [_CONVERSATION], "dry_run": True}),
        422,
        ("dry_run: unknown field",),
    ),
    (
        "POST",
        "/v1/suggest",
        _json({"conversation": _CONVERSATION, "k": "three"}),
        422,
        ("k: input should be a valid integer", "'three'"),
    ),
    ("POST", "/v1/suggest", _json({"conversation": _CONVERSATION, "k": 500}), 422, ("k:", "20")),
    (
        "POST",
        "/v1/suggest",
        _json({"conversation": {**_CONVERSATION, "messages": [{"role": "bot", "text": "x"}]}}),
        422,
        ("conversation.messages[0].role", "'bot'"),
    ),
    (
        "POST",
        "/v1/score",
        _json({"conversation": {**_CONVERSATION, "messages": []}}),
        422,
        ("conversation.messages", "at least 1"),
    ),
    (
        "POST",
        "/v1/conversations",
        _json({**_CONVERSATION, "messages": [{"role": "guide", "text": "   "}]}),
        422,
        ("messages[0].text", "no text"),
    ),
    (
        "POST",
        "/v1/conversations",
        _json({**_CONVERSATION, "labels": {"intents": {"7": "stock"}}}),
        422,
        ("conversation:", "message index 7"),
    ),
    ("POST", "/v1/classify", _json({"texts": []}), 422, ("texts", "at least 1")),
    ("POST", "/v1/classify", _json({"texts": "在吗"}), 422, ("texts", "valid list")),
    ("POST", "/v1/classify", _json({"texts": [123]}), 422, ("texts[0]", "valid string")),
    ("POST", "/v1/conversations", _json({"conversations": []}), 422, ("conversations",)),
    (
        "POST",
        "/v1/feedback",
        _json({"suggestion_id": "sg_x", "outcome": "edited", "final_text": ""}),
        422,
        ("needs final_text",),
    ),
    # limits
    (
        "POST",
        "/v1/suggest",
        _json({"conversation": _LONG}),
        422,
        ("10,000 messages", "limit is 50", "COPILOT_MAX_MESSAGES"),
    ),
    (
        "POST",
        "/v1/conversations",
        _json({"conversations": [conversation_dict(f"m-{i}") for i in range(6)]}),
        422,
        ("6 conversations", "limit is 5", "COPILOT_MAX_CONVERSATIONS"),
    ),
    (
        "POST",
        "/v1/conversations",
        _json({"conversations": [_CONVERSATION, _CONVERSATION]}),
        422,
        ("'c-in' occurs twice",),
    ),
    (
        "POST",
        "/v1/classify",
        {"content": b'{"texts": ["' + b"a" * (MAX_BODY + 10) + b'"]}', "headers": _JSON},
        413,
        ("too large", "limit is 1,000,000 bytes", "COPILOT_MAX_BODY_BYTES"),
    ),
    # query and path parameters
    ("GET", "/v1/conversations?limit=500", {}, 422, ("query.limit", "200")),
    ("GET", "/v1/conversations?limit=0", {}, 422, ("query.limit",)),
    ("GET", "/v1/conversations?sort=best", {}, 422, ("query.sort", "'best'")),
    ("GET", "/v1/conversations?min_score=high", {}, 422, ("query.min_score", "valid number")),
    ("GET", "/v1/conversations?since=yesterday", {}, 422, ("since", "2026-03-01")),
    ("GET", "/v1/conversations?since=2026-03-09&until=2026-03-01", {}, 422, ("swap",)),
    ("GET", "/v1/conversations?min_score=80&max_score=20", {}, 422, ("swap",)),
    ("GET", "/v1/conversations?guide_id=g%00", {}, 422, ("NUL",)),
    ("GET", "/v1/conversations/c%00x", {}, 422, ("NUL",)),
    ("GET", "/v1/scripts?state=hidden", {}, 422, ("query.state",)),
    ("GET", "/v1/guides/g-1/scorecard?since=2026-13-01", {}, 422, ("since",)),
    ("DELETE", "/v1/scripts/first", {}, 422, ("path.script_id", "valid integer")),
    # no such endpoint or method
    ("GET", "/v1/nothing-here", {}, 404, ("no such endpoint",)),
    ("PUT", "/v1/suggest", {}, 405, ("PUT is not allowed",)),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "fragments"),
    CASES,
    ids=[f"{c[0]} {c[1][:40]} {c[3]} {c[4][0][:24]}" for c in CASES],
)
def test_bad_input_is_a_clear_4xx(
    server: LiveServer,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    fragments: tuple[str, ...],
) -> None:
    response = server.client().request(method, path, **kwargs)
    assert_error(response, status, *fragments)


def test_an_oversized_body_without_content_length_is_413(server: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"texts": ["'
        for _ in range(20):
            yield b"a" * 100_000
        yield b'"]}'

    response = server.client().post("/v1/classify", content=chunks(), headers=_JSON)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "more than 1,000,000 bytes", "COPILOT_MAX_BODY_BYTES")


def test_a_large_chunked_body_under_the_limit_is_served(server: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"texts": ['
        yield b",".join([json.dumps("这件有M码吗").encode()] * 300)
        yield b"]}"

    response = server.client().post("/v1/classify", content=chunks(), headers=_JSON)
    assert response.status_code == 200 and len(response.json()["results"]) == 300


def test_the_message_limit_is_a_setting(server: LiveServer) -> None:
    at_limit = {**_LONG, "messages": _LONG["messages"][:50]}
    response = server.client().post("/v1/score", json={"conversation": at_limit})
    assert response.status_code == 200, response.text
    assert response.json()["n_messages"] == 50
    over = {**_LONG, "messages": _LONG["messages"][:51]}
    assert_error(server.client().post("/v1/score", json={"conversation": over}), 422, "51 messages")


def test_nothing_is_stored_by_a_refused_request(server: LiveServer) -> None:
    assert server.client().get("/v1/conversations").json()["total"] == 0
