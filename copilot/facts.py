"""What a reply asserts, and whether the conversation, catalogue or promotions support it.

A suggestion is a claim made in the shop's name. :func:`claims` finds the facts a reply states
(a logistics state, a delivery time, a price, a coupon or discount, stock, a place) and the
products it names; :meth:`Evidence.problems` says which of them this conversation does not
support or contradicts. The engine serves no candidate with a problem.

The rules, by kind (a *guide statement* is a guide message of this chat that says it and does
not negate it; the catalogue and promotions are the brand's files):

- **logistics state** (已发货 < 派送中 < 到驿站 < 已签收): supported when someone in the chat
  states that state or a later one (the customer reads the tracking too); contradicted when
  the chat's latest logistics statement is negative (「没有物流信息」, 「还没发货」) or, for
  到驿站 and 已签收, when the customer says it has not arrived.
- **delivery time** (「明天到」, 「今天发货」): supported when a guide statement or the catalogue
  gives that time word.
- **price**: the number is a price a guide stated in the chat or a catalogue price.
- **promotion** (coupon, discount, gift, free shipping): a guide statement of that kind, or a
  promotion of that kind running today; contradicted when the guide's latest word on that
  kind refused it (「赠品没有了」, 「不包邮哦」).
- **stock**: a guide statement or the catalogue (attribute 库存) with the same polarity
  (「有货」 / 「没货」); contradicted by the opposite one.
- **done** (the order's or the guide's own state: 「已为您提交」, 「退款中」, 「已到账」): the chat
  names that step (「申请」, 「退款」); a suggestion never reports work nobody has done.
- **asking for what was given**: a request for the order number, phone, address or a
  picture after the customer sent one (its mask or placeholder is in their messages) is
  contradicted.
- **place** (a warehouse 「华东仓」, a city): named in the chat.
- **product**: a product word (catalogue name or category, a product word learned from the
  logs) is named in the chat, or is a catalogue item of a category the chat names.

Example::

    ev = Evidence.of([("customer", "快递一直没有物流信息"), ("guide", "我帮您查")], catalog)
    ev.problems("亲，包裹在派送中了")  # [Problem("logistics", "派送中", "contradicted")]
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from copilot.catalog import Catalog

__all__ = ["CITIES", "Evidence", "Problem", "claims"]

_NEG = r"(?:没有|没|未|不|无|别)"

_LOGISTICS: list[tuple[int, re.Pattern[str]]] = [
    (
        1,
        re.compile(
            r"已经?发货|发货了|已经?发出|发出了|已经?出库|已揽收|揽收了|运输中|的?路上|已经?打包|打包好"
        ),
    ),
    (2, re.compile(r"派送中|在派送|正在派送|配送中|派件中|开始派送|在配送|派送异常")),
    (3, re.compile(r"到了?驿站|放了?驿站|放在驿站|到了?站点|已到达|到了?快递柜|放了?快递柜")),
    (4, re.compile(r"已经?签收|签收了|显示签收")),
]
_NO_TRACKING = re.compile(
    r"没有?发货|未发货|还没发|不发货|没有?物流|无物流|查不到(?:物流|快递)"
    r"|物流(?:信息)?(?:一直|都|也|还)?(?:没有?|不)(?:更新|动|显示|信息)"
    r"|没有?(?:快递|物流)?单号|没有?(?:快递|物流)信息"
)
_DONE = re.compile(
    r"已经?(?:为您|帮您|给您|替您)?(?:申请|提交|操作|备注|催促|催|升级|登记|反馈|退款|退回|取消|修改"
    r"|补发|安排|处理|解锁|到账|审核|驳回|通过|开具|开好|寄出|发到|发放|发给|放进|备好|留好|锁定)"
    r"|(?:退款|审核|处理|申请|售后)中|显示(?:是有|有|是)?(?:申请|退款|取消)过"
    r"|(?:联系|反馈|催|问)了(?:一?下)?(?:快递|仓库|厂家|站点|物流|师傅|同事|主管|哦|呢|的)"
)
"""A state of the order or of the guide's own work (「已为您提交」, 「退款中」): the chat must say it."""
_ASK = re.compile(
    r"(?:提供|发|告知|告诉|给|留|报|输入|复制|发送)(?:一下|下)?(?:您的?|我|小妹)?(?:一下|下)?"
    r"(?P<what>订单号|订单编号|订单|手机号|电话号码|电话|地址|照片|图片|截图|具体数据|身高体重|尺寸|三围)"
)
_ASKED_KIND = {
    "订单号": "order",
    "订单编号": "order",
    "订单": "order",
    "手机号": "phone",
    "电话号码": "phone",
    "电话": "phone",
    "地址": "address",
    "照片": "image",
    "图片": "image",
    "截图": "image",
    "具体数据": "measure",
    "身高体重": "measure",
    "尺寸": "measure",
    "三围": "measure",
}
# What a customer has already given, by the masks and placeholders it leaves in the text.
_GIVEN = {
    "order": re.compile(r"\[(?:订单号|订单|ORDERID)[^\]]{0,12}\]|\d{10,}"),
    "phone": re.compile(r"\[(?:手机号|电话)[^\]]{0,4}\]"),
    "address": re.compile(r"\[地址[^\]]{0,4}\]"),
    "image": re.compile(r"\[(?:图片|链接|视频)[^\]]{0,4}\]"),
    "measure": re.compile(
        r"\d+(?:\.\d+)?\s*(?:cm|CM|厘米|公分|kg|KG|公斤|斤)|(?:身高|体重|腰围|臀围|胸围)\s*\d+"
    ),
}
_WHEN_SHIPS = re.compile(
    r"(?:什么时候|啥时候|何时|多久|几天|怎么还|还不|还没)[^，。？！?]{0,4}(?:发货|发|寄)"
)
_NOT_ARRIVED = re.compile(r"没收到|未收到|还没到|没有到|没到货|没送到|没有收到")

