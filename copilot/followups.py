"""The follow-up queue: whom each guide should contact today, why, by when, and with what.

Four rules, in order of urgency (windows and messages in ``copilot/data/followups.yaml``, which a
brand can copy and edit):

- **unanswered**: the customer's last message is a question and no guide message came after it;
- **come_back**: the customer promised a time to come back (「发工资再买」, 「周末去门店看」,
  「问问老公」, read by :mod:`copilot.profile`) and that day has come;
- **hesitated**: the customer hesitated or objected (「我再考虑下」, 「太贵了」) and did not buy;
- **after_sales_care**: a few days after an order.

An entry drops out when the customer pays after what triggered it, when a guide writes to them
at least ``contact_grace_hours`` after it (a reply in the same exchange is not a follow-up), or
``expire_days`` after it was due. A customer appears once a day, for the most urgent rule.

:func:`customer_states` reduces conversations and orders to one small :class:`CustomerState` per
customer (what the rules need); :func:`build_queue` applies the rules to states for one day, so
a server can keep the states as chats arrive and build a day's queue for 100k customers fast.

Example::

    states = customer_states(conversations, orders)
    for entry in build_queue(states.values(), date(2026, 11, 20)):
        print(entry.guide_id, entry.customer_id, entry.title, entry.due, entry.message)
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from copilot.errors import InputError
from copilot.profile import build_profile
from copilot.schema import CHINA_TZ, Conversation, china_time
from copilot.slots import SlotValues, fill

__all__ = [
    "DEFAULT_RULES",
    "CustomerState",
    "Event",
    "FollowUp",
    "FollowUpRules",
    "build_queue",
    "customer_states",
    "load_rules",
    "resolve_come_back",
]

DEFAULT_RULES = Path(__file__).parent / "data" / "followups.yaml"
REASONS = ("unanswered", "come_back", "hesitated", "after_sales_care")

_HESITATION = re.compile(
    r"考虑|再看看|先看看|看看再说|犹豫|纠结|回头再说|再说吧|想想|不急|还没想好|再比较|比较一下"
)
# Without intents, a question is read from its words: a trailing 「？」 alone is not enough (many
# customers end every line with one), and greetings and thanks ask nothing.
_QUESTION = re.compile(
    r"[吗呢么嘛]\s*[~～。.!！?？]*\s*$|怎么|什么|多少|哪|几[个天号点时]|能不能|可不可以|有没有|是不是|行不行|单号"
)
_CLOSING = re.compile(
    r"^(?:好的?|嗯+|哦+|ok|谢谢|谢了|好滴|收到|知道了|拜拜|在吗|在不在|你好|您好|hi|hello|哈喽|嗨)",
    re.I,
)


@dataclass(frozen=True)
class Event:
    """Something a customer said that may call for a follow-up, and when."""

    at: datetime
    conversation_id: str
    message_index: int
    text: str
    phrase: str = ""


@dataclass
class CustomerState:
    """What the follow-up rules need to know about one customer.

    Attributes:
        customer_id, guide_id, store_id: the customer and the guide (and store) of their
            latest conversation.
        question: the customer's last message when it is an unanswered question.
        hesitation: the latest hesitation or objection.
        come_back: the latest promised come-back (``phrase`` holds the words).
        last_guide_at: the latest guide message to this customer.
        orders: ``(paid_at, product)`` of each order.
        slots: what fills a first message (``product``, ``size``), from the profile.
    """

    customer_id: str
    guide_id: str | None = None
    store_id: str | None = None
    question: Event | None = None
    hesitation: Event | None = None
    come_back: Event | None = None
    last_guide_at: datetime | None = None
    orders: list[tuple[datetime, str | None]] = field(default_factory=list)
    slots: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FollowUp:
    """One entry of a guide's queue."""

    id: str
    customer_id: str
    guide_id: str | None
    store_id: str | None
    reason: str
    title: str
    why: str
    opens: date
    due: date
    message: str
    needs_edit: bool
    slots: list[str]
    trigger: dict[str, Any]

    def to_dict(self, day: date | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "guide_id": self.guide_id,
            "store_id": self.store_id,
            "reason": self.reason,
            "title": self.title,
            "why": self.why,
            "opens": self.opens.isoformat(),
            "due": self.due.isoformat(),
            "overdue": bool(day and day > self.due),
            "message": self.message,
            "needs_edit": self.needs_edit,
            "slots": self.slots,
            "trigger": self.trigger,
        }


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    title: str
    after_days: int
    within_days: int
    messages: tuple[str, ...]


