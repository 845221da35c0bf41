"""Fixtures of the batch tests: corpora on disk and a stand-in bundle for the mechanics tests."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from copilot.io import write_conversations
from copilot.synth import generate
from tests.batch.stubs import make_stub_bundle
from tests.builders import conversation_dict


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 generated conversations, canonical JSONL."""
    path = tmp_path_factory.mktemp("batch-corpus") / "corpus.jsonl"
    write_conversations(path, generate(120, seed=41))
    return path


@pytest.fixture(scope="session")
def stub_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_stub_bundle(tmp_path_factory.mktemp("stub-bundle") / "stub")


BROKEN_LINES: list[bytes] = [
    orjson.dumps(conversation_dict("ok-1")),
    b'{"conversation_id": "bad-json", "messages": [',  # cut short
    orjson.dumps(conversation_dict("bad-role", turns=[("shopkeeper", "hi")])),
    orjson.dumps(conversation_dict("empty", turns=[]) | {"messages": []}),
    orjson.dumps({k: v for k, v in conversation_dict("x").items() if k != "conversation_id"}),
    orjson.dumps(conversation_dict("ok-2")),
    b"",  # blank: skipped, not counted
    orjson.dumps(conversation_dict("boom", turns=[("customer", "BOOM 在吗"), ("guide", "在的")])),
    b"not json at all",
    orjson.dumps(conversation_dict("ok-3")),
]
"""A file with every kind of bad record; ``boom`` reads fine but fails in the stand-in scorer."""


@pytest.fixture
def broken_path(tmp_path: Path) -> Path:
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"\n".join(BROKEN_LINES) + b"\n")
    return path
