"""Conversation, Message, Outcome and Labels: the types every component passes around.

The JSON shape is the canonical conversation JSONL of ``docs/formats.md``::

    {"conversation_id": "c-001", "guide_id": "g-12", "customer_id": "u-9", "store_id": "s-3",
     "channel": "wecom",
     "messages": [{"role": "customer", "text": "在吗？这件有M码吗", "ts": "2026-03-08T10:01:02+08:00"},
                  {"role": "guide", "text": "亲，在的～M码有货哦", "ts": "2026-03-08T10:01:40+08:00"}],
     "outcome": {"converted": true, "order_amount": 399.0},
     "labels": {"intents": {"0": "stock"}, "actions": {"1": "logistics_info"}},
     "meta": {"synthetic": true}}

Unknown fields are refused (custom data belongs in ``meta``). Timestamps are ISO 8601 or epoch
milliseconds; a timestamp without a zone is read as China time (UTC+08:00), and one outside the
years 1970 to 2100 (China time) is refused (:func:`check_time`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "CHINA_TZ",
    "EARLIEST_TIME",
    "LATEST_TIME",
    "MAX_MESSAGE_CHARS",
    "Conversation",
    "Labels",
    "Message",
    "Outcome",
    "Role",
    "check_time",
    "china_time",
    "format_errors",
    "format_validation_error",
]

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_MESSAGE_CHARS = 20_000
"""Default longest message accepted; pass ``context={"max_message_chars": n}`` to change it."""

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=CHINA_TZ)
LATEST_TIME = datetime(2101, 1, 1, tzinfo=CHINA_TZ)
"""Timestamps lie in ``[EARLIEST_TIME, LATEST_TIME)``: the years 1970 to 2100, China time."""

Role = Literal["customer", "guide", "system"]


def china_time(moment: datetime) -> datetime:
    """``moment`` with a zone: a naive time is read as China time (as message ``ts`` are)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=CHINA_TZ)


def check_time(value: datetime) -> datetime:
    """``value`` if it lies in the years 1970 to 2100 (China time); a naive one is China time.

    Everything downstream converts timestamps to China time and adds days to them (windows,
    trends), which fails past ``datetime``'s years 1 to 9999: ``9999-12-31T23:59:59Z`` is year
    10000 in China. Messages, orders and the server's ``since``/``until`` all pass through here.

    Raises:
        ValueError: outside the range (the message shows the value and the range).
    """
    aware = value if value.tzinfo is not None else value.replace(tzinfo=CHINA_TZ)
    # Comparing aware datetimes never converts them, so it cannot overflow as astimezone would.
    if not EARLIEST_TIME <= aware < LATEST_TIME:
        raise ValueError(
            f"timestamp {value.isoformat()} is outside the supported range, the years 1970 to "
            "2100 (China time); check its year and time zone"
        )
    return aware


