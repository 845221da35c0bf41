"""The built-in synthetic corpus: labelled guide–customer conversations with outcomes.

Every conversation it makes says so: ``meta.synthetic`` is ``true``. Example::

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

__all__ = [
    "Bank",
    "GuideProfile",
    "PhraseSplit",
    "Simulator",
    "catalog",
    "generate",
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
