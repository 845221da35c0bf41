"""The OpenAI-compatible backend against a real local HTTP server with scripted answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing

import pytest

from copilot.errors import ConfigError, LLMBackendError, LLMOutputError
from copilot.llm import LLMSettings, build_backend, summarize
from copilot.llm.remote import OpenAIBackend
from tests.builders import make_conversation
from tests.llm.scripted import Answer, ScriptedLLM

SUMMARY = {"wanted": "M码", "guide_did": "确认有货", "open_items": [], "next_step": "邀请下单"}
CHAT = make_conversation(turns=[("customer", "这件有M码吗"), ("guide", "有的亲")])


def _summary_fields(result: object) -> dict[str, object]:
    return {k: getattr(result, k) for k in SUMMARY}


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(SUMMARY, ensure_ascii=False),
        "```json\n" + json.dumps(SUMMARY, ensure_ascii=False, indent=2) + "\n```",
        "好的，总结如下：\n" + json.dumps(SUMMARY, ensure_ascii=False) + "\n希望有帮助。",
    ],
    ids=["bare", "fenced", "in-prose"],
)
def test_remote_valid_reply_parsed(llm: ScriptedLLM, backend: OpenAIBackend, content: str) -> None:
    llm.push(Answer(content))
    result = summarize(backend, CHAT)
    assert _summary_fields(result) == SUMMARY
    assert result.prompt_version == "summarize.v1"
    assert result.usage.calls == 1 and result.usage.completion_tokens == len(content)
    body = llm.requests[0]
    assert body["model"] == "test-model" and body["temperature"] == 0.0
    assert llm.headers[0]["authorization"] == "Bearer sk-test"


def test_remote_invalid_then_valid_retries_once_with_the_error(
    llm: ScriptedLLM, backend: OpenAIBackend
) -> None:
    llm.push("我觉得顾客想买M码。", SUMMARY)
    result = summarize(backend, CHAT)
    assert _summary_fields(result) == SUMMARY
    assert result.usage.calls == 2
    retry = llm.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "我觉得顾客想买M码。"}
    assert "no JSON object" in retry[-1]["content"]


def test_remote_invalid_twice_raises_a_clear_error(
    llm: ScriptedLLM, backend: OpenAIBackend
) -> None:
    llm.push({"wanted": "M码"}, "not json at all")
    with pytest.raises(
        LLMOutputError, match=r"no valid answer to prompt summarize\.v1 in 2 tries"
    ) as info:
        summarize(backend, CHAT)
    assert info.value.reply == "not json at all"
    assert len(llm.requests) == 2
    assert "guide_did: field is required" in llm.requests[1]["messages"][-1]["content"]


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_remote_retries_429_and_5xx_then_succeeds(
    llm: ScriptedLLM, backend: OpenAIBackend, status: int
) -> None:
    llm.push(Answer("busy", status=status, headers={"Retry-After": "0"}), SUMMARY)
    assert _summary_fields(summarize(backend, CHAT)) == SUMMARY
    assert len(llm.requests) == 2


def test_remote_500_every_time_fails_after_the_bounded_retries(
    llm: ScriptedLLM, backend: OpenAIBackend
) -> None:
    llm.push(*[Answer("boom", status=500)] * 3)
    with pytest.raises(
        LLMBackendError, match=r"failed 3 time\(s\); last failure: HTTP 500: .*boom"
    ):
        summarize(backend, CHAT)
    assert len(llm.requests) == 3  # max_retries=2: one try and two retries, no more


def test_remote_timeout_is_retried(llm: ScriptedLLM, backend: OpenAIBackend) -> None:
    llm.push(Answer(json.dumps(SUMMARY), delay=3.0), SUMMARY)
    assert _summary_fields(summarize(backend, CHAT)) == SUMMARY
    assert len(llm.requests) == 2


def test_remote_timeouts_every_time_raise(llm: ScriptedLLM, llm_url_backend: OpenAIBackend) -> None:
    llm.push(*[Answer("{}", delay=2.0)] * 2)
    with pytest.raises(
        LLMBackendError, match=r"failed 2 time\(s\); last failure: no answer within 0.3 s"
    ):
        summarize(llm_url_backend, CHAT)


@pytest.fixture
def llm_url_backend(llm: ScriptedLLM) -> Iterator[OpenAIBackend]:
    with OpenAIBackend(llm.url, "m", timeout_s=0.3, max_retries=1, backoff_s=0.01) as backend:
        yield backend


@pytest.mark.parametrize(
    ("status", "hint"), [(401, "COPILOT_LLM_API_KEY"), (404, "COPILOT_LLM_BASE_URL")]
)
def test_remote_client_errors_are_not_retried(
    llm: ScriptedLLM, backend: OpenAIBackend, status: int, hint: str
) -> None:
    llm.push(Answer("nope", status=status))
    with pytest.raises(LLMBackendError, match=f"refused the request: HTTP {status}.*{hint}"):
        summarize(backend, CHAT)
    assert len(llm.requests) == 1


def test_remote_unreachable_server_raises_after_retries() -> None:
    backend = OpenAIBackend(
        "http://127.0.0.1:9/v1", "m", timeout_s=0.5, max_retries=1, backoff_s=0.01
    )
    with backend, pytest.raises(LLMBackendError, match="connection failed"):
        backend.complete([{"role": "user", "content": "hi"}])


def test_remote_masks_phone_numbers_before_sending(
    llm: ScriptedLLM, backend: OpenAIBackend
) -> None:
    chat = make_conversation(
        turns=[
            ("customer", "我电话13812345678，全角的是１３９１２３４５６７８，微信abc_123456"),
            ("guide", "好的"),
        ]
    )
    llm.push(SUMMARY)
    summarize(backend, chat)
    sent = llm.sent_text()
    assert "13812345678" not in sent and "13912345678" not in sent and "１３９" not in sent
    assert "abc_123456" not in sent
    assert sent.count("[手机号]") >= 2 and "[微信号]" in sent


def test_remote_masking_can_be_turned_off(llm: ScriptedLLM) -> None:
    settings = LLMSettings(backend="openai", base_url=llm.url, model="m", mask_pii=False)
    llm.push(SUMMARY)
    with closing(build_backend(settings)) as backend:
        summarize(backend, make_conversation(turns=[("customer", "电话13812345678")]))
    assert "13812345678" in llm.sent_text()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, llm: ScriptedLLM) -> None:
    monkeypatch.setenv("COPILOT_LLM_BACKEND", "openai")
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.url)
    monkeypatch.setenv("COPILOT_LLM_MODEL", "env-model")
    monkeypatch.setenv("COPILOT_LLM_API_KEY", "sk-env")
    monkeypatch.setenv("COPILOT_LLM_MAX_CONCURRENCY", "2")
    settings = LLMSettings()
    assert settings.enabled and settings.mask_pii and settings.max_concurrency == 2
    assert "sk-env" not in repr(settings)
    llm.push(SUMMARY)
    with closing(build_backend(settings)) as backend:
        summarize(backend, CHAT)
    assert llm.requests[0]["model"] == "env-model"
    assert llm.headers[0]["authorization"] == "Bearer sk-env"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (LLMSettings(), "no LLM is configured"),
        (LLMSettings(backend="openai", model="m"), "needs COPILOT_LLM_BASE_URL"),
        (LLMSettings(backend="transformers"), "needs COPILOT_LLM_MODEL"),
    ],
    ids=["off", "openai-without-url", "transformers-without-model"],
)
def test_build_backend_refuses_incomplete_settings(settings: LLMSettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_backend(settings)


def test_settings_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BACKEND", "BASE_URL", "MODEL"):
        monkeypatch.delenv(f"COPILOT_LLM_{name}", raising=False)
    assert LLMSettings().backend == "none" and not LLMSettings().enabled
