"""Customer profiles: what a customer's own messages reveal, each fact with its message and time.

:func:`extract` reads one customer message (with the guide's message before it) and returns the
facts it states. Precision comes first: a wrong size is worse than none, so every rule needs a
cue that the number or word is about the customer (or someone they name), and questions about
availability (「M码还有货吗」) state nothing.

=================  ============================================================  ===========
fact type          value                                                         kept
=================  ============================================================  ===========
height_cm          integer cm: 身高165 / 一米六五 / 1.65m / 165cm / 「165 110斤」   latest
weight_kg          kg, one decimal: 110斤 → 55, 55kg, 55公斤                      latest
size               clothing size worn: 平时穿M / 一般L码 / 要XL的 / 穿27的牛仔裤   latest
shoe_size          37, 37.5 with a shoe cue: 鞋子37码 / 穿38的鞋 / 脚是39           latest
budget_max         integer yuan: 预算500 / 300以内 / 两三百 (→ 300) / 不超过1000    latest
skin_type          dry, oily, combination, sensitive, normal (a set per message)   latest
skin_tone          fair, yellow, dark                                              latest
baby_age_months    宝宝8个月 / 孩子两岁半 (→ 30) / 刚满月 (→ 1)                     latest
buying_for         partner, parent, child, friend: 给我老公买 / 送闺蜜             all
product            a product word the customer asks about or wants                 all
objection          price (太贵了, 别家便宜) or trust (是正品吗, 会不会起球)          all
preference         what they like, want or avoid: 黑色, 宽松, 不要羊毛             all
come_back          the promised time or condition: 发工资, 周末, 双十一, 问问老公   latest
=================  ============================================================  ===========

Each fact says whose it is (``whom``): ``self`` unless a relation word (老公, 我妈, 宝宝, 闺蜜
…) or 他/她 after one is the subject of that part of the message. Chinese numerals are read as
numbers (``cn2an``), traditional characters and full-width digits are normalised first.

:func:`build_profile` folds a customer's conversations (oldest first) into a :class:`Profile`:
for "latest" types a newer message replaces what an older one said about the same person; "all"
types accumulate (newest first). It adds the last contact, the stage (new, considering, bought,
after_sales) and the orders attributed to the customer.

Example:
    >>> [(f.type, f.value) for f in extract("我身高165 体重110斤，平时穿M")]
    [('height_cm', 165), ('weight_kg', 55.0), ('size', 'M')]
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from copilot.catalog import retail_pattern
from copilot.text.normalize import normalize_text, to_simplified

__all__ = [
    "FACT_TYPES", "Fact", "Profile", "ProfileFact", "build_profile", "extract", "latest_product",
]  # fmt: skip

LATEST = (
    "height_cm", "weight_kg", "size", "shoe_size", "budget_max", "skin_type", "skin_tone",
    "baby_age_months", "come_back",
)  # fmt: skip
ACCUMULATE = ("buying_for", "product", "objection", "preference")
FACT_TYPES = LATEST + ACCUMULATE
STAGES = ("new", "considering", "bought", "after_sales")


@dataclass(frozen=True)
class Fact:
    """One fact a message states: its type, normalised value, whose it is and the words used."""

    type: str
    value: Any
    whom: str = "self"
    span: str = ""


# --------------------------------------------------------------------------- who


_RELATIONS = {
    "partner": "老公|老婆|男朋友|女朋友|男票|女票|对象|爱人|媳妇|先生|男友|女友",
    "parent": "我妈|妈妈|老妈|我爸|爸爸|老爸|婆婆|公公|岳母|丈母娘|父母|爸妈|长辈|老人|奶奶|爷爷|外婆|姥姥",
    "child": "宝宝|孩子|儿子|女儿|小孩|娃|闺女|大宝|二宝|小朋友|宝贝儿子|宝贝女儿",
    "friend": "朋友|闺蜜|同事|同学|姐妹",
}
_RELATION = re.compile("|".join(f"(?P<{k}>{v})" for k, v in _RELATIONS.items()))
_ANY_RELATION = "|".join(_RELATIONS.values())
# "我" on its own (not "我老公", "我妈") makes the customer the subject again.
_SELF = re.compile(
    r"我(?!老公|老婆|男朋友|女朋友|对象|爱人|媳妇|妈|爸|儿子|女儿|闺女|家|们)|自己|本人"
)
_THIRD = re.compile(r"[他她]|ta|TA")
# Someone else's words or body (柜姐说…, 模特穿S): facts there are not the customer's.
_OTHER = re.compile(
    r"(?:柜姐|店员|导购|客服|模特|网上|别人|人家|博主|主播)(?:说|穿|推荐)?|(?<=[^我])说(?=[^话])"
)


def _subjects(text: str) -> list[tuple[int, str]]:
    """``(position, whom)`` of each subject marker, in order."""
    marks: list[tuple[int, str]] = []
    for m in _RELATION.finditer(text):
        marks.append((m.start(), m.lastgroup or "self"))
    marks += [(m.start(), "self") for m in _SELF.finditer(text)]
    marks += [(m.start(), "other") for m in _OTHER.finditer(text)]
    marks.sort()
    out: list[tuple[int, str]] = []
    last_relation = None
    for third in _THIRD.finditer(text):
        marks.append((third.start(), "third"))
    for pos, whom in sorted(marks):
        if whom == "third":
            if last_relation:
                out.append((pos, last_relation))
            continue
        if whom not in ("self", "other"):
            last_relation = whom
        out.append((pos, whom))
    return out


def _whom(subjects: list[tuple[int, str]], position: int) -> str:
    who = "self"
    for pos, whom in subjects:
        if pos > position:
            break
        who = whom
    return who


# --------------------------------------------------------------------------- numbers


_CN_DIGIT = "零一二两三四五六七八九十百千"
_DIGIT = {c: str(i) for i, c in enumerate("零一二三四五六七八九")} | {"两": "2"}
# Words that keep their numerals: festivals, and vague durations that are not amounts.
_KEEP = {"双十一": "\x01", "双十二": "\x02", "过两天": "\x03", "过几天": "\x04", "两三天": "\x05"}


_CN_RUN = re.compile(r"[零一二两三四五六七八九十百千万]+")
# A single numeral is a number only before a unit (一岁, 两斤), not in 一点, 一般, 统一.
_UNIT_START = set("岁个月周斤公米厘千克块元码号天年次瓶件套盒包段g")


@lru_cache(maxsize=4096)
def _arabic(text: str) -> str:
    """Chinese numbers as digits (一百一十斤 → 110斤, 一米六五 → 1米65, 两岁 → 2岁); words
    that merely contain a numeral (一点, 一般, 统一, 过两天) stay as they are."""
    if not any(c in _CN_DIGIT for c in text):
        return text
    import cn2an

    for word, mark in _KEEP.items():
        text = text.replace(word, mark)
    # 一米六五 / 一米零五 / 一米七: heights, digit by digit after 米.
    text = re.sub(
        r"一米([零一二三四五六七八九])([一二三四五六七八九])?",
        lambda m: "1米" + "".join(_DIGIT[c] for c in m.groups() if c),
        text,
    )
    # 两三百 is a range: read as its upper end.
    text = re.sub(r"[两二]([三四五六七八九])([百千])", r"\1\2", text)

    def number(m: re.Match[str]) -> str:
        run = m.group(0)
        if len(run) == 1 and text[m.end() : m.end() + 1] not in _UNIT_START:
            return run
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return str(cn2an.cn2an(run.replace("两", "二"), "smart"))
            except (ValueError, KeyError, IndexError, TypeError):
                return run

    text = _CN_RUN.sub(number, text)
    for word, mark in _KEEP.items():
        text = text.replace(mark, word)
    return text


# --------------------------------------------------------------------------- the rules

_NUM = r"\d{1,3}(?:\.\d)?"
_HEIGHT = re.compile(
    r"(?:身高|个子|个头|净身高)\s*[:是有约大概才]*\s*(?P<a>\d{2,3}|1\.\d{1,2}|1米\d{0,2})\s*(?:cm|厘米|公分|m|米)?"
    r"|(?P<b>\d{2,3})\s*(?:cm|厘米|公分)(?!\s*[*×x])"
    r"|(?P<c>1\.\d{1,2})\s*(?:m|米)(?![a-z])"
    r"|(?P<d>1米\d{1,2})(?![\d.])"
    # 「我160」「我老公175」: a person, then a bare number in the height range.
    rf"|(?:我|本人|[他她]|{_ANY_RELATION})\s*(?P<e>1[4-9]\d)(?![\d.]|\s*(?:元|块|斤|kg|公斤|码|号|件|个|ml|g|的))",
    re.I,
)
_WEIGHT = re.compile(
    rf"(?P<v>{_NUM})\s*(?P<u>斤|kg|公斤|千克)"
    rf"|体重\s*[:是有约大概才]*\s*(?P<w>{_NUM})(?!\s*(?:[\d元块号.]|斤|kg|公斤|千克))",
    re.I,
)
_KG_UNITS = ("kg", "公斤", "千克")
# 「165 110斤」「165/55kg」「55公斤 163」: a bare height beside a weight.
_PAIR = re.compile(
    rf"(?<![\d.])(?P<h>1[4-9]\d)\s*[/，,、 ]\s*(?={_NUM}\s*(?:斤|kg|公斤))"
    rf"|(?:斤|kg|公斤)\s*[/，,、 ]?\s*(?P<g>1[4-9]\d)(?![\d.]|\s*(?:元|块|码|号))",
    re.I,
)
_LETTER = r"(?:XXXXL|XXXL|XXL|XL|XS|[2-5]XL|S|M|L)"
_SIZE = re.compile(
    rf"(?:穿|一般|平时|通常|都是|都穿|我是|码数是|尺码是|要|拿|拍|选)\s*(?:的是|是)?\s*"
    rf"(?P<s>{_LETTER}|\d{{2,3}})(?![a-z\d])\s*(?P<unit>码|号|的)?",
    re.I,
)
_UNSURE = re.compile(r"要不要|是不是|还是|能不能|可不可以|会不会|合不合适|行不行|该|应该|哪个|什么")
_SIZE_BAD_AFTER = re.compile(
    r"^\s*(?:码|号)?\s*(?:的)?\s*(?:还是|或|或者|还有|有没有|有吗|有货|吗|呢|\?|行不|可以吗|合适吗|能穿吗|会大|会小|大吗|小吗|偏)"
)
_CLAUSE = re.compile(r"[,.!?;。！？；\s]")
_SHOE_CUE = re.compile(r"鞋|靴|脚")
_SHOE = re.compile(
    r"(?:穿|鞋码|码数|脚|尺码|鞋子?)\s*[:是]*\s*(?:\d{1,2}\s*(?:码|号)?\s*[的]?\s*)?(?P<s>\d{2}(?:\.5)?)\s*(?:码|号|的)?"
    r"|(?P<t>\d{2}(?:\.5)?)\s*码"
)
_TIGHT = re.compile(
    r"^\s*(?:码|号)?\s*(?:的)?\s*(?:有点|有些|太|偏)?\s*(?:挤|紧|大了|小了|偏大|偏小|磨脚|顶脚)"
)
_BUDGET = re.compile(
    r"预算\s*(?:是|在|大概|差不多|只有|就|才)?\s*(?P<a>\d{2,6})"
    r"|(?:不超过|不要超过|别超过|控制在|最多|顶多|最高)\s*(?P<b>\d{2,6})"
    r"|(?P<c>\d{2,6})\s*(?:元|块|块钱)?\s*(?:以内|以下|之内|左右|上下)"
    r"|超过\s*(?P<d>\d{2,6})\s*(?:元|块)?\s*(?:就算了|就不|不考虑|不要)"
)
_SKIN = {
    "combination": r"混油|混干|混合(?:性)?(?:皮|肌)|T区(?:出)?油.{0,6}(?:两颊|脸颊|两边|U区)(?:有点|比较)?干",
    "dry": r"(?<![混不])干皮|干敏|干性(?:皮|肌)|皮肤(?:很|比较|特别|有点|偏)?干|dry skin",
    "oily": r"(?<![混不])油皮|油性(?:皮|肌)|大油田|皮肤(?:很|比较|特别|有点|偏)?油|oily",
    "sensitive": r"敏感肌|敏感(?:皮|性皮肤)|敏皮|干敏|敏感体质|皮肤(?:很|比较|特别|有点)?敏感|容易过敏|屏障受损|sensitive",
    "normal": r"中性(?:皮|肌)|算中性|中性吧|不干不油",
}
_SKIN_RE = {k: re.compile(v, re.I) for k, v in _SKIN.items()}
_SKIN_CUE = re.compile(r"皮|肌|脸|过敏|痘")
_SENSITIVE = re.compile(r"(?<!不)(?:很|比较|特别|有点|容易)敏感")
_TONE = {
    "dark": re.compile(r"黄黑皮|黑皮|皮肤(?:很|比较|有点|偏)?黑|肤色(?:很|比较|有点|偏)?黑"),
    "yellow": re.compile(
        r"(?<!黑)黄皮|皮肤(?:很|比较|有点)?(?:偏)?黄|肤色(?:很|比较|有点)?(?:偏)?黄|暗黄"
    ),
    "fair": re.compile(r"冷白皮|白皮|皮肤(?:很|比较|挺)?白|肤色(?:很|比较|挺)?白"),
}
_NEGATED = re.compile(r"(?:不是|不算|并不|没有|不|非)\s*$")
_CHILD_CUE = r"(?:宝宝|孩子|儿子|女儿|小孩|娃|闺女|大宝|二宝|小宝|宝贝|小朋友|baby|男孩|女孩)"
_CHILD = re.compile(_CHILD_CUE, re.I)
_AGE = re.compile(
    r"(?P<y>\d{1,2})\s*(?:周岁|岁)(?![以+]|以上|以下|适用)(?:\s*零?\s*(?P<ym>\d{1,2})\s*个?月|(?P<half>半))?"
    r"|(?P<m>\d{1,2})\s*(?:(?:个半|个)\s*月|月龄)(?!份|底|初|号|内|以内|之内|以上|以下|后|前|的时候|保|免息|\+)"
    r"|(?P<hundred>满?百天)|(?P<moon>刚满月|刚出生)"
)
_AGE_NOT = re.compile(
    r"(?:用了|用|吃了|喝了|孕|怀孕|怀|分|免息|保质期|质保|等|已经用|过|每|隔|大概用)\s*[^\d]{0,2}$"
)
_BUYING_FOR = re.compile(
    rf"(?:给|帮|替|送|送给)\s*(?:我|我家|家里)?\s*(?P<r>{_ANY_RELATION}|[他她])"
    r"|(?P<r2>老公|老婆|男朋友|女朋友|对象|爱人|我妈|我爸|爸妈|婆婆|公公|老人|长辈)\s*(?:穿|用|戴|生日|过生日)"
)
_OBJECTION = {
    "price": re.compile(
        r"(?<!是)太贵|好贵|有点贵|(?<!是)贵了|挺贵|这么贵|便宜点|便宜些|便宜一点|少点|优惠点|再优惠|打个折|抹个零|"
        r"别家|别人家|其他家|网上更便宜|(?:更|还)便宜|比.{0,4}贵|不划算|性价比不高|超预算|价格(?:有点|偏|太|好)?高"
    ),
    "trust": re.compile(
        r"正品|假货|假的吧|真的假的|靠谱吗|骗人|水货|色差|跟(?:图片|实物|图)一样吗|"
        r"会不会(?:起球|掉色|褪色|缩水|变形|过敏|闷痘|烂脸|假|搓泥|起坨|漏|掉毛|起皱|卡粉|脱妆|刺激|有味)|"
        r"真的有用|真的有效|有效果吗|有用吗|管用吗|质量(?:怎么样|好吗|行吗|靠谱吗)|"
        r"怕(?:过敏|烂脸|买到假|上当|质量|用了不|不适合)|保真吗|是真的吗|安全吗|有没有(?:副作用|激素|荧光剂)"
    ),
}
_PREF_WORDS = (
    r"(?:黑|白|灰|蓝|藏青|红|粉|紫|绿|黄|棕|咖啡|卡其|米|杏|驼|深|浅|亮)色|宽松|修身|显瘦|oversize|长款|短款|高腰|"
    r"纯棉|真丝|羊毛|羊绒|亚麻|纯色|条纹|格子|清爽|滋润|保湿|控油|美白|抗老|抗衰|不油腻|不黏|无香|淡香|香精|"
    r"珠光|哑光|水润|持久|自然|氨基酸|简约|百搭|通勤|休闲|运动风|甜美|韩系|日系|复古|低调|小众|大牌|国货|温和|"
    r"无添加|有机|水解|轻便|电动|静音|声音小|[\u4e00-\u9fff]{1,2}味"
)
_PREF = re.compile(
    rf"(?P<neg>不要|不喜欢|不想要|讨厌|别太|不能太|受不了)\s*(?:那种|太|带|加|有)?\s*(?P<n>{_PREF_WORDS})"
    rf"|(?:喜欢|想要|偏爱|偏向|倾向|最好是|最好|希望是|希望|比较喜欢|更喜欢|要|想找|想买|想换|有没有|有)\s*"
    rf"(?:那种|一点|一些|比较|偏)?\s*(?P<p>{_PREF_WORDS})(?=的|一点|点|些|款|[\s,.!~]|$)"
    rf"|(?P<q>{_PREF_WORDS})\s*(?:一点|一些|点)(?:的)?\s*(?:好|吧|比较好|就行|的)"
)
_TIME = (
    r"发工资|发了工资|工资到了|月初|月底|下个?月|下周[一二三四五六日天]?|下礼拜|周末|明天|后天|过两天|过几天|"
    r"晚点|晚上|回头|下班|双十一|双十二|618|年货节|过年|年底|节后|放假"
)
# Whom a customer goes to ask before deciding (问问老公, 跟孩子他爸商量).
_ASKED = r"老公|老婆|男朋友|女朋友|对象|家里人|家人|我妈|妈妈|爸爸|孩子?(?:他|她)[爸妈]|孩[爸妈]|闺蜜|朋友"
_COME_BACK = re.compile(
    rf"(?:等|到)?\s*(?P<t>{_TIME})[^,.!?。！？]{{0,4}}?(?:再|在|来|去|过来|就|才)[^,.!?。！？]{{0,4}}?"
    rf"(?:买|下单|拍|看|来|去|说|定|联系|考虑|决定|入|找你|问|试|逛)"
    rf"|等\s*(?P<u>{_TIME})"
    rf"|(?P<ask>(?:回去)?问问?(?:我)?(?:{_ASKED}))"
    rf"|(?P<talk>(?:跟|和)(?:我)?(?:{_ASKED})商量)"
)
_LATER = re.compile(r"到时候再|到时再")
# Words too general to tell what the customer is after.
_GENERIC = {"衣服", "鞋", "鞋子"}


def _height(raw: str, child: bool) -> int | None:
    if "米" in raw:
        whole, _, rest = raw.partition("米")
        value = float(whole) * 100 + (float(rest.ljust(2, "0")) if rest else 0)
    else:
        value = float(raw)
        if value < 3:
            value *= 100
    low = 45 if child else 120
    value = round(value)
    return value if low <= value <= (170 if child else 210) else None


def _weight(value: float, unit: str | None, child: bool) -> float | None:
    if unit is None:  # 「体重55」: kg when plausible, else jin
        kg = value if value <= (25 if child else 100) else value / 2
    else:
        kg = value if unit.lower() in _KG_UNITS else value / 2
    kg = round(kg, 1)
    low, high = (2, 50) if child else (30, 150)
    return kg if low <= kg <= high else None


def _clause_before(text: str, position: int) -> str:
    """The part of ``text`` from the last clause break before ``position`` up to it."""
    cut = max((m.end() for m in _CLAUSE.finditer(text, 0, position)), default=0)
    return text[cut:position]


def extract(
    text: str,
    context: str = "",
    products: Iterable[str] = (),
) -> list[Fact]:
    """The facts of one customer message (see the module docstring).

    Args:
        text: the customer's message.
        context: the guide's message before it: a bare answer (「165 ，105」, 「M」) counts
            when the guide has just asked for exactly that.
        products: extra product names (a catalogue's) besides the built-in retail words.
    """
    if not text or not text.strip():
        return []
    reader = _Reader(text, context, list(products))
    # Ages first: 「宝宝8个月 身高75」 makes the later numbers a child's.
    for step in (
        reader.ages, reader.measures, reader.sizes, reader.budget_and_skin,
        reader.people_and_products, reader.talk,
    ):  # fmt: skip
        step()
    return reader.facts


class _Reader:
    """One message being read: its normalised text, who each part is about, the facts so far."""

    def __init__(self, text: str, context: str, products: list[str]) -> None:
        self.clean = _arabic(to_simplified(normalize_text(text)))
        self.context = normalize_text(context or "")
        self.products = products
        self.subjects = _subjects(self.clean)
        self.facts: list[Fact] = []
        self.child_cue = bool(_CHILD.search(self.clean))
        self.taken: list[tuple[int, int]] = []  # spans read as one fact, not read as another

    def who(self, position: int) -> str:
        return _whom(self.subjects, position)

    def add(self, kind: str, value: Any, whom: str, span: str) -> None:
        if whom == "other":
            return
        if not any((f.type, f.value, f.whom) == (kind, value, whom) for f in self.facts):
            self.facts.append(Fact(kind, value, whom, span))

    def free(self, a: int, b: int) -> bool:
        return not any(x < b and a < y for x, y in self.taken)

    def person(self, position: int) -> tuple[str, bool]:
        """Whose a measurement at ``position`` is, and whether that is a child's."""
        whom = self.who(position)
        child = whom == "child" or (
            whom == "self" and any(f.type == "baby_age_months" for f in self.facts)
        )
        return ("child" if child else whom), child

    def ages(self) -> None:
        """A child's age: 宝宝8个月, 两岁半, 满百天; not durations, ranges or dates."""
        clean = self.clean
        for m in _AGE.finditer(clean):
            before = clean[max(0, m.start() - 6) : m.start()]
            if (
                _AGE_NOT.search(before)
                or re.search(r"等|满\s*$", before)
                and "刚" not in m.group(0)
            ):
                continue
            if re.match(r"\s*[-~到至]\s*\d", clean[m.end() : m.end() + 3]) or re.search(
                r"\d\s*[-~到至]\s*$", before
            ):
                continue  # 「0-6个月」: a product's range
            if m.group("y"):
                years = int(m.group("y"))
                if years > 6 and not self.child_cue or years > 14:
                    continue
                months = years * 12 + (6 if m.group("half") else int(m.group("ym") or 0))
            elif m.group("m"):
                months = int(m.group("m"))
                if months > 36 or "吗" in clean[m.end() : m.end() + 6] and not self.child_cue:
                    continue
            elif m.group("hundred"):
                months = 3
            else:
                months = 1 if "满月" in m.group(0) else 0
            whom = self.who(m.start())
            if (
                whom not in ("self", "child")
                or whom == "self"
                and _SELF.search(_clause_before(clean, m.start()))
            ):
                continue
            self.add("baby_age_months", months, "child", m.group(0))
            self.taken.append(m.span())

    def measures(self) -> None:
        """Height and weight, with units, in pairs, or as a bare answer to the guide."""
        clean = self.clean
        for m in _HEIGHT.finditer(clean):
            if not self.free(*m.span()):
                continue
            whom, child = self.person(m.start())
            raw = next(g for g in m.groups() if g)
            value = _height(raw, child)
            if value:
                self.add("height_cm", value, whom, m.group(0))
                self.taken.append(m.span())
        for m in _PAIR.finditer(clean):
            group = "h" if m.group("h") else "g"
            if self.free(*m.span(group)):
                whom, _ = self.person(m.start())
                self.add("height_cm", int(m.group(group)), whom, m.group(group))
                self.taken.append(m.span(group))
        for m in _WEIGHT.finditer(clean):
            if not self.free(*m.span()):
                continue
            raw, unit = (m.group("v"), m.group("u")) if m.group("v") else (m.group("w"), None)
            before = clean[max(0, m.start() - 4) : m.start()]
            if unit and re.search(r"买|要|来|称|装|一共|共|每|重量|净含量", before):
                continue  # 「买两斤」, 「一共5kg」: a quantity, not a body weight
            whom, child = self.person(m.start())
            kg = _weight(float(raw), unit, child)
            if kg:
                self.add("weight_kg", kg, whom, m.group(0))
                self.taken.append(m.span())
        if re.search(r"身高|多高|体重|多重", self.context):
            # 「162 ，105」 after 「身高体重多少」: height, then weight (斤 when it is over 80).
            bare = re.fullmatch(
                r"\s*(?:我)?\s*(1[4-9]\d)(?:\s*(?:cm|厘米))?\s*[,/、 ]*\s*(\d{2,3})?\s*",
                clean,
                re.I,
            )
            if bare:
                if self.free(*bare.span(1)):
                    self.add("height_cm", int(bare.group(1)), "self", bare.group(1))
                if bare.group(2) and not any(f.type == "weight_kg" for f in self.facts):
                    kg = _weight(
                        float(bare.group(2)), "斤" if int(bare.group(2)) > 80 else "kg", False
                    )
                    if kg:
                        self.add("weight_kg", kg, "self", bare.group(2))

    def sizes(self) -> None:
        """Shoe and clothing sizes worn, not sizes asked about or wavered between."""
        clean = self.clean
        shoe = _SHOE_CUE.search(clean)
        if shoe:
            for m in _SHOE.finditer(clean):
                group = "s" if m.group("s") else "t"
                if not self.free(*m.span(group)):
                    continue
                after = clean[m.end(group) :]
                if (
                    _TIGHT.match(after)
                    or _SIZE_BAD_AFTER.match(after)
                    and not re.match(r"^\s*(?:码|号)?\s*的?\s*(?:鞋|脚)", after)
                ):
                    continue
                if _UNSURE.search(_clause_before(clean, m.start(group))):
                    continue
                whom, child = self.person(m.start())
                value = float(m.group(group))
                if not (13 <= value <= 35 if child else 33 <= value <= 47):
                    continue
                self.add("shoe_size", int(value) if value.is_integer() else value, whom, m.group(0))
                self.taken.append(m.span(group))
        for m in _SIZE.finditer(clean):
            if not self.free(*m.span("s")):
                continue
            size = m.group("s").upper()
            after = clean[m.end("s") :]
            if _SIZE_BAD_AFTER.match(after) or re.search(r"[吗?]", after[:8]):
                continue
            if _UNSURE.search(_clause_before(clean, m.start("s"))):
                continue
            whom, child = self.person(m.start())
            if size.isdigit():
                if shoe and not child:
                    continue
                low, high = (59, 170) if child else (24, 36)
                unit = m.group("unit") or ""
                if not (low <= int(size) <= high) or not (
                    unit or re.search(r"牛仔|裤|腰", after[:4])
                ):
                    continue
            self.add("size", size, whom, m.group(0))
            self.taken.append(m.span("s"))
        if re.search(r"什么码|多大码|哪个码|尺码|码数|穿多大", self.context):
            bare = re.fullmatch(
                rf"\s*(?:我)?\s*(?:穿)?\s*({_LETTER})\s*(?:码|号)?\s*(?:的)?\s*", clean, re.I
            )
            if bare:
                self.add("size", bare.group(1).upper(), "self", bare.group(0))

    def budget_and_skin(self) -> None:
        """Budget, skin type and skin tone."""
        clean = self.clean
        for m in _BUDGET.finditer(clean):
            raw = next(g for g in m.groups() if g)
            if not self.free(*m.span()):
                continue
            value = int(raw)
            after = clean[m.end() : m.end() + 2]
            if m.group("c") and (
                value < 50 or re.match(r"\s*(?:斤|kg|cm|码|号|个|岁)", after, re.I)
            ):
                continue
            if 10 <= value <= 200_000:
                self.add("budget_max", value, "self", m.group(0))

        for kind, pattern in _SKIN_RE.items():
            for m in pattern.finditer(clean):
                if not _NEGATED.search(clean[max(0, m.start() - 3) : m.start()]):
                    self.add("skin_type", kind, self.who(m.start()), m.group(0))
        if _SKIN_CUE.search(clean):
            for m in _SENSITIVE.finditer(clean):
                self.add("skin_type", "sensitive", self.who(m.start()), m.group(0))
        for kind, pattern in _TONE.items():
            for m in pattern.finditer(clean):
                if not _NEGATED.search(clean[max(0, m.start() - 3) : m.start()]):
                    self.add("skin_tone", kind, self.who(m.start()), m.group(0))
                    break

    def people_and_products(self) -> None:
        """Whom the purchase is for, and the products asked about."""
        clean = self.clean
        for m in _BUYING_FOR.finditer(clean):
            group = m.group("r") or m.group("r2")
            rel = _RELATION.fullmatch(group)
            whom = rel.lastgroup if rel else self.who(m.start("r") if m.group("r") else m.start())
            if whom and whom not in ("self", "other"):
                self.add("buying_for", whom, "self", m.group(0))

        names = self.products
        found = [(m.start(), m.group(0)) for m in retail_pattern().finditer(clean)]
        for name in names:
            found += [(m.start(), name) for m in re.finditer(re.escape(name), clean)]
        for position, word in sorted(found):
            before = clean[max(0, position - 6) : position]
            if word in _GENERIC or re.search(r"赠品|赠送|送的", before):
                continue
            if re.search(r"上次买的|之前买的|买过的|用过的", before) and not re.search(
                r"还要|再来|回购|再买", clean
            ):
                continue
            self.add("product", word, "self", word)

    def talk(self) -> None:
        """Objections, preferences and the promised come-back."""
        clean = self.clean
        for kind, pattern in _OBJECTION.items():
            m = pattern.search(clean)
            if m and not (kind == "price" and re.search(r"贵是贵", clean)):
                self.add("objection", kind, "self", m.group(0))

        for m in _PREF.finditer(clean):
            # Whose taste: someone named in the same clause (我老公喜欢深色), else the customer's.
            clause = len(_clause_before(clean, m.start()))
            named = [w for p, w in self.subjects if m.start() - clause <= p <= m.start()]
            whom = named[-1] if named else "self"
            word = "不要" + m.group("n") if m.group("n") else m.group("p") or m.group("q")
            self.add("preference", word, whom, m.group(0))

        m = _COME_BACK.search(clean)
        phrase = None
        if m:
            phrase = m.group("t") or m.group("u") or m.group("ask") or m.group("talk")
            phrase = (
                re.sub(r"^回去", "", phrase)
                .replace("问我", "问")
                .replace("跟我", "跟")
                .replace("和我", "和")
            )
            phrase = phrase.replace("发了工资", "发工资").replace("工资到了", "发工资")
            if phrase.startswith("问") and not phrase.startswith("问问"):
                phrase = "问" + phrase
        elif _LATER.search(clean):
            times = re.findall(_TIME + r"|双11|双12", clean)
            phrase = times[0] if times else None
        if phrase:
            self.add("come_back", phrase, "self", phrase)


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class ProfileFact:
    """A fact in a profile, with where it came from."""

    type: str
    value: Any
    whom: str
    conversation_id: str
    message_index: int
    at: datetime | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "value": self.value,
            "whom": self.whom,
            "conversation_id": self.conversation_id,
            "message_index": self.message_index,
            "at": self.at.isoformat() if self.at else None,
            "text": self.text,
        }


