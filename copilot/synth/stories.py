"""Customer journeys: customers who come back over days and weeks, with ground truth.

Each customer has one guide and 1 to 3 conversations in time order, following one story (shares
in ``rules.yaml`` ``journeys.stories``):

========================  =====================================================================
``buys``                  buys in the first chat
``hesitates_followed_up`` hesitates or objects and does not buy; the guide follows up 1–3 days
                          later (a guide-outreach chat: recommendation or promotion first)
``hesitates_gone``        ... nobody follows up and the customer never returns
``hesitates_returns``     ... the customer comes back by themself 2–14 days later
``promises_returns``      ends the first chat with a promise to come back (「等发工资再买」,
                          「周末去门店看看」) and comes back around that day
``promises_followed_up``  ... the guide follows up around that day
``promises_gone``         ... nobody comes back
``after_sales``           buys, then an after-sales chat 3–10 days later
========================  =====================================================================

The first chat is simulated again (new guide, product, customer) until its outcome fits the
story, so guide skill still drives who buys: buying stories land more often with good guides.
Later chats keep the customer's guide, product, style, hidden propensity and details (size,
body, person) and part of their satisfaction; whether a follow-up wins the customer back is the
simulator's usual model of propensity, satisfaction and the guide's skill. A purchase in a later
chat is followed by an after-sales chat now and then (``after_sales_share``).

Ground truth is in each conversation's ``meta.journey`` (see :func:`copilot.synth.journeys`),
and :func:`journey_orders` turns converted conversations into orders.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from copilot.errors import ConfigError
from copilot.schema import CHINA_TZ, Conversation
from copilot.synth.bank import Bank, Phrase, PhraseSplit
from copilot.synth.simulate import _EPOCH, _MAX_MESSAGES, _OBJECTIONS, Simulator, _State

__all__ = ["STORIES", "JourneySimulator", "come_back_day", "journey_orders"]

STORIES = (
    "buys",
    "hesitates_followed_up",
    "hesitates_gone",
    "hesitates_returns",
    "promises_returns",
    "promises_followed_up",
    "promises_gone",
    "after_sales",
)
# The second chat of each story: the guide follows up, the customer returns, or after-sales.
_NEXT = {
    "hesitates_followed_up": "follow_up",
    "hesitates_returns": "return",
    "promises_returns": "return",
    "promises_followed_up": "follow_up",
    "after_sales": "after_sale",
}
_SCENARIO = {"first": "pre_sale", "follow_up": "guide_outreach", "return": "pre_sale"}
_ATTEMPTS = 500  # first chats tried per customer before the rules are declared impossible
_RULE_KEYS = (
    "stories",
    "follow_up_days",
    "return_days",
    "after_sale_days",
    "promise_slack_days",
    "after_sales_share",
    "remember",
    "return_interest",
    "come_back",
    "pay_days",
    "promise_within_days",
    "promise_markers",
)


@dataclass
class _Step:
    """One simulated chat of a journey and what it means for the story."""

    st: _State
    kind: str  # first, follow_up, return or after_sale
    converted: bool
    amount: float | None = None
    promised: str | None = None
    promised_day: date | None = None


class JourneySimulator(Simulator):
    """A :class:`Simulator` whose customers come back: :meth:`journey` gives one customer's chats.

    Args:
        bank, seed, split, n_guides: as for :class:`Simulator`.

    Raises:
        ConfigError: ``rules.yaml`` has no valid ``journeys`` block, or a come-back group it
            names has no phrases in ``customer.yaml``.
    """

    def __init__(
        self, bank: Bank, seed: int, split: PhraseSplit = "all", n_guides: int = 40
    ) -> None:
        super().__init__(bank, seed, split=split, n_guides=n_guides)
        self.journey_rules = _checked_rules(bank)
        stories = self.journey_rules["stories"]
        self._story_shares = [float(stories.get(s, 0)) for s in STORIES]
        self._no_promise: dict[str, list[Phrase]] = {}

    def journey(self, index: int) -> list[Conversation]:
        """Customer number ``index``: their conversations in time order (deterministic)."""
        rng = random.Random(f"{self.seed}:journey:{index}")
        story = rng.choices(STORIES, self._story_shares)[0]
        steps = [self._first_chat(index, story)]
        kind = _NEXT.get(story)
        while kind is not None and len(steps) < 3:
            start = self._next_start(rng, steps[-1], kind)
            steps.append(self._later_chat(index, len(steps) + 1, kind, steps[-1].st, start))
            later_buy = steps[-1].converted and kind != "after_sale"
            share = self.journey_rules["after_sales_share"]
            kind = "after_sale" if later_buy and rng.random() < share else None
        channel = rng.choice(["wecom", "wecom", "wecom", "wechat"])
        return [
            self._conversation(step, index, i, story, channel) for i, step in enumerate(steps, 1)
        ]

    # ------------------------------------------------------------------- chats

    def _first_chat(self, index: int, story: str) -> _Step:
        """A first chat whose outcome fits ``story``: the first of many tries that does."""
        for attempt in range(_ATTEMPTS):
            rng = random.Random(f"{self.seed}:journey:{index}:first:{attempt}")
            guide = rng.choice(self.guides)
            style_name = rng.choices(self._style_names, self._style_shares)[0]
            start = self._start_time(rng, _EPOCH + timedelta(days=rng.randrange(320)))
            st = self._state(rng, guide, style_name, start)
            converted = self._scenario_pre_sale(st)
            if not _fits(story, st, converted):
                continue
            step = _Step(st, "first", converted)
            if story.startswith("promises"):
                step.promised, step.promised_day = self._promise(st)
            step.amount = self._finish(st, converted)
            return step
        raise ConfigError(
            f"no first chat fitted the journey story {story!r} in {_ATTEMPTS} tries; "
            "check the skills and effects in copilot/data/synth/rules.yaml"
        )

    def _later_chat(
        self, index: int, number: int, kind: str, before: _State, start: datetime
    ) -> _Step:
        """Chat ``number`` of a journey: the same customer, guide and product, days later."""
        rng = random.Random(f"{self.seed}:journey:{index}:{number}")
        st = self._state(
            rng, before.guide, before.style_name, start, before.product, before.propensity
        )
        st.values = dict(before.values)  # the customer's size, body, person... stay the same
        st.sat = before.sat * self.journey_rules["remember"]
        if kind == "follow_up":
            st.sat += self.rules["effects"]["follow_up"]
            converted = self._scenario_guide_outreach(st, opener_kind="reopen")
        elif kind == "return":
            st.sat += self.journey_rules["return_interest"]
            converted = self._scenario_pre_sale(st)
        else:
            converted = self._scenario_after_sale(st)
        return _Step(st, kind, converted, self._finish(st, converted))

    def _promise(self, st: _State) -> tuple[str, date]:
        """The customer ends the chat promising to come back; returns the words and the day."""
        rng, noise, rules = st.rng, self.bank.customer_noise, self.journey_rules
        pay_day, today = rng.choice(rules["pay_days"]), st.t.date()
        # Nobody promises to wait for 双十一 in February: only times within reach are promised.
        groups = {
            when: float(share)
            for when, share in rules["come_back"].items()
            if (come_back_day(when, today, pay_day) - today).days <= rules["promise_within_days"]
        } or {when: float(share) for when, share in rules["come_back"].items()}
        when = rng.choices(list(groups), list(groups.values()))[0]
        phrase = rng.choice(self.bank.come_back(when, self.split))
        words = self._noisify(st, phrase.render(rng, lambda slot: self._fill(st, slot)))
        tail = rng.choice(noise["particles"]) if rng.random() < st.style["particle"] else ""
        self._wait_customer(st)
        self._append(st, "customer", words + tail + rng.choice(noise["endings"]), "hesitation")
        self._guide_reply(st, "hesitation")  # may add guide messages, never a customer's
        said = datetime.fromisoformat(st.messages[-1]["ts"]).date()
        return words, come_back_day(when, said, pay_day)

    def _customer_phrases(self, st: _State, intent: str) -> list[Phrase]:
        """Hesitations without a promised time: only come-back stories promise one."""
        phrases = super()._customer_phrases(st, intent)
        if intent != "hesitation":
            return phrases
        domain = st.guide.domain
        if domain not in self._no_promise:
            markers = self.journey_rules["promise_markers"]
            plain = [p for p in phrases if not any(m in p.source for m in markers)]
            self._no_promise[domain] = plain or phrases
        return self._no_promise[domain]

    # -------------------------------------------------------------- timing

    def _next_start(self, rng: random.Random, before: _Step, kind: str) -> datetime:
        """When the next chat starts: days after ``before``, at an hour people chat."""
        rules = self.journey_rules
        last = datetime.fromisoformat(before.st.messages[-1]["ts"])
        if before.promised_day is not None:
            day = before.promised_day + timedelta(days=rng.choice(rules["promise_slack_days"]))
        else:
            low, high = rules[f"{kind}_days"]
            day = last.date() + timedelta(days=rng.randint(low, high))
        if kind == "follow_up":  # guides follow up in working hours
            moment = time(rng.randint(9, 20), rng.randrange(60), rng.randrange(60))
            start = datetime.combine(day, moment, CHINA_TZ)
        else:
            start = self._start_time(rng, datetime.combine(day, time(), CHINA_TZ))
        return max(start, last + timedelta(hours=2))

    # ------------------------------------------------------------ the record

    def _conversation(
        self, step: _Step, index: int, number: int, story: str, channel: str
    ) -> Conversation:
        """Chat ``number`` of customer ``index`` as a conversation with its ground truth."""
        st = step.st
        hesitated = not step.converted and any(v in _OBJECTIONS for v in st.intents.values())
        truth = {
            "customer_story": story,
            "step": number,
            "hesitated": hesitated,
            "promised": step.promised,
            "promised_day": step.promised_day.isoformat() if step.promised_day else None,
            "followed_up": step.kind == "follow_up",
            "converted_after_follow_up": step.kind == "follow_up" and step.converted,
            "returned_by_self": step.kind == "return",
        }
        return self._record(
            st,
            conversation_id=f"jrn-{self.seed}-{index:06d}-{number}",
            customer_id=f"c-{self.seed}-{index:06d}",
            channel=channel,
            scenario=_SCENARIO.get(step.kind, step.kind),
            converted=step.converted,
            amount=step.amount,
            meta={"product": st.product.name, "journey": truth},
        )


def _fits(story: str, st: _State, converted: bool) -> bool:
    """Whether a first chat's outcome fits ``story`` (and leaves room for a promise)."""
    if story in ("buys", "after_sales"):
        return converted
    if converted or len(st.messages) > _MAX_MESSAGES - 4:
        return False
    if story.startswith("promises"):
        return True
    labels = [st.intents[i] for i in sorted(st.intents)]
    objections = [i for i, label in enumerate(labels) if label in _OBJECTIONS]
    # It ends hesitant: no "I'll take it" after the last hesitation or objection.
    return bool(objections) and "purchase_intent" not in labels[objections[-1] :]


