"""jieba word segmentation with the retail dictionary, loaded once per process.

jieba cuts text into blocks of ``[\\u4E00-\\u9FD5a-zA-Z0-9+#&._%-]`` and splits everything else
into single characters, so ``165/88A``, ``[微笑]`` or ``👍🏻`` would come out in pieces. One
pattern (:data:`_PROTECT`) first finds the spans that must stay whole — stickers and
placeholders, emoji, size codes (``165/88A``), promotions (``满300减50``), prices (``¥1299``),
shade codes (``#999``, ``1号色``), times (``10:30``) and numbers with units (``399元``, ``50kg``,
``160cm``, ``3.5折``) — and jieba runs on the text between them. Text with no digit, bracket,
currency sign, ``#`` or emoji (most chat lines) skips that pattern and goes to jieba whole.
Lowercasing happens on the text handed to jieba, one C call per piece rather than one per token;
for that, every dictionary word with capitals (``T恤`` in jieba's own, ``M码`` in ours) is also
added in lower case when the tokenizer is built.

The tokenizer is a private ``jieba.Tokenizer`` (not jieba's global one, which other code may
change) with the user dictionary added; it is built on first use, once per process and dictionary,
and its prefix-dictionary cache lives in the project cache directory
(:func:`default_cache_dir`) instead of ``/tmp/jieba.cache``.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from copilot.errors import ConfigError
from copilot.text.pii import PII_PLACEHOLDERS
from copilot.text.symbols import (
    EMOJI_PATTERN,
    EMOJI_TOKEN,
    MESSAGE_PLACEHOLDERS,
    STICKER_NAMES,
    STICKER_TOKEN,
    may_have_emoji,
)

__all__ = ["DEFAULT_USER_DICT", "default_cache_dir", "get_tokenizer", "segment"]

logger = logging.getLogger(__name__)

DEFAULT_USER_DICT: Path = Path(str(resources.files("copilot") / "data" / "retail_dict.txt"))
"""The retail user dictionary shipped with the package."""

# Bracketed names that are one token: stickers, placeholders, message types.
_KNOWN_BRACKETS: frozenset[str] = frozenset(
    {f"[{name}]" for name in STICKER_NAMES | MESSAGE_PLACEHOLDERS}
    | set(PII_PLACEHOLDERS.values())
    | {STICKER_TOKEN, EMOJI_TOKEN}
)

_PROTECTED = (
    r"(?P<bracket>\[[^\[\]\s]{1,8}\])"
    r"|(?P<size>[0-9]{2,3}/[0-9]{2,3}[A-Za-z]?(?![A-Za-z0-9]))"
    r"|(?P<promo>满[0-9]{1,6}元?[减-][0-9]{1,6}元?)"
    r"|(?P<money>[¥$][0-9]{1,9}(?:\.[0-9]{1,2})?元?)"
    r"|(?P<shade>#[0-9]{1,4}[A-Za-z]?(?![A-Za-z0-9])|[0-9]{1,3}号色)"
    r"|(?P<time>(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?![0-9]))"
    r"|(?P<number>[0-9]{1,9}(?:\.[0-9]{1,3})?"
    r"(?:元|块钱|块|毛|折|斤|公斤|岁|个月|月龄|码|%|(?i:kg|cm|mm|ml|g|m|w|k)(?![A-Za-z])))"
)
# Every protected span but an emoji starts with one of these; the gate lets sre reject other
# positions with one test instead of trying seven branches (2 µs -> 1 µs on a short message).
_GATE = r"(?=[\[0-9满¥$#])"
_PROTECT = re.compile(f"{_GATE}(?:{_PROTECTED})")
# The emoji branch costs ~1 µs a message even when nothing matches, so it is only used for
# text that may hold emoji.
_PROTECT_EMOJI = re.compile(rf"(?P<emoji>{EMOJI_PATTERN})|{_GATE}(?:{_PROTECTED})")
# Text with none of these has nothing to protect (满 needs digits after it) and goes to jieba whole.
_TRIGGER = re.compile(r"[\[0-9¥$#]")
_SPACE = re.compile(r"\s")
_CAPITALISED = re.compile(r"(?m)^[^\nA-Z]*[A-Z][^\n]*$")

_tokenizers: dict[Path, Any] = {}
_tokenizers_lock = threading.Lock()


def default_cache_dir() -> Path:
    """The project cache directory: ``$COPILOT_CACHE_DIR``, else ``$XDG_CACHE_HOME/sales-copilot``,
    else ``~/.cache/sales-copilot``.

    Returns:
        The directory path (not created here).
    """
    configured = os.environ.get("COPILOT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sales-copilot"


def _writable_dir(path: Path) -> Path:
    """``path`` created if needed, or the system temp dir when it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir())
    logger.warning("cache directory %s is not writable; jieba caches in %s", path, fallback)
    return fallback


