"""Ranking given replies: a headquarters script library (话术库) or a guide tool's own candidates.

Each candidate is scored as the guide's next reply with the signals the suggestion engine uses:

    score = match + w_action x P(next action = the candidate's action)

``w_action`` is fitted on the brand's own held-out replies when the bundle is trained
(:func:`fit_action_weight`: the weight that best picks each actual reply out of ten); without
a fitted weight :class:`RankConfig`'s default applies.

``match`` is the bundle's reply-matching score of the candidate for the conversation so far
(:class:`~models.reply_match.ReplyMatcher`: learned from the brand's own (context, reply) pairs;
without one, the cosine of the embedder's vectors); the candidate's action is what the bundle's
act classifier reads in it, and its probability comes from the next-best-action model. A
candidate that breaks a compliance rule or carries raw personal data is ranked after every safe
one, whatever its score, with its flags. Every candidate comes back exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from copilot.compliance import ComplianceChecker
from copilot.errors import InputError
from copilot.schema import Conversation
from copilot.text import TextPipeline, default_pipeline
from models.bundle import Bundle

__all__ = ["ACTION_WEIGHTS", "MAX_CANDIDATES", "RankConfig", "ReplyRanker", "fit_action_weight"]

ACTION_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
"""The weights :func:`fit_action_weight` chooses from."""

MAX_CANDIDATES = 500
"""Most candidates one request may rank."""


@dataclass
class RankConfig:
    """Weights of :class:`ReplyRanker`.

    Attributes:
        w_action: weight of the next-best-action probability of the candidate's action, when
            the bundle's reply matcher has none fitted.
        context_turns: messages of the conversation read as the context.
    """

    w_action: float = 0.3
    context_turns: int = 5


class ReplyRanker:
    """Scores given candidate replies for a conversation (see the module docstring).

    Args:
        bundle: the models (reply matcher, act classifier, next-best action).
        checker: compliance rules; a candidate with a hit is ranked last.
        config: weights.
        pipeline: masks personal data.
    """

    def __init__(
        self,
        bundle: Bundle,
        checker: ComplianceChecker,
        config: RankConfig | None = None,
        pipeline: TextPipeline | None = None,
    ) -> None:
        self.bundle = bundle
        self.checker = checker
        self.config = config or RankConfig()
        self.pipeline = pipeline or default_pipeline()

    @property
    def w_action(self) -> float:
        """The action weight fitted with the bundle's reply matcher, else the configured one."""
        matcher = self.bundle.reply_matcher
        fitted = getattr(matcher, "action_weight_", None) if matcher is not None else None
        return self.config.w_action if fitted is None else float(fitted)

    def match(self, context: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        """Reply-matching score of each candidate for ``context`` (the messages so far)."""
        context = [self.pipeline.mask(t)[0] for t in context if t][-self.config.context_turns :]
        texts = [self.pipeline.mask(t)[0] for t in candidates]
        if not context or not texts:
            return np.zeros(len(texts), dtype=np.float32)
        matcher = self.bundle.reply_matcher
        if matcher is not None:
            return matcher.score(context, texts)
        embedder = self.bundle.embedder
        query = embedder.encode([" | ".join(context)])[0]
        return (embedder.encode(texts) @ query).astype(np.float32)

    def rank(
        self,
        conversation: Conversation,
        candidates: Sequence[str],
        actions: dict[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        """The candidates best first: ``[{"text", "score", "action", "reason", "flags"}]``.

        Args:
            conversation: the conversation so far (its last message is usually the customer's).
            candidates: reply texts; each is returned once, duplicates included.
            actions: next-action probabilities when the caller has them already.

        Raises:
            InputError: no candidates, too many, or an empty one.
        """
        if not candidates:
            raise InputError("candidates: give at least one reply text to rank")
        if len(candidates) > MAX_CANDIDATES:
            raise InputError(
                f"candidates: {len(candidates)} given, at most {MAX_CANDIDATES} per request"
            )
        for n, text in enumerate(candidates):
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"candidates[{n}]: empty text; every candidate needs a reply")
        messages = [m for m in conversation.messages if m.role != "system"]
        if actions is None:
            ranked = self.bundle.next_actions(conversation, k=len(self.bundle.nba.classes_))
            actions = {a.label: a.confidence for a in ranked}
        match = self.match([m.text for m in messages], candidates)
        last_customer = next((m.text for m in reversed(messages) if m.role == "customer"), "")
        acts = self.bundle.predict_acts(list(candidates), [last_customer] * len(candidates))
        name = self.bundle.taxonomy.name_of
        out: list[dict[str, Any]] = []
        keys: list[tuple[bool, float, int]] = []
        for n, (text, m, act) in enumerate(zip(candidates, match.tolist(), acts, strict=True)):
            p = actions.get(act.label, 0.0)
            score = round(float(m + self.w_action * p), 4)
            flags = self._flags(text)
            reason = f"回复匹配度 {m:.2f}；动作「{name(act.label)}」，下一步建议概率 {p:.0%}"
            if flags:
                reason += "；存在合规或隐私风险，排在最后"
            out.append(
                {
                    "text": text,
                    "score": score,
                    "action": act.label,
                    "reason": reason,
                    "flags": flags,
                }
            )
            keys.append((bool(flags), -score, n))
        return [out[k[2]] for k in sorted(keys)]

    def _flags(self, text: str) -> list[dict[str, Any]]:
        """Compliance hits, and raw personal data the rules did not already report."""
        hits = self.checker.check(text)
        flags = [
            {"kind": "compliance", "rule": h.kind, "excerpt": h.excerpt, "severity": h.severity}
            for h in hits
        ]
        masked = self.pipeline.mask(text)[1]
        if masked and not any(h.kind == "data_exposure" for h in hits):
            flags += [
                {"kind": "personal_data", "rule": kind, "excerpt": "", "severity": "high"}
                for kind in sorted(masked)
            ]
        return flags


def fit_action_weight(
    bundle: Bundle,
    held_out: Sequence[tuple[Conversation, str]],
    *,
    negatives: int = 9,
    seed: int = 0,
) -> tuple[float, dict[str, float]]:
    """The action weight that best picks actual replies out of ``negatives + 1`` candidates.

    Args:
        bundle: with its reply matcher (trained without these replies).
        held_out: ``(conversation before the reply, the reply)`` of replies the matcher never saw.
        negatives: other held-out replies (other texts) each actual reply is ranked against.
        seed: seeds the choice of negatives.

    Returns:
        ``(best weight, {weight: R@1})``; ties go to the smaller weight, and 0 wins when the
        actions do not help.
    """
    import random

    matcher = bundle.reply_matcher
    if matcher is None or len(held_out) <= negatives:
        return 0.0, {}
    rng = random.Random(seed)
    replies = [reply for _, reply in held_out]
    contexts = [
        [m.text for m in c.messages if m.role != "system" and m.text][-matcher.context_turns :]
        for c, _ in held_out
    ]
    ctx, ctx_raw = matcher.encode_contexts(contexts)
    rep, rep_raw = matcher.encode_replies(replies)
    last = [
        next((m.text for m in reversed(c.messages) if m.role == "customer"), "")
        for c, _ in held_out
    ]
    acts = [p.label for p in bundle.predict_acts(replies, last)]
    hits = {w: 0 for w in ACTION_WEIGHTS}
    for n, (conversation, reply) in enumerate(held_out):
        options = [j for j in range(len(held_out)) if replies[j] != reply]
        if len(options) < negatives:
            continue
        cands = [n, *rng.sample(options, negatives)]
        match = matcher.combine(ctx[n], ctx_raw[n], rep[cands], rep_raw[cands])
        ranked = bundle.next_actions(conversation, k=len(bundle.nba.classes_))
        probability = {a.label: a.confidence for a in ranked}
        p = np.asarray([probability.get(acts[j], 0.0) for j in cands])
        for w in ACTION_WEIGHTS:
            score = match + w * p
            hits[w] += int(all(score[0] > x for x in score[1:]))
    table = {str(w): round(h / len(held_out), 4) for w, h in hits.items()}
    best = max(ACTION_WEIGHTS, key=lambda w: (hits[w], -w))
    return best, table
