"""Scripts as templates with typed slots, filled from the conversation at suggestion time.

A guide's reply names this chat's product, price, size, courier or date. Served to another
customer as it was written, it names the wrong ones, so at mining every such value becomes a
typed slot (``这款双面羊绒大衣现在1299元`` -> ``这款[商品]现在[价格]``) and at suggestion time each
slot is filled from what the conversation, the catalogue and the running promotions say:

=========  ==========================================  =============================================
slot       made from (mining)                          filled from (suggestion time)
=========  ==========================================  =============================================
商品        catalogue names, learned product words,      the latest product the chat names
           JD-style ``[商品快照]``
品类        catalogue categories                         the category of that product, else the
                                                       latest category or product word the chat names
价格        ``1299元``, ``¥89``                          the catalogue price of that product, else a
                                                       price the guide stated in this chat
优惠        ``满300减50``, ``8折``, ``立减20元``           a promotion running now for that product,
                                                       else one the guide stated in this chat
金额 日期 时间 amounts, dates, durations (``3天``)         what the guide stated in this chat
尺码 尺寸     ``M码``, ``XL``, ``165cm``, ``110斤``          the latest size / measurement in the chat
快递 地点     couriers, cities, ``华东仓``                  the latest one the chat names
订单号 链接 …  personal data and attachments (masked)        never: the guide fills them in
=========  ==========================================  =============================================

Prices, amounts, dates and durations come only from the guide's side, the catalogue or
promotions: a customer's 「别家才99」 is not this shop's price, and 「等了3天」 is not a delivery
time. A slot that nothing fills stays in the text; the suggestion is served with ``needs_edit``
and the slot named, ranked below complete ones.

Example::

    >>> template("这款双面羊绒大衣现在1299元，M码有货", catalog)
    '这款[商品]现在[价格]，[尺码]有货'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from copilot.catalog import POINTER, Catalog, Product, retail_words_in, word_pattern
from copilot.facts import CITIES
from copilot.text import PII_PLACEHOLDERS

__all__ = [
    "SLOT_NAMES",
    "Filled",
    "SlotValues",
    "fill",
    "has_words",
    "product_kinds",
    "slots_in",
    "template",
]

SLOT_NAMES: dict[str, str] = {
    "product": "商品",
    "category": "品类",
    "price": "价格",
    "promotion": "优惠",
    "amount": "金额",
    "date": "日期",
    "time": "时间",
    "size": "尺码",
    "measure": "尺寸",
    "courier": "快递",
    "place": "地点",
    "link": "链接",
    "image": "图片",
    "name": "姓名",
    "number": "数字",
    **{kind: placeholder.strip("[]") for kind, placeholder in PII_PLACEHOLDERS.items()},
}
"""Slot kind -> the name shown in a template (``[商品]``) and to the guide."""

_KIND = {name: kind for kind, name in SLOT_NAMES.items()}

# Placeholders that other exports mask values with (JDDC: [订单x], [金额x], [ORDERID_123]...),
# mapped to our slots. Stickers ([微笑]) are not placeholders: they are sent as they are.
_FOREIGN = {
    "订单": "order",
    "订单号": "order",
    "ORDERID": "order",
    "金额": "amount",
    "价保金额(单件)": "amount",
    "价格": "price",
    "日期": "date",
    "时间": "time",
    "站点": "place",
    "地址": "address",
    "组织机构": "place",
    "链接": "link",
    "图片": "image",
    "视频": "image",
    "文件": "image",
    "姓名": "name",
    "电话": "phone",
    "手机": "phone",
    "数字": "number",
    "价保商品数量": "number",
    "商品快照": "product",
    "商品": "product",
    "身份证号": "id_card",
    "邮箱": "email",
}
_PLACEHOLDER = re.compile(r"\[(?P<name>[^\[\]\s]{1,12}?)(?:x|_\d+|\d+)?\]")

_PRICE = r"(?:[¥￥]\s*\d+(?:\.\d+)?|\d+(?:\.\d+)?\s*(?:元|块钱|块)(?![钱包]))"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("link", re.compile(r"https?://[\w./?=&%#:+-]+")),
    (
        "promotion",
        re.compile(
            r"满\d+(?:元)?减\d+(?:元)?|\d+(?:\.\d)?折|立减\d+(?:元)?|直降\d+(?:元)?"
            r"|\d+元(?:的)?(?:优惠券|券|红包|无门槛)"
        ),
    ),
    ("price", re.compile(_PRICE)),
    (
        "date",
        re.compile(
            r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}[日号]?|\d{1,2}月\d{1,2}[日号]"
            r"|[下这本]?(?:周|星期|礼拜)[一二三四五六日天]|\d{1,2}[号日](?=[前之发到上下左]|以前)"
        ),
    ),
    (
        "time",
        re.compile(
            r"(?:\d+(?:-\d+)?|[一二两三四五六七八九十半]+)\s*(?:个)?(?:工作日|小时|天|分钟)"
            r"(?![内]?无理由|[内]?包[退换]|价保|保价)"
        ),
    ),
    (
        "measure",
        re.compile(
            r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百半]+)\s*"
            r"(?:cm|CM|厘米|公分|mm|毫米|kg|KG|公斤|斤|ml|ML|毫升|g|克|米)(?![A-Za-z])"
        ),
    ),
    (
        "size",
        re.compile(r"(?<![A-Za-z])(?:\d?X{1,3}L|X{0,2}S|M|L)(?![A-Za-z])(?:码|号)?|\d{2,3}码|均码"),
    ),
    (
        "courier",
        re.compile(r"顺丰|中通|圆通|申通|韵达|邮政|EMS|京东快递|京东物流|极兔|德邦|百世|宅急送"),
    ),
    (
        "place",
        re.compile(
            r"(?:[东南西北华][东南西北中]?|" + "|".join(CITIES) + r")仓|" + "|".join(CITIES)
        ),
    ),
]
"""Literal values that become slots, in the order they are cut (promotions before prices)."""

_GUIDE_ONLY = {"price", "amount", "date", "time", "promotion"}
"""Slots a customer's words never fill (the shop's facts, not the customer's)."""