@dataclass
class Profile:
    """What is known about one customer (see the module docstring).

    Attributes:
        customer_id: the customer.
        facts: current facts: for "latest" types one per (type, whom), the newest; "all" types
            every distinct value, newest first.
        superseded: older facts replaced by newer ones (kept for the record).
        last_contact: time of the customer's latest message.
        stage: new, considering, bought or after_sales.
        orders: the customer's orders (``{"order_id", "paid_at", "amount", "product"}``).
        conversations: ids of the conversations read, oldest first.
    """

    customer_id: str
    facts: list[ProfileFact] = field(default_factory=list)
    superseded: list[ProfileFact] = field(default_factory=list)
    last_contact: datetime | None = None
    stage: str = "new"
    orders: list[dict[str, Any]] = field(default_factory=list)
    conversations: list[str] = field(default_factory=list)

    def get(self, kind: str, whom: str = "self") -> Any:
        """The current value of a "latest" fact type for ``whom`` (``None`` when unknown)."""
        for fact in self.facts:
            if fact.type == kind and fact.whom == whom:
                return fact.value
        return None

    def values(self, kind: str, whom: str | None = None) -> list[Any]:
        """Every current value of ``kind`` (newest first), for ``whom`` or anyone."""
        return [f.value for f in self.facts if f.type == kind and (whom is None or f.whom == whom)]

    def slot_values(self) -> dict[str, str]:
        """What fills a reply's slots when the chat does not: the customer's own size and the
        product they asked about or bought last (``{"size", "product"}`` when known)."""
        out = {}
        if self.get("size") is not None:
            out["size"] = str(self.get("size"))
        bought = [o["product"] for o in self.orders if o.get("product")]
        products = self.values("product")
        if bought or products:
            out["product"] = str(bought[-1] if bought else products[0])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "stage": self.stage,
            "last_contact": self.last_contact.isoformat() if self.last_contact else None,
            "facts": [f.to_dict() for f in self.facts],
            "superseded": [f.to_dict() for f in self.superseded],
            "orders": self.orders,
            "conversations": self.conversations,
        }


