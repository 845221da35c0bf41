"""Versioned prompts: load them from ``prompts/``, render them, and validate what comes back.

Each task has one YAML file per version, ``prompts/<task>.v<version>.yaml``, holding
``task``, ``version``, ``description``, ``inputs`` (name -> meaning), ``output`` (the JSON Schema
of the reply), ``system`` and ``user`` (Jinja2 templates) and ``examples`` (``inputs`` for the
user template and the ``output`` expected). The loader checks that the templates use exactly the
declared inputs and that every example gives the user template's inputs; the files are never
written by code.

Chat is data, never instructions. Templates put every piece of chat (messages, scripts, facts)
through the ``data`` filter, inside tags such as ``<chat>...</chat>``: each string is first
passed through the backend's ``mask`` (personal data out, for remote backends), then the value is
written as JSON with ``<``, ``>`` and ``&`` escaped, so a customer who types ``</chat>`` cannot
close the block. The system instructions say that what is inside the tags is data.

:func:`ask` renders, calls the backend, extracts the JSON object of the reply (bare, in a
```` ```json ```` fence, or inside prose), validates it with a pydantic model (unknown fields are
refused) and a task check, and on failure asks once more with the problems fed back; after that
it raises :class:`~copilot.errors.LLMOutputError`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from copilot.errors import ConfigError, LLMOutputError
from copilot.llm.backend import Backend, ChatMessage, Completion

__all__ = [
    "PROMPTS_DIR",
    "Check",
    "Example",
    "Prompt",
    "Usage",
    "ask",
    "extract_json",
    "load_prompt",
    "render",
]

logger = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
"""The repository's ``prompts/`` directory."""

_FILE = re.compile(r"^(?P<task>[a-z_]+)\.v(?P<version>[0-9]+)\.yaml$")

OutputT = TypeVar("OutputT", bound=BaseModel)
Check = Callable[[Any, Mapping[str, Any]], list[str]]
"""A task's own validation: ``(parsed output, the inputs it answers) -> problems`` (none: ok)."""


class Example(BaseModel):
    """A worked example: inputs of the user template and the reply expected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: dict[str, Any]
    output: dict[str, Any]


class Prompt(BaseModel):
    """One prompt file, validated (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    version: int = Field(ge=1)
    description: str
    inputs: dict[str, str]
    output: dict[str, Any]
    system: str
    user: str
    examples: tuple[Example, ...] = ()

    @property
    def id(self) -> str:
        """``<task>.v<version>``, recorded with every result."""
        return f"{self.task}.v{self.version}"


@dataclass
class Usage:
    """What a task cost: model calls, tokens in and out, seconds waiting for the model."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, completion: Completion) -> None:
        self.calls += 1
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.seconds += completion.seconds

    def merge(self, other: Usage) -> None:
        """Add another task's usage to this one."""
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.seconds += other.seconds


def load_prompt(task: str, version: int | None = None, directory: Path | None = None) -> Prompt:
    """The prompt of ``task`` (its newest version unless ``version`` is given).

    Raises:
        ConfigError: no such file, or a file that is not a valid prompt.
    """
    return _load(task, version, (directory or PROMPTS_DIR).resolve())


@cache
def _load(task: str, version: int | None, directory: Path) -> Prompt:
    found = {
        int(m["version"]): path
        for path in directory.glob(f"{task}.v*.yaml")
        if (m := _FILE.match(path.name)) and m["task"] == task
    }
    if not found or (version is not None and version not in found):
        have = ", ".join(f"v{v}" for v in sorted(found)) or "none"
        raise ConfigError(
            f"no prompt file {task}.v{version or '<n>'}.yaml in {str(directory)!r} "
            f"(versions found: {have})"
        )
    path = found[version or max(found)]
    try:
        prompt = Prompt.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"invalid prompt file {str(path)!r}: {exc}") from exc
    if (prompt.task, prompt.version) != (task, int(_FILE.match(path.name)["version"])):  # type: ignore[index]
        raise ConfigError(
            f"prompt file {str(path)!r} says task {prompt.task!r} version {prompt.version}; "
            "the file name must match (<task>.v<version>.yaml)"
        )
    _check_placeholders(prompt, path)
    return prompt


