"""The optional LLM layer: drafts, summaries, labels and quality judgements from a language model.

Off by default (``COPILOT_LLM_BACKEND=none``), and everything works without it: the server
calls a model only for a draft asked for with ``draft: true`` or a summary asked for by a
supervisor, and only when one is configured. Modules:

- ``settings``: :class:`LLMSettings` (``COPILOT_LLM_*``).
- ``backend``: the :class:`Backend` interface, :class:`Completion`, :func:`build_backend`, and
  :func:`mask_personal_data` (what leaves the process for a remote model).
- ``remote``: :class:`OpenAIBackend`, any OpenAI-compatible chat-completions server.
- ``local``: :class:`TransformersBackend`, a causal LM run in this process.
- ``prompts``: the versioned prompt files of ``prompts/``, rendering and reply validation.
- ``tasks``: :func:`draft`, :func:`summarize`, :func:`label`, :func:`judge`.
- ``checks``: :class:`~copilot.llm.checks.ReplyCheck`, the checks a draft must pass (facts,
  compliance, personal data), as every suggestion does.
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
