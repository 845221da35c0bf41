"""Defects found by fuzzing the API from its OpenAPI schema (issue 15), over real HTTP: integers
past SQL's range, a schema looser than the validation, silently coerced types, a credential
echoed in a 401, timestamps that overflow China time, and HTTP the app never sees."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import conversation_dict
from tests.server.api_fixtures import LiveServer, assert_error, live_server, make_settings

TOO_BIG = "9223372036854775808"  # 2**63: one past SQLite's (and PostgreSQL's) BIGINT


@pytest.fixture(scope="module")
def server(
    scoring_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(scoring_bundle_dir, tmp_path_factory.mktemp("api-fuzzing"))
    with live_server(settings) as running:
        yield running


@pytest.fixture(scope="module")
def openapi(server: LiveServer) -> dict[str, Any]:
    return dict(server.client(None).get("/openapi.json").json())


def _parameters(openapi: dict[str, Any], name: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", parameter["schema"])
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == name
    ]


def _string_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The string branch of an optional parameter's schema (``anyOf: [string, null]``)."""
    branches = [s for s in schema.get("anyOf", [schema]) if s.get("type") == "string"]
    assert len(branches) == 1, schema
    return branches[0]


# --------------------------------------------------------------------------- 1. limit, offset


@pytest.mark.parametrize("path", ["/v1/conversations", "/v1/orders", "/v1/scripts"])
def test_an_offset_past_sql_integers_is_422_not_500(server: LiveServer, path: str) -> None:
    response = server.client().get(path, params={"offset": TOO_BIG})
    assert_error(response, 422, "query.offset", "1000000000")
    assert server.client().get(path, params={"offset": 1_000_000_000}).status_code == 200


def test_openapi_bounds_every_limit_and_offset(openapi: dict[str, Any]) -> None:
    bounded = _parameters(openapi, "limit") + _parameters(openapi, "offset")
    assert len(bounded) == 8
    for where, schema in bounded:
        assert schema.get("maximum") is not None and schema.get("minimum") is not None, where


# --------------------------------------------------------------------------- 2. schema = checks


def test_openapi_declares_the_rules_the_validators_check(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    text = schemas["Message"]["properties"]["text"]  # blank text: "message has no text"
    assert (text["minLength"], text["maxLength"], text["pattern"]) == (1, 20_000, r"\S")
    for kind in ("intents", "actions"):  # label keys are message indexes
        assert schemas["Labels"]["properties"][kind]["propertyNames"] == {"pattern": "^[0-9]+$"}
    candidate = schemas["RankCreate"]["properties"]["candidates"]["items"]
    assert candidate["pattern"] == r"\S"  # a blank candidate: "empty text"
    assert schemas["OrderCreate"]["properties"]["customer_id"]["pattern"] == r"\S"
    feedback = schemas["FeedbackCreate"]  # "outcome 'edited' needs final_text"
    assert feedback["if"]["properties"]["outcome"] == {"const": "edited"}
    assert feedback["then"]["required"] == ["final_text"]
    assert feedback["then"]["properties"]["final_text"]["pattern"] == r"\S"


def test_openapi_declares_since_and_until_as_dates_or_datetimes(openapi: dict[str, Any]) -> None:
    bounds = _parameters(openapi, "since") + _parameters(openapi, "until")
    assert len(bounds) == 12  # conversations, orders, guides and stores (list and scorecard)
    for where, schema in bounds:
        formats = {s.get("format") for s in schema["anyOf"] if s.get("type") == "string"}
        assert formats == {"date", "date-time"}, where


def test_openapi_declares_that_ids_in_queries_and_paths_have_no_nul(
    openapi: dict[str, Any],
) -> None:
    # the service refuses these with "contains a NUL character"
    ids = [
        p
        for name in (
            "guide_id",
            "store_id",
            "customer_id",
            "conversation_id",
            "flag",
            "task_id",
            "followup_id",
        )
        for p in _parameters(openapi, name)
    ]
    assert len(ids) == 17
    for where, schema in ids:
        assert _string_schema(schema)["pattern"] == "^[^\\u0000]*$", where


# --------------------------------------------------------------------------- 3. strict bodies

_CONVERSATION = conversation_dict("c-strict")

STRICT_CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("/v1/conversations", {**_CONVERSATION, "conversation_id": 123}, ("conversation_id", "123")),
    ("/v1/suggest", {"conversation": _CONVERSATION, "k": "3"}, ("k:", "valid integer", "'3'")),
    (
        "/v1/score",
        {"conversation": {**_CONVERSATION, "guide_id": 7}},
        ("conversation.guide_id", "valid string"),
    ),
    (
        "/v1/conversations",
        {**_CONVERSATION, "outcome": {"converted": "yes"}},
        ("outcome.converted", "valid boolean"),
    ),
    (
        "/v1/orders",
        {"customer_id": 5, "paid_at": "2026-03-08T10:00:00+08:00", "amount": 1},
        ("customer_id", "valid string"),
    ),
    (
        "/v1/orders",
        {"customer_id": "u-1", "paid_at": "2026-03-08T10:00:00+08:00", "amount": "399"},
        ("amount", "valid number"),
    ),
    ("/v1/scripts", {"script_id": "3", "state": "pinned"}, ("script_id", "valid integer")),
    ("/v1/catalog", {"replace": "true"}, ("replace", "valid boolean")),
]


