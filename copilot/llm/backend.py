"""The one small interface every LLM backend implements, and the builder that picks one.

A backend turns chat messages into a :class:`Completion`. What it must not do is decide what
is sent: prompts render the messages (:mod:`copilot.llm.prompts`), and a backend that sends text
out of the process carries a ``mask`` that the prompts apply to every piece of chat data before
it is rendered (see :func:`mask_personal_data`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict

from copilot.errors import ConfigError
from copilot.text import normalize_text
from copilot.text.pii import mask_pii

if TYPE_CHECKING:
    from copilot.llm.settings import LLMSettings

__all__ = [
    "Backend",
    "ChatMessage",
    "Completion",
    "build_backend",
    "mask_personal_data",
]


class ChatMessage(TypedDict):
    """One chat-completion message (OpenAI's shape)."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Completion:
    """A model's reply and what it cost: tokens in and out, and wall-clock seconds."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class Backend(Protocol):
    """What the prompts and tasks need from a model.

    Attributes:
        name: shown in errors and reports (``openai:qwen2.5-7b@http://...``).
        mask: applied to every piece of chat data before it is put into a prompt; set for
            backends that send text out of the process, ``None`` for local ones.
    """

    name: str
    mask: Callable[[str], str] | None

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        timeout: float | None = None,
    ) -> Completion:
        """The model's reply to ``messages``.

        Raises:
            LLMBackendError: the model could not answer (after the backend's retries).
        """
        ...

    def close(self) -> None:
        """Release connections or the model."""
        ...


def mask_personal_data(text: str) -> str:
    """``text`` normalised (full-width digits folded, whitespace collapsed) and with phone
    numbers, WeChat ids, ID and bank card numbers, e-mails, order and express numbers and street
    addresses replaced by placeholders (``[手机号]`` ...), as the text pipeline masks them."""
    return mask_pii(normalize_text(text))[0]


def build_backend(settings: LLMSettings) -> Backend:
    """The backend ``settings`` describe.

    Raises:
        ConfigError: no backend is configured, or a required setting is missing.
    """
    if settings.backend == "openai":
        from copilot.llm.remote import OpenAIBackend

        if not settings.base_url or not settings.model:
            raise ConfigError(
                "COPILOT_LLM_BACKEND=openai needs COPILOT_LLM_BASE_URL (e.g. "
                "http://127.0.0.1:8001/v1) and COPILOT_LLM_MODEL (the model name the server "
                f"serves); got base_url={settings.base_url!r}, model={settings.model!r}"
            )
        return OpenAIBackend(
            settings.base_url,
            settings.model,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            timeout_s=settings.timeout_s,
            max_concurrency=settings.max_concurrency,
            max_retries=settings.max_retries,
            backoff_s=settings.backoff_s,
            mask=mask_personal_data if settings.mask_pii else None,
        )
    if settings.backend == "transformers":
        from copilot.llm.local import TransformersBackend

        if not settings.model:
            raise ConfigError(
                "COPILOT_LLM_BACKEND=transformers needs COPILOT_LLM_MODEL, the directory of a "
                "local causal language model (config.json, tokenizer and weights)"
            )
        return TransformersBackend(settings.model, device=settings.device)
    raise ConfigError(
        "no LLM is configured (COPILOT_LLM_BACKEND is 'none', the default); set "
        "COPILOT_LLM_BACKEND=openai with COPILOT_LLM_BASE_URL and COPILOT_LLM_MODEL, or "
        "COPILOT_LLM_BACKEND=transformers with COPILOT_LLM_MODEL=<model directory>"
    )
