from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from copilot.llm.backend import mask_personal_data
from copilot.llm.remote import OpenAIBackend
from tests.llm.scripted import ScriptedLLM, build_tiny_lm, serve


@pytest.fixture(scope="session")
def _llm_server() -> Iterator[ScriptedLLM]:
    with serve(ScriptedLLM()) as llm:
        yield llm


@pytest.fixture
def llm(_llm_server: ScriptedLLM) -> Iterator[ScriptedLLM]:
    """The scripted OpenAI-compatible server, with an empty script and no requests recorded."""
    _llm_server.reset()
    yield _llm_server
    _llm_server.reset()


@pytest.fixture
def backend(llm: ScriptedLLM) -> Iterator[OpenAIBackend]:
    """An HTTP backend on the scripted server: masking on, short timeout, fast backoff."""
    with OpenAIBackend(
        llm.url,
        "test-model",
        api_key="sk-test",
        timeout_s=1.0,
        max_retries=2,
        backoff_s=0.01,
        mask=mask_personal_data,
    ) as client:
        yield client


@pytest.fixture(scope="session", params=[True, False], ids=["chat-template", "plain-join"])
def tiny_lm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random causal LM directory, with and without a chat template."""
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"), chat_template=request.param)
