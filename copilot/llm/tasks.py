"""The LLM tasks: draft a reply, summarise a chat, label messages, judge service quality.

Each task renders its prompt (``prompts/<task>.v<n>.yaml``), asks the backend, and validates the
reply twice over: a pydantic model that refuses any field the schema lacks, and a check of what
only the inputs can tell (a label outside the taxonomy, a message index outside the chat, a
script id that was not offered). An invalid reply is retried once with the problems fed back,
then :class:`~copilot.errors.LLMOutputError` is raised. Every result records the prompt version
and the usage (calls, tokens, seconds).

Example:
    >>> from copilot.llm import LLMSettings, build_backend, summarize
    >>> backend = build_backend(LLMSettings())  # COPILOT_LLM_* from the environment
    >>> summarize(backend, conversation).next_step
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from copilot.errors import InputError
from copilot.llm.backend import Backend
from copilot.llm.prompts import Usage, ask, load_prompt
from copilot.schema import CHINA_TZ, Conversation, Message
from copilot.taxonomy import Taxonomy, default_taxonomy

if TYPE_CHECKING:
    from copilot.scoring.rubric import Rubric

__all__ = [
    "DimensionJudgement",
    "Draft",
    "Judgement",
    "Labels",
    "Summary",
    "draft",
    "judge",
    "label",
    "summarize",
]

LabelTask = Literal["intents", "actions"]
_ROLE = {"intents": "customer", "actions": "guide"}
_WHAT = {"intents": "顾客（customer）消息的意图", "actions": "导购（guide）消息的动作"}


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _DraftReply(_Reply):
    text: str = Field(min_length=1)
    cites: list[int]


class _SummaryReply(_Reply):
    wanted: str
    guide_did: str
    open_items: list[str]
    next_step: str


class _LabelItem(_Reply):
    i: int
    label: str


class _LabelReply(_Reply):
    labels: list[_LabelItem]


class _ScoreItem(_Reply):
    dimension: str
    score: int | None = Field(ge=0, le=100)
    evidence: list[int]
    reason: str


class _JudgeReply(_Reply):
    scores: list[_ScoreItem]


@dataclass(frozen=True)
class Draft:
    """A drafted guide reply, unchecked: the caller runs its fact, compliance and PII checks."""

    text: str
    cites: list[int]
    prompt_version: str
    usage: Usage = field(default_factory=Usage, compare=False)


@dataclass(frozen=True)
class Summary:
    """What the customer wanted, what the guide did, what is open, the next step."""

    wanted: str
    guide_did: str
    open_items: list[str]
    next_step: str
    prompt_version: str
    usage: Usage = field(default_factory=Usage, compare=False)


@dataclass(frozen=True)
class Labels:
    """Labels by message index, every one an id of the taxonomy."""

    labels: dict[int, str]
    prompt_version: str
    usage: Usage = field(default_factory=Usage, compare=False)


@dataclass(frozen=True)
class DimensionJudgement:
    """One dimension: a 0-100 score (``None``: does not apply), the messages cited, why."""

    score: int | None
    evidence: list[int]
    reason: str


@dataclass(frozen=True)
class Judgement:
    """A judgement per quality dimension of the rubric."""

    scores: dict[str, DimensionJudgement]
    prompt_version: str
    usage: Usage = field(default_factory=Usage, compare=False)


def _messages(
    conversation: Conversation | Sequence[Message], with_time: bool = False
) -> list[dict[str, Any]]:
    """The chat as prompt data: ``{"i", "role", "text"[, "time"]}`` per message."""
    messages = conversation.messages if isinstance(conversation, Conversation) else conversation
    out = []
    for i, message in enumerate(messages):
        item: dict[str, Any] = {"i": i, "role": message.role, "text": message.text}
        if with_time and message.ts is not None:
            item["time"] = message.ts.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
        out.append(item)
    return out


def _indexes_known(indexes: Sequence[int], count: int, where: str) -> list[str]:
    """Problems for message indexes outside ``0..count-1``."""
    bad = sorted({i for i in indexes if not 0 <= i < count})
    return (
        [f"{where}: message index(es) {bad} are not in the conversation (0 to {count - 1})"]
        if bad
        else []
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- draft


def _script_data(script: Any) -> dict[str, Any]:
    """A script (``models.scripts.Script``, or a mapping with ``id`` and ``text``) as data."""
    if isinstance(script, Mapping):
        return {"id": int(script["id"]), "text": str(script["text"])}
    return {"id": int(script.id), "text": str(script.text)}


def _profile_data(profile: Any) -> Any:
    """A :class:`copilot.profile.Profile` as its stage and current facts; a mapping as is."""
    if profile is None or isinstance(profile, Mapping):
        return None if profile is None else dict(profile)
    facts = [{"type": f.type, "value": f.value, "whom": f.whom} for f in profile.facts]
    return {"stage": profile.stage, "facts": facts}


def _draft_inputs(
    conversation: Conversation | Sequence[Message],
    scripts: Sequence[Any],
    profile: Any,
    catalog_facts: Sequence[Any] | None,
) -> dict[str, Any]:
    """The draft prompt's inputs: chat, scripts offered, profile and facts as data."""
    facts = [f if isinstance(f, Mapping) else str(f) for f in catalog_facts or ()]
    return {
        "messages": _messages(conversation),
        "scripts": [_script_data(s) for s in scripts],
        "profile": _profile_data(profile),
        "facts": None if catalog_facts is None else facts,
    }