@dataclass(frozen=True)
class FollowUpRules:
    """The rules file, read (see ``copilot/data/followups.yaml``)."""

    rules: dict[str, Rule]
    contact_grace_hours: float = 2.0
    expire_days: int = 7
    pay_day: int = 10
    default_come_back_days: int = 3
    source: str = str(DEFAULT_RULES)


def load_rules(path: str | Path | None = None) -> FollowUpRules:
    """Read a rules file (the built-in one when ``path`` is None).

    Raises:
        InputError: the file is missing, not YAML, or a rule lacks a field or has a bad value.
    """
    path = Path(path) if path else DEFAULT_RULES
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the follow-up rules '{path}': {exc}") from exc
    try:
        rules = {}
        for name in REASONS:
            raw = data["rules"].get(name)
            if raw is None:
                continue  # a brand may switch a rule off by leaving it out
            messages = tuple(str(m) for m in raw["messages"])
            rule = Rule(
                str(raw["title"]), int(raw["after_days"]), int(raw["within_days"]), messages
            )
            if rule.after_days < 0 or rule.within_days < 0 or not messages:
                raise ValueError(f"rule '{name}' needs days >= 0 and at least one message")
            rules[name] = rule
        unknown = set(data["rules"]) - set(REASONS)
        if unknown:
            raise ValueError(f"unknown rules {sorted(unknown)}; the rules are {list(REASONS)}")
        out = FollowUpRules(
            rules,
            float(data.get("contact_grace_hours", 2)),
            int(data.get("expire_days", 7)),
            int(data.get("pay_day", 10)),
            int(data.get("default_come_back_days", 3)),
            str(path),
        )
        if not 1 <= out.pay_day <= 28:
            raise ValueError("pay_day must be a day of the month from 1 to 28")
        return out
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"the follow-up rules '{path}' are not valid: {exc}") from exc


@lru_cache(maxsize=1)
def _default_rules() -> FollowUpRules:
    return load_rules()


_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_FIXED = {"双十一": (11, 11), "双十二": (12, 12), "618": (6, 18)}


def resolve_come_back(phrase: str, said: date, rules: FollowUpRules | None = None) -> date:
    """The day a promised come-back (「周末」, 「发工资」, 「问问老公」) falls on, said on ``said``."""
    rules = rules or _default_rules()
    after = {"明天": 1, "后天": 2, "过两天": 2, "过几天": 3, "晚点": 1, "晚上": 1, "下班": 1}
    if phrase in after:
        return said + timedelta(days=after[phrase])
    if phrase.startswith(("问", "跟", "和")):
        return said + timedelta(days=1)
    if phrase == "周末":
        return said + timedelta(days=max(1, (5 - said.weekday()) % 7))
    if phrase.startswith("下周") or phrase == "下礼拜":
        monday = said + timedelta(days=7 - said.weekday())
        return monday + timedelta(days=_WEEKDAY.get(phrase[2:3], 0))
    if phrase in ("下个月", "下月", "月初"):
        return _month_day(said, 1, next_month=True)
    if phrase == "月底":
        return _month_day(said, 25, next_month=said.day >= 25)
    if phrase in ("发工资", "发了工资", "工资到了"):
        return _month_day(said, rules.pay_day, next_month=said.day >= rules.pay_day)
    if phrase in _FIXED:
        month, day = _FIXED[phrase]
        moment = date(said.year, month, day)
        return moment if moment > said else date(said.year + 1, month, day)
    return said + timedelta(days=rules.default_come_back_days)


def _month_day(said: date, day: int, *, next_month: bool) -> date:
    if not next_month:
        return said.replace(day=day)
    year, month = (said.year + 1, 1) if said.month == 12 else (said.year, said.month + 1)
    return date(year, month, day)


# --------------------------------------------------------------------------- states


