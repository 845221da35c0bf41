"""Unicode normalisation and traditional → simplified conversion of chat text.

What :func:`normalize_text` does, in order:

1. **NFKC**, which turns full-width ASCII into half-width (``Ｍ码`` → ``M码``, ``１２３`` → ``123``)
   and maps the full-width sentence punctuation ``，？！：；（）～`` to ``, ? ! : ; ( ) ~``; the ideographic
   space becomes a space, ``…`` becomes ``...``, circled digits and unit symbols (``①``, ``㎏``)
   become plain text. Chinese-only punctuation that has no ASCII twin stays as it is:
   ``。、「」『』《》【】“”`` — one consistent rule: *map what NFKC maps, nothing more*, plus the
   wave dash ``〜`` → ``~`` so that both tildes customers type end up the same.
   Emoji that NFKC would rewrite (``🈶`` → ``有``, ``™`` → ``TM``) are kept intact.
2. Zero-width and control characters are removed (ZWSP, BOM, bidi marks, soft hyphen, C0/C1
   controls); a zero-width joiner survives only inside an emoji sequence (``👨‍👩‍👧``).
3. Runs of whitespace (newlines included) collapse to one space; the ends are stripped.

Traditional → simplified conversion (:func:`to_simplified`) uses OpenCC's ``t2s`` configuration
through one converter per process, created on first use, and is skipped for text without any
character that OpenCC's character table would change (most messages), which keeps it cheap.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Callable
from typing import Any

from copilot.text.symbols import NFKC_UNSAFE_EMOJI

__all__ = ["normalize_text", "to_simplified"]

logger = logging.getLogger(__name__)

# C0/C1 controls other than whitespace (whitespace is collapsed later), soft hyphen, combining
# grapheme joiner, Mongolian vowel separator, zero-width space/non-joiner, LRM/RLM, bidi
# embeddings and isolates, word joiner and invisible operators, Hangul fillers (used for
# "invisible" nicknames) and the BOM. Variation selectors and tag characters are kept: emoji need them.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u034f\u180e\u200b\u200c\u200e\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\u115f\u1160\u3164\uffa0\ufeff]"
)
# Characters that may sit on either side of a ZWJ inside an emoji sequence.
_EMOJI_SIDE = "\u00a9\u00ae\u203c-\u2bff\u3030\u303d\u3297\u3299\ufe0f\U0001f000-\U0001faff"
_STRAY_ZWJ = re.compile(f"(?<![{_EMOJI_SIDE}])\u200d|\u200d(?![{_EMOJI_SIDE}])")
_NFKC_UNSAFE = re.compile(f"([{re.escape(NFKC_UNSAFE_EMOJI)}]+)")


# The full-width punctuation of nearly every Chinese message, with its NFKC image. Replacing these
# first (a C scan each) and then asking the quick check leaves NFKC proper (~2 µs for a short
# message) to the few messages that need more; the result is the same as NFKC.
_COMMON_WIDE = tuple((chr(ord(c) + 0xFEE0), c) for c in ",?!~:;()") + (("\u3000", " "),)


def _nfkc(text: str) -> str:
    """NFKC that leaves the few emoji NFKC would rewrite untouched."""
    for wide, narrow in _COMMON_WIDE:
        if wide in text:
            text = text.replace(wide, narrow)
    if unicodedata.is_normalized("NFKC", text):  # a C quick check; true for most messages
        return text
    if _NFKC_UNSAFE.search(text) is None:
        return unicodedata.normalize("NFKC", text)
    parts = _NFKC_UNSAFE.split(text)  # odd positions hold the emoji runs (capturing group)
    return "".join(
        part if i % 2 else unicodedata.normalize("NFKC", part) for i, part in enumerate(parts)
    )


def normalize_text(text: str) -> str:
    """Normalise one message: NFKC width folding, invisible characters out, whitespace collapsed.

    Emoji and sticker codes are kept as they are; see the module docstring for the exact rules
    (which punctuation is mapped and why).

    Args:
        text: a raw message.

    Returns:
        The normalised text; ``""`` for empty or whitespace-only input.

    Example:
        >>> normalize_text("在吗？ 这件有Ｍ码吗～\\u200b")
        '在吗? 这件有M码吗~'
    """
    if not text.isascii():  # ASCII is already NFKC and has no ZWJ
        text = _nfkc(text)
        if "\u301c" in text:
            text = text.replace("\u301c", "~")
        if "\u200d" in text:
            text = _STRAY_ZWJ.sub("", text)
    if _INVISIBLE.search(text) is not None:
        text = _INVISIBLE.sub("", text)
    # str.split() splits on every Unicode whitespace (\t \n \r \x1c-\x1f \x85 \u2028 ...).
    return " ".join(text.split())


_converter: Any = None
_has_traditional: Callable[[str], bool] | None = None
_converter_lock = threading.Lock()

# Where OpenCC's character tables live: CJK unified ideographs, extension A, the compatibility
# block and the supplementary ideographic plane.
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _load_converter() -> tuple[Any, Callable[[str], bool]]:
    """The process's t2s converter and a test for "has a character it changes" (built once)."""
    global _converter, _has_traditional
    with _converter_lock:
        if _converter is None or _has_traditional is None:
            import opencc  # C++ backed; imported here so importing copilot.text stays light

            converter = opencc.OpenCC("t2s")
            chars = [chr(cp) for lo, hi in _CJK_RANGES for cp in range(lo, hi + 1)]
            # One character per line, so phrase rules cannot fire across neighbours: what is
            # left is the single-character table, the cheap pre-check that skips OpenCC for
            # text that is already simplified.
            converted = converter.convert("\n".join(chars)).split("\n")
            if len(converted) != len(chars):  # pragma: no cover - an OpenCC that merges lines
                changed = chars
            else:
                changed = [c for c, s in zip(chars, converted, strict=True) if c != s]
            # A character class is fast only over the BMP (sre keeps a bitmap there; one astral
            # member turns the whole class into a linear list of ~1,000 ranges, 30 µs a message),
            # so the rare supplementary-plane characters are checked with a set, and only in text
            # that has any.
            bmp = re.compile("[" + re.escape("".join(c for c in changed if c <= "\uffff")) + "]")
            astral = frozenset(c for c in changed if c > "\uffff")

            def has_traditional(text: str) -> bool:
                if bmp.search(text) is not None:
                    return True
                return _ASTRAL.search(text) is not None and not astral.isdisjoint(text)

            _has_traditional = has_traditional
            _converter = converter
            logger.debug("OpenCC t2s ready; %d characters convert on their own", len(changed))
        return _converter, _has_traditional


def to_simplified(text: str) -> str:
    """Convert traditional Chinese to simplified (OpenCC ``t2s``, phrases included).

    The converter is created once per process on first use. Text with no character that
    OpenCC converts on its own is returned unchanged without calling OpenCC (a phrase made only
    of characters that are simplified already is the rare case this pre-check misses).

    Args:
        text: any text; ASCII, emoji and punctuation pass through unchanged.

    Returns:
        The simplified text.

    Example:
        >>> to_simplified("「這件衣服有貨嗎」")
        '「这件衣服有货吗」'
    """
    if text.isascii():
        return text
    converter, has_trad = _converter, _has_traditional
    if converter is None or has_trad is None:
        converter, has_trad = _load_converter()
    if not has_trad(text):
        return text
    return str(converter.convert(text))
