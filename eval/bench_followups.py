"""How fast is the day's follow-up queue? Building it for 100k customers, and the states behind it.

    python -m eval.bench_followups [--customers 100000] [--conversations 5000]

1. **Queue**: ``--customers`` customer states with a realistic mix (a third hesitated, a tenth
   promised a come-back, a tenth left a question open, a fifth ordered; a guide wrote to some
   later), then :func:`copilot.followups.build_queue` for one day, timed (median of 3). Target
   (issue 13): within 10 s for 100k customers on this machine.
2. **States**: :func:`copilot.followups.customer_states` (profile extraction included) on
   ``--conversations`` generated conversations, in conversations per second — what a server
   pays once per conversation as chats arrive.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import date, datetime, timedelta

from copilot.followups import CustomerState, Event, build_queue, customer_states
from copilot.schema import CHINA_TZ

__all__ = ["main"]

DAY = date(2026, 11, 20)


def states(n: int, seed: int = 0) -> list[CustomerState]:
    """``n`` customer states spread over the 30 days before :data:`DAY`."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 21, 9, tzinfo=CHINA_TZ)
    out = []
    for i in range(n):
        at = start + timedelta(minutes=rng.randrange(30 * 24 * 60))
        state = CustomerState(f"u-{i}", f"g-{i % 800}", f"s-{i % 80}", slots={"product": "羽绒服"})
        event = Event(at, f"c-{i}", 3, "我再考虑下")
        roll = rng.random()
        if roll < 0.33:
            state.hesitation = event
        elif roll < 0.43:
            state.come_back = Event(
                at, f"c-{i}", 3, "等发工资再买", rng.choice(["发工资", "周末", "明天"])
            )
            state.hesitation = event
        elif roll < 0.53:
            state.question = Event(at, f"c-{i}", 5, "能包邮吗？")
        if rng.random() < 0.2:
            state.orders.append((at + timedelta(days=rng.randrange(5)), "羽绒服"))
        if rng.random() < 0.3:
            state.last_guide_at = at + timedelta(hours=rng.randrange(1, 96))
        out.append(state)
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--conversations", type=int, default=5000)
    args = parser.parse_args(argv)

    population = states(args.customers)
    timings = []
    for _ in range(3):
        t0 = time.perf_counter()
        queue = build_queue(population, DAY)
        timings.append(time.perf_counter() - t0)
    queue_s = statistics.median(timings)
    print(
        f"queue: {args.customers} customers -> {len(queue)} follow-ups in {queue_s:.2f} s (median of 3)"
    )

    from copilot.synth import generate

    conversations = list(generate(args.conversations, seed=1))
    t0 = time.perf_counter()
    built = customer_states(conversations)
    states_s = time.perf_counter() - t0
    rate = len(conversations) / states_s
    print(
        f"states: {len(conversations)} conversations ({len(built)} customers) in {states_s:.2f} s = {rate:.0f} conversations/s"
    )
    return {"queue_s": round(queue_s, 3), "queue_entries": len(queue), "states_per_s": round(rate)}


if __name__ == "__main__":
    main()
