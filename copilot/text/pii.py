"""PII masking: personal data in chat text becomes placeholders like ``[手机号]``.

The rules are one ordered table, :data:`PII_RULES`, of :class:`PiiRule` ``(kind, compiled
pattern, guard)``, each kind with its placeholder in :data:`PII_PLACEHOLDERS`. A pattern's ``v``
group (or the whole match) is replaced, so cue words stay readable (``订单号123456789012`` →
``订单号[订单号]``). Order is the policy:

1. Unambiguous shapes: e-mail, ``wxid_`` WeChat ids.
2. **Cue rules** — a cue word decides the kind: WeChat ids after 微信/vx/v信/wx...,
   express numbers after 快递单号/运单号 or with a carrier prefix (SF/JD/YT...), ID numbers
   after 身份证, bank cards after 卡号/银行卡, order ids after 订单号/单号/order.
3. **Shape rules**, most specific first: ID card (18 digits, last may be X, plausible birth
   date), bank card (16–19 digits starting 3–6, Luhn-valid when written in one run; written
   in groups of four it is taken as a card without the check, as order numbers are not written
   that way), mobile number (optional +86/86, 1[3-9]x, 11 digits, spaces or dashes allowed),
   any other run of 12–24 digits as an order number, and street addresses with numbers.

Not masked, by construction: prices (``399元``, ``¥1299``, ``满300减50``), sizes (``165/88A``,
``38码``), dates and times (``3月8号``, ``10:30``, ``2026-03-08``), quantities, shade numbers
(``#999``, ``色号02``, ``1号色``), heights and weights, short model numbers, digit runs longer
than 24 (not an identifier of any known kind), and addresses written with Chinese numerals.

Speed: masking runs on every message, so each rule sits behind a cheap guard: the digit and id
rules run only when the text holds a run of six id characters or a grouped number
(``138 1234``), the e-mail rule only when ``@`` is present, the address rule only when a digit
is followed by an address unit (``号 弄 栋 单元 室 ...``). A typical chat message runs three
C-level scans and no rule. Every pattern starts with a cue word or at a boundary (a look-behind,
so a long run is tried once, not from each of its characters) and has only bounded
repetitions, so a 200k-character digit run or bracket flood stays linear.

Placeholders already in the text are left alone and not counted (they hold no digits or ``@``).
The input is expected to be normalised (:func:`copilot.text.normalize_text`): full-width digits
and separators must be half-width already.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["PII_PLACEHOLDERS", "PII_RULES", "PiiKind", "PiiRule", "mask_pii"]

PiiKind = Literal["email", "wechat", "express", "id_card", "bank_card", "order", "phone", "address"]

PII_PLACEHOLDERS: dict[str, str] = {
    "email": "[邮箱]",
    "wechat": "[微信号]",
    "express": "[快递单号]",
    "id_card": "[身份证号]",
    "bank_card": "[银行卡号]",
    "order": "[订单号]",
    "phone": "[手机号]",
    "address": "[地址]",
}
"""The placeholder each PII kind is replaced by."""


@dataclass(frozen=True)
class PiiRule:
    """One masking rule: matches of ``pattern`` (its ``v`` group if any) become ``placeholder``.

    ``guard`` names the cheap pre-check that must pass for the rule to run; ``accept`` (when
    given) can veto a match, which is then left as it is (the Luhn check of bank cards);
    ``name_prefix`` rules also mask the place name right before the match and skip matches
    without one (addresses).
    """

    kind: PiiKind
    pattern: re.Pattern[str]
    guard: Literal["at", "id", "address"]
    accept: Callable[[str], bool] | None = None
    name_prefix: bool = False

    @property
    def placeholder(self) -> str:
        """The placeholder text of this rule's kind."""
        return PII_PLACEHOLDERS[self.kind]


def _luhn_ok(number: str) -> bool:
    """The Luhn checksum of the digits in ``number`` (separators ignored)."""
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_accept(number: str) -> bool:
    """A card when written in groups (``6222 0212 ...``) or when the Luhn check passes."""
    return not number.isdigit() or _luhn_ok(number)


# What may follow a cue before the value: 号 / 是 / 为, a colon, a space.
_SEP = r"(?:号码|号)?(?:是|为)?\s?[:：#]?\s?"
_DATE = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
# Address pieces. An address rule matches from the street or compound suffix on ("路88号",
# "小区3栋2单元502") and then takes in the place name before it, at most _NAME_MAX characters of
# Chinese other than the words that surround an address in a sentence (我 住 在 寄到 ...).
# Matching the suffix first and walking back keeps the rule linear on long Chinese text, where a
# leading "[name]{2,30}" would be retried at every position.
_STOP = frozenset("我你他她您在住是的到寄送了吗呢吧啊哦呀嘛就请帮给址要想写填把被让从改")
_NAME_MIN, _NAME_MAX = 2, 30
_UNIT = r"(?:号楼|号院|号|弄|栋|幢|座|单元|层|楼|室|户|组)"
_TAIL = r"(?:[A-Za-z\u4e00-\u9fff]{0,10} ?[0-9]{1,5}" + _UNIT + ")"
_BARE = r"(?:[-—]?[0-9]{1,5}(?![0-9]))"
_ROAD = r"(?:大道|大街|路|街|巷|胡同)"
_COMPOUND = (
    r"(?:小区|花园|公寓|大厦|广场|家园|新村|社区|宿舍|中心|大楼|商城|号院|苑|园|村|城|府|庭|湾|里)"
)
_SUFFIX_HEADS = "".join(sorted({w[0] for w in re.findall(r"\w+", _ROAD + _COMPOUND)}))

# Province-level names and large cities: an address match that contains one is trimmed to start
# there, so the words before it ("麻烦改成上海市...") stay readable.
_ADMIN_START = re.compile(
    "北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|"
    "广东|海南|四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门|"
    "广州|深圳|杭州|南京|苏州|成都|武汉|西安|长沙|郑州|青岛|厦门|宁波|合肥|福州|济南|沈阳|大连|"
    "哈尔滨|长春|昆明|贵阳|南宁|南昌|石家庄|太原|兰州|乌鲁木齐|呼和浩特|银川|西宁|拉萨|海口|三亚|"
    "无锡|常州|佛山|东莞|珠海|温州|绍兴|嘉兴|金华|泉州|徐州|烟台|潍坊|唐山|保定|洛阳"
)

# Most patterns open with a look-ahead "gate" on the characters a match can start with: sre then
# rejects every other position with one test instead of walking the alternatives and
# look-behinds, which halves the cost of a rule on a short message.
_I = re.IGNORECASE
PII_RULES: tuple[PiiRule, ...] = (
    PiiRule(
        "email",
        re.compile(
            r"(?=[A-Za-z0-9._%+-])(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}"
            r"[A-Za-z]{2,24}(?![A-Za-z0-9-])"
        ),
        "at",
    ),
    PiiRule("wechat", re.compile(r"(?<![A-Za-z0-9_])wxid_[A-Za-z0-9_-]{4,30}", _I), "id"),
    PiiRule(
        "wechat",
        re.compile(
            r"(?=[微薇威vVwW加])(?:微信|薇信|威信|[vV]信|(?<![A-Za-z])(?:vx|wx|wechat|weixin|加我?v))"
            + _SEP
            + r"(?P<v>[A-Za-z0-9][A-Za-z0-9_-]{5,19})(?![A-Za-z0-9_-])",
            _I,
        ),
        "id",
    ),
    PiiRule(
        "express",
        re.compile(
            r"(?:快递单号|快递号|运单号|运单编号|物流单号)"
            + _SEP
            + r"(?P<v>[A-Za-z]{0,4}[0-9]{8,20})(?![A-Za-z0-9])"
        ),
        "id",
    ),
    PiiRule(
        "express",
        re.compile(
            r"(?=[SJYZEDsjyzed])(?<![A-Za-z0-9])(?:SF|JD[A-Z]{0,2}|YT|ZTO|STO|YD|JT|EMS|DPK|DB|YZ|ZJS)"
            r"[0-9]{9,20}(?![0-9])",
            _I,
        ),
        "id",
    ),
    PiiRule(
        "id_card",
        re.compile(r"身份证" + _SEP + r"(?P<v>[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])"),
        "id",
    ),
    PiiRule(
        "bank_card",
        re.compile(
            r"(?:卡号|银行卡|储蓄卡|信用卡|借记卡)"
            + _SEP
            + r"(?P<v>[0-9](?:[ -]?[0-9]){11,18})(?![0-9])"
        ),
        "id",
    ),
    PiiRule(
        "order",
        re.compile(
            r"(?=[订单oO])(?:订单编号|订单号|订单|单号|(?<![A-Za-z])order(?: ?(?:no|id|number)\.?)?)"
            + _SEP
            + r"(?P<v>(?=[A-Za-z-]{0,32}[0-9])[A-Za-z0-9-]{6,32})(?![A-Za-z0-9-])",
            _I,
        ),
        "id",
    ),
    PiiRule(
        "id_card",
        re.compile(
            rf"(?=[1-9])(?<![0-9])[1-9][0-9]{{5}} ?(?:18|19|20)[0-9]{{2}}{_DATE} ?[0-9]{{3}}[0-9Xx]"
            r"(?![0-9A-Za-z])"
        ),
        "id",
    ),
    PiiRule(
        "bank_card",
        re.compile(
            r"(?=[3-6])(?<![0-9])[3-6][0-9]{3}(?:(?: [0-9]{4}){3}(?: [0-9]{1,3})?"
            r"|(?:-[0-9]{4}){3}(?:-[0-9]{1,3})?|[0-9]{12,15})(?![0-9])"
        ),
        "id",
        _card_accept,
    ),
    PiiRule(
        "phone",
        re.compile(
            r"(?=[+081])(?<![0-9])(?:(?:\+|00)?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])"
        ),
        "id",
    ),
    PiiRule("order", re.compile(r"(?=[0-9])(?<![0-9])[0-9]{12,24}(?![0-9])"), "id"),
    PiiRule(
        "address",
        # A road and a house number ("建国路88号..."), or a compound with at least two numbers
        # ("幸福小区3栋2单元502"); one number after a compound is a shop ("万达广场3楼").
        re.compile(
            rf"(?=[{_SUFFIX_HEADS}])(?:{_ROAD} ?[0-9]{{1,5}}(?:号|弄)(?:{_TAIL})*+{_BARE}?"
            rf"|{_COMPOUND} ?[0-9]{{1,5}}{_UNIT}(?:(?:{_TAIL})++{_BARE}?|{_BARE}))"
        ),
        "address",
        name_prefix=True,
    ),
)
"""The masking rules in the order they run; see the module docstring for the policy."""

