"""Two steps of the suggestion engine: ground the ranked candidates, then pick k different ones.

:func:`ground` fills each candidate script's slots from the chat (:mod:`copilot.slots`) and
drops those the chat does not support (:mod:`copilot.facts`), the ones it already said, and
those about another kind of product; complete ones come before those left for the guide to edit
(``needs_edit``). :func:`diversify` then picks k by maximal marginal relevance over the reply
vectors, never a needs-edit one while a complete one is left, each passing the safety check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from copilot.catalog import Catalog
from copilot.facts import Evidence
from copilot.slots import Filled, SlotValues, fill
from models.scripts import Script, reply_key

__all__ = ["Ranked", "diversify", "fits", "ground"]


@dataclass
class Ranked:
    """A candidate script with its score; ``filled`` once :func:`ground` filled it."""

    script: Script
    score: float
    relevance: float
    filled: Filled | None = None

    @property
    def text(self) -> str:
        return self.filled.text if self.filled else self.script.text


def fits(script: Script, values: SlotValues) -> bool:
    """A script that speaks of a kind of product is for chats about that kind only."""
    if not script.products or ("[商品]" not in script.text and "[品类]" not in script.text):
        return True
    return values.kind is None or values.kind in script.products


def ground(
    ranked: Sequence[Ranked],
    messages: Sequence[tuple[str, str]],
    catalog: Catalog,
    *,
    day: date | None = None,
    keep: Callable[[Ranked], bool] = lambda _r: True,
    vouched: Callable[[Script], bool] = lambda _s: False,
    enough: int | None = None,
    known: Mapping[str, str] | None = None,
) -> list[Ranked]:
    """The candidates a guide could send in this chat, filled, complete ones first.

    Args:
        ranked: candidates, best first.
        messages: ``(role, masked text)`` of the chat so far.
        catalog: products, promotions and product words (fill and check).
        day: the chat's day (promotions running then); today when ``None``.
        keep: candidates it rejects are dropped first (too low a score ...).
        vouched: scripts the brand vouches for (written, pinned): their own facts stand, but
            they are still dropped when the chat contradicts them or they name another product.
        enough: stop once this many complete candidates are found (the rest would not be
            picked): the check costs per candidate.
        known: what the customer's profile says (``size``, ``product``) for the slots the
            chat leaves open; its product counts as named in the chat.
    """
    values = SlotValues.of(messages, catalog, day, known)
    if known and "product" in known and values.values.get("product") == known["product"]:
        messages = [("customer", known["product"]), *messages]
    evidence = Evidence.of(messages, catalog, day)
    said = {reply_key(t) for r, t in messages if r == "guide"}
    complete: list[Ranked] = []
    partial: list[Ranked] = []
    for r in ranked:
        if not keep(r) or not fits(r.script, values):
            continue
        filled = fill(r.script.text, values)
        if reply_key(filled.text) in said:
            continue  # the guide said it already in this chat
        problems = evidence.problems(filled.text)
        if problems and vouched(r.script):
            problems = [p for p in problems if p.verdict == "contradicted" or p.kind == "product"]
        if problems:
            continue
        grounded = dataclasses.replace(r, filled=filled)
        (partial if filled.needs_edit else complete).append(grounded)
        if enough is not None and len(complete) >= enough:
            break
    return complete + partial


def diversify(
    pool: Sequence[Ranked],
    k: int,
    vectors: np.ndarray,
    lam: float,
    *,
    safe: Callable[[str], bool] = lambda _t: True,
) -> list[Ranked]:
    """Maximal marginal relevance over reply vectors (rows by script id), then ``safe``.

    Two scripts of the same action count as alike even when worded differently: a guide is
    better served by a promotion, a value argument and a close than by three promotions. A
    candidate left for the guide to edit is picked only when no complete one is left.
    """
    left = list(pool)
    chosen: list[Ranked] = []
    while left and len(chosen) < k:
        if chosen:
            picked = vectors[[c.script.id for c in chosen]]
            sims = vectors[[r.script.id for r in left]] @ picked.T
            same = np.asarray(
                [[r.script.action == c.script.action for c in chosen] for r in left],
                dtype=np.float32,
            )
            sims = 0.6 * np.clip(sims, 0.0, 1.0) + 0.4 * same
            mmr = [
                lam * r.score - (1 - lam) * float(s.max()) for r, s in zip(left, sims, strict=True)
            ]
        else:
            mmr = [r.score for r in left]
        edit = [r.filled is not None and r.filled.needs_edit for r in left]
        if not all(edit):
            mmr = [m if not e else float("-inf") for m, e in zip(mmr, edit, strict=True)]
        best = left.pop(int(np.argmax(mmr)))
        if safe(best.text):
            chosen.append(best)
    return chosen
