"""The optional LLM layer: drafts, summaries, labels and quality judgements from a language model.

Off by default (``COPILOT_LLM_BACKEND=none``): nothing else in the product imports it, and
everything works without it. Modules:

- ``settings``: :class:`LLMSettings` (``COPILOT_LLM_*``).
- ``backend``: the :class:`Backend` interface, :class:`Completion`, :func:`build_backend`, and
  :func:`mask_personal_data` (what leaves the process for a remote model).
- ``remote``: :class:`OpenAIBackend`, any OpenAI-compatible chat-completions server.
- ``local``: :class:`TransformersBackend`, a causal LM run in this process.
- ``prompts``: the versioned prompt files of ``prompts/``, rendering and reply validation.
- ``tasks``: :func:`draft`, :func:`summarize`, :func:`label`, :func:`judge`.
- ``batch``: labelling many conversations into a CSV, resumable (``copilot label``).
"""

from __future__ import annotations

from copilot.llm.backend import Backend, ChatMessage, Completion, build_backend, mask_personal_data
from copilot.llm.prompts import Prompt, Usage, ask, load_prompt, render
from copilot.llm.settings import LLMSettings
from copilot.llm.tasks import (
    DimensionJudgement,
    Draft,
    Judgement,
    Labels,
    Summary,
    draft,
    judge,
    label,
    summarize,
)

__all__ = [
    "Backend",
    "ChatMessage",
    "Completion",
    "DimensionJudgement",
    "Draft",
    "Judgement",
    "LLMSettings",
    "Labels",
    "Prompt",
    "Summary",
    "Usage",
    "ask",
    "build_backend",
    "draft",
    "judge",
    "label",
    "load_prompt",
    "mask_personal_data",
    "render",
    "summarize",
]
