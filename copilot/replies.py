"""A guide's reply as the copilot serves it: one move, in the shop's voice.

Guides often send a reply as several messages in a row. Two of them are one move when the
second continues the first (「这款是双面呢」 + 「所以不用加里衬」); otherwise they are two moves
(「这款是双面呢」 + 「您的快递明天到」), and joined they read as two unrelated pieces glued
together. :func:`reply_units` groups consecutive guide messages into moves; script mining keeps
each move as its own script.

The shop's items are 「我们家的」: a guide who writes 「你们家这款」 speaks in the customer's
voice. :func:`in_shop_voice` rewrites it, and leaves the customer's own family alone
(「你家宝宝多大了」).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["belong_together", "in_shop_voice", "moves", "reply_units", "utterances"]

_CONTINUES = re.compile(
    r"^(?:所以|因为|而且|并且|然后|但是|但|不过|如果|就是|这样|因此|也|还|并|再|或者|比如|包括|"
    r"这款|这个|这件|这|那|它|该|其中|[，,、：:；;…])"
)
_OPEN_END = re.compile(r"(?:[，,、：:；;…]|因为|所以|而且|但是|如果|就是|比如|包括)\s*$")
_CJK_PAIR = re.compile(r"[\u4e00-\u9fff]{2}")
# Bigrams that any two replies share (politeness, particles): they say nothing about the topic.
_COMMON = frozenset(
    [
        "您好",
        "亲亲",
        "可以",
        "我们",
        "这边",
        "的话",
        "一下",
        "帮您",
        "给您",
        "您的",
        "请问",
        "什么",
        "没有",
        "如果",
        "这个",
        "就是",
        "不是",
        "已经",
        "还是",
        "非常",
        "感谢",
        "谢谢",
        "抱歉",
        "不好",
        "好意",
        "意思",
        "麻烦",
        "稍等",
        "亲的",
        "有的",
        "是的",
        "好的",
        "哦亲",
        "呢亲",
    ]
)


def _topic(text: str) -> set[str]:
    chars = "".join(re.findall(r"[\u4e00-\u9fff]+", text))
    return {chars[i : i + 2] for i in range(len(chars) - 1)} - _COMMON


def belong_together(first: str, second: str) -> bool:
    """Whether guide message ``second``, sent right after ``first``, continues the same move.

    It does when it opens with a connective or a pointer back (所以, 但是, 这款, a comma), when
    ``first`` stops open (a comma, 因为...), when it is a short tail (≤ 4 characters: 「亲」,
    「哦～」), or when the two share topic words (two characters in a row, politeness aside).
    """
    a, b = first.strip(), second.strip()
    if not a or not b:
        return True
    if _CONTINUES.match(b) or _OPEN_END.search(a) or len(b) <= 4:
        return True
    shared = _topic(a) & _topic(b)
    return len(shared) >= 2 or (len(shared) == 1 and min(len(a), len(b)) <= 12)


_GAP = re.compile(r"(?<=[^\sA-Za-z0-9])\s+(?=[^\sA-Za-z0-9])|\n+")


def utterances(text: str) -> list[str]:
    """The utterances of one message: exports often join a side's turns with spaces or lines.

    A run of spaces between two Chinese characters (not inside ``iPhone 12`` or ``M 码``
    written with Latin letters or digits on both sides) or a line break separates utterances.
    """
    return [u for u in (part.strip() for part in _GAP.split(text)) if u]


def reply_units(texts: Sequence[str]) -> list[tuple[int, int]]:
    """Consecutive guide messages grouped into moves: ``[(first, last), ...]`` (inclusive)."""
    out: list[tuple[int, int]] = []
    for i, text in enumerate(texts):
        if out and belong_together(texts[i - 1], text):
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def moves(texts: Sequence[str]) -> list[tuple[int, str]]:
    """A guide turn (consecutive messages) as moves: ``[(first message index, text), ...]``.

    Each message is cut into its utterances; consecutive utterances that belong together make
    one move, joined with a line break between messages and a space within one.
    """
    pieces = [(i, u) for i, text in enumerate(texts) for u in utterances(text)]
    out: list[tuple[int, str]] = []
    for first, last in reply_units([u for _i, u in pieces]):
        text = ""
        for k in range(first, last + 1):
            i, u = pieces[k]
            if text:
                text += "\n" if i != pieces[k - 1][0] else " "
            text += u
        out.append((pieces[first][0], text))
    return out


_SHOP_CUE = (
    r"的?(?:这|那|店|产品|商品|东西|衣服|货|品牌|宝贝|新款|款|\[商品\]|\[品类\]"
    r"|[\u4e00-\u9fff]{0,6}(?:卖|做|质量|口碑|正品|官方|售后))"
)
_FAMILY_CUE = r"的?(?:宝宝|孩子|小孩|老人|先生|老公|老婆|家人|里|附近|小区|那边|离|人|住|楼|情况)"
_THEIR_SHOP = re.compile(
    rf"(?:你们家|您们家|你家|您家)(?={_SHOP_CUE})"  # 你家这款 / 你们家的衣服
    rf"|(?:你们家|您们家)(?!{_FAMILY_CUE})"  # 你们家 alone is the shop unless family follows
)
_THEIR_STORE = re.compile(r"(?:你们|您们)(?=店|门店|专柜|品牌|旗舰店)")


def in_shop_voice(text: str) -> str:
    """A guide's reply that says 「你们家这款」 about the shop's own item, as 「我们家这款」."""
    return _THEIR_STORE.sub("我们", _THEIR_SHOP.sub("我们家", text))