_ID_GUARD = re.compile(r"[A-Za-z0-9_-]{6}|[0-9]{3}[ -][0-9]{4}")
_ADDRESS_GUARD = re.compile(r"[0-9](?:号|弄|栋|幢|座|单元|层|楼|室)")


def _name_start(text: str, start: int, floor: int) -> int:
    """Where the place name ending at ``start`` begins (``start`` itself when there is none)."""
    i = start
    limit = max(floor, start - _NAME_MAX)
    while i > limit and "\u4e00" <= text[i - 1] <= "\u9fff" and text[i - 1] not in _STOP:
        i -= 1
    if start - i < _NAME_MIN:
        return start
    # Trim conversational words before a known province or city ("麻烦改成上海市..." -> "上海市...").
    head = _ADMIN_START.search(text, i, start)
    return head.start() if head is not None else i


def _apply(rule: PiiRule, text: str) -> tuple[str, int]:
    """Run one rule over ``text``; return the new text and how many spans it replaced."""
    first = rule.pattern.search(text)
    if first is None:  # the usual case, without the cost of setting up the loop
        return text, 0
    has_value = "v" in rule.pattern.groupindex
    pieces: list[str] = []
    pos = 0
    for match in rule.pattern.finditer(text, first.start()):
        start, end = match.span("v") if has_value else match.span()
        if rule.accept is not None and not rule.accept(text[start:end]):
            continue
        if rule.name_prefix:
            name_start = _name_start(text, start, pos)
            if name_start == start:
                continue
            start = name_start
        pieces += (text[pos:start], PII_PLACEHOLDERS[rule.kind])
        pos = end
    if not pieces:
        return text, 0
    pieces.append(text[pos:])
    return "".join(pieces), (len(pieces) - 1) // 2


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace personal data in ``text`` by placeholders.

    Args:
        text: a normalised message (see :func:`copilot.text.normalize_text`).

    Returns:
        The masked text and the number of spans masked per kind; kinds with no match are absent
        (``{}`` when nothing was masked).

    Example:
        >>> mask_pii("加我微信abc_123456,电话138-1234-5678")
        ('加我微信[微信号],电话[手机号]', {'wechat': 1, 'phone': 1})
    """
    passed = {
        "at": "@" in text,
        "id": _ID_GUARD.search(text) is not None,
        "address": _ADDRESS_GUARD.search(text) is not None,
    }
    counts: dict[str, int] = {}
    if not (passed["id"] or passed["at"] or passed["address"]):
        return text, counts  # most messages: three C-level scans and done
    for rule in PII_RULES:
        if passed[rule.guard]:
            text, n = _apply(rule, text)
            if n:
                counts[rule.kind] = counts.get(rule.kind, 0) + n
    return text, counts