_TIME_WORD = (
    r"(?:今天|今日|明天|明日|后天|当天|当日|次日|隔日|马上|立刻|立即|周末|这周|下周"
    r"|周[一二三四五六日天]|星期[一二三四五六日天])"
)
_DELIVERY = re.compile(
    _TIME_WORD + r"(?:上午|下午|中午|晚上|早上|之前|前)?"
    r"(?:就|会|可以|能|即可|便|都|也|内|应该|肯定|一定|正常){0,3}(?:安排)?(?:给您)?"
    r"(?:发货|发出|发|到|达|送达|到货|寄出|签收|派送|送到)"
)
_PRICE = re.compile(
    r"[¥￥]\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(?:元|块钱|块)(?![钱包])|(?:到手价?|只要|仅需?|才)(\d+(?:\.\d+)?)"
)

_PROMOTION: dict[str, re.Pattern[str]] = {
    "coupon": re.compile(r"优惠券|领券|[领用发送]\S?券|红包|无门槛|抵用券|代金券"),
    "discount": re.compile(
        r"打折|折扣|\d(?:\.\d)?折|满\d+减|立减|直降|活动价|特价|优惠价|会员价|优惠活动|大促|满减"
    ),
    "gift": re.compile(
        r"赠品|送[^，。！？,.!?]{0,4}(?:小样|礼品|礼物|赠品|试用装)|赠送|买一送一|加赠"
    ),
    "free_shipping": re.compile(
        r"包邮|免运费|免邮|运费(?:我们|我|店铺|商家|咱们)(?:来)?(?:出|承担|包)"
    ),
    # A sales event is a promotion too: 「七夕力度挺大」 in December is invented.
    "event": re.compile(
        r"双十一|双11|双十二|双12|618|七夕|三八节|女神节|年货节|店庆|周年庆|会员日|圣诞|国庆|元旦|春节|中秋"
    ),
}
_STOCK_YES = re.compile(r"有货|有现货|现货|库存充足|还有货|还有库存|补货了|到货了|都有货")
_STOCK_NO = re.compile(r"没货|无货|缺货|断货|断码|售罄|卖完|没有货|没库存|没有库存|卖光")
CITIES = [
    "北京",
    "上海",
    "广州",
    "深圳",
    "杭州",
    "成都",
    "武汉",
    "南京",
    "天津",
    "重庆",
    "西安",
    "苏州",
    "郑州",
    "长沙",
    "沈阳",
    "青岛",
    "宁波",
    "东莞",
    "无锡",
    "佛山",
    "合肥",
    "厦门",
    "福州",
    "济南",
    "昆明",
    "哈尔滨",
    "大连",
    "长春",
    "石家庄",
    "南昌",
    "贵阳",
    "南宁",
    "太原",
    "兰州",
    "乌鲁木齐",
    "呼和浩特",
    "海口",
    "银川",
    "西宁",
    "拉萨",
    "廊坊",
    "嘉兴",
    "金华",
    "义乌",
    "温州",
    "绍兴",
    "常州",
    "南通",
    "徐州",
    "泉州",
    "珠海",
    "中山",
    "惠州",
]
"""Cities a reply may name as a warehouse or store place (only when the chat names them too)."""
_PLACE = re.compile(r"[\u4e00-\u9fff]{2}仓(?!库)|" + "|".join(CITIES))

