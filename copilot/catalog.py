"""A brand's catalogue and promotions: what a suggestion may name and assert.

A suggestion may name a product only when the conversation names it or it is a catalogue item
that fits the conversation, and may state a price, a coupon or stock only when the conversation,
the catalogue or a promotion running now supports it. This module holds those facts;
:mod:`copilot.io.catalog` reads them from files, the server stores them (``/v1/catalog``) and
:mod:`copilot.grounding` uses them to fill slots and check facts.

Example::

    catalog = Catalog([Product("双面羊绒大衣", "大衣", 1299.0, {"尺码": "S/M/L"})])
    catalog.find("这件羊绒大衣还有M码吗")      # [] (the exact name is not in the text)
    catalog.categories_in("这件羊绒大衣还有M码吗")  # ["大衣"]
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from copilot.text import DEFAULT_USER_DICT

__all__ = [
    "POINTER", "PROMOTION_KINDS", "Catalog", "Product", "Promotion", "learn_terms",
    "retail_pattern", "retail_words_in",
]  # fmt: skip

PromotionKind = Literal["coupon", "discount", "gift", "free_shipping", "other"]
PROMOTION_KINDS: tuple[str, ...] = ("coupon", "discount", "gift", "free_shipping", "other")


@dataclass(frozen=True)
class Product:
    """One catalogue item: its name, category, price (``None`` when not given) and attributes."""

    name: str
    category: str = ""
    price: float | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "price": self.price,
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True)
class Promotion:
    """A promotion a brand runs: a coupon, discount, gift or free shipping, for some products.

    ``products`` empty means every product. ``starts``/``ends`` are inclusive days; ``None``
    leaves that side open.
    """

    title: str
    kind: PromotionKind = "other"
    detail: str = ""
    starts: date | None = None
    ends: date | None = None
    products: tuple[str, ...] = ()

    def active(self, day: date) -> bool:
        return (self.starts is None or self.starts <= day) and (
            self.ends is None or day <= self.ends
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "kind": self.kind,
            "detail": self.detail,
            "starts": self.starts.isoformat() if self.starts else None,
            "ends": self.ends.isoformat() if self.ends else None,
            "products": list(self.products),
        }


def word_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    # Longest first, so 羊绒大衣 wins over 大衣 at the same position.
    ordered = sorted({w for w in words if w}, key=lambda w: (-len(w), w))
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


class Catalog:
    """Products and promotions, with lookups by the words of a message.

    Args:
        products: the catalogue items (a later item of the same name replaces an earlier one).
        promotions: the brand's promotions (any period; :meth:`active_promotions` filters).
        terms: product words learned from the brand's logs (what customers ask about). Unlike
            catalogue items they may be named only when the conversation names them.
    """

    def __init__(
        self,
        products: Sequence[Product] = (),
        promotions: Sequence[Promotion] = (),
        *,
        terms: Sequence[str] = (),
    ) -> None:
        self.products: dict[str, Product] = {p.name: p for p in products}
        self.promotions: list[Promotion] = list(promotions)
        self.terms: list[str] = sorted(set(terms))
        self._names = word_pattern(self.products)
        self._categories = word_pattern(p.category for p in self.products.values())
        self._words = word_pattern([*self.products, *self.categories, *self.terms])

    def __len__(self) -> int:
        return len(self.products)

    def __bool__(self) -> bool:
        return bool(self.products or self.promotions or self.terms)

    @property
    def categories(self) -> list[str]:
        return sorted({p.category for p in self.products.values() if p.category})

    def find(self, text: str) -> list[Product]:
        """Catalogue items named in ``text``, in order of appearance."""
        if self._names is None:
            return []
        return [self.products[m.group()] for m in self._names.finditer(text)]

    def categories_in(self, text: str) -> list[str]:
        """Catalogue categories named in ``text`` (also inside a product name), in order."""
        if self._categories is None:
            return []
        return [m.group() for m in self._categories.finditer(text)]

    def words_in(self, text: str) -> list[str]:
        """Every product word in ``text``: catalogue names, categories and learned terms."""
        if self._words is None:
            return []
        return [m.group() for m in self._words.finditer(text)]

    def in_category(self, category: str) -> list[Product]:
        return [p for p in self.products.values() if p.category == category]

    def active_promotions(
        self, day: date | datetime | None = None, product: str | None = None
    ) -> list[Promotion]:
        """Promotions running on ``day`` (today when ``None``) that apply to ``product``."""
        when = day.date() if isinstance(day, datetime) else (day or date.today())
        return [
            p
            for p in self.promotions
            if p.active(when) and (not p.products or product is None or product in p.products)
        ]

    # ------------------------------------------------------------------ persistence

    def to_records(self) -> dict[str, list[Any]]:
        return {
            "products": [p.to_dict() for p in self.products.values()],
            "promotions": [p.to_dict() for p in self.promotions],
            "terms": list(self.terms),
        }

    @classmethod
    def from_records(cls, records: Mapping[str, Sequence[Any]]) -> Catalog:
        products = [
            Product(
                str(r["name"]),
                str(r.get("category") or ""),
                None if r.get("price") is None else float(r["price"]),
                {str(k): str(v) for k, v in (r.get("attributes") or {}).items()},
            )
            for r in records.get("products", ())
        ]
        promotions = [
            Promotion(
                str(r["title"]),
                r.get("kind") or "other",
                str(r.get("detail") or ""),
                date.fromisoformat(r["starts"]) if r.get("starts") else None,
                date.fromisoformat(r["ends"]) if r.get("ends") else None,
                tuple(r.get("products") or ()),
            )
            for r in records.get("promotions", ())
        ]
        return cls(products, promotions, terms=[str(t) for t in records.get("terms", ())])

    def save(self, path: str | Path) -> None:
        """Write the catalogue as one JSON file."""
        Path(path).write_bytes(orjson.dumps(self.to_records(), option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        return cls.from_records(orjson.loads(Path(path).read_bytes()))


POINTER = r"(?:这款|这个|这台|这件|这双|这瓶|这套|这支|这条|那款|那个|那件|您的|你的|您买的|你买的|买的|购买的|收到的|新款)"
"""Words that point at a product: the word after them is what the customer asks about."""

_WORDS_FILE = DEFAULT_USER_DICT.with_name("product_words.txt")
_SERVICE_FILE = DEFAULT_USER_DICT.with_name("service_words.txt")


def _words(path: Path) -> set[str]:
    lines = path.read_text("utf-8").splitlines()
    return {w for line in lines if not line.startswith("#") for w in line.split()}


@functools.lru_cache(maxsize=1)
def _product_words() -> frozenset[str]:
    return frozenset(_words(_WORDS_FILE))


@functools.lru_cache(maxsize=1)
def retail_pattern() -> re.Pattern[str]:
    return re.compile(
        "|".join(re.escape(w) for w in sorted(_product_words(), key=len, reverse=True))
    )


def retail_words_in(text: str) -> list[str]:
    """The listed retail product words (``product_words.txt``) in ``text``, in order."""
    return retail_pattern().findall(text)


def learn_terms(
    conversations: Iterable[Sequence[str]],
    tokenize: Callable[[str], Sequence[str]],
    *,
    min_conversations: int = 3,
    pointers: bool = True,
) -> list[str]:
    """Product words of a brand's logs: what its customers ask about, in several chats.

    A word is one when customers use it in at least ``min_conversations`` conversations and it
    is either a listed retail product word (``copilot/data/product_words.txt``) or a noun (in
    jieba's dictionary) that follows a pointer (这款, 您买的 ...) in at least two conversations
    and a fifth of those that use it; the service's own vocabulary
    (``copilot/data/service_words.txt``: 订单, 快递, 发票 ...) never is.

    Args:
        conversations: each conversation's customer messages.
        tokenize: the text pipeline's tokeniser.
        min_conversations: fewest conversations a word must be used in.
        pointers: also learn unlisted nouns from pointers (off when a catalogue names the
            brand's products: its names are better than words cut out of them).
    """
    import jieba.posseg

    listed, service = _product_words(), _words(_SERVICE_FILE)
    tags = jieba.posseg.dt.word_tag_tab  # jieba's part-of-speech table (its own dictionary)
    seen: Counter[str] = Counter()
    pointed: Counter[str] = Counter()
    pointer = re.compile(POINTER + r"$")
    for texts in conversations:
        words: set[str] = set()
        after: set[str] = set()
        for text in texts:
            tokens = list(tokenize(text))
            for k, token in enumerate(tokens):
                if len(token) < 2 or not re.fullmatch(r"[\u4e00-\u9fffA-Za-z]+", token):
                    continue
                words.add(token)
                if k and pointer.search("".join(tokens[max(0, k - 2) : k])):
                    after.add(token)
        seen.update(words)
        pointed.update(after)
    return sorted(
        w
        for w, n in seen.items()
        if n >= min_conversations
        and w not in service
        and (
            w in listed
            # A product is what customers point at: in a fifth of the chats that use the word.
            or (
                pointers
                and pointed[w] >= 2
                and pointed[w] >= 0.2 * n
                and tags.get(w) in ("n", "nz")
            )
        )
    )
