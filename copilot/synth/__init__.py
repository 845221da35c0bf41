"""The built-in synthetic corpus: labelled guide–customer conversations with outcomes.

Every conversation it makes says so: ``meta.synthetic`` is ``true``. :func:`generate` makes
independent conversations; :func:`journeys` makes customers who come back over days and weeks,
with ground truth for the follow-up queue, and :func:`journey_orders` their orders. Example::

    from copilot.synth import generate
    for conversation in generate(100, seed=7):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator

from copilot.catalog import Catalog, Product, Promotion
from copilot.schema import Conversation
from copilot.synth.bank import Bank, PhraseSplit, load_bank, split_of
from copilot.synth.simulate import GuideProfile, Simulator
from copilot.synth.stories import STORIES, JourneySimulator, come_back_day, journey_orders

__all__ = [
    "STORIES",
    "Bank",
    "GuideProfile",
    "JourneySimulator",
    "PhraseSplit",
    "Simulator",
    "catalog",
    "come_back_day",
    "generate",
    "journey_orders",
    "journeys",
    "load_bank",
    "split_of",
]


def generate(n: int, seed: int = 0, split: PhraseSplit = "all") -> Iterator[Conversation]:
    """Yield ``n`` synthetic conversations; the same ``n``, ``seed`` and ``split`` give the same ones.

    Args:
        n: number of conversations.
        seed: corpus seed.
        split: ``all`` phrases, only the ``train`` part, or only the ``heldout`` part (for an
            evaluation corpus whose phrasings the models never saw).
    """
    simulator = Simulator(load_bank(), seed=seed, split=split, n_guides=_guide_pool(n))
    for index in range(n):
        yield simulator.conversation(index)


def journeys(n_customers: int, seed: int = 0, split: PhraseSplit = "all") -> Iterator[Conversation]:
    """Yield the conversations of ``n_customers`` customers who come back, customer by customer.

    Each customer (``customer_id`` ``c-SEED-INDEX``) has one guide and store and 1 to 3
    conversations in time order, following one story of :data:`STORIES` (shares in
    ``copilot/data/synth/rules.yaml`` ``journeys``; the stories are described in
    :mod:`copilot.synth.stories`). The same arguments give the same conversations.

    Each conversation's ``meta`` holds ``product`` (the product the customer looks at) and the
    ground truth ``journey``:

    - ``customer_story``: the customer's story (the same in all their conversations);
    - ``step``: 1, 2 or 3, the conversation's place in the journey;
    - ``hesitated``: the customer hesitated or objected in this conversation and did not buy;
    - ``promised``: the customer's promise to come back as written in its last customer message
      (「等发工资再买」), or null; ``promised_day``: the ISO date the customer meant;
    - ``followed_up``: this conversation is the guide's follow-up (the guide writes first);
    - ``converted_after_follow_up``: it is a follow-up and the customer bought in it;
    - ``returned_by_self``: the customer came back in it by themself after hesitating or
      promising (an after-sales chat is not counted).

    Args:
        n_customers: number of customers (not conversations).
        seed: corpus seed.
        split: phrases as for :func:`generate`.

    Raises:
        ConfigError: the ``journeys`` rules or the come-back phrases are missing or invalid.

    Example::

        corpus = list(journeys(1000, seed=3))
        orders = journey_orders(corpus)  # to evaluate copilot.followups against meta.journey
    """
    simulator = JourneySimulator(
        load_bank(), seed=seed, split=split, n_guides=_guide_pool(2 * n_customers)
    )
    for index in range(n_customers):
        yield from simulator.journey(index)


def _guide_pool(n: int) -> int:
    """Enough guides for scorecards to mean something: ~60 conversations each, 15 to 300.

    Fifteen guides fill three stores of five, one store per domain at least.
    """
    return max(15, min(300, n // 60))


def catalog() -> Catalog:
    """The synthetic shop's catalogue and promotions (what its guides sell and offer).

    The demo trains with it (``copilot demo``), so the demo's scripts are templates whose
    product, price and promotion slots are filled from each chat.
    """
    products: list[Product] = []
    promotions: dict[str, Promotion] = {}
    for domain in load_bank().domains.values():
        for p in domain.products:
            attributes = {"尺码": "/".join(p.sizes), "颜色": "/".join(p.colors), "材质": p.material}
            products.append(
                Product(
                    p.name, p.category, float(p.price), {k: v for k, v in attributes.items() if v}
                )
            )
        for offer in domain.coupons:
            kind = (
                "free_shipping"
                if "包邮" in offer
                else "gift"
                if "送" in offer
                else "coupon"
                if "券" in offer
                else "discount"
            )
            promotions.setdefault(offer, Promotion(offer, kind, offer))  # type: ignore[arg-type]
    return Catalog(products, list(promotions.values()))
