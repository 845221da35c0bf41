"""Timing: first-response time, reply latencies, and customer messages left without an answer.

Which customer messages need an answer is decided by rules and the intent model together:

1. stickers, emoji and punctuation alone, and acknowledgements (好的 / 嗯嗯 / 收到 / 好的谢谢 / 拜拜)
   never need one, whatever the model says;
2. a message with a question word (吗 / 什么 / 多少 / 怎么 / 有没有 ...) always does;
3. otherwise a message whose intent is one of the rubric's ``no_answer_intents`` (closings,
   small talk) with at least ``no_answer_confidence`` needs none, even with a "？" (in chat that is
   often only a tone: 「太感谢了？？」); every other message does.

A run of customer messages is answered by the next guide message. Latencies count only working
hours (``TimingRules.working_hours``), so a question sent at 23:00 and answered at 09:05 waited
five minutes. A message still waiting when the conversation ends is *unanswered*; one answered
later than its intent's threshold is a *slow reply*. Both raise a timing flag.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from copilot.analyzers.cues import asks_question, is_acknowledgement, is_content_free
from copilot.annotations import Flag, excerpt_of
from copilot.pipeline import Analyzer, Doc
from copilot.prediction import Prediction
from copilot.schema import CHINA_TZ

__all__ = ["Reply", "Timing", "TimingAnalyzer", "TimingRules", "needs_answer", "working_seconds"]


class TimingRules(BaseModel):
    """The timing rules: the rubric's ``timing`` section (:class:`copilot.scoring.rubric.Rubric`).

    Defined here, with the analyzer that reads them, so the analyzers do not depend on scoring.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    working_hours: tuple[int, int] = (0, 24)
    first_response_target_s: float = Field(default=120, gt=0)
    reply_target_s: float = Field(default=300, gt=0)
    unanswered_after_s: float = Field(default=1800, gt=0)
    per_intent_s: dict[str, float] = Field(default_factory=dict)
    no_answer_intents: tuple[str, ...] = ("thanks_closing", "other")
    no_answer_confidence: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _hours(self) -> TimingRules:
        start, end = self.working_hours
        if not 0 <= start < end <= 24:
            raise ValueError(
                f"working_hours must be [start, end] with 0 <= start < end <= 24, got {list(self.working_hours)}"
            )
        return self

    def threshold_for(self, intent: str | None) -> float:
        """Seconds after which a reply to a message of ``intent`` is late."""
        return self.per_intent_s.get(intent or "", self.unanswered_after_s)


@dataclass(frozen=True)
class Reply:
    """A customer message that needed an answer, and the guide message that gave it.

    Attributes:
        message_index: the first customer message of the run still waiting.
        reply_index: the guide message that answered; ``None`` when none did.
        seconds: working-hour seconds waited; ``None`` without timestamps or without a reply.
        threshold_s: the limit for this message's intent.
        intent: the intent that set the threshold.
    """

    message_index: int
    reply_index: int | None
    seconds: float | None
    threshold_s: float
    intent: str | None

    @property
    def late(self) -> bool:
        return self.seconds is not None and self.seconds > self.threshold_s