def latest_product(texts: Iterable[str], products: Iterable[str] = ()) -> str | None:
    """The product a customer talked about last, as the profile reads product facts.

    Args:
        texts: the customer's messages, newest first (reading stops at the first that names
            a product).
        products: catalogue product names, read besides the built-in retail words.

    Returns:
        The last product word of the newest message that names one, else ``None``.

    Example:
        >>> latest_product(["好的谢谢", "这款羽绒服有黑色吗", "看看卫衣"])
        '羽绒服'
    """
    names = list(products)
    for text in texts:
        clean = _arabic(to_simplified(normalize_text(text)))  # as extract reads it
        if not retail_pattern().search(clean) and not any(name in clean for name in names):
            continue  # most messages name no product: skip the full reading (15x slower)
        found = [f.value for f in extract(text, products=names) if f.type == "product"]
        if found:
            return str(found[-1])
    return None


_AFTER_SALES = re.compile(
    r"退货|退款|换货|售后|维修|坏了|质量问题|发票|没收到|物流|快递|到了吗|发货"
)


_CONSIDERING = {
    "product_inquiry", "price_inquiry", "size_fit", "stock", "price_objection",
    "trust_objection", "hesitation", "purchase_intent",
}  # fmt: skip


def build_profile(
    customer_id: str,
    conversations: Sequence[Any],
    orders: Sequence[Any] = (),
    products: Iterable[str] = (),
    intents: Callable[[Any], Sequence[str | None]] | None = None,
) -> Profile:
    """Fold a customer's conversations (any order; sorted by start) into a :class:`Profile`.

    Args:
        customer_id: the customer.
        conversations: :class:`copilot.schema.Conversation` objects of this customer.
        orders: the customer's orders (objects or dicts with ``paid_at``, ``amount``, optional
            ``order_id`` and ``product``).
        products: catalogue product names, read as product facts besides the retail words.
        intents: optional function giving each message's intent (``None`` for guide messages);
            used for the stage (a question or an objection means "considering").
    """
    folder = _Folder(Profile(customer_id), list(products), intents)
    for conversation in sorted(conversations, key=_start):
        folder.read(conversation)
    return folder.finish(orders)


