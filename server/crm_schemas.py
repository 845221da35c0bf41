"""Request and response models of the customer endpoints: profiles, the follow-up queue and
tasks (``XCreate`` in, ``XPublic`` out), strict like :mod:`server.schemas`."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from copilot.schema import CHINA_TZ, MAX_MESSAGE_CHARS, check_time

# One definition of "strict request" for every request body of the API.
from server.schemas import _NOT_BLANK, _Request

__all__ = [
    "CustomerPublic",
    "FollowUpActionCreate",
    "FollowUpActionPublic",
    "FollowUpPage",
    "FollowUpPublic",
    "SegmentCreate",
    "TaskCreate",
    "TaskDetailPublic",
    "TaskPage",
    "TaskPublic",
]

MAX_VARIANTS = 5
"""Most script variants of one task."""

Stage = Literal["new", "considering", "bought", "after_sales"]
_Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NOT_BLANK)]
_Script = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=_NOT_BLANK)
]


# --------------------------------------------------------------------------- customers


class _FactPublic(BaseModel):
    type: str
    value: Any
    whom: str
    conversation_id: str
    message_index: int
    at: datetime | None
    text: str


class _ProfileOrder(BaseModel):
    order_id: str | None
    paid_at: datetime | None
    amount: float | None
    product: str | None


class CustomerPublic(BaseModel):
    """A customer's profile from the conversations the key may see: current facts (each with
    the message it came from), superseded ones, stage, last contact, orders, conversations."""

    customer_id: str
    stage: Stage
    last_contact: datetime | None
    facts: list[_FactPublic]
    superseded: list[_FactPublic]
    orders: list[_ProfileOrder]
    conversations: list[str]


# --------------------------------------------------------------------------- follow-ups


class _Trigger(BaseModel):
    conversation_id: str | None
    message_index: int | None
    at: datetime
    text: str


class FollowUpPublic(BaseModel):
    """An entry of the queue: whom to contact, why, from when (``opens``) and by when
    (``due``), and a first message (``needs_edit`` with the ``slots`` the guide fills in)."""

    id: str
    customer_id: str
    guide_id: str | None
    store_id: str | None
    reason: Literal["unanswered", "come_back", "hesitated", "after_sales_care"]
    title: str
    why: str
    opens: date
    due: date
    overdue: bool
    message: str
    needs_edit: bool
    slots: list[str]
    trigger: _Trigger


class FollowUpPage(BaseModel):
    """The day's queue, most urgent first."""

    date: date
    total: int
    items: list[FollowUpPublic]


class FollowUpActionCreate(_Request):
    """``POST /v1/followups/{id}``: ``done``; ``snoozed`` with ``until`` (a later day, when the
    entry comes back); or ``dismissed`` with a ``reason``."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"status": {"const": "dismissed"}}},
                    "then": {
                        "properties": {"reason": {"type": "string", "pattern": _NOT_BLANK}},
                        "required": ["reason"],
                    },
                },
                {
                    "if": {"properties": {"status": {"const": "snoozed"}}},
                    "then": {"required": ["until"]},
                    "else": {"not": {"required": ["until"]}},
                },
            ]
        }
    )

    status: Literal["done", "snoozed", "dismissed"]
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    # Not strict: JSON carries a day as a string.
    until: date | None = Field(default=None, strict=False, description="YYYY-MM-DD")

    @model_validator(mode="after")
    def _fields_of_status(self) -> FollowUpActionCreate:
        if self.status == "dismissed" and not (self.reason or "").strip():
            raise ValueError("status 'dismissed' needs a reason: why there is no follow-up")
        if self.status == "snoozed" and self.until is None:
            raise ValueError("status 'snoozed' needs until: the day the entry comes back")
        if self.status != "snoozed" and self.until is not None:
            raise ValueError(f"until is only for status 'snoozed', not {self.status!r}")
        return self


class FollowUpActionPublic(BaseModel):
    """The action stored; ``due`` is the entry's due day, ``replaced`` whether an earlier
    action on the entry was replaced."""

    id: str
    status: Literal["done", "snoozed", "dismissed"]
    reason: str | None
    until: date | None
    customer_id: str
    guide_id: str | None
    store_id: str | None
    due: date
    replaced: bool


# --------------------------------------------------------------------------- tasks

_DAY = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")


class SegmentCreate(_Request):
    """Which customers a task targets; every filter given must hold (:class:`copilot.tasks.
    Segment`)."""

    asked_about: list[_Name] = Field(default_factory=list, max_length=50)
    within_days: int | None = Field(default=None, ge=0, le=3660)
    bought: bool | None = None
    stages: list[Stage] = Field(default_factory=list)
    stores: list[_Name] = Field(default_factory=list, max_length=1000)
    guides: list[_Name] = Field(default_factory=list, max_length=10_000)


class TaskCreate(_Request):
    """``POST /v1/tasks``: a title, 1 to 5 script variants, the segment, and the window.

    ``starts`` and ``deadline`` are ISO date-times (without a zone: China time) or days: a
    ``starts`` day begins at its midnight, a ``deadline`` day includes that whole day.
    """

    title: _Name
    variants: list[_Script] = Field(min_length=1, max_length=MAX_VARIANTS)
    segment: SegmentCreate = Field(default_factory=SegmentCreate)
    starts: datetime = Field(strict=False)
    deadline: datetime = Field(strict=False)

    @field_validator("deadline", mode="before")
    @classmethod
    def _whole_day(cls, value: Any) -> Any:
        if isinstance(value, str) and _DAY.fullmatch(value):
            end = date.fromisoformat(value.strip()) + timedelta(days=1)
            return datetime.combine(end, datetime.min.time(), tzinfo=CHINA_TZ)
        return value

    @field_validator("starts", "deadline")
    @classmethod
    def _in_range(cls, value: datetime) -> datetime:
        return check_time(value)

    @model_validator(mode="after")
    def _window(self) -> TaskCreate:
        if self.deadline <= self.starts:
            raise ValueError(
                f"deadline ({self.deadline.isoformat()}) is not after starts "
                f"({self.starts.isoformat()})"
            )
        return self


class _SegmentPublic(BaseModel):
    asked_about: list[str]
    within_days: int | None
    bought: bool | None
    stages: list[Stage]
    stores: list[str]
    guides: list[str]


class TaskPublic(BaseModel):
    """A stored task; ``stores`` are the creating key's stores (empty: an admin's, every
    store)."""

    task_id: str
    title: str
    variants: list[str]
    segment: _SegmentPublic
    stores: list[str]
    starts: datetime
    deadline: datetime
    created_at: datetime


class TaskPage(BaseModel):
    """A page of tasks, newest first, and the total in the key's scope."""

    total: int
    limit: int
    offset: int
    items: list[TaskPublic]


class _TargetPublic(BaseModel):
    customer_id: str
    guide_id: str | None
    store_id: str | None
    executed: bool
    executed_at: datetime | None
    message: str | None
    similarity: float
    replied: bool
    converted: bool
    conversation_id: str | None


class _Counts(BaseModel):
    targeted: int
    executed: int
    execution_rate: float | None
    replied: int
    converted: int
    conversion_rate: float | None


class _Summary(BaseModel):
    overall: _Counts
    guides: dict[str, _Counts]
    stores: dict[str, _Counts]


class TaskDetailPublic(TaskPublic):
    """A task with the targets the key may see (what became of each) and their summary
    overall, per guide and per store."""

    targets: list[_TargetPublic]
    summary: _Summary