@dataclass
class Timing:
    """What the timing analyzer found in one conversation."""

    needs_answer: list[bool | None]
    replies: list[Reply] = field(default_factory=list)
    first_response_s: float | None = None
    first_response_index: int | None = None
    flags: list[Flag] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [r.seconds for r in self.replies if r.seconds is not None]

    @property
    def unanswered(self) -> list[Reply]:
        return [r for r in self.replies if r.reply_index is None]

    def summary(self) -> dict[str, Any]:
        lat = self.latencies
        return {
            "first_response_s": _round(self.first_response_s),
            "median_reply_s": _round(statistics.median(lat)) if lat else None,
            "unanswered": len(self.unanswered),
            "late": sum(r.late for r in self.replies),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def working_seconds(start: datetime, end: datetime, hours: tuple[int, int] = (0, 24)) -> float:
    """Seconds from ``start`` to ``end`` that fall inside the daily working ``hours`` (China time).

    Example:
        >>> working_seconds(datetime(2026, 3, 8, 21, 50, tzinfo=CHINA_TZ),
        ...                 datetime(2026, 3, 9, 9, 5, tzinfo=CHINA_TZ), (9, 22))
        900.0
    """
    if end <= start:
        return 0.0
    if tuple(hours) == (0, 24):
        return (end - start).total_seconds()
    start, end = start.astimezone(CHINA_TZ), end.astimezone(CHINA_TZ)
    open_h, close_h = hours
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    last = end.replace(hour=0, minute=0, second=0, microsecond=0)
    per_day = (close_h - open_h) * 3600.0
    total = 0.0
    while day <= last:
        lo = max(start, day + timedelta(hours=open_h))
        hi = min(end, day + timedelta(hours=close_h))
        total += max(0.0, (hi - lo).total_seconds())
        day += timedelta(days=1)
        if day < last and (last - day).days > 2:  # whole days in between, without a long loop
            whole = (last - day).days - 1
            total += whole * per_day
            day += timedelta(days=whole)
    return total


def needs_answer(text: str, prediction: Prediction | None, rules: TimingRules) -> bool:
    """Whether a customer message needs an answer (see the module docstring for the rules)."""
    if is_content_free(text) or is_acknowledgement(text):
        return False
    if asks_question(text, strict=True):
        return True
    if prediction is None:
        return True
    return not (
        prediction.label in rules.no_answer_intents
        and prediction.confidence >= rules.no_answer_confidence
    )


class TimingAnalyzer(Analyzer):
    """Assigns ``timing``: a :class:`Timing` with replies, latencies and timing flags.

    Args:
        rules: the rubric's timing section (thresholds per intent, working hours).
    """

    name = "timing"
    requires = ("labels",)
    assigns = ("timing",)

    def __init__(self, rules: TimingRules) -> None:
        self.rules = rules

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        return [{"timing": self.analyse(doc)} for doc in docs]

    def analyse(self, doc: Doc) -> Timing:
        rules = self.rules
        messages = doc.conversation.messages
        labels: list[Prediction | None] = doc["labels"]
        need: list[bool | None] = [
            needs_answer(m.text, labels[i], rules) if m.role == "customer" else None
            for i, m in enumerate(messages)
        ]
        timing = Timing(need)
        waiting: list[int] = []  # customer messages of the current run that need an answer
        for i, m in enumerate(messages):
            if m.role == "customer" and need[i]:
                waiting.append(i)
            elif m.role == "guide":
                if waiting:
                    timing.replies.append(self._reply(doc, waiting, i))
                    waiting = []
                if timing.first_response_index is None:
                    timing.first_response_index = i
                    first = next((j for j in range(i) if messages[j].role == "customer"), None)
                    if first is not None:
                        timing.first_response_s = self._seconds(messages[first].ts, m.ts)
        if waiting:
            timing.replies.append(self._reply(doc, waiting, None))
        timing.flags = [f for r in timing.replies if (f := self._flag(doc, r)) is not None]
        return timing

    def _seconds(self, start: datetime | None, end: datetime | None) -> float | None:
        if start is None or end is None:
            return None
        return working_seconds(start, end, self.rules.working_hours)

    def _reply(self, doc: Doc, waiting: list[int], reply: int | None) -> Reply:
        messages = doc.conversation.messages
        labels = doc["labels"]
        intents = [labels[i].label if labels[i] else None for i in waiting]
        # The most urgent intent of the run sets the limit (a complaint waits less than a hello).
        threshold, intent = min((self.rules.threshold_for(x), x) for x in intents)
        first = waiting[0]
        seconds = (
            self._seconds(messages[first].ts, messages[reply].ts) if reply is not None else None
        )
        return Reply(first, reply, seconds, threshold, intent)

    def _flag(self, doc: Doc, reply: Reply) -> Flag | None:
        text = doc.conversation.messages[reply.message_index].text
        urgent = reply.threshold_s < self.rules.unanswered_after_s
        if reply.reply_index is None:
            return Flag(
                kind="timing",
                rule="unanswered",
                severity="high" if urgent else "medium",
                message_index=reply.message_index,
                excerpt=excerpt_of(text),
                explanation="顾客的这条消息需要回复，但导购在会话结束前没有回复",
            )
        if reply.late and reply.seconds is not None:
            return Flag(
                kind="timing",
                rule="slow_reply",
                severity="medium" if urgent else "low",
                message_index=reply.message_index,
                excerpt=excerpt_of(text),
                explanation=(
                    f"导购 {_minutes(reply.seconds)} 后才回复（工作时间内），"
                    f"超过 {_minutes(reply.threshold_s)} 的时限"
                ),
            )
        return None


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} 秒"
    if seconds < 3600:
        return f"{seconds / 60:.0f} 分钟"
    return f"{seconds / 3600:.1f} 小时"