def _check_draft(reply: _DraftReply, inputs: Mapping[str, Any]) -> list[str]:
    offered = {s["id"] for s in inputs["scripts"]}
    unknown = sorted(set(reply.cites) - offered)
    return (
        [f"cites: {unknown} are not ids of the scripts given ({sorted(offered)})"]
        if unknown
        else []
    )


def draft(
    backend: Backend,
    conversation: Conversation | Sequence[Message],
    scripts: Sequence[Any],
    profile: Any = None,
    catalog_facts: Sequence[Any] | None = None,
    *,
    check: Callable[[str], Sequence[str]] | None = None,
    max_tokens: int = 300,
    temperature: float = 0.3,
) -> Draft:
    """Draft the guide's next reply from ``scripts`` and the facts given.

    Args:
        scripts: the scripts the model may use (``Script`` objects or ``{"id", "text"}``).
        profile: a :class:`copilot.profile.Profile` or a mapping of known facts.
        catalog_facts: product and promotion facts (text or mappings).
        check: the caller's checks of a draft text (facts, compliance, personal data): the
            problems it returns are fed back for the one retry, like a schema error.

    Returns:
        The raw draft with the ids of the scripts it cites (always among ``scripts``).

    Raises:
        LLMOutputError: no valid draft in two tries.
    """
    prompt = load_prompt("draft")

    def validate(reply: _DraftReply, inputs: Mapping[str, Any]) -> list[str]:
        return _check_draft(reply, inputs) + list(check(reply.text) if check else [])

    inputs = _draft_inputs(conversation, scripts, profile, catalog_facts)
    reply, usage = ask(
        backend,
        prompt,
        inputs,
        _DraftReply,
        check=validate,
        max_tokens=max_tokens,
        temperature=temperature,
    )
    return Draft(reply.text, reply.cites, prompt.id, usage)


# --------------------------------------------------------------------------- summarize


def summarize(
    backend: Backend, conversation: Conversation | Sequence[Message], *, max_tokens: int = 500
) -> Summary:
    """What the customer wanted, what the guide did, open items and the next step.

    Raises:
        LLMOutputError: no valid summary in two tries.
    """
    prompt = load_prompt("summarize")
    inputs = {"messages": _messages(conversation)}
    reply, usage = ask(backend, prompt, inputs, _SummaryReply, max_tokens=max_tokens)
    return Summary(**reply.model_dump(), prompt_version=prompt.id, usage=usage)


# --------------------------------------------------------------------------- label


def _label_inputs(
    messages: Conversation | Sequence[Message],
    task: str,
    taxonomy: Taxonomy | None,
    targets: Sequence[int] | None,
    examples: Mapping[str, Sequence[str]] | None,
    context: int,
) -> dict[str, Any]:
    if task not in _ROLE:
        raise InputError(f"unknown label task {task!r}; use 'intents' or 'actions'")
    chat = _messages(messages)
    if targets is None:
        wanted = [m["i"] for m in chat if m["role"] == _ROLE[task]]
    else:
        wanted = sorted(set(targets))
    if problems := _indexes_known(wanted, len(chat), "targets"):
        raise InputError(problems[0])
    taxonomy = taxonomy or default_taxonomy()
    shown = examples or {}
    labels = [
        {
            "id": c.id,
            "name": c.name,
            "definition": c.definition,
            "examples": list(shown.get(c.id, ()))[:3],
        }
        for c in (taxonomy.intents if task == "intents" else taxonomy.actions)
    ]
    window = chat[max(0, wanted[0] - context) : wanted[-1] + 1] if wanted else []
    return {"what": _WHAT[task], "labels": labels, "messages": window, "targets": wanted}