def customer_states(
    conversations: Iterable[Conversation],
    orders: Iterable[Any] = (),
    *,
    intents: Callable[[Conversation], Sequence[str | None]] | None = None,
    products: Iterable[str] = (),
) -> dict[str, CustomerState]:
    """One :class:`CustomerState` per customer of ``conversations`` (those without a customer id
    are skipped: nobody could be contacted). ``orders`` have ``customer_id``, ``paid_at`` and
    optionally ``product``; ``intents`` optionally labels each message (hesitation, objections)."""
    by_customer: dict[str, list[Conversation]] = defaultdict(list)
    for conversation in conversations:
        if conversation.customer_id:
            by_customer[conversation.customer_id].append(conversation)
    paid: dict[str, list[Any]] = defaultdict(list)
    for order in orders:
        row = order if isinstance(order, dict) else vars(order)
        if row.get("customer_id"):
            paid[str(row["customer_id"])].append(row)
    names = list(products)
    return {
        cid: state_of(cid, chats, paid.get(cid, []), intents=intents, products=names)
        for cid, chats in by_customer.items()
    }


def state_of(
    customer_id: str,
    conversations: Sequence[Conversation],
    orders: Sequence[Any] = (),
    *,
    intents: Callable[[Conversation], Sequence[str | None]] | None = None,
    products: Sequence[str] = (),
) -> CustomerState:
    """The :class:`CustomerState` of one customer's conversations and orders."""
    profile = build_profile(customer_id, conversations, orders, products, intents)
    state = CustomerState(customer_id)
    for conversation in sorted(conversations, key=_first_time):
        _read(state, conversation, list(intents(conversation)) if intents else [])
    for row in orders:
        paid_at = row.get("paid_at") if isinstance(row, dict) else getattr(row, "paid_at", None)
        product = row.get("product") if isinstance(row, dict) else getattr(row, "product", None)
        if isinstance(paid_at, datetime):
            state.orders.append((china_time(paid_at), product))
    state.orders.sort(key=lambda o: o[0])
    state.slots = profile.slot_values()
    # The profile's latest come-back promise and objections are hesitations too.
    for fact in profile.facts:
        if fact.type not in ("come_back", "objection") or fact.at is None:
            continue
        event = Event(china_time(fact.at), fact.conversation_id, fact.message_index, fact.text)
        if fact.type == "come_back" and (state.come_back is None or event.at > state.come_back.at):
            state.come_back = Event(
                event.at, event.conversation_id, event.message_index, event.text, str(fact.value)
            )
        if state.hesitation is None or event.at > state.hesitation.at:
            state.hesitation = event
    return state


def _read(state: CustomerState, conversation: Conversation, labels: list[str | None]) -> None:
    state.guide_id = conversation.guide_id or state.guide_id
    state.store_id = conversation.store_id or state.store_id
    for i, message in enumerate(conversation.messages):
        if message.ts is None:
            continue
        at = china_time(message.ts)
        if message.role == "guide":
            state.last_guide_at = at
            state.question = None
            continue
        if message.role != "customer":
            continue
        event = Event(at, conversation.conversation_id, i, message.text)
        intent = labels[i] if i < len(labels) else None
        text = message.text.strip()
        if intent is not None:
            asks = intent in _ASKING
        else:
            asks = bool(_QUESTION.search(text)) and not (
                _CLOSING.match(text) or _HESITATION.search(text)
            )
        state.question = event if asks else None
        if intent in ("hesitation", "price_objection", "trust_objection") or _HESITATION.search(
            text
        ):
            state.hesitation = event


_ASKING = {
    "product_inquiry", "price_inquiry", "size_fit", "stock", "logistics", "after_sales",
    "purchase_intent",
}  # fmt: skip


def _first_time(conversation: Conversation) -> datetime:
    stamps = [china_time(m.ts) for m in conversation.messages if m.ts is not None]
    return min(stamps) if stamps else datetime.min.replace(tzinfo=CHINA_TZ)


def _day(moment: datetime) -> date:
    return moment.astimezone(CHINA_TZ).date()


# --------------------------------------------------------------------------- the queue