def _start(conversation: Any) -> datetime:
    stamps = [_naive(m.ts) for m in conversation.messages if m.ts is not None]
    return min(stamps) if stamps else datetime.min


class _Folder:
    """Builds one profile, conversation by conversation, oldest first."""

    def __init__(self, profile: Profile, products: list[str], intents: Any) -> None:
        self.profile = profile
        self.products = products
        self.intents = intents
        self.current: dict[tuple[str, str], list[ProfileFact]] = {}
        self.accumulated: dict[tuple[str, Any, str], ProfileFact] = {}
        self.considering = False
        self.after_sales_at: datetime | None = None
        self.converted_at: datetime | None = None

    def read(self, conversation: Any) -> None:
        self.profile.conversations.append(conversation.conversation_id)
        labels = list(self.intents(conversation)) if self.intents else []
        previous = ""
        for i, message in enumerate(conversation.messages):
            if message.role != "customer":
                previous = message.text if message.role == "guide" else previous
                continue
            if message.ts is not None:
                self.profile.last_contact = message.ts
            intent = labels[i] if i < len(labels) else None
            self.considering |= intent in _CONSIDERING
            if message.ts and (
                intent in ("after_sales", "complaint") or _AFTER_SALES.search(message.text)
            ):
                self.after_sales_at = message.ts
            self._keep(conversation.conversation_id, i, message, previous)
        outcome = getattr(conversation, "outcome", None)
        if outcome is not None and outcome.converted:
            self.converted_at = _start(conversation)

    def _keep(self, conversation_id: str, index: int, message: Any, previous: str) -> None:
        """The message's facts: "latest" ones replace that person's older ones, others add up."""
        fresh: dict[tuple[str, str], list[ProfileFact]] = {}
        for fact in extract(message.text, previous, self.products):
            item = ProfileFact(
                fact.type, fact.value, fact.whom, conversation_id, index, message.ts, message.text
            )
            if fact.type in LATEST:
                fresh.setdefault((fact.type, fact.whom), []).append(item)
            else:
                key = (fact.type, fact.value, fact.whom)
                if key in self.accumulated:
                    self.profile.superseded.append(self.accumulated.pop(key))
                self.accumulated[key] = item
            self.considering |= fact.type in ("product", "objection", "budget_max", "preference")
        for kind, items in fresh.items():
            self.profile.superseded.extend(self.current.get(kind, []))
            self.current[kind] = items

    def finish(self, orders: Sequence[Any]) -> Profile:
        profile = self.profile
        paid_times = [] if self.converted_at is None else [_naive(self.converted_at)]
        for order in orders:
            row = order if isinstance(order, dict) else vars(order)
            paid = row.get("paid_at")
            if isinstance(paid, datetime):
                paid_times.append(_naive(paid))
            profile.orders.append(
                {
                    "order_id": row.get("order_id"),
                    "paid_at": paid.isoformat() if isinstance(paid, datetime) else paid,
                    "amount": row.get("amount"),
                    "product": row.get("product"),
                }
            )
        profile.orders.sort(key=lambda o: str(o["paid_at"] or ""))
        if profile.orders or self.converted_at is not None:
            after = self.after_sales_at
            first_paid = min(paid_times) if paid_times else None
            late = after is not None and (first_paid is None or _naive(after) > first_paid)
            profile.stage = "after_sales" if late else "bought"
        elif self.considering:
            profile.stage = "considering"
        facts = [f for items in self.current.values() for f in items]
        facts += self.accumulated.values()
        facts.sort(key=lambda f: (_naive(f.at) if f.at else datetime.min, f.message_index))
        profile.facts = facts[::-1]
        return profile


def _naive(moment: datetime) -> datetime:
    """A comparable moment: aware times in UTC without the zone, naive ones as they are."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment
