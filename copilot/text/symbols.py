"""WeChat stickers and Unicode emoji: the known sticker list, detection and the emoji pattern.

A WeChat sticker is typed as its name in ASCII brackets (``[微笑]``). A bracketed word counts as a
sticker only when the name is in :data:`STICKER_NAMES`, so the PII placeholders of
:mod:`copilot.text.pii` (``[手机号]``) and the message placeholders of the chat loaders
(``[图片]``) are never taken for stickers, and neither is an unknown bracketed word (``[新品]``).

Emoji are found with one compiled pattern built from the ``emoji`` library's data: an emoji
element is a regional-indicator pair (a flag), a keycap (``1️⃣``), or an emoji code point with
optional variation selector, skin-tone modifier, keycap mark and tag sequence; elements joined by
ZWJ form one emoji (``👨‍👩‍👧``). This follows the "possible emoji" grammar of Unicode TS #51 and
finds what ``emoji.emoji_list`` finds, about 50 times faster (``emoji_list`` walks a Python trie
per character, ~25 µs for a 25-character message; the text pipeline's budget is a few µs).
"""

from __future__ import annotations

import re
import unicodedata

import emoji

__all__ = [
    "EMOJI_PATTERN",
    "EMOJI_TOKEN",
    "MESSAGE_PLACEHOLDERS",
    "NFKC_UNSAFE_EMOJI",
    "STICKER_NAMES",
    "STICKER_TOKEN",
    "find_emojis",
    "find_stickers",
    "may_have_emoji",
    "replace_emojis",
    "replace_stickers",
]

# WeChat's default sticker panel (names as the Chinese client types them), current and legacy.
# ``发`` is the simplified form of ``發`` because traditional→simplified conversion runs first.
# ``红包`` is left out on purpose: the chat loaders use ``[红包]`` for red-packet messages, a
# meaningful event that stripping stickers must not remove (it is in MESSAGE_PLACEHOLDERS).
_STICKER_PANEL = """
    微笑 撇嘴 色 发呆 得意 流泪 害羞 闭嘴 睡 大哭 尴尬 发怒 调皮 呲牙 惊讶 难过 囧 抓狂 吐 偷笑
    愉快 白眼 傲慢 困 惊恐 憨笑 悠闲 咒骂 疑问 嘘 晕 衰 骷髅 敲打 再见 擦汗 抠鼻 鼓掌 坏笑 右哼哼
    左哼哼 鄙视 委屈 快哭了 阴险 亲亲 可怜 笑脸 生病 脸红 破涕为笑 恐惧 失望 无语 嘿哈 捂脸 奸笑
    机智 皱眉 耶 吃瓜 加油 汗 天啊 Emm 社会社会 旺柴 好的 打脸 哇 翻白眼 666 让我看看 叹气 苦涩
    裂开 嘴唇 爱心 心碎 拥抱 强 弱 握手 胜利 抱拳 勾引 拳头 OK 合十 啤酒 咖啡 蛋糕 玫瑰 凋谢 菜刀
    炸弹 便便 月亮 太阳 庆祝 礼物 發 发 福 烟花 爆竹 猪头 跳跳 发抖 转圈 哈欠 饥饿 奋斗 折磨 示爱
    闪电 刀 足球 瓢虫 饭 西瓜 篮球 乒乓 冷汗 可爱 酷 大兵 糗大了 差劲 爱你 NO 磕头 回头 挥手 激动
    献吻 左太极 右太极
"""
STICKER_NAMES: frozenset[str] = frozenset(_STICKER_PANEL.split())
"""Names of WeChat's built-in stickers; ``[name]`` in a message is a sticker."""

MESSAGE_PLACEHOLDERS: frozenset[str] = frozenset(
    {"图片", "语音", "视频", "文件", "链接", "位置", "名片", "红包", "转账", "小程序", "表情"}
    | {"动画表情", "撤回", "语音通话", "视频通话", "emoji"}
)
"""Names the chat loaders put in brackets for non-text messages (``[图片]``); never stickers."""

STICKER_TOKEN = "[表情]"
"""What a sticker becomes with ``stickers="token"`` (the same as a custom-sticker message)."""

EMOJI_TOKEN = "[emoji]"
"""What an emoji becomes with ``emoji="token"``."""

_BRACKETED = re.compile(r"\[([^\[\]\s]{1,8})\]")