def come_back_day(when: str, said: date, pay_day: int = 10) -> date:
    """The day a come-back promise of group ``when`` (``hesitation.come_back``) said on ``said``
    falls on: tomorrow, in two days, Saturday, next Monday, pay day, the 1st of next month, the
    next day after asking someone, or 11 November."""
    if when in ("tomorrow", "ask_someone"):
        return said + timedelta(days=1)
    if when == "few_days":
        return said + timedelta(days=2)
    if when == "weekend":
        return said + timedelta(days=(5 - said.weekday()) % 7 or 7)
    if when == "next_week":
        return said + timedelta(days=7 - said.weekday())
    if when == "payday" and said.day < pay_day:
        return said.replace(day=pay_day)
    if when in ("payday", "next_month"):
        first = (said.replace(day=1) + timedelta(days=32)).replace(day=1)
        return first.replace(day=pay_day) if when == "payday" else first
    if when == "double_eleven":
        eleven = date(said.year, 11, 11)
        return eleven if eleven > said else date(said.year + 1, 11, 11)
    raise ConfigError(
        f"unknown come-back group {when!r} in rules.yaml journeys.come_back; known: tomorrow, "
        "few_days, weekend, next_week, payday, next_month, ask_someone, double_eleven"
    )


def _checked_rules(bank: Bank) -> dict[str, Any]:
    """The ``journeys`` block of ``rules.yaml``, checked against the stories and phrase banks."""
    rules = bank.rules.get("journeys")
    if not isinstance(rules, dict):
        raise ConfigError("rules.yaml has no 'journeys:' block; see copilot/synth/stories.py")
    missing = [key for key in _RULE_KEYS if key not in rules]
    if missing:
        raise ConfigError(
            f"rules.yaml journeys lacks {', '.join(missing)}; the shipped rules.yaml has them all"
        )
    stories = rules.get("stories") or {}
    unknown = sorted(set(stories) - set(STORIES))
    if unknown or sum(float(v) for v in stories.values()) <= 0:
        raise ConfigError(
            f"rules.yaml journeys.stories: unknown stories {unknown} or no positive share; "
            f"the stories are {', '.join(STORIES)}"
        )
    for when in rules.get("come_back") or {}:
        come_back_day(when, date(2026, 1, 5))  # raises on an unknown group
        if not bank.come_back(when, "all"):
            raise ConfigError(
                f"rules.yaml journeys.come_back names {when!r}, but customer.yaml has no "
                f"phrases under intents.hesitation.come_back.{when}"
            )
    return rules


