"""POST /v1/rank over real HTTP: the ranking, validation, auth and scope, and a reload."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.compliance import default_checker
from copilot.schema import MAX_MESSAGE_CHARS, Conversation
from models.bundle import load_bundle
from models.rank import ReplyRanker
from tests.builders import conversation_dict
from tests.server.api_fixtures import LiveServer, assert_error, live_server, make_settings

PRICE = [("customer", "在吗？这件大衣有M码吗，能便宜点吗")]
CANDIDATES = [
    "亲，加我微信13812345678给你优惠",
    "亲，M码有货哦，今天下单还能用满300减50的券",
    "这款是全网第一的大衣，M码有货",
    "好的，谢谢亲",
    "好的，谢谢亲",
]


@pytest.fixture(scope="module")
def server(
    scoring_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(scoring_bundle_dir, tmp_path_factory.mktemp("api-rank"))
    with live_server(settings) as running:
        yield running


def _body(cid: str = "rank-1", **fields: Any) -> dict[str, Any]:
    """A rank body; the conversation has no guide id unless given (a guide's is its own)."""
    record = conversation_dict(cid, PRICE, **{"guide_id": None, "store_id": "s-01", **fields})
    return {"conversation": record, "candidates": CANDIDATES}


def test_rank_returns_every_candidate_once_best_first_unsafe_last(
    server: LiveServer, scoring_bundle_dir: Path
) -> None:
    response = server.client("guide_g001").post("/v1/rank", json=_body())
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"ranked", "bundle"} and body["bundle"].startswith("bundle@")
    ranked = body["ranked"]
    assert Counter(r["text"] for r in ranked) == Counter(CANDIDATES)
    assert {r["text"] for r in ranked[-2:]} == {CANDIDATES[0], CANDIDATES[2]}
    assert all(r["flags"] for r in ranked[-2:]) and not any(r["flags"] for r in ranked[:-2])
    assert {f["kind"] for r in ranked[-2:] for f in r["flags"]} <= {"compliance", "personal_data"}
    assert ranked[0]["text"] == CANDIDATES[1], "the price reply first"
    # The same ranking as the core (and so as `copilot rank`) on the same bundle.
    conversation = Conversation.model_validate(_body()["conversation"])
    ranker = ReplyRanker(load_bundle(scoring_bundle_dir), default_checker())
    assert ranked == ranker.rank(conversation, CANDIDATES)


def test_rank_is_counted_in_metrics_and_listed_in_openapi(server: LiveServer) -> None:
    anonymous = server.client(None)
    assert "/v1/rank" in anonymous.get("/openapi.json").json()["paths"]
    assert server.client("sup_s01").post("/v1/rank", json=_body()).status_code == 200
    metrics = anonymous.get("/metrics").text
    line = next(m for m in metrics.splitlines() if m.startswith("candidates_ranked_total "))
    assert float(line.split()[1]) >= len(CANDIDATES)


@pytest.mark.parametrize(
    ("candidates", "fragment"),
    [
        ([], "candidates: list should have at least 1 item"),
        (["亲"] * 501, "candidates: list should have at most 500 items"),
        ([1, "好的"], "candidates[0]: input should be a valid string"),
        ("好的", "candidates: input should be a valid list"),
        (["好的", ""], "candidates[1]: string should have at least 1 character"),
        (["好的", "   "], "candidates[1]: empty text"),
        (["亲" * (MAX_MESSAGE_CHARS + 1)], "candidates[0]: string should have at most"),
    ],
)
def test_rank_refuses_bad_candidates(server: LiveServer, candidates: Any, fragment: str) -> None:
    body = {**_body(), "candidates": candidates}
    assert_error(server.client("guide_g001").post("/v1/rank", json=body), 422, fragment)


def test_rank_refuses_a_bad_body(server: LiveServer) -> None:
    client = server.client("guide_g001")
    assert_error(client.post("/v1/rank", json={"candidates": ["好的"]}), 422, "conversation")
    assert_error(client.post("/v1/rank", json={**_body(), "k": 3}), 422, "k: unknown field")
    bad_role = _body()
    bad_role["conversation"]["messages"][0]["role"] = "bot"
    assert_error(client.post("/v1/rank", json=bad_role), 422, "messages[0].role")


def test_rank_needs_a_key_and_keeps_guides_to_their_conversations(server: LiveServer) -> None:
    assert_error(server.client(None).post("/v1/rank", json=_body()), 401, "missing API key")
    other = _body("rank-other", guide_id="g-004")
    assert_error(server.client("guide_g001").post("/v1/rank", json=other), 403)
    assert server.client("guide_g004").post("/v1/rank", json=other).status_code == 200
    elsewhere = _body("rank-s02", store_id="s-02")
    assert_error(server.client("sup_s01").post("/v1/rank", json=elsewhere), 403)
    assert server.client("admin").post("/v1/rank", json=elsewhere).status_code == 200


def test_a_reload_swaps_the_ranker_with_the_bundle(
    server: LiveServer, renamed_bundle_dir: Path, scoring_bundle_dir: Path
) -> None:
    admin = server.client("admin")
    try:
        reloaded = admin.post("/v1/admin/reload", json={"bundle_dir": str(renamed_bundle_dir)})
        assert reloaded.status_code == 200, reloaded.text
        body = admin.post("/v1/rank", json=_body()).json()
        assert body["bundle"].startswith("renamed@")
        assert Counter(r["text"] for r in body["ranked"]) == Counter(CANDIDATES)
    finally:
        admin.post("/v1/admin/reload", json={"bundle_dir": str(scoring_bundle_dir)})


def test_a_written_scripts_source_passes_through_the_suggestion_schema() -> None:
    from server.schemas import SuggestionPublic

    written = {"kind": "written", "conversation_id": None, "message_index": None, "file": "l.csv"}
    mined = {"conversation_id": "c-1", "message_index": 2}
    fields = {"id": "sg_1", "script_id": 1, "text": "亲", "action": "close_sale", "score": 0.5}
    fields |= {
        "lift": 1.0,
        "n": 0,
        "reason": "…",
        "template": "亲",
        "needs_edit": False,
        "slots": [],
    }
    for source in (written, mined):
        dumped = SuggestionPublic.model_validate({**fields, "source": source}).model_dump()
        assert dumped["source"] == source