def _char_class(code_points: set[int]) -> str:
    """A regex character-class body (no brackets) of the code points, as ranges."""
    points = sorted(code_points)
    parts: list[str] = []
    start = prev = points[0]
    for cp in points[1:] + [-2]:
        if cp == prev + 1:
            prev = cp
            continue
        parts.append(
            re.escape(chr(start))
            if start == prev
            else f"{re.escape(chr(start))}-{re.escape(chr(prev))}"
        )
        start = prev = cp
    return "".join(parts)


# Code points that start an emoji, split at the BMP: sre keeps a bitmap for a class of BMP
# characters but scans a class with astral members range by range (~4 µs a message here), so
# the astral part sits behind a one-range look-ahead that BMP text fails at once.
_BASES = {ord(key[0]) for key in emoji.EMOJI_DATA if not key[0].isascii()}
_BMP_BASES = _char_class({cp for cp in _BASES if cp <= 0xFFFF})
_ASTRAL_BASES = _char_class({cp for cp in _BASES if cp > 0xFFFF})


def _emoji_pattern() -> str:
    """The TS #51 'possible emoji' grammar over the ``emoji`` library's code points."""
    base = rf"(?:[{_BMP_BASES}]|(?=[\U00010000-\U0010ffff])[{_ASTRAL_BASES}])"
    element = (
        r"(?:[\U0001F1E6-\U0001F1FF]{2}"  # a flag: two regional indicators
        r"|[0-9#*]\ufe0f?\u20e3"  # a keycap; a bare digit is not an emoji
        rf"|{base}[\ufe0e\ufe0f]?[\U0001F3FB-\U0001F3FF]?\u20e3?"
        r"(?:[\U000E0020-\U000E007E]{1,8}\U000E007F)?)"  # tag sequences (subdivision flags)
    )
    return rf"{element}(?:\u200d{element})*"


EMOJI_PATTERN: str = _emoji_pattern()
"""Regex source matching one emoji (a ZWJ sequence counts as one); compiled by the users."""

_EMOJI = re.compile(EMOJI_PATTERN)
# A cheap superset test run before the exact pattern: any emoji base in the BMP, a keycap mark,
# or any supplementary-plane character (in chat text those are nearly always emoji).
_EMOJI_GUARD = re.compile(f"[{_BMP_BASES}\u20e3\U00010000-\U0010ffff]")


def may_have_emoji(text: str) -> bool:
    """False when ``text`` certainly holds no emoji (a fast pre-check; True may be wrong)."""
    return _EMOJI_GUARD.search(text) is not None


NFKC_UNSAFE_EMOJI: str = "".join(
    sorted(
        {ch for key in emoji.EMOJI_DATA for ch in key if unicodedata.normalize("NFKC", ch) != ch}
    )
)
"""Emoji characters that NFKC would rewrite (🈶 → 有, ™ → TM, ㊗ → 祝); normalisation keeps them."""


def find_stickers(text: str) -> tuple[str, ...]:
    """The WeChat sticker names in ``text``, in order, repeats kept.

    Args:
        text: a message, normally already normalised.

    Returns:
        The names without brackets (``("微笑", "捂脸")``); unknown bracketed words are ignored.
    """
    if "[" not in text:
        return ()
    return tuple(name for name in _BRACKETED.findall(text) if name in STICKER_NAMES)


def find_emojis(text: str) -> tuple[str, ...]:
    """The emoji in ``text``, in order, repeats kept (a ZWJ family or a flag is one emoji).

    Args:
        text: a message.

    Returns:
        The emoji strings as they appear (``("😂", "👍🏻")``).
    """
    if _EMOJI_GUARD.search(text) is None:
        return ()
    return tuple(_EMOJI.findall(text))


def replace_stickers(text: str, replacement: str) -> tuple[str, tuple[str, ...]]:
    """Replace every known sticker by ``replacement`` (``""`` strips); return text and names."""
    if "[" not in text:
        return text, ()
    found: list[str] = []

    def _sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in STICKER_NAMES:
            return match.group(0)
        found.append(name)
        return replacement

    return _BRACKETED.sub(_sub, text), tuple(found)


def replace_emojis(text: str, replacement: str) -> tuple[str, tuple[str, ...]]:
    """Replace every emoji by ``replacement`` (``""`` strips); return text and the emoji."""
    if _EMOJI_GUARD.search(text) is None:
        return text, ()
    found = _EMOJI.findall(text)
    if not found:
        return text, ()
    return _EMOJI.sub(lambda _match: replacement, text), tuple(found)