def journey_orders(conversations: Iterable[Conversation], seed: int = 0) -> list[dict[str, Any]]:
    """Orders for the converted conversations of a synthetic corpus, one each.

    Each is paid a few minutes to a few hours after the conversation's last message, for its
    ``order_amount``; ``product`` is ``meta.product`` when the corpus has it (journeys do).

    Args:
        conversations: an iterable of :class:`~copilot.schema.Conversation`.
        seed: varies the payment delays (each is drawn from the conversation id and this seed).

    Returns:
        Rows with ``order_id``, ``customer_id``, ``paid_at`` (an aware datetime, China time),
        ``amount``, ``product`` and ``store_id``: what ``copilot.orders.read_orders`` reads and
        what ``copilot.followups.customer_states`` takes.

    Example::

        corpus = list(journeys(1000, seed=3))
        orders = journey_orders(corpus)
    """
    rows = []
    for conversation in conversations:
        outcome = conversation.outcome
        stamps = [m.ts for m in conversation.messages if m.ts is not None]
        if outcome is None or not outcome.converted or not stamps:
            continue
        rng = random.Random(f"{seed}:order:{conversation.conversation_id}")
        delay = min(rng.lognormvariate(3.0, 1.2), 6 * 60.0)  # minutes: median ~20, at most 6 h
        rows.append(
            {
                "order_id": f"o-{conversation.conversation_id}",
                "customer_id": conversation.customer_id,
                "paid_at": max(stamps) + timedelta(minutes=round(delay, 1) + 1),
                "amount": outcome.order_amount,
                "product": conversation.meta.get("product"),
                "store_id": conversation.store_id,
            }
        )
    return rows
