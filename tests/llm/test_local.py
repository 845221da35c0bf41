"""The in-process transformers backend on a tiny random causal LM (built in the test, offline).

Its replies are garbage, so these tests check the plumbing: the prompt is built, the model
generates, the invalid reply is retried once and then raises the clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from copilot.errors import ConfigError, LLMOutputError
from copilot.llm import (
    ChatMessage,
    Completion,
    LLMSettings,
    build_backend,
    draft,
    judge,
    label,
    summarize,
)
from copilot.llm.local import TransformersBackend
from tests.llm.task_inputs import SCRIPTS, chat

MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "只输出 JSON。"},
    {"role": "user", "content": "在吗？这件有M码吗"},
]


class Counting:
    """A backend wrapper that counts calls."""

    def __init__(self, inner: TransformersBackend) -> None:
        self.inner, self.name, self.mask, self.calls = inner, inner.name, inner.mask, 0

    def complete(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Completion:
        self.calls += 1
        return self.inner.complete(messages, **kwargs)

    def close(self) -> None:
        self.inner.close()


def test_local_prompt_uses_the_chat_template_or_a_plain_join(tiny_lm: Path) -> None:
    backend = TransformersBackend(tiny_lm, device="cpu")
    text = backend.prompt_text(MESSAGES)
    if (
        "chat_template" in (tiny_lm / "tokenizer_config.json").read_text("utf-8")
        or (tiny_lm / "chat_template.jinja").exists()
    ):
        assert (
            text == "<s>system\n只输出 JSON。</s>\n<s>user\n在吗？这件有M码吗</s>\n<s>assistant\n"
        )
    else:
        assert text == "system: 只输出 JSON。\n\nuser: 在吗？这件有M码吗\n\nassistant:"


def test_local_completion_reports_tokens_and_time(tiny_lm: Path) -> None:
    backend = TransformersBackend(tiny_lm, device="cpu")
    completion = backend.complete(MESSAGES, max_tokens=12)
    # Character-level tokens, with <s> and </s> one token each.
    assert 0 < completion.prompt_tokens <= len(backend.prompt_text(MESSAGES))
    assert 0 < completion.completion_tokens <= 12 and completion.seconds > 0
    assert isinstance(completion.text, str)


def test_local_timeout_stops_generation(tiny_lm: Path) -> None:
    backend = TransformersBackend(tiny_lm, device="cpu")
    completion = backend.complete(MESSAGES, max_tokens=400, timeout=0.001)
    assert completion.completion_tokens < 400


TASKS: dict[str, Callable[[Any], Any]] = {
    "draft": lambda b: draft(b, chat(), SCRIPTS, max_tokens=16),
    "summarize": lambda b: summarize(b, chat(), max_tokens=16),
    "label": lambda b: label(b, chat()),
    "judge": lambda b: judge(b, chat(), max_tokens=16),
}


@pytest.mark.parametrize("task", TASKS)
def test_local_garbage_is_retried_once_then_a_clear_error(tiny_lm: Path, task: str) -> None:
    backend = Counting(TransformersBackend(tiny_lm, device="cpu"))
    with pytest.raises(
        LLMOutputError,
        match=rf"transformers:.* gave no valid answer to prompt {task}\.v1 in 2 tries",
    ) as info:
        TASKS[task](backend)
    assert backend.calls == 2
    assert info.value.problems


def test_local_backend_from_settings(tiny_lm: Path) -> None:
    backend = build_backend(LLMSettings(backend="transformers", model=str(tiny_lm), device="cpu"))
    assert isinstance(backend, TransformersBackend) and backend.mask is None
    assert backend.complete(MESSAGES, max_tokens=2).completion_tokens <= 2


def test_local_missing_model_directory_is_a_config_error(tmp_path: Path) -> None:
    backend = TransformersBackend(tmp_path / "nowhere", device="cpu")
    with pytest.raises(ConfigError, match="is not a model directory"):
        backend.complete(MESSAGES)
