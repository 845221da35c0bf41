"""The Chinese text pipeline: normalise, simplify, mask PII, find stickers and emoji, tokenise.

One entry point for the product::

    from copilot.text import TextConfig, TextPipeline

    pipe = TextPipeline(TextConfig(stickers="keep", emoji="keep"))
    out = pipe.process("親，這件有Ｍ码吗？我電話13812345678[捂臉]")
    out.text     # '亲,这件有M码吗?我电话[手机号][捂脸]'
    out.tokens   # ('亲', ',', '这件', '有', 'm码', '吗', '?', '我', '电话', '[手机号]', '[捂脸]')
    out.pii      # {'phone': 1}

The steps are also usable one by one: :func:`normalize_text`, :func:`to_simplified`,
:func:`mask_pii`, :func:`tokenize`, :func:`find_stickers`, :func:`find_emojis`.

Modules: ``normalize`` (Unicode and OpenCC), ``pii`` (the ordered masking table), ``symbols``
(WeChat stickers and emoji), ``segment`` (jieba with the retail dictionary), ``pipeline``.
"""

from __future__ import annotations

from copilot.text.normalize import normalize_text, to_simplified
from copilot.text.pii import PII_PLACEHOLDERS, PII_RULES, PiiRule, mask_pii
from copilot.text.pipeline import ProcessedText, TextConfig, TextPipeline, default_pipeline
from copilot.text.segment import DEFAULT_USER_DICT, default_cache_dir
from copilot.text.symbols import (
    EMOJI_TOKEN,
    MESSAGE_PLACEHOLDERS,
    STICKER_NAMES,
    STICKER_TOKEN,
    find_emojis,
    find_stickers,
)

__all__ = [
    "DEFAULT_USER_DICT",
    "EMOJI_TOKEN",
    "MESSAGE_PLACEHOLDERS",
    "PII_PLACEHOLDERS",
    "PII_RULES",
    "STICKER_NAMES",
    "STICKER_TOKEN",
    "PiiRule",
    "ProcessedText",
    "TextConfig",
    "TextPipeline",
    "default_cache_dir",
    "default_pipeline",
    "find_emojis",
    "find_stickers",
    "mask_pii",
    "normalize_text",
    "to_simplified",
    "tokenize",
]


def tokenize(text: str) -> list[str]:
    """Tokenise ``text`` as given with the default pipeline (jieba + retail dictionary).

    Args:
        text: normalised text (use :meth:`TextPipeline.process` for the whole pipeline).

    Returns:
        The lowercased tokens; stickers, placeholders, emoji, sizes and numbers with units whole.

    Example:
        >>> tokenize("我165/88A穿M码还是L码")
        ['我', '165/88a', '穿', 'm码', '还是', 'l码']
    """
    return default_pipeline().tokenize(text)