def _foreign(name: str) -> str | None:
    return _KIND.get(name) or _FOREIGN.get(name)


def _normalise_placeholders(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        kind = _foreign(m.group("name"))
        return f"[{SLOT_NAMES[kind]}]" if kind else m.group()

    return _PLACEHOLDER.sub(repl, text)


def template(text: str, catalog: Catalog | None = None) -> str:
    """``text`` with every product, price, size, date... replaced by its typed slot."""
    out = _normalise_placeholders(text)
    # Cut literal values first, so a slot name never gets cut again (价格 holds no digits).
    for kind, pattern in _PATTERNS:
        out = pattern.sub(f"[{SLOT_NAMES[kind]}]", out)
    if catalog:
        names, categories = set(catalog.products), set(catalog.categories)
        listed = word_pattern([*names, *categories])
        if listed is not None:
            out = listed.sub(lambda m: "[商品]" if m.group() in names else "[品类]", out)
        # A learned product word is this chat's product only after a pointer (这款手机); in
        # 「用手机APP查」 it is not, and stays (the fact check keeps it out of other chats).
        terms = word_pattern(t for t in catalog.terms if t not in names and t not in categories)
        if terms is not None:
            out = re.sub(f"({POINTER})(?:{terms.pattern})", r"\1[商品]", out)
    return out


def product_kinds(text: str, catalog: Catalog | None) -> list[str]:
    """What :func:`template` makes a product slot of in ``text``, as categories (or words).

    A script keeps them: its other words may be about that kind of product only (「这款[商品]
    用的是胜肽」 was said of an eye cream), so its slot is filled only in chats about one.
    """
    if not catalog:
        return []
    out = []
    for word in catalog.words_in(text):
        product = catalog.products.get(word)
        if product is not None:
            out.append(product.category or word)
        elif word in catalog.categories or re.search(f"{POINTER}{re.escape(word)}", text):
            out.append(word)
    return list(dict.fromkeys(out))


def has_words(text: str, least: int = 2) -> bool:
    """Whether ``text`` says anything besides its slots: ``least`` Chinese characters or a word."""
    bare = _PLACEHOLDER.sub("", text)
    return len(re.findall(r"[\u4e00-\u9fff]", bare)) >= least or bool(
        re.search(r"[A-Za-z]{3,}", bare)
    )


def slots_in(text: str) -> list[str]:
    """The slot names left in ``text`` (``["订单号"]``), in order, without repeats."""
    seen: dict[str, None] = {}
    for m in _PLACEHOLDER.finditer(text):
        if _foreign(m.group("name")) is not None:
            seen[SLOT_NAMES[_foreign(m.group("name")) or ""]] = None
    return list(seen)


@dataclass
class SlotValues:
    """What a conversation says each slot is: the latest value of each kind.

    Attributes:
        values: slot kind -> its latest value in the chat (guide-only kinds from guide messages).
        product: the latest catalogue item the chat names, if any.
        promotions: the promotions running for that product (all products when none named).
    """

    values: dict[str, str] = field(default_factory=dict)
    product: Product | None = None
    promotions: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str | None:
        """The kind of product the chat is about: its item's category, else the word it uses."""
        if self.product is not None:
            return self.product.category or self.product.name
        return self.values.get("category")

    @classmethod
    def of(
        cls,
        messages: Sequence[tuple[str, str]],
        catalog: Catalog | None = None,
        day: date | None = None,
        known: Mapping[str, str] | None = None,
    ) -> SlotValues:
        """Slot values of ``(role, text)`` messages, later messages overriding earlier ones.

        ``known``: slot kind -> value known about the customer from outside this chat (their
        profile: ``size``, ``product``), used for the kinds the chat does not fill.
        """
        out = cls()
        catalog = catalog or Catalog()
        known = dict(known or {})
        if "product" in known:
            # The customer's product from earlier chats stands in for a chat that names none.
            named = any(catalog.words_in(t) or retail_words_in(t) for _r, t in messages)
            product = known.pop("product")
            if not named:
                messages = [("customer", product), *messages]
                known["product"] = product
        for role, text in messages:
            if role not in ("customer", "guide"):
                continue
            for kind, pattern in _PATTERNS:
                if kind in _GUIDE_ONLY and role != "guide":
                    continue
                found = pattern.findall(text)
                if found:
                    out.values[kind] = found[-1]
            words = catalog.words_in(text)
            if words:
                out.values["product"] = words[-1]
            items = catalog.find(text)
            if items:
                out.product = items[-1]
            elif words and out.product is not None and words[-1] != out.product.category:
                # A later mention of another word (a category, a learned term) moves the
                # chat off the earlier catalogue item unless it is that item's category.
                out.product = None
            cats = catalog.categories_in(text)
            if cats:
                out.values["category"] = cats[-1]
        for kind, value in known.items():
            out.values.setdefault(kind, value)
        if out.product is not None:
            out.values["product"] = out.product.name
            if out.product.category:
                out.values["category"] = out.product.category
            if out.product.price is not None:
                out.values["price"] = f"{out.product.price:g}元"
        elif "category" not in out.values and "product" in out.values:
            out.values["category"] = out.values["product"]
        name = out.product.name if out.product else None
        running = [
            p for p in catalog.active_promotions(day) if not p.products or name in p.products
        ]
        # A promotion's detail when it is short enough to say in a reply, else its title.
        out.promotions = [
            p.detail if p.detail and len(p.detail) <= 16 else p.title for p in running
        ]
        if out.promotions:
            out.values["promotion"] = out.promotions[0]
        return out


@dataclass
class Filled:
    """A template after filling: the text, the slots left for the guide, what filled the rest."""

    text: str
    missing: list[str]
    filled: dict[str, str]

    @property
    def needs_edit(self) -> bool:
        return bool(self.missing)


def fill(text: str, values: SlotValues) -> Filled:
    """Fill each slot of ``text`` from ``values``; unfilled slots stay and are listed."""
    missing: dict[str, None] = {}
    filled: dict[str, str] = {}

    def repl(m: re.Match[str]) -> str:
        kind = _foreign(m.group("name"))
        if kind is None:
            return m.group()
        value = values.values.get(kind)
        if value is None:
            missing[SLOT_NAMES[kind]] = None
            return f"[{SLOT_NAMES[kind]}]"
        filled[SLOT_NAMES[kind]] = value
        return value

    return Filled(_PLACEHOLDER.sub(repl, text), list(missing), filled)
