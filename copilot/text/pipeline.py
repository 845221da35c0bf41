"""The text pipeline: one entry point from a raw chat message to clean, masked text and tokens."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from copilot.errors import ConfigError, InputError
from copilot.text.normalize import normalize_text, to_simplified
from copilot.text.pii import mask_pii
from copilot.text.segment import get_tokenizer, segment
from copilot.text.symbols import (
    EMOJI_TOKEN,
    STICKER_TOKEN,
    find_emojis,
    find_stickers,
    replace_emojis,
    replace_stickers,
)

__all__ = ["ProcessedText", "SymbolMode", "TextConfig", "TextPipeline", "default_pipeline"]

SymbolMode = Literal["keep", "token", "strip"]
"""What to do with stickers or emoji: keep them, replace each by a generic token, or strip them."""
_MODES = ("keep", "token", "strip")


@dataclass(frozen=True)
class TextConfig:
    """How the text pipeline treats a message. Every field has a default that suits chat scoring.

    Attributes:
        to_simplified: convert traditional Chinese to simplified (OpenCC ``t2s``).
        mask_pii: replace phone numbers, WeChat ids, ID and bank card numbers, e-mails, order and
            express numbers and street addresses by placeholders (``[手机号]`` ...).
        stickers: WeChat stickers (``[微笑]``): ``"keep"`` them in the text (one token each),
            replace each by ``"[表情]"`` (``"token"``), or ``"strip"`` them. They are listed in
            :attr:`ProcessedText.stickers` whatever the mode.
        emoji: Unicode emoji, with the same three modes (``"token"`` gives ``"[emoji]"``);
            listed in :attr:`ProcessedText.emojis` whatever the mode.
        lowercase: lowercase the tokens (the text keeps its case); ``M码`` becomes ``m码``.
        hmm: let jieba guess words missing from its dictionaries with its HMM (jieba's default;
            ``False`` is ~40% faster and never invents words).
        max_chars: the text and tokens are cut to this many characters after masking (so a
            cut never leaves half a phone number), keeping models and jieba fast on pasted
            essays; stickers, emoji and PII counts still cover the whole message. ``None``: no limit.
    """

    to_simplified: bool = True
    mask_pii: bool = True
    stickers: SymbolMode = "keep"
    emoji: SymbolMode = "keep"
    lowercase: bool = True
    hmm: bool = True
    max_chars: int | None = 2000

    def __post_init__(self) -> None:
        for name in ("stickers", "emoji"):
            value = getattr(self, name)
            if value not in _MODES:
                raise ConfigError(
                    f"TextConfig.{name} is {value!r}; valid values are 'keep', 'token', 'strip'"
                )
        if self.max_chars is not None and (
            not isinstance(self.max_chars, int) or self.max_chars < 1
        ):
            raise ConfigError(
                f"TextConfig.max_chars is {self.max_chars!r}; use a positive integer "
                "(characters kept for tokenisation) or None for no limit"
            )


@dataclass(frozen=True)
class ProcessedText:
    """One message after the pipeline.

    Attributes:
        text: normalised, simplified, masked text (what models and scripts see), cut to
            ``max_chars``.
        tokens: the jieba tokens of ``text``; stickers, placeholders and emoji are one token each.
        stickers: WeChat sticker names found (``("捂脸",)``), in order, repeats kept.
        emojis: emoji found, in order, repeats kept.
        pii: spans masked per PII kind (``{"phone": 1}``); empty when nothing was masked.
        truncated: ``text`` was cut to ``max_chars``.
    """

    text: str
    tokens: tuple[str, ...]
    stickers: tuple[str, ...] = ()
    emojis: tuple[str, ...] = ()
    pii: dict[str, int] = field(default_factory=dict)
    truncated: bool = False


def _truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, without leaving half a bracketed token at the end."""
    cut = text[:limit]
    bracket = cut.rfind("[")
    if bracket > cut.rfind("]") and limit - bracket <= 10:
        cut = cut[:bracket]
    return cut.rstrip()


