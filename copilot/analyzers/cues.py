"""Surface cues in a message that the models do not give: is it only an acknowledgement, does it
ask a question, is a reply curt. Rules work together with the intent model (see ``timing``).
"""

from __future__ import annotations

import re

from copilot.text import normalize_text, to_simplified
from copilot.text.symbols import EMOJI_PATTERN, replace_stickers

__all__ = [
    "apologises",
    "asks_question",
    "is_acknowledgement",
    "is_content_free",
    "is_polite",
    "thanks",
]

_EMOJI = re.compile(EMOJI_PATTERN)
_PUNCT_SPACE = re.compile(r"[\s\W_]+")
_PUNCT_END = re.compile(r"[^\w?？]+$")
# Acknowledgements and thanks, in any order and repetition: 好的谢谢 / 嗯嗯好 / ok收到 / 谢谢亲.
_ACK = re.compile(
    r"^(?:好的?|好滴|好哒|好嘞|好吧|好呀|好哦|行|行吧|可以|嗯+|嗯呢|恩+|哦+|噢+|喔+|额|ok|okay|okk+|"
    r"收到|知道了?|明白了?|了解了?|懂了|晓得了?|谢谢?|谢啦|多谢|感谢|谢谢你|谢谢您|3q|thx|thanks?|"
    r"thank you|拜拜?|再见|886|88|亲|哈+|呵呵|那就这样|没事了?|没问题|不用了|好的呢|辛苦了?|麻烦了|"
    r"啦|呀|哦|呢|的|了|吧|你|您|哈)+$",
    re.IGNORECASE,
)
# Words that make a question whatever the punctuation. A bare "？" or a final 呢 / 嘛 is only a
# tone in chat (「太感谢了？？」, 「回头聊嘛」), so it counts as a question only where the intent
# model does not say otherwise.
_QUESTION_WORD = re.compile(
    r"吗|多少|怎么|怎样|咋|什么|啥|哪|几[个件号码天位种]|能不能|有没有|可不可以|是不是|要不要|"
    r"会不会|行不行|好不好|多久|何时|如何|为什么|为啥|没有货|有货没"
)
_QUESTION_TONE = re.compile(r"[?？]|[么嘛呢]$")
_POLITE = re.compile(
    r"亲|您|哦|呢|呀|哈|啦|嘛|~|～|谢|抱歉|不好意思|请|麻烦|辛苦|稍等|好的|嗯嗯|宝|美女|姐|哥|"
    r"[😊🙏🌹❤💕🥰😄😃]|\[(?:微笑|愉快|呲牙|玫瑰|爱心|抱拳|握手|强|OK|庆祝|害羞|憨笑|偷笑|拥抱)\]"
)

# An apology, or regret for the trouble: 抱歉 / 对不起 / 给您带来不便 / 深表歉意.
_APOLOGY = re.compile(
    r"抱歉|对不起|不好意思|歉意|致歉|见谅|给您带来[^，。！？,.!?]{0,6}不便|添麻烦|sorry", re.I
)
_THANKS = re.compile(r"谢|感谢|感激|辛苦了|3q|thx|thank", re.IGNORECASE)


def _clean(text: str) -> str:
    return to_simplified(normalize_text(text))


def _bare(text: str) -> str:
    """The text without stickers, emoji, punctuation and spaces (message placeholders stay)."""
    without, _ = replace_stickers(_clean(text), "")
    return _PUNCT_SPACE.sub("", _EMOJI.sub("", without))


def is_content_free(text: str) -> bool:
    """Only stickers, emoji, punctuation or whitespace: nothing to answer (``[图片]`` is content)."""
    return not _bare(text)


def is_acknowledgement(text: str) -> bool:
    """An acknowledgement, thanks or goodbye with nothing else (好的 / 嗯嗯 / 好的谢谢 / 收到)."""
    core = _bare(text)
    return bool(core) and len(core) <= 16 and _ACK.match(core) is not None


def asks_question(text: str, strict: bool = False) -> bool:
    """Whether the message asks something: a question word, or (unless ``strict``) a question
    mark or a final 呢 / 嘛 / 么."""
    clean = _clean(text)
    if _QUESTION_WORD.search(clean) is not None:
        return True
    return not strict and _QUESTION_TONE.search(_PUNCT_END.sub("", clean) or clean) is not None


def is_polite(text: str) -> bool:
    """Whether a (guide) message has any politeness marker: 亲, 您, 哦, 谢谢, 抱歉, ～ ..."""
    return _POLITE.search(_clean(text)) is not None


def apologises(text: str) -> bool:
    """Whether a message apologises or regrets the trouble: 抱歉 / 对不起 / 给您带来不便."""
    return _APOLOGY.search(_clean(text)) is not None


def thanks(text: str) -> bool:
    """Whether a message says thank you: 谢谢 / 感谢 / 辛苦了 / thx."""
    return _THANKS.search(_clean(text)) is not None
