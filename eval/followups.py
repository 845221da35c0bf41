"""Does the follow-up queue list the customers worth contacting? Measured on generated journeys.

    python -m eval.followups [--customers 1500] [--seed 0] [--days 15] [--bundle bundles/default]

The generator's customer journeys (:func:`copilot.synth.journeys`) know which customers
hesitated or promised to come back, which a guide followed up, and which bought after it.

1. **Recall of follow-ups that converted**: for each customer whom a guide followed up and who
   then bought, the queue of the follow-up's day is built from what was known before it (the
   earlier chats, the orders paid before it): was the customer in it? Also for every follow-up
   and for customers who came back by themselves.
2. **Entries that were needed**: the queue of ``--days`` days spread over the corpus, each
   built from the chats and orders before that day; an entry is needed when the ground truth
   agrees with its reason: a hesitation or promise not yet followed by a purchase (and, for a
   come-back, the promise was made), a question the customer's last message really asked
   (its intent is a question), a purchase for after-sales care.

Twice: with the rules alone (words), and with the messages labelled by a bundle's intent
classifier as the server does (``--bundle``; the default bundle was trained on the same phrase
banks as the journeys, so that row is optimistic). The journeys use the generator's held-out
phrasings.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from copilot.followups import build_queue, customer_states
from copilot.schema import CHINA_TZ, Conversation
from copilot.synth import journey_orders, journeys

__all__ = ["main"]

_QUESTIONS = {"product_inquiry", "price_inquiry", "size_fit", "stock", "logistics", "after_sales"}


def _start(c: Conversation) -> datetime:
    return min(m.ts for m in c.messages if m.ts is not None)


def _before(moment: datetime, chats: list[Conversation], orders: list[dict[str, Any]]):
    return [c for c in chats if _start(c) < moment], [o for o in orders if o["paid_at"] < moment]


Intents = Callable[[Conversation], Sequence[str | None]] | None


def follow_up_recall(
    by_customer: dict[str, list[Conversation]], orders: dict[str, list[dict]], intents: Intents
) -> dict[str, Any]:
    """Per kind of later chat: how many customers the queue of that chat's day listed."""
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for cid, chats in by_customer.items():
        for chat in chats[1:]:
            journey = chat.meta["journey"]
            if journey["followed_up"]:
                kinds = ["followed up"] + (
                    ["followed up, then bought"] if journey["converted_after_follow_up"] else []
                )
            elif journey["returned_by_self"]:
                kinds = ["came back by themselves"]
            else:
                continue
            day = _start(chat).astimezone(CHINA_TZ).date()
            # What was known the morning of that day.
            known, paid = _before(
                datetime.combine(day, time(0), CHINA_TZ), chats, orders.get(cid, [])
            )
            own = [{**o, "customer_id": cid} for o in paid]
            states = customer_states(known, own, intents=intents)
            listed = any(e.customer_id == cid for e in build_queue(states.values(), day))
            for kind in kinds:
                total[kind] += 1
                found[kind] += listed
            break
    return {
        k: {"customers": total[k], "listed": found[k], "recall": round(found[k] / total[k], 3)}
        for k in total
    }


def needed_share(
    by_customer: dict[str, list[Conversation]],
    orders: dict[str, list[dict]],
    days: list[date],
    intents: Intents,
) -> dict[str, Any]:
    """Per reason: queue entries and the share of them the ground truth says were needed."""
    entries: Counter[str] = Counter()
    needed: Counter[str] = Counter()
    for day in days:
        morning = datetime.combine(day, time(0), CHINA_TZ)
        known_by: dict[str, tuple[list[Conversation], list[dict]]] = {}
        for cid, chats in by_customer.items():
            known, paid = _before(morning, chats, orders.get(cid, []))
            if known:
                known_by[cid] = (known, paid)
        states = customer_states(
            [c for known, _ in known_by.values() for c in known],
            [o for _, paid in known_by.values() for o in paid],
            intents=intents,
        )
        for entry in build_queue(states.values(), day):
            known, paid = known_by[entry.customer_id]
            entries[entry.reason] += 1
            needed[entry.reason] += _needed(entry.reason, known, paid)
    out: dict[str, dict[str, Any]] = {
        r: {"entries": entries[r], "needed": round(needed[r] / entries[r], 3)} for r in entries
    }
    total = sum(entries.values())
    out["all"] = {
        "entries": total,
        "needed": round(sum(needed.values()) / total, 3) if total else None,
    }
    return out


def _needed(reason: str, known: list[Conversation], paid: list[dict]) -> bool:
    last = max(known, key=_start)
    journey = last.meta.get("journey", {})
    if reason in ("hesitated", "come_back"):
        bought_after = any(o["paid_at"] >= _start(last) for o in paid)
        open_need = journey.get("hesitated") or bool(journey.get("promised"))
        return (
            bool(open_need)
            and not bought_after
            and (reason == "hesitated" or bool(journey.get("promised")))
        )
    if reason == "unanswered":
        customer = [i for i, m in enumerate(last.messages) if m.role == "customer"]
        intents = last.labels.intents if last.labels else {}
        return bool(customer) and intents.get(customer[-1]) in _QUESTIONS
    return bool(paid)  # after-sales care follows a purchase


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=15)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/default"))
    args = parser.parse_args(argv)
    conversations = list(journeys(args.customers, seed=args.seed, split="heldout"))
    by_customer: dict[str, list[Conversation]] = defaultdict(list)
    for c in conversations:
        by_customer[c.customer_id or ""].append(c)
    orders: dict[str, list[dict]] = defaultdict(list)
    for o in journey_orders(conversations, seed=args.seed):
        orders[o["customer_id"]].append(o)
    first, last = min(map(_start, conversations)).date(), max(map(_start, conversations)).date()
    step = max(1, (last - first).days // args.days)
    days = [first + timedelta(days=10 + i * step) for i in range(args.days)]
    days = [d for d in days if d <= last]
    print(f"{len(by_customer)} customers, {len(conversations)} conversations (seed {args.seed})")
    out = {}
    for name, labeller in _labellers(args.bundle).items():
        recall = follow_up_recall(by_customer, orders, labeller)
        share = needed_share(by_customer, orders, days, labeller)
        out[name] = {"recall": recall, "needed": share}
        print(f"\n## {name}\n| later chat | customers | in the queue that day | recall |")
        print("|---|---|---|---|")
        for kind, r in recall.items():
            print(f"| {kind} | {r['customers']} | {r['listed']} | {r['recall']:.3f} |")
        print(f"\n{len(days)} days' queues\n| reason | entries | needed |\n|---|---|---|")
        for reason, r in share.items():
            print(f"| {reason} | {r['entries']} | {r['needed']} |")
    return out


def _labellers(bundle_dir: Path) -> dict[str, Intents]:
    """The rules alone, and a bundle's intent classifier (memoised per conversation)."""
    out: dict[str, Intents] = {"rules alone": None}
    if not (bundle_dir / "manifest.json").is_file():
        return out
    from models.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    memo: dict[str, list[str | None]] = {}

    def intents(c: Conversation) -> list[str | None]:
        if c.conversation_id not in memo:
            memo[c.conversation_id] = [p.label if p else None for p in bundle.annotate(c)]
        return memo[c.conversation_id]

    out[f"intents of {bundle_dir}"] = intents
    return out


if __name__ == "__main__":
    main()
