"""A backend for any OpenAI-compatible chat-completions server (vLLM, llama.cpp, Ollama, ...).

It speaks plain HTTP with httpx (already a dependency): ``POST {base_url}/chat/completions``.
Requests in flight are bounded by a semaphore; 429, 5xx, timeouts and lost connections are
retried with exponential backoff (``Retry-After`` honoured, capped), a bounded number of times,
and then raise :class:`~copilot.errors.LLMBackendError` naming the last failure. Other 4xx
answers are not retried: they mean a wrong URL, model or key.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from copilot.errors import LLMBackendError
from copilot.llm.backend import ChatMessage, Completion
from copilot.text.pii import mask_pii

__all__ = ["OpenAIBackend"]

logger = logging.getLogger(__name__)

_MAX_WAIT_S = 60.0
_HINTS = {
    401: "; check COPILOT_LLM_API_KEY",
    403: "; check COPILOT_LLM_API_KEY",
    404: "; check COPILOT_LLM_BASE_URL (usually ending in /v1) and COPILOT_LLM_MODEL",
}


class _Retryable(Exception):
    """A failure worth another try; ``wait`` is the server's ``Retry-After`` when it sent one."""

    def __init__(self, what: str, wait: float = 0.0) -> None:
        super().__init__(what)
        self.wait = wait


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server.

    Args:
        base_url: the API root (``http://127.0.0.1:8001/v1``).
        model: the model name the server serves.
        api_key: sent as ``Authorization: Bearer``; ``None`` sends none.
        timeout_s: seconds one request may take (per attempt).
        max_concurrency: requests in flight at once, across threads.
        max_retries: retries after the first attempt (0: none).
        backoff_s: the first wait between attempts; it doubles each retry (with jitter).
        mask: applied to chat data by the prompts before rendering (see
            :func:`copilot.llm.backend.mask_personal_data`); when set, every message is also
            passed through :func:`copilot.text.mask_pii` right before it is sent.
        transport: an httpx transport (tests); ``None`` for the network.

    Example:
        >>> backend = OpenAIBackend("http://127.0.0.1:8001/v1", "qwen2.5-7b-instruct")
        >>> backend.complete([{"role": "user", "content": "你好"}], max_tokens=16).text
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_concurrency: int = 4,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        mask: Callable[[str], str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.name = f"openai:{model}@{base_url}"
        self.mask = mask
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._slots = threading.BoundedSemaphore(max_concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            transport=transport,
            limits=httpx.Limits(max_connections=max_concurrency),
        )

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        timeout: float | None = None,
    ) -> Completion:
        """The server's reply to ``messages`` (see :class:`copilot.llm.backend.Backend`).

        Raises:
            LLMBackendError: a non-retryable answer, a malformed body, or failures on every
                attempt.
        """
        outgoing = [
            {"role": m["role"], "content": mask_pii(m["content"])[0] if self.mask else m["content"]}
            for m in messages
        ]
        body = {
            "model": self.model,
            "messages": outgoing,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": False,
        }
        started = time.monotonic()
        with self._slots:
            data = self._post(body, timeout or self.timeout_s)
        return self._completion(data, time.monotonic() - started)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """The JSON body of the first successful attempt."""
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                return self._attempt(body, timeout)
            except _Retryable as failure:
                last = str(failure)
                if attempt == self.max_retries:
                    break
                wait = max(self._backoff(attempt), min(failure.wait, _MAX_WAIT_S))
                logger.warning("%s: %s; retrying in %.1f s", self.name, last, wait)
                time.sleep(wait)
        raise LLMBackendError(
            f"{self.name} failed {self.max_retries + 1} time(s); last failure: {last}. Check "
            "that the server is up and not overloaded, or raise COPILOT_LLM_TIMEOUT_S / "
            "COPILOT_LLM_MAX_RETRIES"
        )

    def _attempt(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            response = self._client.post(self.url, json=body, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"no answer within {timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"connection failed ({type(exc).__name__}: {exc})") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}: {response.text[:200]}", _retry_after(response))
        if status != 200:
            raise LLMBackendError(
                f"{self.name} refused the request: HTTP {status}: {response.text[:200]}"
                f"{_HINTS.get(status, '')}"
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise LLMBackendError(
                f"{self.name} answered HTTP 200 with a body that is not JSON: "
                f"{response.text[:200]!r}"
            ) from exc
        return data if isinstance(data, dict) else {}

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: ``backoff_s * 2**attempt``, times 0.5 to 1."""
        return min(self.backoff_s * 2**attempt, _MAX_WAIT_S) * (0.5 + random.random() / 2)

    def _completion(self, data: dict[str, Any], seconds: float) -> Completion:
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMBackendError(
                f"{self.name} answered without choices[0].message.content: {str(data)[:200]}"
            ) from exc
        usage = data.get("usage") or {}
        return Completion(
            text=str(text),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            seconds=seconds,
        )


def _retry_after(response: httpx.Response) -> float:
    """The ``Retry-After`` header in seconds (0 when absent or a date)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0