def _check_labels(reply: _LabelReply, inputs: Mapping[str, Any]) -> list[str]:
    valid = [choice["id"] for choice in inputs["labels"]]
    problems = [
        f"labels.{n}.label: {_short(item.label)} is not in the label list; use one of: {', '.join(valid)}"
        for n, item in enumerate(reply.labels)
        if item.label not in valid
    ]
    got = [item.i for item in reply.labels]
    if sorted(got) != sorted(inputs["targets"]):
        problems.append(
            f"labels: give exactly one label for each index in targets {list(inputs['targets'])}; got indexes {got}"
        )
    return problems


def label(
    backend: Backend,
    messages: Conversation | Sequence[Message],
    task: LabelTask = "intents",
    taxonomy: Taxonomy | None = None,
    *,
    targets: Sequence[int] | None = None,
    examples: Mapping[str, Sequence[str]] | None = None,
    context: int = 6,
) -> Labels:
    """Label customer intents (``task="intents"``) or guide actions with the taxonomy's ids.

    Args:
        messages: a conversation or its messages; indexes count from 0.
        taxonomy: the labels (ids, Chinese names, definitions); ``None`` for the default.
        targets: the indexes to label; ``None`` for every customer (intents) or guide
            (actions) message. The prompt shows them with ``context`` messages before.
        examples: up to three example texts per label id, shown with the label.

    Returns:
        A label per target index, each an id of the taxonomy.

    Raises:
        InputError: an unknown task or a target outside the conversation.
        LLMOutputError: no valid answer in two tries.
    """
    prompt = load_prompt("label")
    inputs = _label_inputs(messages, task, taxonomy, targets, examples, context)
    if not inputs["targets"]:
        return Labels({}, prompt.id)
    tokens = 60 + 30 * len(inputs["targets"])
    reply, usage = ask(backend, prompt, inputs, _LabelReply, check=_check_labels, max_tokens=tokens)
    return Labels({item.i: item.label for item in reply.labels}, prompt.id, usage)


# --------------------------------------------------------------------------- judge


def _judge_inputs(
    conversation: Conversation | Sequence[Message], rubric: Rubric | None, taxonomy: Taxonomy | None
) -> dict[str, Any]:
    from copilot.scoring.rubric import DIMENSIONS, default_rubric

    weights = (rubric or default_rubric()).weights
    known = {d.id: d for d in (taxonomy or default_taxonomy()).dimensions}
    dimensions = [
        {
            "id": d,
            "name": known[d].name if d in known else d,
            "definition": known[d].definition if d in known else "",
        }
        for d in DIMENSIONS
        if d in weights
    ]
    return {"dimensions": dimensions, "messages": _messages(conversation, with_time=True)}


def _check_judgement(reply: _JudgeReply, inputs: Mapping[str, Any]) -> list[str]:
    wanted = [d["id"] for d in inputs["dimensions"]]
    got = [item.dimension for item in reply.scores]
    problems = []
    if sorted(got) != sorted(wanted):
        problems.append(f"scores: give exactly one item for each dimension {wanted}; got {got}")
    for n, item in enumerate(reply.scores):
        problems += _indexes_known(item.evidence, len(inputs["messages"]), f"scores.{n}.evidence")
    return problems


def judge(
    backend: Backend,
    conversation: Conversation | Sequence[Message],
    rubric: Rubric | None = None,
    taxonomy: Taxonomy | None = None,
    *,
    max_tokens: int = 1500,
) -> Judgement:
    """Score the guide's service on each quality dimension of ``rubric``, citing messages.

    Args:
        rubric: its weighted dimensions are judged; ``None`` for the default rubric.
        taxonomy: names and definitions of the dimensions; ``None`` for the default.

    Returns:
        Per dimension id: a 0-100 score (``None`` when it does not apply), the indexes of the
        messages cited (always inside the conversation) and a one-line reason.

    Raises:
        LLMOutputError: no valid judgement in two tries.
    """
    prompt = load_prompt("judge")
    inputs = _judge_inputs(conversation, rubric, taxonomy)
    reply, usage = ask(
        backend, prompt, inputs, _JudgeReply, check=_check_judgement, max_tokens=max_tokens
    )
    scores = {s.dimension: DimensionJudgement(s.score, s.evidence, s.reason) for s in reply.scores}
    return Judgement(scores, prompt.id, usage)
