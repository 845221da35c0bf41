"""Simulated guide–customer conversations.

Each conversation follows a scenario (pre-sale, guide outreach, after-sale, complaint, chit-chat).
The customer has a hidden purchase propensity and a writing style; the guide has a skill level
whose parameters (``rules.yaml``) decide how often it answers, picks the right action, asks
discovery questions, handles objections, closes, follows up, how fast it replies and how often
it slips on compliance. Every behaviour moves the customer's satisfaction, and satisfaction sets
the purchase probability, so conversion depends on what the guide did, not on a label.

Each conversation draws from its own ``random.Random(f"{seed}:{index}")``, so the corpus is
reproducible byte for byte and any conversation can be regenerated alone.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import opencc

from copilot.schema import CHINA_TZ, Conversation
from copilot.synth.bank import Bank, Domain, Phrase, PhraseSplit, Product

__all__ = ["GuideProfile", "Simulator"]

_MAX_MESSAGES = 40
_OBJECTIONS = ("price_objection", "trust_objection", "hesitation")
_EPOCH = datetime(2026, 1, 5, tzinfo=CHINA_TZ)
# Hour-of-day weights of conversation starts: quiet at night, peaks at lunch and evening.
_HOURS = [1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 2, 4, 6, 7, 7, 8, 7, 6, 6, 6, 6, 7, 9, 10, 10, 8, 4]
_FINAL_PARTICLES = set("吗呢吧啊呀哈嘛啦哦呗么哇咯嘞")
_SEPARATORS = ["，", ",", " ", "～", "。", "！", "", "?", "？"]
_SLIP_WEIGHTS = {
    "absolute_claim": 0.3,
    "efficacy_claim": 0.18,
    "private_payment": 0.14,
    "guaranteed_result": 0.16,
    "data_exposure": 0.06,
    "rude": 0.16,
}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass(frozen=True)
class GuideProfile:
    """A synthetic guide: id, store, domain and skill level."""

    guide_id: str
    store_id: str
    domain: str
    skill: str


@dataclass
class _State:
    """Everything one conversation accumulates while it is simulated."""

    rng: random.Random
    guide: GuideProfile
    skill: dict[str, float]
    domain: Domain
    product: Product
    style: dict[str, float]
    propensity: float
    t: datetime
    style_name: str = ""
    values: dict[str, str] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    intents: dict[int, str] = field(default_factory=dict)
    actions: dict[int, str] = field(default_factory=dict)
    slips: list[dict[str, Any]] = field(default_factory=list)
    mixed: list[dict[str, Any]] = field(default_factory=list)
    sat: float = 0.0
    discovered: bool = False
    recommended: bool = False
    promoted: bool = False
    guide_spoke: bool = False
    purchase_signal: bool = False
    closed: bool = False
    price_objection: bool = False

    @property
    def full(self) -> bool:
        return len(self.messages) >= _MAX_MESSAGES


class Simulator:
    """Generates labelled synthetic conversations from a :class:`Bank`.

    Args:
        bank: phrase banks, catalogue and rules.
        seed: the corpus seed; the same seed gives the same corpus.
        split: which phrases to draw from: ``all``, ``train`` or ``heldout``.
        n_guides: size of the guide pool (stores hold five guides each).
    """

    def __init__(
        self, bank: Bank, seed: int, split: PhraseSplit = "all", n_guides: int = 40
    ) -> None:
        self.bank = bank
        self.seed = seed
        self.split = split
        self.rules = bank.rules
        self._to_traditional = opencc.OpenCC("s2t")
        skills = self.rules["skills"]
        styles = self.rules["customer_styles"]
        self._skill_names = list(skills)
        self._skill_shares = [skills[s]["share"] for s in self._skill_names]
        self._style_names = list(styles)
        self._style_shares = [styles[s]["share"] for s in self._style_names]
        scenarios = self.rules["scenarios"]
        self._scenarios = list(scenarios)
        self._scenario_shares = [scenarios[s] for s in self._scenarios]
        self._priority = {label: i for i, label in enumerate(self.rules["intent_priority"])}
        self._mixable: dict[str, list[str]] = {}
        for a, b in self.rules["mixable"]:
            self._mixable.setdefault(a, []).append(b)
            self._mixable.setdefault(b, []).append(a)
        self._repertoires: dict[tuple[str, str, str, int], list[int]] = {}
        self.guides = self._make_guides(n_guides)

    # ----------------------------------------------------------------- guides

    def _make_guides(self, n: int) -> list[GuideProfile]:
        """``n`` guides, five per store; skill levels in their shares, each level present."""
        rng = random.Random(f"{self.seed}:guides")
        domains = sorted(self.bank.domains)
        skills = [
            name
            for name, share in zip(self._skill_names, self._skill_shares, strict=True)
            for _ in range(max(1, round(share * n)))
        ]
        while len(skills) < n:
            skills.append(rng.choices(self._skill_names, self._skill_shares)[0])
        rng.shuffle(skills)
        return [
            GuideProfile(
                f"g-{i + 1:03d}", f"s-{i // 5 + 1:02d}", domains[(i // 5) % len(domains)], skill
            )
            for i, skill in enumerate(skills[:n])
        ]

    # ----------------------------------------------------------- conversation

    def conversation(self, index: int) -> Conversation:
        """The conversation number ``index`` of this corpus (deterministic)."""
        rng = random.Random(f"{self.seed}:{index}")
        guide = rng.choice(self.guides)
        style_name = rng.choices(self._style_names, self._style_shares)[0]
        start = self._start_time(rng, _EPOCH + timedelta(days=rng.randrange(320)))
        st = self._state(rng, guide, style_name, start)
        scenario = rng.choices(self._scenarios, self._scenario_shares)[0]
        converted = getattr(self, f"_scenario_{scenario}")(st)
        amount = self._finish(st, converted)
        return self._record(
            st,
            conversation_id=f"syn-{self.seed}-{index:07d}",
            customer_id=f"u-{rng.randrange(16**8):08x}",
            channel=rng.choice(["wecom", "wecom", "wecom", "wechat"]),
            scenario=scenario,
            converted=converted,
            amount=amount,
        )

    def _start_time(self, rng: random.Random, day: datetime) -> datetime:
        """A moment of ``day`` when customers write: quiet at night, busy at lunch and evening."""
        return day.replace(
            hour=rng.choices(range(24), _HOURS)[0],
            minute=rng.randrange(60),
            second=rng.randrange(60),
        )

    def _state(
        self,
        rng: random.Random,
        guide: GuideProfile,
        style_name: str,
        start: datetime,
        product: Product | None = None,
        propensity: float | None = None,
    ) -> _State:
        """A fresh conversation state; the product and the customer's propensity drawn if not given."""
        domain = self.bank.domains[guide.domain]
        return _State(
            rng=rng,
            guide=guide,
            skill=self.rules["skills"][guide.skill],
            domain=domain,
            product=product or rng.choice(domain.products),
            style=self.rules["customer_styles"][style_name],
            propensity=rng.gauss(0.0, 1.0) if propensity is None else propensity,
            t=start,
            style_name=style_name,
        )

    def _finish(self, st: _State, converted: bool) -> float | None:
        """Close the conversation (at least one exchange); the order amount when it converted."""
        if len(st.messages) < 2:  # a conversation has at least one exchange
            self._guide_reply(st, "other", force=True)
        if not converted:
            return None
        qty = st.rng.choice([1, 1, 1, 2, 2, 3])
        factor = st.domain.promo_discount if st.promoted else 1.0
        return round(st.product.price * qty * factor, 2)

    def _record(
        self,
        st: _State,
        *,
        conversation_id: str,
        customer_id: str,
        channel: str,
        scenario: str,
        converted: bool,
        amount: float | None,
        meta: dict[str, Any] | None = None,
    ) -> Conversation:
        """The finished conversation; ``meta`` adds keys after the standard ones."""
        record = {
            "conversation_id": conversation_id,
            "guide_id": st.guide.guide_id,
            "customer_id": customer_id,
            "store_id": st.guide.store_id,
            "channel": channel,
            "messages": st.messages,
            "outcome": {"converted": converted, "order_amount": amount},
            "labels": {"intents": st.intents, "actions": st.actions},
            "meta": {
                "synthetic": True,
                "domain": st.guide.domain,
                "guide_skill": st.guide.skill,
                "customer_style": st.style_name,
                "scenario": scenario,
                "phrase_split": self.split,
                "seed": self.seed,
                "compliance_slips": st.slips,
                "mixed_intents": st.mixed,
                **(meta or {}),
            },
        }
        return Conversation.model_validate(record)

    # -------------------------------------------------------------- scenarios

    def _scenario_pre_sale(self, st: _State) -> bool:
        rng = st.rng
        if rng.random() < 0.5:
            label = self._customer(st, "greeting")
            self._guide_reply(st, label)
        # Most customers ask a few questions; some research at length before deciding.
        n_needs = (
            rng.randint(5, 14) if rng.random() < 0.08 else rng.choice([1, 1, 2, 2, 2, 3, 3, 4])
        )
        return self._shopping(st, n_needs=n_needs)

    def _scenario_guide_outreach(self, st: _State, opener_kind: str = "cores") -> bool:
        rng = st.rng
        st.t -= timedelta(seconds=rng.randrange(1, 60))
        first = rng.choice(["recommend_product", "share_promotion", "greet_and_discover"])
        self._guide_say(st, first, opener=True, kind=opener_kind)
        if rng.random() < 0.4:
            st.t += timedelta(seconds=rng.randrange(3, 40))
            self._guide_say(st, rng.choice(["share_promotion", "recommend_product"]))
        if rng.random() < 0.25 - 0.3 * min(st.sat, 0):  # no answer at all
            return False
        self._wait_customer(st)
        reply = rng.choice(
            ["price_inquiry", "product_inquiry", "size_fit", "stock", "other", "hesitation"]
        )
        if reply == "hesitation":
            label = self._customer(st, reply)
            self._guide_reply(st, label)
            return self._after_hesitation(st)
        return self._shopping(st, n_needs=rng.choice([1, 1, 2, 3]), first=reply)

    def _scenario_after_sale(self, st: _State) -> bool:
        rng = st.rng
        if rng.random() < 0.3:
            label = self._customer(st, "greeting", split_ok=False)
            self._guide_reply(st, label)
        for _ in range(rng.choice([1, 1, 2, 3])):
            label = self._customer(st, rng.choice(["after_sales", "after_sales", "logistics"]))
            handled = self._guide_reply(st, label)
            if st.full:
                break
            if not handled and rng.random() < 0.6:
                label = self._customer(st, "complaint")
                self._guide_reply(st, label)
        return self._ending(st, buy_logit=-2.0)

    def _scenario_complaint(self, st: _State) -> bool:
        rng = st.rng
        label = self._customer(st, "complaint")
        handled = self._guide_reply(st, label)
        rounds = 0
        while not handled and rounds < 2 and not st.full:
            label = self._customer(st, rng.choice(["complaint", "after_sales"]))
            handled = self._guide_reply(st, label)
            rounds += 1
        if handled and rng.random() < 0.6:
            label = self._customer(st, "after_sales")
            self._guide_reply(st, label)
        return self._ending(st, buy_logit=-3.0)

    def _scenario_chit_chat(self, st: _State) -> bool:
        rng = st.rng
        label = self._customer(st, rng.choice(["greeting", "other"]))
        self._guide_reply(st, label)
        for _ in range(rng.choice([0, 1, 2])):
            label = self._customer(st, "other")
            self._guide_reply(st, label)
        if rng.random() < 0.3:
            return self._shopping(st, n_needs=rng.choice([1, 2]))
        return self._ending(st, buy_logit=-4.0)

    # ----------------------------------------------------------- journey parts

    def _shopping(self, st: _State, n_needs: int, first: str | None = None) -> bool:
        rng = st.rng
        weights = self.rules["needs"][st.guide.domain]
        labels, shares = list(weights), list(weights.values())
        previous = None
        if rng.random() < 0.15:  # a bare link or picture that opens the request
            self._customer_literal(
                st, rng.choice(["[链接]", "[图片]", "[商品卡片]", "[小程序]"]), "product_inquiry"
            )
        for i in range(n_needs):
            need = first if (i == 0 and first) else rng.choices(labels, shares)[0]
            if need == previous:
                continue
            previous = need
            label = self._customer(st, need, mix=True)
            self._guide_reply(st, label)
            if st.full:
                return self._decide(st)
        if rng.random() < 0.55:
            for objection in rng.sample(_OBJECTIONS, rng.choice([1, 1, 2])):
                label = self._customer(st, objection, mix=True)
                self._guide_reply(st, label)
                if objection == "hesitation" and not st.full:
                    return self._after_hesitation(st)
        return self._closing_phase(st)

    def _closing_phase(self, st: _State) -> bool:
        rng = st.rng
        if not self._decide(st):
            if rng.random() < 0.65:
                label = self._customer(st, "hesitation", mix=True)
                self._guide_reply(st, label)
                return self._after_hesitation(st)
            return self._ending(st, buy_logit=-5.0)
        label = self._customer(st, "purchase_intent", mix=True)
        closed = self._guide_reply(st, label)
        if rng.random() < 0.3:  # "那我拿M码对吧？" — a last check before paying
            label = self._customer(
                st, rng.choice(["size_fit", "stock", "price_inquiry", "logistics"])
            )
            closed = self._guide_reply(st, label) or closed
        converted = rng.random() < (0.95 if closed else 0.45)
        if converted and rng.random() < 0.35:
            label = self._customer(st, "logistics")
            self._guide_reply(st, label)
        if converted and rng.random() < 0.6:
            label = self._customer(st, "thanks_closing")
            self._guide_reply(st, label)
        elif not converted and rng.random() < 0.5:
            self._customer(st, rng.choice(["hesitation", "thanks_closing"]))
        return converted

    def _after_hesitation(self, st: _State) -> bool:
        """After a hesitation: a guide who agreed a follow-up may win the customer back later."""
        rng = st.rng
        followed = bool(st.actions) and st.actions.get(max(st.actions)) == "follow_up_later"
        if rng.random() < 0.4:
            label = self._customer(st, "thanks_closing")
            self._guide_reply(st, label)
        if st.full:
            return False
        revive = _sigmoid(
            self.rules["base_logit"] + st.propensity + st.sat - (0.3 if followed else 1.5)
        )
        if rng.random() >= revive:
            return False
        st.t += timedelta(hours=rng.uniform(4, 60))
        if not 9 <= st.t.hour < 22:  # a guide follows up in working hours, not at 3 a.m.
            day = st.t if st.t.hour < 9 else st.t + timedelta(days=1)
            st.t = day.replace(hour=rng.choice([9, 10, 10, 11]), minute=rng.randrange(60))
        if followed or rng.random() < st.skill["follow_up"]:
            self._guide_say(st, rng.choice(["follow_up_later", "share_promotion"]), opener=True)
            self._wait_customer(st)
        label = self._customer(st, "purchase_intent", mix=True)
        closed = self._guide_reply(st, label)
        converted = rng.random() < (0.92 if closed else 0.5)
        if converted and rng.random() < 0.5:
            label = self._customer(st, "thanks_closing")
            self._guide_reply(st, label)
        return converted

    def _ending(self, st: _State, buy_logit: float) -> bool:
        rng = st.rng
        if rng.random() < 0.6 and not st.full:
            label = self._customer(st, "thanks_closing")
            self._guide_reply(st, label)
        return rng.random() < _sigmoid(buy_logit + st.propensity + st.sat)

    def _decide(self, st: _State) -> bool:
        return st.rng.random() < _sigmoid(self.rules["base_logit"] + st.propensity + st.sat)

    # ------------------------------------------------------- guide behaviour

    def _guide_reply(self, st: _State, intent: str, force: bool = False) -> bool:
        """The guide answers the customer's ``intent``; returns whether it was answered well."""
        rng, sk, fx = st.rng, st.skill, self.rules["effects"]
        right = self.rules["right_action"][intent]
        if intent in ("thanks_closing", "other") and not force:
            # Closings and chit-chat need no answer; warm guides still reply.
            if rng.random() > 0.25 + 0.7 * sk["warmth"]:
                return True
        elif not force and rng.random() > sk["respond"]:
            st.sat += fx["ignored"] + (fx["objection_ignored"] if intent in _OBJECTIONS else 0.0)
            return False
        if st.full:
            return False
        p_right = {
            "price_objection": sk["handle_objection"],
            "trust_objection": sk["handle_objection"],
            "hesitation": sk["follow_up"],
            "purchase_intent": sk["close"],
        }.get(intent, sk["right_action"])
        if st.purchase_signal and not st.closed and intent in self._needs_of(st):
            # After a purchase signal the best reply closes, even to a question already answered.
            right, p_right = ["close_sale"], sk["close"]
        good = rng.random() < p_right
        if good:
            action = self._best_action(st, intent, right)
        else:
            wrong = [a for a in self.bank.actions if a not in right]
            pushy = [
                a
                for a in ("recommend_product", "share_promotion", "close_sale", "polite_closing")
                if a not in right
            ]
            action = rng.choice(pushy if rng.random() < 0.6 else wrong)
        terse = rng.random() < sk["terse"]
        st.sat += fx["right_action"] if good else fx["wrong_action"]
        if good and not terse:
            st.sat += fx["detailed_reply"]
        if intent in _OBJECTIONS:
            st.sat += fx["objection_handled"] if good and not terse else fx["objection_ignored"] / 2
        if intent == "hesitation" and good and action == "follow_up_later":
            st.sat += fx["follow_up"]
        self._wait_guide(st)
        self._guide_say(st, action, terse=terse)
        if action == "greet_and_discover" and not terse:
            self._discovered(st)
        # A second message: a discovery question or a recommendation after discovery.
        if not st.full and intent in self._needs_of(st) and good and action != "close_sale":
            if not st.discovered and rng.random() < sk["discovery"] * 0.6:
                st.t += timedelta(seconds=rng.randrange(3, 40))
                self._guide_say(st, rng.choice(["greet_and_discover", "size_advice"]))
                self._discovered(st)
            elif st.discovered and not st.recommended and rng.random() < sk["recommend"] * 0.5:
                st.t += timedelta(seconds=rng.randrange(3, 40))
                self._guide_say(st, "recommend_product")
                st.recommended = True
                st.sat += fx["recommend_after_discovery"]
        if intent == "purchase_intent" and good:
            st.sat += fx["close_attempt"]
        return good

    def _needs_of(self, st: _State) -> dict[str, float]:
        needs: dict[str, float] = self.rules["needs"][st.guide.domain]
        return needs

    def _best_action(self, st: _State, intent: str, right: list[str]) -> str:
        """What a good guide does for ``intent`` given the conversation so far."""
        rng = st.rng
        if len(right) == 1 or rng.random() < 0.1:
            return right[0] if len(right) == 1 else rng.choice(right)
        if intent == "product_inquiry":  # once needs are known, answer by recommending
            return (
                "recommend_product"
                if st.discovered and not st.recommended
                else "answer_product_question"
            )
        if intent == "price_objection":  # a benefit first; once it is given, argue value
            return "handle_price_objection" if st.promoted else "share_promotion"
        if intent == "hesitation":  # hesitation about price is a price objection in disguise
            return (
                "handle_price_objection"
                if st.price_objection and not st.promoted
                else "follow_up_later"
            )
        if intent == "other":
            return "polite_closing" if len(st.messages) >= 6 else "greet_and_discover"
        return right[0]

    def _discovered(self, st: _State) -> None:
        if not st.discovered:
            st.discovered = True
            st.sat += self.rules["effects"]["discovery"]

    def _guide_say(
        self,
        st: _State,
        action: str,
        terse: bool = False,
        opener: bool = False,
        kind: str | None = None,
    ) -> None:
        """The guide writes an ``action``; ``kind`` picks a phrase variant (``reopen``)."""
        if st.full:
            return
        rng, noise = st.rng, self.bank.guide_noise
        kind = kind or ("terse" if terse else "cores")
        phrases = self.bank.cores("guide", action, st.guide.domain, self.split, kind)
        repertoire = self._repertoire(st.guide, action, kind, len(phrases))
        # Guides reuse a repertoire of go-to scripts (many pushed by headquarters), not a fresh
        # phrasing every time; skilled guides stick to theirs more.
        if rng.random() < 0.45 + 0.4 * st.skill["warmth"]:
            phrase = phrases[rng.choice(repertoire)]
        else:
            phrase = rng.choice(phrases)
        text = phrase.render(rng, lambda slot: self._fill(st, slot, "guide"))
        warmth = st.skill["warmth"]
        if not terse:
            if (
                (opener or not st.guide_spoke)
                and rng.random() < warmth * 0.6
                and noise.get("openers")
            ):
                text = rng.choice(noise["openers"]) + rng.choice(["，", "～", " ", "！"]) + text
            if rng.random() < warmth * 0.35 and noise.get("emoji"):
                text += rng.choice(noise["emoji"])
        if rng.random() < st.skill["slip"]:
            text = self._slip(st, text)
        if action == "share_promotion":
            st.promoted = True
        if action == "close_sale":
            st.closed = True
        if action == "recommend_product":
            st.recommended = True
        st.guide_spoke = True
        self._append(st, "guide", text, action)

    def _repertoire(self, guide: GuideProfile, action: str, kind: str, n: int) -> list[int]:
        """A guide's go-to phrasings of an action: a few, drawn with a Zipf preference so that the
        headquarters' standard scripts (the first of the bank) are shared by many guides."""
        key = (guide.guide_id, action, kind, n)
        cached = self._repertoires.get(key)
        if cached is None:
            rng = random.Random(f"{self.seed}:{guide.guide_id}:{action}:{kind}")
            weights = [1.0 / (rank + 1) for rank in range(n)]
            cached = sorted(set(rng.choices(range(n), weights, k=min(6, n))))
            self._repertoires[key] = cached
        return cached

    def _slip(self, st: _State, text: str) -> str:
        rng = st.rng
        kinds = [k for k in _SLIP_WEIGHTS if self.bank.slips.get(k)]
        if not kinds:
            return text
        kind = rng.choices(kinds, [_SLIP_WEIGHTS[k] for k in kinds])[0]
        slip = rng.choice(self.bank.slips[kind]).render(
            rng, lambda slot: self._fill(st, slot, "guide")
        )
        if kind == "rude":
            st.sat += self.rules["effects"]["rude"]
        st.slips.append({"message_index": len(st.messages), "kind": kind, "text": slip})
        return f"{text}{rng.choice(['，', '。', '！', ' '])}{slip}" if rng.random() < 0.75 else slip

    # ---------------------------------------------------- customer behaviour

    def _customer(self, st: _State, intent: str, mix: bool = False, split_ok: bool = True) -> str:
        """The customer writes a message (sometimes two) about ``intent``; returns its label.

        With ``mix`` the message may also carry a second intent; its label is then the one the
        guide must answer first (``intent_priority``), and that is what the guide answers.
        """
        if st.full:
            return intent
        rng, style = st.rng, st.style
        if st.messages:
            self._wait_customer(st)
        first = not st.messages
        # A greeting sent as its own message before the request.
        if first and split_ok and intent != "greeting" and rng.random() < style["split"] * 0.5:
            self._append(st, "customer", self._compose(st, "greeting", opener=False), "greeting")
            st.t += timedelta(seconds=rng.randrange(2, 25))
        label = intent
        # Real first messages often lead with "在吗？" / "你好" before the request itself.
        opener = first and intent != "greeting" and rng.random() < max(style["opener"], 0.4)
        text = self._compose(st, intent, opener=opener)
        if mix and intent in self._mixable and rng.random() < 0.14:
            other = rng.choice(self._mixable[intent])
            second = self._compose(st, other, opener=False)
            parts = [text, second] if rng.random() < 0.5 else [second, text]
            text = parts[0].rstrip("。.") + rng.choice(_SEPARATORS) + parts[1]
            label = min(intent, other, key=self._priority.__getitem__)
            st.mixed.append({"message_index": len(st.messages), "intents": sorted({intent, other})})
        self._append(st, "customer", text, label)
        if label == "purchase_intent":
            st.purchase_signal, st.closed = True, False
        elif label == "price_objection":
            st.price_objection = True
        if rng.random() < style["sticker"] * 0.3 and not st.full:  # a sticker on its own
            st.t += timedelta(seconds=rng.randrange(1, 10))
            sticker = rng.choice(self.bank.customer_noise.get("stickers") or ["[微笑]"])
            self._append(st, "customer", sticker * rng.choice([1, 1, 2]), "other")
        return label

    def _customer_literal(self, st: _State, text: str, intent: str) -> None:
        if st.messages:
            self._wait_customer(st)
        self._append(st, "customer", text, intent)
        st.t += timedelta(seconds=st.rng.randrange(2, 20))

    def _compose(self, st: _State, intent: str, opener: bool) -> str:
        rng, style, noise = st.rng, st.style, self.bank.customer_noise
        section = self.bank.intents[intent]
        phrase = rng.choice(self._customer_phrases(st, intent))
        core = phrase.render(rng, lambda slot: self._fill(st, slot))
        out = []
        if opener and noise.get("openers"):
            common = self.rules.get("common_openers")
            pool = common if common and rng.random() < 0.5 else noise["openers"]
            out.append(rng.choice(pool) + rng.choice(_SEPARATORS))
        if section["leads"] and rng.random() < style["lead"]:
            out.append(rng.choice(section["leads"]).render(rng, lambda slot: self._fill(st, slot)))
        out.append(core)
        # After a sentence-final particle ("…吗") another one ("…吗呀") is rare in real chat.
        final = core.rstrip("？?！!。.～~ ")[-1:] in _FINAL_PARTICLES and rng.random() < 0.85
        if section["tails"] and not final and rng.random() < style["tail"]:
            out.append(rng.choice(section["tails"]).render(rng, lambda slot: self._fill(st, slot)))
        if not final and rng.random() < style["particle"] and noise.get("particles"):
            out.append(rng.choice(noise["particles"]))
        if noise.get("endings"):
            out.append(rng.choice(noise["endings"]))
        if rng.random() < style["emoji"] and noise.get("emoji"):
            out.append(rng.choice(noise["emoji"]) * rng.choice([1, 1, 1, 2, 3]))
        if rng.random() < style["sticker"] and noise.get("stickers"):
            out.append(rng.choice(noise["stickers"]))
        return self._noisify(st, "".join(out))

    def _customer_phrases(self, st: _State, intent: str) -> list[Phrase]:
        """The phrasings a customer may use for ``intent`` (a subclass may narrow them)."""
        return self.bank.cores("customer", intent, st.guide.domain, self.split)

    def _noisify(self, st: _State, text: str) -> str:
        rng, style, noise = st.rng, st.style, self.bank.customer_noise
        for table, p in (
            (noise.get("typos") or {}, style["typo"]),
            (noise.get("code_mix") or {}, style["code_mix"]),
        ):
            if rng.random() < p * 3:  # most messages skip the scan entirely
                for word, variants in table.items():
                    if word in text and variants and rng.random() < 0.35:
                        text = text.replace(word, str(rng.choice(variants)), 1)
        if rng.random() < style["fullwidth"]:
            text = "".join(
                chr(ord(c) + 0xFEE0) if "!" <= c <= "~" and c not in "[]" else c for c in text
            )
        if rng.random() < style["traditional"]:
            text = self._to_traditional.convert(text)
        return text

    # ---------------------------------------------------------------- shared

    def _fill(self, st: _State, slot: str, speaker: str = "customer") -> str:
        rng, product, domain, values = st.rng, st.product, st.domain, self.rules["values"]
        fresh = slot.endswith("#2")
        slot = slot.removesuffix("#2")
        sticky = None if fresh else st.values.get(slot)
        if sticky is not None:
            return sticky
        value: str
        if slot == "product":
            refs = (
                values["product_refs"]
                + values[f"{speaker}_product_refs"]
                + (values["apparel_refs"] if domain.name == "apparel" else [])
            )
            return rng.choice(refs) + product.name
        if slot == "category":
            return product.category
        if slot == "attr":
            return rng.choice(product.attributes or ["材质"])
        if slot == "concern":
            return rng.choice(product.concerns or ["质量"])
        if slot == "size":
            value = rng.choice(product.sizes or ["均码"])
        elif slot == "color":
            value = rng.choice(product.colors or ["黑色", "白色", "米色"])
        elif slot == "body":
            value = rng.choice(domain.body or ["165/50kg"])
        elif slot == "price":
            return str(product.price)
        elif slot == "price2":
            value = str(max(1, int(product.price * rng.uniform(0.55, 0.92))))
        elif slot == "diff":
            return str(
                rng.choice([10, 20, 30, 50, 80, 100, 200])
                if product.price > 150
                else rng.choice([5, 10, 20])
            )
        elif slot == "order":
            return "[订单号]" if rng.random() < 0.3 else str(rng.randrange(10**15, 10**19))
        elif slot == "call":
            return rng.choice(self.bank.guide_noise.get("calls") or ["亲"])
        elif slot == "selling_point":
            return rng.choice(product.selling_points or ["品质很好"])
        elif slot == "material":
            return product.material or "优质面料"
        elif slot == "coupon":
            return rng.choice(domain.coupons or ["满300减30"])
        elif slot == "promo_price":
            return str(int(product.price * domain.promo_discount))
        elif slot == "policy":
            return rng.choice(domain.policies or ["七天无理由退换"])
        elif slot == "gift":
            return rng.choice(product.gifts or ["小样"])
        elif slot in values:
            value = rng.choice(values[slot])
        else:  # slots are checked when the bank loads, so this is a bug in the bank checks
            raise KeyError(slot)
        if not fresh:  # the customer's size, colour, body, person... stay the same
            st.values[slot] = value
        return value

    def _append(self, st: _State, role: str, text: str, label: str) -> None:
        if st.full:
            return
        index = len(st.messages)
        st.messages.append({"role": role, "text": text, "ts": st.t.isoformat()})
        (st.intents if role == "customer" else st.actions)[index] = label

    def _wait_guide(self, st: _State) -> None:
        rng, sk = st.rng, st.skill
        seconds = rng.lognormvariate(math.log(sk["latency_median_s"]), sk["latency_sigma"])
        seconds = min(max(seconds, 4.0), 36 * 3600.0)
        reply = st.t + timedelta(seconds=int(seconds))
        # Replies asked for late at night often wait for the morning.
        if (reply.hour >= 23 or reply.hour < 8) and rng.random() < 0.8 - sk["warmth"] * 0.5:
            day = reply if reply.hour < 8 else reply + timedelta(days=1)
            reply = day.replace(hour=rng.choice([8, 9, 9, 10]), minute=rng.randrange(60))
        slow = math.log10(max((reply - st.t).total_seconds(), 1.0) / 120.0)
        if slow > 0:
            st.sat += self.rules["effects"]["slow_per_decade"] * slow
        st.t = reply

    def _wait_customer(self, st: _State) -> None:
        rng = st.rng
        if rng.random() < 0.08:
            st.t += timedelta(seconds=rng.randrange(3600, 20 * 3600))
        else:
            st.t += timedelta(seconds=int(min(rng.lognormvariate(math.log(40), 1.1), 3 * 3600)) + 2)