def build_queue(
    states: Iterable[CustomerState],
    day: date,
    rules: FollowUpRules | None = None,
    *,
    closed: dict[str, date | None] | None = None,
) -> list[FollowUp]:
    """The follow-ups open on ``day``, most urgent first (then by due date and customer).

    Args:
        states: one per customer (:func:`customer_states`).
        day: the day of the queue (China time).
        rules: the rules (the built-in file when None).
        closed: entry id -> ``None`` for an entry marked done or dismissed, or the day a
            snoozed entry comes back.
    """
    rules = rules or _default_rules()
    closed = closed or {}
    out = []
    for state in states:
        for entry in _candidates(state, day, rules):
            if entry.id in closed:
                until = closed[entry.id]
                if until is None or until > day:
                    continue
            out.append(entry)
            break  # one entry per customer: the most urgent rule
    out.sort(key=lambda e: (REASONS.index(e.reason), e.due, e.customer_id))
    return out


def _candidates(state: CustomerState, day: date, rules: FollowUpRules) -> Iterable[FollowUp]:
    grace = timedelta(hours=rules.contact_grace_hours)

    def open_after(event: Event | None, *, contact_ends: bool = True) -> bool:
        if event is None:
            return False
        bought = any(paid >= event.at for paid, _ in state.orders)
        contacted = state.last_guide_at is not None and state.last_guide_at >= event.at + grace
        return not bought and not (contact_ends and contacted)

    question = state.question
    if question is not None:
        yield from _entry(state, "unanswered", question, _day(question.at), day, rules)
    come = state.come_back
    if open_after(come) and come is not None:
        due_day = resolve_come_back(come.phrase, _day(come.at), rules)
        yield from _entry(state, "come_back", come, due_day, day, rules)
    if open_after(state.hesitation) and state.hesitation is not None:
        yield from _entry(
            state, "hesitated", state.hesitation, _day(state.hesitation.at), day, rules
        )
    if state.orders:
        paid_at, product = state.orders[-1]
        contacted = state.last_guide_at is not None and state.last_guide_at >= paid_at + grace
        if not contacted:
            event = Event(paid_at, "", -1, product or "")
            yield from _entry(state, "after_sales_care", event, _day(paid_at), day, rules)


def _entry(
    state: CustomerState, reason: str, event: Event, start: date, day: date, rules: FollowUpRules
) -> Iterable[FollowUp]:
    rule = rules.rules.get(reason)
    if rule is None:
        return
    opens = start + timedelta(days=rule.after_days)
    due = opens + timedelta(days=rule.within_days)
    if not opens <= day <= due + timedelta(days=rules.expire_days):
        return
    values = dict(state.slots)
    if event.phrase:
        values["time"] = event.phrase
    message, missing = _message(rule.messages, values)
    key = f"{state.customer_id}|{reason}|{event.conversation_id}|{event.message_index}|{event.at.isoformat()}"
    yield FollowUp(
        id=hashlib.sha1(key.encode("utf-8")).hexdigest()[:16],
        customer_id=state.customer_id,
        guide_id=state.guide_id,
        store_id=state.store_id,
        reason=reason,
        title=rule.title,
        why=_why(reason, event),
        opens=opens,
        due=due,
        message=message,
        needs_edit=bool(missing),
        slots=missing,
        trigger={
            "conversation_id": event.conversation_id or None,
            "message_index": event.message_index if event.message_index >= 0 else None,
            "at": event.at.isoformat(),
            "text": event.text,
        },
    )


def _message(templates: Sequence[str], values: dict[str, str]) -> tuple[str, list[str]]:
    """The first template the values fill completely, else the first with its open slots."""
    filled = [fill(t, SlotValues(values=values)) for t in templates]
    best = next((f for f in filled if not f.needs_edit), filled[0])
    return best.text, best.missing


def _why(reason: str, event: Event) -> str:
    quote = event.text if len(event.text) <= 30 else event.text[:29] + "…"
    moment = _day(event.at)
    when = f"{moment.month}月{moment.day}日"
    if reason == "unanswered":
        return f"{when}顾客问「{quote}」，还没有回复"
    if reason == "come_back":
        return f"{when}顾客说「{quote}」（{event.phrase}），约定的时间到了"
    if reason == "hesitated":
        return f"{when}顾客「{quote}」，之后没有下单"
    return f"{when}下单{('「' + quote + '」') if quote else ''}，回访使用情况"