Verdict = Literal["unsupported", "contradicted"]


@dataclass(frozen=True)
class Problem:
    """A claim of a reply that the conversation does not support (or contradicts)."""

    kind: str
    term: str
    verdict: Verdict


@dataclass(frozen=True)
class Claim:
    kind: str
    term: str
    polarity: bool = True


_NEG_AFTER = re.compile(
    r"^.{0,2}(?:没有了|没了|没有|送完|发完|领完|用完|不送|不包|取消|已经?结束|不能)"
)


def _number(m: re.Match[str]) -> str:
    return next(g for g in m.groups() if g)


def _negated(text: str, start: int, end: int | None = None) -> bool:
    """Whether the term at ``start:end`` is negated (「没有赠品」, 「赠品没有了」)."""
    if re.search(_NEG + r".{0,2}$", text[max(0, start - 4) : start]) is not None:
        return True
    return end is not None and _NEG_AFTER.match(text[end : end + 8]) is not None


def _promotion_claims(text: str) -> list[Claim]:
    out = []
    for kind, pattern in _PROMOTION.items():
        for m in pattern.finditer(text):
            out.append(Claim(kind, m.group(), not _negated(text, m.start(), m.end())))
    return out


def claims(text: str, catalog: Catalog | None = None) -> list[Claim]:
    """The facts ``text`` states, in kind order (negated ones with ``polarity=False``)."""
    out = list(_claims(text))
    if catalog:
        out += [Claim("product", w) for w in catalog.words_in(text)]
    return out


@functools.lru_cache(maxsize=65536)
def _claims(text: str) -> tuple[Claim, ...]:
    # Scripts and chat lines come back request after request: read each text once.
    out: list[Claim] = []
    for rank, pattern in _LOGISTICS:
        for m in pattern.finditer(text):
            if not _negated(text, m.start()):
                out.append(Claim("logistics", m.group(), True))
                out.append(Claim("logistics_rank", str(rank)))
    out += [Claim("not_shipped", m.group(), False) for m in _NO_TRACKING.finditer(text)]
    out += [Claim("done", m.group()) for m in _DONE.finditer(text)]
    out += [Claim("asks", _ASKED_KIND[m.group("what")]) for m in _ASK.finditer(text)]
    out += [Claim("delivery_time", m.group()) for m in _DELIVERY.finditer(text)]
    out += [Claim("price", _number(m)) for m in _PRICE.finditer(text)]
    out += _promotion_claims(text)
    for m in _STOCK_YES.finditer(text):
        out.append(Claim("stock", m.group(), not _negated(text, m.start())))
    out += [Claim("stock", m.group(), False) for m in _STOCK_NO.finditer(text)]
    out += [Claim("place", m.group()) for m in _PLACE.finditer(text)]
    return tuple(out)