def _read_user_dict(path: Path) -> list[tuple[str, int | None, str | None]]:
    """The entries of a jieba user dictionary; ``#`` lines are comments."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise ConfigError(
            f"user dictionary {path} does not exist; pass the path of a jieba user dictionary "
            "(lines of 'word [freq] [pos]') or leave user_dict unset for the retail dictionary"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"user dictionary {path} cannot be read as UTF-8 text: {exc}") from exc
    entries: list[tuple[str, int | None, str | None]] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        word, rest = parts[0], parts[1:]
        freq = int(rest.pop(0)) if rest and rest[0].isdigit() else None
        tag = rest.pop(0) if rest and rest[0].isalpha() and rest[0].isascii() else None
        if rest:
            raise ConfigError(
                f"user dictionary {path}, line {lineno}: {raw!r} is not 'word [freq] [pos]' "
                "(a word without spaces, an integer frequency, a lowercase tag such as n or v)"
            )
        entries.append((word, freq, tag.lower() if tag else None))
    return entries


def get_tokenizer(user_dict: str | Path | None = None, cache_dir: str | Path | None = None) -> Any:
    """The process's jieba tokenizer for ``user_dict``, built and loaded on first use.

    Args:
        user_dict: a jieba user dictionary; ``None`` for the shipped retail dictionary.
        cache_dir: where jieba keeps its prefix-dictionary cache; ``None`` for
            :func:`default_cache_dir`. Only the first call for a dictionary uses it.

    Returns:
        A ``jieba.Tokenizer`` shared by every caller with the same dictionary.

    Raises:
        ConfigError: the dictionary is missing or malformed.
    """
    path = Path(user_dict).expanduser().resolve() if user_dict else DEFAULT_USER_DICT
    tokenizer = _tokenizers.get(path)
    if tokenizer is not None:
        return tokenizer
    with _tokenizers_lock:
        tokenizer = _tokenizers.get(path)
        if tokenizer is None:
            tokenizer = _build_tokenizer(path, Path(cache_dir) if cache_dir else None)
            _tokenizers[path] = tokenizer
    return tokenizer


def _build_tokenizer(path: Path, cache_dir: Path | None) -> Any:
    """A new jieba tokenizer with its cache in ``cache_dir`` and the entries of ``path`` added."""
    entries = _read_user_dict(path)
    import jieba  # imported on first use: it costs ~0.1 s and emits a pkg_resources warning

    # jieba sets its own logger to DEBUG with a stderr handler, printing "Building prefix
    # dict ..." on every load; quieten it unless the application has already chosen a level.
    jieba_logger = logging.getLogger("jieba")
    if jieba_logger.level == logging.DEBUG:
        jieba_logger.setLevel(logging.WARNING)

    tokenizer = jieba.Tokenizer()
    tokenizer.tmp_dir = str(_writable_dir(cache_dir or default_cache_dir()))
    tokenizer.initialize()
    # Tokens are lowercased by lowercasing the text before jieba (one C call instead of one per
    # token), and jieba matches case-sensitively, so every dictionary word with capitals (T恤,
    # B超, QQ in jieba's own dictionary; M码 in ours) also goes in in lower case.
    freq_table: dict[str, int] = tokenizer.FREQ
    for word in _CAPITALISED.findall("\n".join(freq_table)):  # one scan, not 350k .lower() calls
        count, lower = freq_table[word], word.lower()
        if count and not freq_table.get(lower):
            tokenizer.add_word(lower, count)
    # The same as tokenizer.load_userdict(path), which cannot skip comment lines; ASCII words go
    # in as written, in lower case and in upper case (for lowercase=False).
    for word, freq, tag in entries:
        for variant in {word, word.lower(), word.upper()}:
            tokenizer.add_word(variant, freq, tag)
    logger.debug("jieba ready with %d entries from %s", len(entries), path)
    return tokenizer


def segment(text: str, tokenizer: Any, *, hmm: bool = True, lowercase: bool = True) -> list[str]:
    """Cut ``text`` into tokens, keeping protected spans whole.

    Args:
        text: normalised text.
        tokenizer: a tokenizer from :func:`get_tokenizer`.
        hmm: let jieba guess unknown words with its HMM.
        lowercase: lowercase the tokens (bracketed stickers and placeholders keep their case).

    Returns:
        The tokens in order; whitespace is dropped.
    """
    lcut = tokenizer.lcut
    emoji_possible = may_have_emoji(text)
    if not emoji_possible and _TRIGGER.search(text) is None:
        return _cut(lcut, text.lower() if lowercase else text, hmm)
    protect = _PROTECT_EMOJI if emoji_possible else _PROTECT
    tokens: list[str] = []
    pos = 0
    for match in protect.finditer(text):
        token = match.group()
        is_bracket = match.lastgroup == "bracket"
        if is_bracket and token not in _KNOWN_BRACKETS:
            continue  # an ordinary bracketed word: jieba cuts it with the text around it
        start = match.start()
        if start > pos:
            piece = text[pos:start]
            tokens += _cut(lcut, piece.lower() if lowercase else piece, hmm)
        tokens.append(token if is_bracket or not lowercase else token.lower())
        pos = match.end()
    if pos < len(text):
        piece = text[pos:]
        tokens += _cut(lcut, piece.lower() if lowercase else piece, hmm)
    return tokens


def _cut(lcut: Any, piece: str, hmm: bool) -> list[str]:
    """jieba's tokens of ``piece`` without whitespace tokens."""
    words: list[str] = lcut(piece, HMM=hmm)
    if _SPACE.search(piece) is None:
        return words
    return [w for w in words if not w.isspace()]