def _check_placeholders(prompt: Prompt, path: Path) -> None:
    """The templates use exactly the declared inputs; examples give the user template's."""
    env = _env()  # first: it names the extra to install when jinja2 is missing
    from jinja2 import TemplateSyntaxError, meta

    try:
        used = {
            n: meta.find_undeclared_variables(env.parse(getattr(prompt, n)))
            for n in ("system", "user")
        }
    except TemplateSyntaxError as exc:
        raise ConfigError(f"prompt file {str(path)!r}: template error: {exc}") from exc
    if used["system"] | used["user"] != set(prompt.inputs):
        raise ConfigError(
            f"prompt file {str(path)!r}: the templates use {sorted(used['system'] | used['user'])} "
            f"but the inputs declared are {sorted(prompt.inputs)}"
        )
    for n, example in enumerate(prompt.examples):
        if set(example.inputs) != used["user"]:
            raise ConfigError(
                f"prompt file {str(path)!r}: example {n} gives {sorted(example.inputs)}; the user "
                f"template needs {sorted(used['user'])}"
            )


@cache
def _env() -> Any:
    """The one Jinja2 environment: strict about undefined names, with the ``data`` filter."""
    try:
        from jinja2 import Environment, StrictUndefined, pass_context
    except ImportError as exc:
        raise ConfigError("the LLM layer needs jinja2: pip install 'sales-copilot[llm]'") from exc

    @pass_context
    def data(context: Any, value: Any) -> str:
        return _as_data(value, context.get("_mask"))

    env = Environment(
        undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["data"] = data
    return env


def _as_data(value: Any, mask: Callable[[str], str] | None) -> str:
    """``value`` as JSON that cannot close a tag: strings masked, ``<>&`` escaped; a list of
    objects is written one object per line."""
    value = _masked(value, mask)
    if isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value):
        text = "[\n" + ",\n".join(json.dumps(v, ensure_ascii=False) for v in value) + "\n]"
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _masked(value: Any, mask: Callable[[str], str] | None) -> Any:
    if mask is None:
        return value
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {k: _masked(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v, mask) for v in value]
    return value


def render(
    prompt: Prompt,
    inputs: Mapping[str, Any],
    *,
    mask: Callable[[str], str] | None = None,
    examples: Sequence[Example] | None = None,
) -> list[ChatMessage]:
    """The chat messages of ``prompt`` for ``inputs``: the system instructions with the output
    schema, each example as a user/assistant pair, then the user message.

    Args:
        mask: applied to every string the ``data`` filter writes (see the module docstring).
        examples: the examples to show; ``None`` for all of the prompt's.

    Raises:
        ConfigError: ``inputs`` lacks a declared input or names an unknown one.
    """
    if set(inputs) != set(prompt.inputs):
        raise ConfigError(
            f"prompt {prompt.id} takes inputs {sorted(prompt.inputs)}, got {sorted(inputs)}"
        )
    env = _env()
    schema = json.dumps(prompt.output, ensure_ascii=False)
    system = env.from_string(prompt.system).render(**inputs, _mask=mask).strip()
    messages: list[ChatMessage] = [
        {"role": "system", "content": f"{system}\n\n{_OUTPUT_RULE}\n{schema}"}
    ]
    user = env.from_string(prompt.user)
    for example in prompt.examples if examples is None else examples:
        messages.append(
            {"role": "user", "content": user.render(**example.inputs, _mask=mask).strip()}
        )
        messages.append(
            {"role": "assistant", "content": json.dumps(example.output, ensure_ascii=False)}
        )
    messages.append({"role": "user", "content": user.render(**inputs, _mask=mask).strip()})
    return messages


