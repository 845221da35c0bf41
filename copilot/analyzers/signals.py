"""Evidence signals: what a conversation itself tells about how the customer felt served.

A supervisor who rates a conversation reacts to more than sales craft: how the customer's mood
went, whether they had to ask again, how the conversation ended, how long the replies were. Each
signal is one such observation, read from the earlier annotations (sentiment, timing, intents) and
the text, and tied to the message it was seen in. A signal is an observation, not a verdict: the
rubric's ``experience`` section gives each one its points (``copilot calibrate`` fits them to
supervisors' ratings) and turns them into the 顾客体验 dimension.

=========================  ==========================================================  =======
signal                     value of one occurrence                                     at most
=========================  ==========================================================  =======
end_sentiment              sentiment (-1..1) of the customer's last message            1
lowest_sentiment           the customer's lowest sentiment (-1..1)                     1
negative_messages          1 per customer message with sentiment <= -0.3               3
thanks_at_end              1: the customer's last message, after a reply, thanks       1
question_at_end            1: the customer's last message, after a reply, asks         1
                           (whether or not the guide answered it: they left asking)
unanswered                 1 per customer message left without a reply                 3
follow_ups                 1 per customer message that needs an answer after the       5
                           guide's first reply (the customer had to come back)
repeated_questions         1 per customer message that repeats an earlier one after    3
                           a reply (character-pair overlap >= 0.5)
complaints                 1 per customer message of a complaint intent                3
apologies                  1 per guide message that apologises                         3
guide_questions            1 per guide message that asks the customer something        3
late_replies               1 per reply later than the rubric's limit (needs timestamps) 3
guide_reply_length         the guide's average reply in tens of characters (a reply    -
                           counts up to 200); each reply cites its share
customer_message_length    the same for the customer's messages (up to 300 each)       -
=========================  ==========================================================  =======

Example:
    >>> docs = Pipeline([LabelAnalyzer(bundle), SentimentAnalyzer(),
    ...                  TimingAnalyzer(rubric.timing), SignalsAnalyzer(rubric.experience)])(convs)
    >>> docs[0]["signals"].totals()
    {'end_sentiment': 0.62, 'thanks_at_end': 1.0, 'guide_reply_length': 2.4, ...}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from copilot.analyzers.cues import apologises, asks_question, thanks
from copilot.annotations import excerpt_of
from copilot.pipeline import Analyzer, Doc
from copilot.text import normalize_text

if TYPE_CHECKING:
    from copilot.analyzers.timing import Timing
    from copilot.prediction import Prediction
    from copilot.schema import Message

__all__ = [
    "SIGNALS",
    "SIGNAL_NAMES",
    "Signal",
    "SignalRules",
    "SignalSpec",
    "Signals",
    "SignalsAnalyzer",
]


class SignalRules(Protocol):
    """What the signals read of the rubric's experience section
    (:class:`copilot.scoring.rubric.ExperienceRules` is one): which intents count as what."""

    @property
    def complaint_intents(self) -> tuple[str, ...]:
        """Customer intents that count as a complaint."""
        ...

    @property
    def thanks_intents(self) -> tuple[str, ...]:
        """Customer intents that count as thanks at the end."""
        ...


@dataclass(frozen=True)
class SignalSpec:
    """One kind of signal: its id, its Chinese name, what one unit of its value is, and how many
    occurrences count at most (``None``: a single value, or shares of an average)."""

    name: str
    label: str
    unit: str
    cap: int | None = None

    @property
    def describe(self) -> str:
        """The unit with the cap: ``per guide message that apologises (at most 3)``."""
        return self.unit + (f" (at most {self.cap})" if self.cap else "")


SIGNALS: tuple[SignalSpec, ...] = (
    SignalSpec("end_sentiment", "顾客最后的情绪", "sentiment of the last customer message, -1..1"),
    SignalSpec("lowest_sentiment", "顾客最低情绪", "the lowest customer sentiment, -1..1"),
    SignalSpec("negative_messages", "顾客不满", "per customer message with sentiment <= -0.3", 3),
    SignalSpec("thanks_at_end", "结束时致谢", "1 if the customer's last word thanks"),
    SignalSpec("question_at_end", "结束时仍在提问", "1 if the customer's last word still asks"),
    SignalSpec("unanswered", "未回复", "per customer message left without a reply", 3),
    SignalSpec("follow_ups", "再次追问", "per customer message needing an answer after a reply", 5),
    SignalSpec(
        "repeated_questions", "重复提问", "per customer message repeating an earlier one", 3
    ),
    SignalSpec("complaints", "投诉", "per customer message of a complaint intent", 3),
    SignalSpec("apologies", "致歉", "per guide message that apologises", 3),
    SignalSpec("guide_questions", "导购提问", "per guide message that asks something", 3),
    SignalSpec("late_replies", "回复超时", "per reply later than the rubric's limit", 3),
    SignalSpec("guide_reply_length", "导购回复长度", "per 10 characters of the average reply"),
    SignalSpec(
        "customer_message_length", "顾客消息长度", "per 10 characters of the average message"
    ),
)
"""Every signal, in report order."""
SIGNAL_NAMES: tuple[str, ...] = tuple(s.name for s in SIGNALS)

_NEGATIVE = -0.3  # a customer message at or below this sentiment expresses displeasure
_REPEAT_OVERLAP = 0.5  # character-pair Jaccard overlap from which a message repeats another
_REPEAT_MIN_CHARS = 4  # shorter messages (在吗 / 好的) are not questions worth repeating
_REPEAT_LOOKBACK = 20  # earlier customer messages compared with each one
_GUIDE_CHARS_CAP = 200
_CUSTOMER_CHARS_CAP = 300
_BARE = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Signal:
    """One occurrence of a signal.

    Attributes:
        name: the signal (one of :data:`SIGNAL_NAMES`).
        message_index: the message it was seen in.
        value: its value (see the module table); the rubric's points are per unit of it.
        reason: what was seen, in Chinese, with an excerpt of the message.
    """

    name: str
    message_index: int
    value: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "signal": self.name,
            "message_index": self.message_index,
            "value": round(self.value, 4),
            "reason": self.reason,
        }


@dataclass
class Signals:
    """The signals found in one conversation, in the order of :data:`SIGNALS`."""

    found: list[Signal] = field(default_factory=list)

    def totals(self) -> dict[str, float]:
        """Signal -> summed value, for the signals found (an absent signal is 0)."""
        out: dict[str, float] = {}
        for s in self.found:
            out[s.name] = out.get(s.name, 0.0) + s.value
        return {k: round(v, 4) for k, v in out.items() if v}


def _quote(message: Message, limit: int = 20) -> str:
    return f"「{excerpt_of(message.text, limit)}」"


def _bigrams(text: str) -> set[str]:
    bare = _BARE.sub("", normalize_text(text).lower())
    if len(bare) < _REPEAT_MIN_CHARS:
        return set()
    return {bare[k : k + 2] for k in range(len(bare) - 1)}


@dataclass
class _Reader:
    """One conversation as the signal functions read it."""

    messages: Sequence[Message]
    sentiment: Sequence[float | None]
    intents: Sequence[str | None]
    timing: Timing
    rules: SignalRules

    def __post_init__(self) -> None:
        roles = [m.role for m in self.messages]
        self.customer = [i for i, r in enumerate(roles) if r == "customer"]
        self.guide = [i for i, r in enumerate(roles) if r == "guide"]
        self.first_reply = self.guide[0] if self.guide else None
        self._quotes: dict[int, str] = {}

    def capped(self, name: str, hits: list[tuple[int, str]]) -> list[Signal]:
        """One signal of value 1 per hit (message, reason), the first ``cap`` of them."""
        cap = _SPECS[name].cap
        return [Signal(name, i, 1.0, reason) for i, reason in hits[:cap]]

    def q(self, i: int) -> str:
        """The excerpt of message ``i`` (masked once, however many signals quote it)."""
        if i not in self._quotes:
            self._quotes[i] = _quote(self.messages[i])
        return self._quotes[i]


def _sentiment(r: _Reader) -> list[Signal]:
    scored = [(i, s) for i in r.customer if (s := r.sentiment[i]) is not None]
    if not scored:
        return []
    last, end = scored[-1]
    mood = "积极" if end > 0.2 else "消极" if end < -0.2 else "平和"
    low, lowest = min(scored, key=lambda item: item[1])
    negative = [(i, f"顾客表达不满（情绪 {s:+.2f}）{r.q(i)}") for i, s in scored if s <= _NEGATIVE]
    return [
        Signal("end_sentiment", last, end, f"顾客最后的情绪{mood}（{end:+.2f}）{r.q(last)}"),
        Signal("lowest_sentiment", low, lowest, f"顾客情绪最低点（{lowest:+.2f}）{r.q(low)}"),
        *r.capped("negative_messages", negative),
    ]


def _ending(r: _Reader) -> list[Signal]:
    """How the customer left: thanking, or still asking (only after the guide has replied)."""
    if not r.customer or r.first_reply is None or r.customer[-1] < r.first_reply:
        return []
    last = r.customer[-1]
    text = r.messages[last].text
    out = []
    if thanks(text) or r.intents[last] in r.rules.thanks_intents:
        out.append(Signal("thanks_at_end", last, 1.0, f"顾客最后表示感谢{r.q(last)}"))
    if asks_question(text):
        out.append(Signal("question_at_end", last, 1.0, f"顾客最后一条消息仍在提问{r.q(last)}"))
    return out


def _turns(r: _Reader) -> list[Signal]:
    """Replies missing or late, the customer coming back or repeating, complaints."""
    t = r.timing
    unanswered = [
        (x.message_index, f"顾客的消息没有得到回复{r.q(x.message_index)}") for x in t.unanswered
    ]
    late = [
        (
            x.reply_index,
            f"顾客等了 {(x.seconds or 0) / 60:.0f} 分钟才得到回复{r.q(x.message_index)}",
        )
        for x in t.replies
        if x.late and x.reply_index is not None
    ]
    after = [i for i in r.customer if r.first_reply is not None and i > r.first_reply]
    follow_ups = [(i, f"导购回复后顾客再次追问{r.q(i)}") for i in after if t.needs_answer[i]]
    complaints = [
        (i, f"顾客投诉或抱怨{r.q(i)}")
        for i in r.customer
        if r.intents[i] in r.rules.complaint_intents
    ]
    return [
        *r.capped("unanswered", unanswered),
        *r.capped("follow_ups", follow_ups),
        *r.capped("repeated_questions", _repeats(r, after)),
        *r.capped("complaints", complaints),
        *r.capped("late_replies", late),
    ]


def _repeats(r: _Reader, after: list[int]) -> list[tuple[int, str]]:
    """Customer messages after a reply that say again what an earlier customer message said."""
    if not after:
        return []
    grams = {i: _bigrams(r.messages[i].text) for i in r.customer}
    out: list[tuple[int, str]] = []
    for i in after:
        earlier = [j for j in r.customer if j < i][-_REPEAT_LOOKBACK:]
        for j in earlier:
            a, b = grams[i], grams[j]
            if a and b and len(a & b) / len(a | b) >= _REPEAT_OVERLAP:
                out.append((i, f"顾客重复了之前（#{j}）的问题{r.q(i)}"))
                break
    return out


def _guide_acts(r: _Reader) -> list[Signal]:
    apologies = [(i, f"导购致歉{r.q(i)}") for i in r.guide if apologises(r.messages[i].text)]
    questions = [
        (i, f"导购向顾客询问{r.q(i)}") for i in r.guide if asks_question(r.messages[i].text, True)
    ]
    return [*r.capped("apologies", apologies), *r.capped("guide_questions", questions)]


def _lengths(r: _Reader) -> list[Signal]:
    """Average message lengths, each message citing its share (the values sum to the average)."""
    out = []
    for name, who, indexes, cap in (
        ("guide_reply_length", "导购回复", r.guide, _GUIDE_CHARS_CAP),
        ("customer_message_length", "顾客消息", r.customer, _CUSTOMER_CHARS_CAP),
    ):
        for i in indexes:
            chars = min(len(r.messages[i].text.strip()), cap)
            reason = f"{who} {chars} 字{r.q(i)}"
            out.append(Signal(name, i, chars / 10 / len(indexes), reason))
    return out


_SPECS = {s.name: s for s in SIGNALS}
_FINDERS = (_sentiment, _ending, _turns, _guide_acts, _lengths)


def find_signals(
    messages: Sequence[Message],
    sentiment: Sequence[float | None],
    intents: Sequence[str | None],
    timing: Timing,
    rules: SignalRules,
) -> Signals:
    """Every signal of one conversation (see the module table).

    Args:
        messages: the conversation's messages.
        sentiment: per message, the customer's sentiment (``None`` for guide messages).
        intents: per message, the intent (customer) or act (guide) label, or ``None``.
        timing: the timing annotation (replies, unanswered messages, needs-answer per message).
        rules: the rubric's experience section (which intents are complaints and thanks).

    Returns:
        The :class:`Signals`, ordered as :data:`SIGNALS`.
    """
    reader = _Reader(messages, sentiment, intents, timing, rules)
    found = [s for finder in _FINDERS for s in finder(reader)]
    order = {name: k for k, name in enumerate(SIGNAL_NAMES)}
    found.sort(key=lambda s: (order[s.name], s.message_index))
    return Signals(found)


class SignalsAnalyzer(Analyzer):
    """Assigns ``signals``: the :class:`Signals` of each conversation.

    Args:
        rules: the rubric's experience section.
    """

    name = "signals"
    requires = ("labels", "timing", "sentiment")
    assigns = ("signals",)

    def __init__(self, rules: SignalRules) -> None:
        self.rules = rules

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        out = []
        for doc in docs:
            labels: list[Prediction | None] = doc["labels"]
            signals = find_signals(
                doc.conversation.messages,
                doc["sentiment"].scores,
                [p.label if p else None for p in labels],
                doc["timing"],
                self.rules,
            )
            out.append({"signals": signals})
        return out