@dataclass
class Evidence:
    """What one conversation (with the catalogue and today's promotions) supports."""

    text: str = ""
    guide_text: str = ""
    logistics_rank: int = 0
    no_tracking: bool = False
    not_arrived: bool = False
    promotion_yes: set[str] = field(default_factory=set)
    promotion_no: set[str] = field(default_factory=set)
    stock: bool | None = None
    prices: set[float] = field(default_factory=set)
    given: set[str] = field(default_factory=set)
    words: set[str] = field(default_factory=set)
    categories: set[str] = field(default_factory=set)
    catalog: Catalog = field(default_factory=Catalog)

    @classmethod
    def of(
        cls,
        messages: Sequence[tuple[str, str]],
        catalog: Catalog | None = None,
        day: date | None = None,
    ) -> Evidence:
        """The evidence of ``(role, text)`` messages in order."""
        catalog = catalog or Catalog()
        ev = cls(catalog=catalog)
        ev.text = "\n".join(t for _r, t in messages)
        ev.guide_text = "\n".join(t for r, t in messages if r == "guide")
        for role, text in messages:
            # The latest logistics statement decides whether the chat says it is moving.
            moving = [c for c in claims(text) if c.kind == "logistics_rank"]
            if _NO_TRACKING.search(text):
                ev.no_tracking = True
            if moving:
                ev.logistics_rank = max(ev.logistics_rank, max(int(c.term) for c in moving))
                if not _NO_TRACKING.search(text):
                    ev.no_tracking = False
            if role == "customer" and _NOT_ARRIVED.search(text):
                ev.not_arrived = True
            if role == "customer":
                ev.given |= {kind for kind, pattern in _GIVEN.items() if pattern.search(text)}
            if role == "guide":
                for c in _promotion_claims(text):
                    (ev.promotion_yes if c.polarity else ev.promotion_no).add(c.kind)
                    (ev.promotion_no if c.polarity else ev.promotion_yes).discard(c.kind)
                yes = any(not _negated(text, m.start()) for m in _STOCK_YES.finditer(text))
                if _STOCK_NO.search(text) or yes:
                    ev.stock = yes and not _STOCK_NO.search(text)
                ev.prices |= {float(_number(m)) for m in _PRICE.finditer(text)}
            ev.words |= set(catalog.words_in(text))
            ev.categories |= set(catalog.categories_in(text))
        for name in ev.words & set(catalog.products):
            if catalog.products[name].category:
                ev.categories.add(catalog.products[name].category)
        in_chat = [catalog.products[w] for w in ev.words if w in catalog.products]
        for product in in_chat or list(catalog.products.values()):
            if product.price is not None:
                ev.prices.add(float(product.price))
            stock = product.attributes.get("库存", "")
            if in_chat and stock and ev.stock is None:
                ev.stock = not _STOCK_NO.search(stock)
        # A promotion supports a claim in chats about its products (or all, when it names none).
        names = {p.name for p in in_chat}
        ev.promotion_yes |= {
            p.kind
            for p in catalog.active_promotions(day)
            if p.kind in _PROMOTION and (not p.products or names & set(p.products))
        }
        return ev

    def problems(self, reply: str) -> list[Problem]:
        """The claims of ``reply`` this conversation does not support or contradicts."""
        out: list[Problem] = []
        found = claims(reply, self.catalog)
        ranks = [int(c.term) for c in found if c.kind == "logistics_rank"]
        for c in found:
            verdict = self._verdict(c, ranks)
            if verdict is not None:
                out.append(Problem(c.kind, c.term, verdict))
        return out

    def _verdict(self, c: Claim, ranks: list[int]) -> Verdict | None:
        if c.kind == "logistics":
            rank = max(ranks, default=1)
            if self.no_tracking or (rank >= 3 and self.not_arrived):
                return "contradicted"
            return None if self.logistics_rank >= rank else "unsupported"
        if c.kind == "asks":
            # Asking again for what the customer already sent ignores them.
            return "contradicted" if c.term in self.given else None
        if c.kind == "not_shipped":
            # 「还没发货」 is a state too: the chat must say so or ask when it ships.
            return None if self.no_tracking or _WHEN_SHIPS.search(self.text) else "unsupported"
        if c.kind == "done":
            stem = re.sub(r"^已经?(?:为您|帮您|给您|替您)?|中$|^显示(?:有|是)?|过$", "", c.term)
            return None if stem and stem in self.text else "unsupported"
        if c.kind == "delivery_time":
            # A guide must have given that day for shipping or arrival, not just said 「今天」.
            word = re.match(_TIME_WORD, c.term)
            said = word is not None and any(
                m.group().startswith(word.group()) for m in _DELIVERY.finditer(self.guide_text)
            )
            attrs = " ".join(
                v for p in self.catalog.products.values() for v in p.attributes.values()
            )
            return None if said or (word is not None and word.group() in attrs) else "unsupported"
        if c.kind == "price":
            return None if float(c.term) in self.prices else "unsupported"
        if c.kind in _PROMOTION:
            if not c.polarity:
                return None
            if c.kind in self.promotion_no:
                return "contradicted"
            return None if c.kind in self.promotion_yes else "unsupported"
        if c.kind == "stock":
            if self.stock is None:
                return "unsupported"
            return None if self.stock == c.polarity else "contradicted"
        if c.kind == "place":
            return None if c.term in self.text else "unsupported"
        if c.kind == "product":
            return None if self._may_name(c.term) else "unsupported"
        return None

    def _may_name(self, word: str) -> bool:
        if word in self.words or word in self.text:
            return True
        product = self.catalog.products.get(word)
        return (
            product is not None and bool(product.category) and product.category in self.categories
        )
