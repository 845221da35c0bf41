"""Settings of the optional LLM layer, read from ``COPILOT_LLM_*`` environment variables.

==============================  =========  ==================================================
variable                        default    meaning
==============================  =========  ==================================================
``COPILOT_LLM_BACKEND``         ``none``   ``none`` (off), ``openai`` (an OpenAI-compatible
                                           HTTP server) or ``transformers`` (a local model)
``COPILOT_LLM_BASE_URL``        (empty)    ``openai``: the API root, e.g.
                                           ``http://127.0.0.1:8001/v1``
``COPILOT_LLM_MODEL``           (empty)    ``openai``: the model name the server knows;
                                           ``transformers``: the model's local directory
``COPILOT_LLM_API_KEY``         (none)     ``openai``: sent as ``Authorization: Bearer``
``COPILOT_LLM_TIMEOUT_S``       ``60``     seconds one request (or one local generation) may take
``COPILOT_LLM_MAX_CONCURRENCY`` ``4``      requests in flight at once (one local generation)
``COPILOT_LLM_MAX_RETRIES``     ``3``      retries on 429, 5xx, timeouts and lost connections
``COPILOT_LLM_BACKOFF_S``       ``1``      first wait between retries; doubles each time
``COPILOT_LLM_MASK_PII``        ``true``   ``openai``: mask personal data before it is sent
``COPILOT_LLM_DEVICE``          ``auto``   ``transformers``: ``auto``, ``cpu``, ``cuda``, ...
``COPILOT_LLM_DRAFT_BUDGET_S``  ``1.5``    server: seconds ``POST /v1/suggest`` waits for a
                                           draft before answering without it
==============================  =========  ==================================================

Library code never reads these: the CLI (or a server) builds a :class:`LLMSettings` and passes
it to :func:`copilot.llm.build_backend`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BackendKind", "LLMSettings"]

BackendKind = Literal["none", "openai", "transformers"]


class LLMSettings(BaseSettings):
    """Everything the LLM layer is configured with (see the module docstring for the table).

    Example:
        >>> LLMSettings(backend="openai", base_url="http://127.0.0.1:8001/v1", model="qwen2.5-7b")
    """

    model_config = SettingsConfigDict(env_prefix="COPILOT_LLM_", extra="ignore", frozen=True)

    backend: BackendKind = "none"
    base_url: str = ""
    model: str = ""
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_concurrency: int = Field(default=4, ge=1, le=256)
    max_retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=1.0, ge=0, le=60)
    mask_pii: bool = True
    device: str = "auto"
    draft_budget_s: float = Field(default=1.5, gt=0, le=60)

    @property
    def enabled(self) -> bool:
        """Whether an LLM is configured at all (off by default)."""
        return self.backend != "none"