_OUTPUT_RULE = (
    "输出要求：只输出一个 JSON 对象，不要输出任何其他文字。"
    "它必须符合下面的 JSON Schema，不得包含 schema 以外的字段："
)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def extract_json(text: str) -> dict[str, Any]:
    """The JSON object in a model's reply: the whole reply, a fenced block, or the first object
    that parses inside prose.

    Raises:
        ValueError: no JSON object in ``text``.
    """
    candidates = [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError("the reply holds no JSON object; answer with one JSON object only")


def _problems(
    reply: str, model: type[OutputT], check: Check | None, inputs: Mapping[str, Any]
) -> tuple[OutputT | None, list[str]]:
    """The reply parsed and validated, or ``None`` and what is wrong with it."""
    try:
        output = model.model_validate(extract_json(reply))
    except ValueError as exc:  # ValidationError is a ValueError
        if isinstance(exc, ValidationError):
            return None, [_error_line(e) for e in exc.errors(include_url=False)[:8]]
        return None, [str(exc)]
    problems = check(output, inputs) if check else []
    return (None, problems) if problems else (output, [])


def _error_line(error: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in error["loc"]) or "(the object)"
    if error["type"] == "extra_forbidden":
        return f"{loc}: unknown field; only the schema's fields are allowed"
    if error["type"] == "missing":
        return f"{loc}: field is required"
    got = json.dumps(error.get("input"), ensure_ascii=False, default=str)
    return f"{loc}: {error['msg']} (got {got[:80]})"


def _valid_examples(
    prompt: Prompt, model: type[BaseModel], check: Check | None, inputs: Mapping[str, Any]
) -> list[Example]:
    """The prompt's examples whose output passes the same validation as a reply would (a brand
    taxonomy drops examples that use labels it lacks)."""
    kept = []
    for example in prompt.examples:
        output, problems = _problems(
            json.dumps(example.output), model, check, {**inputs, **example.inputs}
        )
        if output is None:
            logger.debug("prompt %s: example dropped: %s", prompt.id, "; ".join(problems))
        else:
            kept.append(example)
    return kept


def ask(
    backend: Backend,
    prompt: Prompt,
    inputs: Mapping[str, Any],
    model: type[OutputT],
    *,
    check: Check | None = None,
    max_tokens: int = 512,
    temperature: float = 0.0,
) -> tuple[OutputT, Usage]:
    """Render ``prompt`` for ``inputs``, ask ``backend``, and return the validated reply.

    An invalid reply (no JSON object, a field the schema lacks, a wrong type, a problem
    ``check`` finds) is answered once with the problems, and the model asked again.

    Returns:
        The reply as ``model`` and the usage of the calls made.

    Raises:
        LLMOutputError: the second reply is invalid too (the message lists why).
        LLMBackendError: the backend failed.
    """
    examples = _valid_examples(prompt, model, check, inputs)
    messages = render(prompt, inputs, mask=backend.mask, examples=examples)
    usage = Usage()
    for attempt in (1, 2):
        completion = backend.complete(messages, max_tokens=max_tokens, temperature=temperature)
        usage.add(completion)
        output, problems = _problems(completion.text, model, check, inputs)
        if output is not None:
            return output, usage
        logger.info("prompt %s: invalid reply (attempt %d): %s", prompt.id, attempt, problems)
        messages = [
            *messages,
            {"role": "assistant", "content": completion.text},
            {
                "role": "user",
                "content": _RETRY.format(problems="\n".join(f"- {p}" for p in problems)),
            },
        ]
    raise LLMOutputError(
        f"{backend.name} gave no valid answer to prompt {prompt.id} in 2 tries: "
        f"{'; '.join(problems)}; last reply: {completion.text[:200]!r}",
        reply=completion.text,
        problems=tuple(problems),
    )


_RETRY = "你上一条回复无效：\n{problems}\n请改正以上问题，重新输出，只输出一个符合 JSON Schema 的 JSON 对象。"
