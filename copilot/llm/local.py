"""A backend that runs a causal language model in this process with ``transformers``.

Nothing leaves the machine, so chat data is not masked (``mask`` is ``None`` unless given).
The model loads on the first call, on ``device`` (``auto``: CUDA when available, else CPU).
The prompt is built with the tokenizer's chat template when it has one, else the messages are
joined as ``role: content`` paragraphs ending in ``assistant:``. One generation runs at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from copilot.errors import ConfigError, LLMBackendError
from copilot.llm.backend import ChatMessage, Completion

__all__ = ["TransformersBackend"]


class TransformersBackend:
    """Chat completions from a local causal LM directory (``config.json``, tokenizer, weights).

    Args:
        model_dir: the model's directory (nothing is downloaded).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        mask: applied to chat data before rendering, as for remote backends; ``None``: none.

    Example:
        >>> backend = TransformersBackend("/models/Qwen2.5-1.5B-Instruct", device="cuda")
        >>> backend.complete([{"role": "user", "content": "你好"}], max_tokens=16).text
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "auto",
        mask: Callable[[str], str] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.device = device
        self.mask = mask
        self.name = f"transformers:{self.model_dir}"
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    def prompt_text(self, messages: Sequence[ChatMessage]) -> str:
        """The text the model reads for ``messages`` (chat template, or a plain join)."""
        tokenizer = self._load()[1]
        if getattr(tokenizer, "chat_template", None):
            return str(
                tokenizer.apply_chat_template(
                    [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
                )
            )
        turns = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n\n".join([*turns, "assistant:"])

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        timeout: float | None = None,
    ) -> Completion:
        """The model's continuation of ``messages`` (see :class:`copilot.llm.backend.Backend`);
        ``timeout`` stops generation after that many seconds (``max_time``).

        Raises:
            ConfigError: transformers is not installed or the directory holds no model.
            LLMBackendError: generation failed.
        """
        import torch

        model, tokenizer = self._load()
        text = self.prompt_text(messages)
        encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature} if temperature > 0 else {}
        )
        started = time.monotonic()
        try:
            with self._lock, torch.inference_mode():
                output = model.generate(
                    **encoded,
                    max_new_tokens=max_tokens,
                    max_time=timeout,
                    pad_token_id=_pad_id(tokenizer),
                    **sampling,
                )
        except (RuntimeError, ValueError) as exc:
            raise LLMBackendError(f"{self.name}: generation failed: {exc}") from exc
        prompt_tokens = int(encoded["input_ids"].shape[1])
        new = output[0, prompt_tokens:]
        return Completion(
            text=tokenizer.decode(new, skip_special_tokens=True),
            prompt_tokens=prompt_tokens,
            completion_tokens=int(new.shape[0]),
            seconds=time.monotonic() - started,
        )

    def close(self) -> None:
        """Drop the model (it loads again on the next call)."""
        with self._lock:
            self._model = self._tokenizer = None

    def _load(self) -> tuple[Any, Any]:
        """The model and tokenizer, loaded once."""
        with self._lock:
            if self._model is None:
                self._model, self._tokenizer = _load_model(self.model_dir, self.device)
        return self._model, self._tokenizer


def _load_model(model_dir: Path, device: str) -> tuple[Any, Any]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ConfigError(
            "COPILOT_LLM_BACKEND=transformers needs torch and transformers: "
            "pip install 'sales-copilot[transformers]'"
        ) from exc
    if not (model_dir / "config.json").is_file():
        raise ConfigError(
            f"COPILOT_LLM_MODEL {str(model_dir)!r} is not a model directory (no config.json); "
            "give the local directory of a causal language model"
        )
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model: Any = AutoModelForCausalLM.from_pretrained(model_dir)
        model = model.to(device).eval()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the model in {str(model_dir)!r}: {exc}") from exc
    return model, tokenizer


def _pad_id(tokenizer: Any) -> int | None:
    """The tokenizer's padding id, else its end-of-sequence id (generation needs one)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