class TextPipeline:
    """Normalise, convert, mask and tokenise chat messages.

    Building a pipeline does no I/O; jieba and its dictionaries load on the first tokenisation
    and are shared by every pipeline in the process that uses the same user dictionary.

    Args:
        config: options; ``None`` for the defaults of :class:`TextConfig`.
        user_dict: a jieba user dictionary; ``None`` for the shipped retail dictionary.
        cache_dir: where jieba caches its prefix dictionary; ``None`` for ``$COPILOT_CACHE_DIR``
            or ``~/.cache/sales-copilot``.

    Example:
        >>> pipe = TextPipeline()
        >>> out = pipe.process("親，這件有Ｍ码吗？我電話13812345678[捂臉]")
        >>> out.text
        '亲,这件有M码吗?我电话[手机号][捂脸]'
        >>> out.tokens
        ('亲', ',', '这件', '有', 'm码', '吗', '?', '我', '电话', '[手机号]', '[捂脸]')
        >>> out.stickers, out.pii
        (('捂脸',), {'phone': 1})
    """

    def __init__(
        self,
        config: TextConfig | None = None,
        user_dict: str | Path | None = None,
        *,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.config = config or TextConfig()
        self.user_dict = user_dict
        self.cache_dir = cache_dir
        self._tokenizer: Any = None

    def __repr__(self) -> str:
        return f"TextPipeline(config={self.config!r}, user_dict={self.user_dict!r})"

    @property
    def tokenizer(self) -> Any:
        """The shared jieba tokenizer of this pipeline's dictionary (loaded on first use)."""
        if self._tokenizer is None:
            self._tokenizer = get_tokenizer(self.user_dict, self.cache_dir)
        return self._tokenizer

    @property
    def jieba(self) -> Any:
        """The same tokenizer as :attr:`tokenizer`; benchmarks use it for the jieba-only floor."""
        return self.tokenizer

    def normalize(self, text: str) -> str:
        """Normalise ``text`` (see :func:`copilot.text.normalize_text`), then simplify it when
        ``config.to_simplified``.

        Args:
            text: a raw message.

        Returns:
            The normalised text.
        """
        text = normalize_text(_check(text))
        return to_simplified(text) if self.config.to_simplified else text

    def mask(self, text: str) -> tuple[str, dict[str, int]]:
        """Mask PII in already normalised ``text`` (whatever ``config.mask_pii`` says).

        Args:
            text: normalised text.

        Returns:
            The masked text and the count of masked spans per kind.
        """
        return mask_pii(_check(text))

    def tokenize(self, text: str) -> list[str]:
        """Tokenise ``text`` as given (no normalisation or masking; see :meth:`process`).

        Args:
            text: normalised text.

        Returns:
            The tokens; stickers, placeholders, emoji, sizes and numbers with units stay whole.
        """
        config = self.config
        return segment(_check(text), self.tokenizer, hmm=config.hmm, lowercase=config.lowercase)

    def process(self, text: str) -> ProcessedText:
        """Run the whole pipeline on one message.

        Normalise, convert to simplified, mask PII, handle stickers and emoji, cut to
        ``max_chars``, tokenise.

        Args:
            text: a raw message; empty and whitespace-only messages give an empty result.

        Returns:
            The :class:`ProcessedText`.

        Raises:
            InputError: ``text`` is not a string.
        """
        config = self.config
        text = normalize_text(_check(text))
        if config.to_simplified:
            text = to_simplified(text)
        pii: dict[str, int] = {}
        if config.mask_pii:
            text, pii = mask_pii(text)
        if config.stickers == "keep":
            stickers = find_stickers(text)
        else:
            text, stickers = replace_stickers(
                text, STICKER_TOKEN if config.stickers == "token" else ""
            )
        if config.emoji == "keep":
            emojis = find_emojis(text)
        else:
            text, emojis = replace_emojis(text, EMOJI_TOKEN if config.emoji == "token" else "")
        if (stickers and config.stickers == "strip") or (emojis and config.emoji == "strip"):
            text = " ".join(text.split())  # stripping may leave doubled or edge spaces
        truncated = False
        if config.max_chars is not None and len(text) > config.max_chars:
            text, truncated = _truncate(text, config.max_chars), True
        tokens = segment(text, self.tokenizer, hmm=config.hmm, lowercase=config.lowercase)
        return ProcessedText(text, tuple(tokens), stickers, emojis, pii, truncated)

    def process_many(self, texts: Iterable[str]) -> list[ProcessedText]:
        """Run :meth:`process` on each message.

        Args:
            texts: raw messages.

        Returns:
            One :class:`ProcessedText` per message, in order.
        """
        process = self.process
        return [process(text) for text in texts]


def _check(text: Any) -> str:
    """``text`` itself when it is a string; an InputError naming the type otherwise."""
    if not isinstance(text, str):
        raise InputError(
            f"text must be a str, got {type(text).__name__} ({text!r:.60}); "
            "decode bytes and replace missing messages with '' before the text pipeline"
        )
    return text


@functools.cache
def default_pipeline() -> TextPipeline:
    """The process's pipeline with the default :class:`TextConfig` and the retail dictionary.

    Returns:
        The same :class:`TextPipeline` on every call.
    """
    return TextPipeline()