class Message(BaseModel):
    """One chat message. ``role`` is who sent it; ``system`` messages are kept but not scored."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    text: str = Field(
        # What _text_present checks, declared for the JSON schema (and so /openapi.json): the
        # validator keeps its clearer message, and the CLI can raise the length limit.
        json_schema_extra={"minLength": 1, "maxLength": MAX_MESSAGE_CHARS, "pattern": r"\S"},
    )
    ts: datetime | None = Field(
        default=None,
        description="ISO 8601 (China time without a zone) or epoch milliseconds, in the years "
        "1970 to 2100.",
    )

    @field_validator("text")
    @classmethod
    def _text_present(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError("message has no text (empty or only whitespace)")
        context = info.context or {}
        limit = context.get("max_message_chars", MAX_MESSAGE_CHARS)
        if len(value) > limit:
            # Where the limit can be raised depends on the caller (a CLI flag, a reader
            # option); an API client cannot raise it, so by default the message says nothing.
            hint = context.get("limit_hint")
            raise ValueError(
                f"message text is {len(value):,} characters; the limit is {limit:,}"
                + (f" ({hint})" if hint else "; split the message or shorten it")
            )
        return value

    @field_validator("ts")
    @classmethod
    def _zone(cls, value: datetime | None) -> datetime | None:
        return None if value is None else check_time(value)


class Outcome(BaseModel):
    """What the conversation led to."""

    model_config = ConfigDict(extra="forbid")

    converted: bool
    order_amount: float | None = Field(default=None, ge=0)


class Labels(BaseModel):
    """Gold labels keyed by message index: intents of customer messages, actions of guide ones."""

    model_config = ConfigDict(extra="forbid")

    # Keys are message indexes; JSON object keys are strings, so the schema says which ones.
    intents: dict[int, str] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": "^[0-9]+$"}}
    )
    actions: dict[int, str] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": "^[0-9]+$"}}
    )


class Conversation(BaseModel):
    """A guide–customer conversation with optional outcome, labels and free ``meta``."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: str = Field(min_length=1)
    guide_id: str | None = None
    customer_id: str | None = None
    store_id: str | None = None
    channel: str | None = None
    messages: list[Message] = Field(min_length=1)
    outcome: Outcome | None = None
    labels: Labels | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("conversation_id", "guide_id", "customer_id", "store_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any, info: ValidationInfo) -> Any:
        # Exports often carry numeric ids; they are identifiers, not numbers. A strict subclass
        # (the API's request bodies) refuses them, as it refuses every other wrong type.
        if (info.config or {}).get("strict"):
            return value
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("meta")
    @classmethod
    def _meta_storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        # JSON allows any integer; the database's JSON and orjson stop at 64 bits.
        def check(item: Any, where: str) -> None:
            if isinstance(item, int) and not isinstance(item, bool):
                if not -(2**63) <= item < 2**64:
                    raise ValueError(
                        f"{where} is an integer too large to store ({str(item)[:20]}…); "
                        "send it as a string"
                    )
            elif isinstance(item, dict):
                for key, inner in item.items():
                    check(inner, f"{where}.{key}")
            elif isinstance(item, list):
                for i, inner in enumerate(item):
                    check(inner, f"{where}[{i}]")

        check(value, "meta")
        return value

    @model_validator(mode="after")
    def _labels_point_at_messages(self) -> Conversation:
        if self.labels is None:
            return self
        n = len(self.messages)
        for kind, role, table in (
            ("intents", "customer", self.labels.intents),
            ("actions", "guide", self.labels.actions),
        ):
            for index in table:
                if not 0 <= index < n:
                    raise ValueError(
                        f"labels.{kind} has message index {index}, but the conversation has "
                        f"{n} messages (valid indexes 0..{n - 1})"
                    )
                if self.messages[index].role != role:
                    raise ValueError(
                        f"labels.{kind}[{index}] labels a {self.messages[index].role} message; "
                        f"{kind} label {role} messages only"
                    )
        return self

    def to_json(self) -> bytes:
        """Canonical JSON (one line, UTF-8, no ``null`` fields)."""
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "record"


def format_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """One readable line per problem: the field path, what is expected, and the value received.

    Example: ``messages[2].role: input should be 'customer', 'guide' or 'system' (got 'bot')``.
    """
    return format_errors(exc.errors(include_url=False), limit)


def format_errors(errors: Sequence[Mapping[str, Any]], limit: int = 3) -> str:
    """:func:`format_validation_error` for a list of pydantic error dicts (``exc.errors()``).

    The server uses it for FastAPI's request validation errors, whose ``loc`` it first strips
    of the ``body`` prefix.
    """
    parts = []
    for err in errors[:limit]:
        msg = err["msg"]
        msg = msg[0].lower() + msg[1:] if msg else msg
        msg = msg.removeprefix("value error, ")
        loc = _loc(err["loc"])
        if err["type"] == "missing":
            parts.append(f"{loc}: field is required")
        elif err["type"] == "extra_forbidden":
            parts.append(f"{loc}: unknown field (put custom data under 'meta')")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {_short(got)})"
            parts.append(f"{loc}: {msg}{shown}")
    more = len(errors) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