@pytest.mark.parametrize(
    ("path", "body", "fragments"), STRICT_CASES, ids=[f"{c[0]} {c[2][0]}" for c in STRICT_CASES]
)
def test_a_json_value_of_the_wrong_type_is_422_not_coerced(
    server: LiveServer, path: str, body: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    assert_error(server.client().post(path, json=body), 422, *fragments)


def test_numeric_ids_are_not_stored_as_text(server: LiveServer) -> None:
    server.client().post("/v1/conversations", json={**_CONVERSATION, "conversation_id": 123})
    assert_error(server.client().get("/v1/conversations/123"), 404, "'123'")


def test_strict_bodies_still_take_epoch_times_label_indexes_and_integer_amounts(
    server: LiveServer,
) -> None:
    record = conversation_dict("c-epoch", labels={"intents": {"0": "stock"}})
    record["messages"][0]["ts"] = 1_772_935_200_000  # epoch milliseconds, 2026-03-08 10:00
    record["outcome"] = {"converted": True, "order_amount": 399}
    response = server.client().post("/v1/conversations", json=record)
    assert response.status_code == 200, response.text
    order = {"customer_id": "u-9", "paid_at": 1_772_935_200_000, "amount": 399}
    response = server.client().post("/v1/orders", json=order)
    assert response.status_code == 200, response.text
    # query parameters are text: numbers in them are read as numbers
    assert server.client().get("/v1/conversations", params={"limit": "3"}).json()["limit"] == 3


# --------------------------------------------------------------------------- 4. credentials


@pytest.mark.parametrize(
    ("header", "secret"),
    [
        ("sk-abc123secret", "abc123secret"),
        ("cpk_abc123secret", "abc123secret"),
        ("sk-abc123secret and more words", "abc123secret"),
        ("Basic c2stYWJjMTIzc2VjcmV0", "c2stYWJjMTIzc2VjcmV0"),
        ("Token sk-abc123secret", "abc123secret"),
        ("bearer:sk-abc123secret", "abc123secret"),
    ],
)
def test_a_401_never_echoes_the_credential(server: LiveServer, header: str, secret: str) -> None:
    response = server.client(None).get("/v1/me", headers={"Authorization": header})
    error = assert_error(response, 401, "Bearer <api key>")
    assert secret not in response.text, error
    assert all(secret not in value for value in response.headers.values())


# --------------------------------------------------------------------------- 5. timestamps


def _with_ts(conversation_id: str, ts: str) -> dict[str, Any]:
    record = conversation_dict(conversation_id)
    record["messages"][0]["ts"] = ts
    return record


# (method, path, field, timestamp, where the message says it is)
TIME_CASES: list[tuple[str, str, str, str, str]] = [
    ("POST", "/v1/conversations", "ts", "9999-12-31T23:59:59Z", "messages[0].ts"),
    ("POST", "/v1/score", "ts", "0001-01-01T00:00:00+14:00", "conversation.messages[0].ts"),
    ("POST", "/v1/conversations", "ts", "0001-01-01T00:00:00+14:00", "messages[0].ts"),
    ("POST", "/v1/orders", "paid_at", "9999-12-31T23:59:59Z", "paid_at"),
    ("GET", "/v1/conversations", "since", "0001-01-01", "since:"),
    ("GET", "/v1/conversations", "until", "9999-12-31", "until:"),
    ("GET", "/v1/guides", "since", "0001-01-01", "since:"),
    ("GET", "/v1/guides", "until", "9999-12-31", "until:"),
    ("GET", "/v1/guides/g-1/scorecard", "until", "9999-12-31", "until:"),
    ("GET", "/v1/orders", "since", "1969-12-31T23:59:59+08:00", "since:"),
]


def _dated_request(path: str, field: str, stamp: str) -> dict[str, Any]:
    if field == "ts":
        record = _with_ts("c-dated", stamp)
        return {"json": {"conversation": record} if path == "/v1/score" else record}
    if field == "paid_at":
        return {"json": {"customer_id": "u-1", "paid_at": stamp, "amount": 1}}
    return {"params": {field: stamp}}


@pytest.mark.parametrize(
    ("method", "path", "field", "stamp", "where"),
    TIME_CASES,
    ids=[f"{c[0]} {c[1]} {c[2]}={c[3]}" for c in TIME_CASES],
)
def test_a_timestamp_outside_1970_to_2100_is_422_not_500(
    server: LiveServer, method: str, path: str, field: str, stamp: str, where: str
) -> None:
    response = server.client().request(method, path, **_dated_request(path, field, stamp))
    assert_error(response, 422, where, "1970 to 2100")


def test_the_lists_answer_after_far_timestamps_were_refused(server: LiveServer) -> None:
    client = server.client()
    client.post("/v1/conversations", json=_with_ts("c-far", "9999-12-31T23:59:59Z"))
    far_order = {"customer_id": "u-1", "paid_at": "9999-12-31T23:59:59Z", "amount": 1}
    client.post("/v1/orders", json=far_order)
    for path in ("/v1/conversations", "/v1/orders", "/v1/guides"):
        assert client.get(path).status_code == 200, path
    assert_error(client.get("/v1/conversations/c-far"), 404, "'c-far'")
    edges = {"since": "1970-01-01", "until": "2100-12-31"}
    for path in ("/v1/conversations", "/v1/orders", "/v1/guides"):
        assert client.get(path, params=edges).status_code == 200, path
    lower_case = {"since": "2026-03-01t00:00:00z"}  # RFC 3339, the schema's date-time
    assert client.get("/v1/conversations", params=lower_case).status_code == 200


def test_a_too_long_message_is_refused_without_cli_advice(server: LiveServer) -> None:
    record = _with_ts("c-long", "2026-03-01T10:00:00+08:00")
    record["messages"][0]["text"] = "长" * 20_001
    response = server.client().post("/v1/conversations", json=record)
    assert_error(response, 422, "the limit is 20,000")
    assert "--" not in response.json()["error"]["message"]  # no CLI flag for an API client


def test_an_integer_too_large_to_store_in_meta_is_422_not_500(server: LiveServer) -> None:
    record = _with_ts("c-huge", "2026-03-01T10:00:00+08:00")
    record["meta"] = {"crm": {"ids": [1, 10**30]}}
    response = server.client().post("/v1/conversations", json=record)
    assert_error(response, 422, "meta.crm.ids[1]", "too large to store")
    record["meta"] = {"crm": {"ids": [1, 2**63 - 1]}}
    assert server.client().post("/v1/conversations", json=record).status_code == 200


# --------------------------------------------------------------------------- 6. HTTP itself


@pytest.mark.parametrize("size", [17_000, 100_000])  # read at once, or in pieces by h11
def test_headers_over_the_limit_are_a_json_431(server: LiveServer, size: int) -> None:
    response = server.client().get("/v1/me", headers={"X-Padding": "a" * size})
    error = assert_error(response, 431, "16,384 bytes", "COPILOT_MAX_HEADER_BYTES")
    assert "aaaa" not in error["message"]


def _raw(server: LiveServer, request: bytes) -> httpx.Response:
    """Send bytes that no HTTP client would, and parse the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value) for name, value in (line.split(": ", 1) for line in lines)]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


def _post(extra_head: bytes, body: bytes = b"") -> bytes:
    return b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n" + extra_head + b"\r\n" + body


MALFORMED: list[tuple[str, bytes, int]] = [
    (
        "header without a colon",
        b"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization sk-abc\r\n\r\n",
        400,
    ),
    ("no Host header", b"GET /v1/me HTTP/1.1\r\n\r\n", 400),
    ("Content-Length not a number", _post(b"Content-Length: abc\r\n"), 400),
    ("broken chunk", _post(b"Transfer-Encoding: chunked\r\n", b"zz\r\n"), 400),
    ("unknown Transfer-Encoding", _post(b"Transfer-Encoding: gzip\r\n"), 501),
]


@pytest.mark.parametrize(
    ("request_bytes", "status"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_http_gets_the_json_error_shape(
    server: LiveServer, request_bytes: bytes, status: int
) -> None:
    response = _raw(server, request_bytes)
    assert response.headers["content-type"] == "application/json", response.text
    error = assert_error(response, status)
    assert "sk-abc" not in error["message"]
