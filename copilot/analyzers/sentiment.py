"""Customer sentiment per message and its trajectory over the conversation.

A lexicon-and-rules scorer in the classic way of Chinese sentiment analysis (HowNet / NTUSD-style
word lists with negation and degree rules), tuned to retail chat; no model to download. The word
lists and every number live in a data file, ``copilot/data/sentiment.yaml`` (its header explains
the format), so a brand can ship its own.

How one message is scored:

1. The text is normalised as everywhere else (:func:`copilot.text.normalize_text`: full-width
   to half-width, invisible characters out), traditional characters are simplified
   (:func:`copilot.text.to_simplified`) and ASCII is lowercased: 「質量太差了！」 reads 「质量太差了!」.
2. One scan finds, at each position, the longest entry of any section: polarity words
   (满意 +1.2, 失望 -1.5), neutral masks (好的, 不好意思, 差不多), question markers (吗, 好不好看),
   negators (不, 没有, 不太), degree adverbs (太, 有点), contrast words (但是), WeChat stickers
   (``[呲牙]``) and emoji. Longest-first is what makes 不满意 one negative word and 不错 one
   positive word rather than 不 + 满意 / 不 + 错.
3. A run of negators and degree adverbs right before a polarity word (at most ``window``
   characters between them, no punctuation) modifies it: 不 flips 喜欢, a negated negative word
   becomes mildly positive (不贵), 太 multiplies, and a strengthening adverb after a negator
   softens instead (不是很满意).
4. Polarity words in a clause with a question marker are damped (好看吗 asks, it does not
   praise); the words before 但是 / 不过 count less than those after.
5. Regular expressions add rhetorical complaints that no single word carries (还没发货,
   说好的…呢, 等了三天); words inside their matches are not counted twice.
6. Exclamation marks amplify; ``??`` amplifies a negative message; a bare ``???`` is mildly
   negative. The sum is squashed: ``score = tanh(gain * raw)``, in [-1, 1].

Speed: one character-class search finds the positions where an entry can start, and a dict trie
gives the longest entry there, so the cost grows with the message, not with the lexicon; the
patterns sit behind a look-ahead of their first characters. About 11 µs per customer message of
the synthetic corpus (12 characters on average) on one busy core, normalisation included
(``sentiment_score`` in a ``timeit`` loop); a 20,000-character message takes about 15 ms.

Example::

    from copilot.analyzers.sentiment import sentiment_score

    sentiment_score("衣服收到了，质量太好了，爱了爱了👍")   # 0.98
    sentiment_score("这件有M码吗")                         # 0.0
    sentiment_score("等了三天还没发货，什么态度")            # -0.97
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

# The compliance checker's analysis of the characters a regex can start with (re's own parser).
from copilot.compliance import _first_chars
from copilot.errors import ConfigError
from copilot.pipeline import Analyzer, Doc
from copilot.text import STICKER_NAMES, normalize_text, to_simplified

__all__ = [
    "Sentiment",
    "SentimentAnalyzer",
    "SentimentLexicon",
    "default_lexicon",
    "load_lexicon",
    "sentiment_score",
]

logger = logging.getLogger(__name__)

# Token kinds (small ints: compared in the hot loop).
_POLAR, _NEUTRAL, _QUESTION, _NEGATOR, _DEGREE, _CONTRAST, _SYMBOL = range(7)
_END = ""  # trie key marking the end of an entry; no character is the empty string

_SETTINGS: dict[str, tuple[float, float]] = {  # name -> (lowest, highest) accepted
    "gain": (0.01, 10.0),
    "window": (0, 10),
    "litotes": (0.0, 2.0),
    "degree_after_negator": (0.0, 2.0),
    "question_damping": (0.0, 1.0),
    "contrast_before": (0.0, 2.0),
    "exclamation_step": (0.0, 2.0),
    "exclamation_cap": (0, 20),
    "question_burst": (0.0, 5.0),
    "question_burst_alone": (-5.0, 5.0),
}
_TOP_KEYS = (
    "version",
    "settings",
    "positive",
    "negative",
    "neutral",
    "questions",
    "negators",
    "degree",
    "contrast",
    "stickers",
    "emoji",
    "patterns",
)
_ASTRAL = "\U00010000-\U0010ffff"


@dataclass(frozen=True, slots=True)
class _Token:
    """One lexicon entry as matched: its kind and numbers."""

    text: str
    kind: int
    weight: float  # polarity weight (signed), degree factor, or negator factor on positive words
    on_negative: float = 0.0  # negators: factor on negative words
    ascii_start: bool = False  # starts / ends with an ASCII letter or digit: whole words only
    ascii_end: bool = False
    splits: tuple[int, ...] = ()  # offsets where a longer polarity word may start (see _raw)


@dataclass(frozen=True, slots=True)
class _Settings:
    gain: float
    window: int
    litotes: float
    degree_after_negator: float
    question_damping: float
    contrast_before: float
    exclamation_step: float
    exclamation_cap: int
    question_burst: float
    question_burst_alone: float
    breaks: frozenset[str]


def _fold(text: str) -> str:
    """The view the lexicon matches: normalised, simplified, ASCII lowercased."""
    text = normalize_text(text)
    if not text.isascii():
        text = to_simplified(text)
    return text.lower()


def _is_word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()


# ------------------------------------------------------------------------------- the lexicon


class SentimentLexicon:
    """A compiled sentiment lexicon: scores one message in [-1, 1].

    Args:
        data: the parsed YAML document (see the header of ``copilot/data/sentiment.yaml``).
        source: where it came from, for error messages.

    Raises:
        ConfigError: the document is malformed: an unknown section or setting, a weight out of
            range, an entry in two sections, an unknown sticker, a pattern that is not a valid,
            bounded regular expression.

    Example:
        >>> lexicon = SentimentLexicon.from_file()
        >>> lexicon.score("不满意") < 0 < lexicon.score("不错")
        True
    """

    def __init__(self, data: Mapping[str, Any], source: str = "<dict>") -> None:
        self.source = source
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping at the top, got {type(data).__name__}")
        unknown = sorted(set(map(str, data)) - set(_TOP_KEYS))
        if unknown:
            raise ConfigError(
                f"{source}: unknown section(s) {unknown}; valid sections: {', '.join(_TOP_KEYS)}"
            )
        self._settings = _parse_settings(data.get("settings") or {}, source)
        table = _EntryTable(source, self._settings.breaks)
        table.add_sections(data, self._settings.litotes)
        entries = _with_splits(table.entries)
        sizes = table.sizes
        self._entries = {text: token for text, (token, _) in entries.items()}
        self._trie = _trie(entries)
        self._gate = _gate(entries, self._settings.breaks)

        patterns = _patterns(data.get("patterns"), source)
        self._pattern_weights = [weight for _, weight in patterns]
        self._pattern = _pattern_union([p for p, _ in patterns]) if patterns else None
        sizes["patterns"] = len(patterns)
        self.sizes: dict[str, int] = {s: sizes.get(s, 0) for s in _TOP_KEYS[2:]}
        """Entries per section, as loaded."""
        logger.debug("sentiment lexicon %s loaded: %s", source, self.sizes)

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> SentimentLexicon:
        """Load a lexicon from a YAML file.

        Args:
            path: the file; ``None`` for the shipped ``copilot/data/sentiment.yaml``.

        Raises:
            ConfigError: the file cannot be read, is not YAML, or is not a valid lexicon.
        """
        if path is None:
            source = "copilot/data/sentiment.yaml"
            try:
                text = resources.files("copilot").joinpath("data/sentiment.yaml").read_text("utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read the shipped sentiment lexicon: {exc}") from exc
        else:
            source = str(path)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the sentiment lexicon {source}: {exc}; pass an existing YAML "
                    "file or None for the shipped one"
                ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
        return cls(data, source)

    # ---------------------------------------------------------------------------- scoring

    def score(self, text: str) -> float:
        """The sentiment of one message.

        Args:
            text: the message as written (any width or script; stickers, emoji, placeholders and
                code-mixed text welcome). Never raises on odd input: empty text scores 0.

        Returns:
            A score in [-1, 1]: below 0 negative, above 0 positive; about 0 for a plain question.
        """
        if not text:
            return 0.0
        return math.tanh(self._settings.gain * self._raw(_fold(text), None))

    def explain(self, text: str) -> list[tuple[str, float]]:
        """What made the score: ``(what matched, contribution to the raw sum)`` in text order.

        A word is shown with its modifiers (``不是+很好``), after question damping and contrast;
        the punctuation cues come last, as what they added (``!?``, ``???``).
        The contributions add up to the raw sum, and ``score(text) == tanh(gain * sum)``.
        """
        trace: list[list[Any]] = []
        if text:
            self._raw(_fold(text), trace)
        return [(str(label), float(value)) for label, value in trace]

    def _raw(self, view: str, trace: list[list[Any]] | None) -> float:
        """The raw (unsquashed) sum of one folded message; fills ``trace`` when given."""
        spans, extra = self._pattern_hits(view, trace)
        clauses = _Clauses(self, trace, spans, extra)
        search, root, breaks, n = self._gate.search, self._trie, self._settings.breaks, len(view)
        pos = 0
        while (found := search(view, pos)) is not None:
            i = found.start()
            char = view[i]
            if char in breaks and not (
                char == " "
                and 0 < i < n - 1
                and _is_word_char(view[i - 1])
                and _is_word_char(view[i + 1])
            ):  # a space between two ASCII words is not a break ("not good")
                clauses.close_clause()
                pos = i + 1
                continue
            node: dict[str, Any] | None = root
            token: _Token | None = None
            end = j = i
            while j < n and node is not None:  # the longest entry starting at i
                node = node.get(view[j])
                j += 1
                if node is not None and _END in node:
                    token, end = node[_END], j
            if token is None or (
                (token.ascii_start and i > 0 and _is_word_char(view[i - 1]))
                or (token.ascii_end and end < n and _is_word_char(view[end]))
            ):
                pos = i + 1
                continue
            if token.splits:
                split = self._split(view, i, end, token.splits)
                if split:  # read the entry's head as a modifier (if it is one), then the word
                    clauses.head(self._entries.get(view[i:split]), i, split)
                    pos = split
                    continue
            pos = end
            clauses.read(token, i, end)
        return self._emphasis(view, clauses.total(), trace)

    def _pattern_hits(
        self, view: str, trace: list[list[Any]] | None
    ) -> tuple[list[tuple[int, int]], float]:
        """The spans the patterns match, and the sum of their weights."""
        spans: list[tuple[int, int]] = []
        extra = 0.0
        if self._pattern is not None:
            for m in self._pattern.finditer(view):
                weight = self._pattern_weights[(m.lastindex or 1) - 1]
                spans.append(m.span())
                extra += weight
                if trace is not None:
                    trace.append([m.group(), weight])
        return spans, extra

    def _emphasis(self, view: str, raw: float, trace: list[list[Any]] | None) -> float:
        """``raw`` as the punctuation cues strengthen it (``!``, ``??``), or ``???`` alone."""
        s = self._settings
        before = raw
        if raw:
            bangs = min(view.count("!"), s.exclamation_cap)
            if bangs:
                raw *= 1.0 + s.exclamation_step * bangs
            if raw < 0 and "??" in view:
                raw *= s.question_burst
            if trace is not None and raw != before:
                trace.append(["!?", raw - before])
        elif "???" in view:
            raw = s.question_burst_alone
            if trace is not None:
                trace.append(["???", raw])
        return raw

    def _close(
        self,
        words: float,
        clause: float,
        question: bool,
        open_entries: list[list[Any]],
        closed_entries: list[list[Any]],
    ) -> float:
        """``words`` plus the open clause, damped when it asks; its trace entries move along."""
        factor = self._settings.question_damping if question else 1.0
        if open_entries:
            for entry in open_entries:
                entry[1] *= factor
            closed_entries += open_entries
            open_entries.clear()
        return words + clause * factor

    def _split(self, view: str, i: int, end: int, splits: tuple[int, ...]) -> int:
        """Where a polarity word starts inside the entry at ``[i, end)`` and ends past it, or 0."""
        n = len(view)
        for offset in splits:
            node: dict[str, Any] | None = self._trie
            j = i + offset
            while j < n and node is not None:
                node = node.get(view[j])
                j += 1
                if j > end and node is not None and _END in node and node[_END].kind == _POLAR:
                    return i + offset
        return 0

    def _modified(self, weight: float, mods: Sequence[_Token]) -> float:
        """``weight`` under a run of negators and degree adverbs, applied right to left."""
        first_negator = next((k for k, m in enumerate(mods) if m.kind == _NEGATOR), len(mods))
        for k in range(len(mods) - 1, -1, -1):
            mod = mods[k]
            if mod.kind == _NEGATOR:
                weight *= mod.weight if weight > 0 else mod.on_negative
            elif k > first_negator and mod.weight > 1.0:  # 不是很 / 没有特别: softer, not louder
                weight *= self._settings.degree_after_negator
            else:
                weight *= mod.weight
        return weight


# ------------------------------------------------------------------------------- parsing


class _Clauses:
    """The running sums of one message as :meth:`SentimentLexicon._raw` reads its entries.

    Words add to the open clause, modified by the unbroken run of negators and degree words
    before them; a break closes the clause (damped when it asks), a contrast word also weakens
    every clause before it. Stickers, emoji and patterns add to ``extra``, untouched.
    """

    def __init__(
        self,
        lexicon: SentimentLexicon,
        trace: list[list[Any]] | None,
        spans: list[tuple[int, int]],
        extra: float,
    ) -> None:
        self.lexicon = lexicon
        self.trace = trace
        self.spans = spans  # where patterns matched: the words inside them do not count
        self.extra = extra  # stickers, emoji and patterns: not modified, damped or contrasted
        self.words = 0.0  # closed clauses
        self.clause = 0.0  # the open clause
        self.question = False
        self.mods: list[_Token] = []
        self.mods_end = -1
        self.open_entries: list[list[Any]] = []  # trace entries of the open clause's words
        self.closed_entries: list[list[Any]] = []  # trace entries of closed clauses' words

    def close_clause(self) -> None:
        self.words = self.lexicon._close(
            self.words, self.clause, self.question, self.open_entries, self.closed_entries
        )
        self.clause, self.question, self.mods = 0.0, False, []

    def head(self, head: _Token | None, i: int, split: int) -> None:
        """The head of an entry split before a polarity word: a modifier, or nothing."""
        if head is not None and head.kind in (_NEGATOR, _DEGREE):
            self._modifier(head, i, split)
        else:
            self.mods = []

    def _modifier(self, token: _Token, i: int, end: int) -> None:
        if self.mods and i != self.mods_end:  # modifiers form one unbroken run
            self.mods = []
        self.mods.append(token)
        self.mods_end = end

    def read(self, token: _Token, i: int, end: int) -> None:
        """Count the entry ``token`` found at ``[i, end)``."""
        kind = token.kind
        if kind == _POLAR:
            self._polar(token, i, end)
        elif kind in (_NEGATOR, _DEGREE):
            self._modifier(token, i, end)
        elif kind == _SYMBOL:
            self.extra += token.weight
            self.mods = []
            if self.trace is not None:
                self.trace.append([token.text, token.weight])
        elif kind == _QUESTION:
            self.question = True
            self.mods = []
        elif kind == _CONTRAST:
            self.close_clause()
            factor = self.lexicon._settings.contrast_before
            self.words *= factor
            for entry in self.closed_entries:
                entry[1] *= factor
        else:  # neutral: masks what it covers
            self.mods = []

    def _polar(self, token: _Token, i: int, end: int) -> None:
        if self.spans and any(a < end and i < b for a, b in self.spans):
            self.mods = []
            return  # the pattern around it carries the sentiment
        weight = token.weight
        label = token.text
        mods = self.mods
        if mods:
            if i - self.mods_end <= self.lexicon._settings.window:
                weight = self.lexicon._modified(weight, mods)
                label = "+".join(m.text for m in mods) + "+" + label
            self.mods = []
        self.clause += weight
        if self.trace is not None:
            entry: list[Any] = [label, weight]
            self.trace.append(entry)
            self.open_entries.append(entry)

    def total(self) -> float:
        """Every clause closed, plus the extras."""
        words = self.lexicon._close(
            self.words, self.clause, self.question, self.open_entries, self.closed_entries
        )
        return words + self.extra


class _EntryTable:
    """The lexicon's entries as they are read: folded text -> (token, section), each checked."""

    def __init__(self, source: str, breaks: frozenset[str]) -> None:
        self.source = source
        self.breaks = breaks
        self.entries: dict[str, tuple[_Token, str]] = {}
        self.sizes: dict[str, int] = {}

    def add_sections(self, data: Mapping[str, Any], litotes: float) -> None:
        """Add every word section of the document, in the order the sections are listed."""
        add, source = self.add, self.source
        for section, sign in (("positive", 1.0), ("negative", -1.0)):
            for weight, words in _weight_groups(data.get(section), section, source):
                for word in words:
                    add(section, word, _POLAR, sign * weight)
        for section, kind in (("neutral", _NEUTRAL), ("questions", _QUESTION)):
            for word in _string_list(data.get(section), section, source):
                add(section, word, kind, 0.0)
        for word in _string_list(data.get("contrast"), "contrast", source):
            add("contrast", word, _CONTRAST, 0.0)
        for word, value in _mapping(data.get("negators"), "negators", source).items():
            on_pos, on_neg = _negator_factors(word, value, litotes, source)
            add("negators", word, _NEGATOR, on_pos, on_neg)
        for word, value in _mapping(data.get("degree"), "degree", source).items():
            add("degree", word, _DEGREE, _number(value, f"degree {word!r}", source, 0.0, 5.0))
        for name, value in _mapping(data.get("stickers"), "stickers", source).items():
            if str(name) not in STICKER_NAMES:
                raise ConfigError(
                    f"{source}: unknown sticker {name!r}; stickers are WeChat's built-in names "
                    "(copilot.text.STICKER_NAMES), written without brackets"
                )
            add("stickers", f"[{name}]", _SYMBOL, _number(value, f"sticker {name!r}", source))
        for char, value in _mapping(data.get("emoji"), "emoji", source).items():
            add("emoji", char, _SYMBOL, _number(value, f"emoji {char!r}", source))

    def add(
        self, section: str, raw: object, kind: int, weight: float, on_negative: float = 0.0
    ) -> None:
        """Add one entry; refuse a non-string, an empty one, a duplicate, or a leading break."""
        source, entries = self.source, self.entries
        if not isinstance(raw, str) or not raw.strip():
            hint = (
                " (quote it: YAML reads it as a number or boolean)"
                if isinstance(raw, int | float)
                else ""
            )
            raise ConfigError(f"{source}: {section} entry {raw!r} is not a non-empty string{hint}")
        text = _fold(raw).replace("\ufe0f", "") if kind == _SYMBOL else _fold(raw)
        if not text:
            raise ConfigError(f"{source}: {section} entry {raw!r} is empty once normalised")
        if text in entries:
            other = entries[text][1]
            raise ConfigError(
                f"{source}: {raw!r} is listed twice ({other} and {section}); keep one"
            )
        if text[0] in self.breaks and kind != _SYMBOL:
            raise ConfigError(f"{source}: {section} entry {raw!r} starts with a break character")
        token = _Token(
            text,
            kind,
            weight,
            on_negative,
            ascii_start=_is_word_char(text[0]),
            ascii_end=_is_word_char(text[-1]),
        )
        entries[text] = (token, section)
        self.sizes[section] = self.sizes.get(section, 0) + 1


def _with_splits(entries: dict[str, tuple[_Token, str]]) -> dict[str, tuple[_Token, str]]:
    """The entries, each word or modifier marked with the offsets where a polarity word may start
    that runs past its end: 很好|看 is better read 很 + 好看, 并不|好 as 并 + 不好, 不太好|看 as
    不太 + 好看."""
    polar_prefixes = {
        text[:m]
        for text, (token, _) in entries.items()
        if token.kind == _POLAR
        for m in range(1, len(text))
    }
    for text, (token, section) in list(entries.items()):
        splits = tuple(k for k in range(1, len(text)) if text[k:] in polar_prefixes)
        if splits and token.kind in (_POLAR, _NEGATOR, _DEGREE):  # masks stay whole
            entries[text] = (dataclasses.replace(token, splits=splits), section)
    return entries


def _trie(entries: dict[str, tuple[_Token, str]]) -> dict[str, Any]:
    """A character trie of the entries; each entry's last node holds its token under ``_END``."""
    trie: dict[str, Any] = {}
    for text, (token, _) in entries.items():
        node = trie
        for char in text:
            node = node.setdefault(char, {})
        node[_END] = token
    return trie


def _gate(entries: dict[str, tuple[_Token, str]], breaks: frozenset[str]) -> re.Pattern[str]:
    """A character class of every entry's first character and the breaks: where a scan stops."""
    firsts = {text[0] for text in entries} | set(breaks)
    bmp = "".join(re.escape(c) for c in sorted(firsts) if c <= "\uffff")
    astral = "".join(re.escape(c) for c in sorted(firsts) if c > "\uffff")
    # sre keeps a bitmap for a class of BMP characters but walks a class with astral members
    # range by range, so the emoji of the supplementary planes sit behind a look-ahead.
    gate = f"[{bmp}]" + (f"|(?=[{_ASTRAL}])[{astral}]" if astral else "")
    return re.compile(gate)


def _parse_settings(raw: object, source: str) -> _Settings:
    """The ``settings`` section, defaults filled in and ranges checked."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: 'settings' must be a mapping, got {type(raw).__name__}")
    defaults: dict[str, Any] = {
        "gain": 0.5,
        "window": 2,
        "litotes": 0.5,
        "degree_after_negator": 0.7,
        "question_damping": 0.3,
        "contrast_before": 0.6,
        "exclamation_step": 0.15,
        "exclamation_cap": 3,
        "question_burst": 1.3,
        "question_burst_alone": -0.3,
        "breaks": ",.!?;:~。、…()（）【】「」『』“”\"' ",
    }
    unknown = sorted(set(map(str, raw)) - set(defaults))
    if unknown:
        raise ConfigError(
            f"{source}: unknown setting(s) {unknown}; valid settings: {', '.join(defaults)}"
        )
    values = {**defaults, **raw}
    numbers: dict[str, Any] = {}
    for name, (low, high) in _SETTINGS.items():
        number = _number(values[name], f"setting {name!r}", source, low, high)
        numbers[name] = int(number) if name in ("window", "exclamation_cap") else number
    breaks = values["breaks"]
    if not isinstance(breaks, str) or not breaks:
        raise ConfigError(f"{source}: setting 'breaks' must be a non-empty string of characters")
    # The text is NFKC-normalised before matching, so full-width marks arrive half-width.
    chars = set(breaks) | {unicodedata.normalize("NFKC", c) for c in breaks}
    return _Settings(breaks=frozenset(c for c in chars if len(c) == 1), **numbers)


def _number(value: object, what: str, source: str, low: float = -5.0, high: float = 5.0) -> float:
    """``value`` as a float in [low, high], or a ConfigError saying what is valid."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{source}: {what} must be a number from {low} to {high}, got {value!r}")
    return float(value)


def _string_list(raw: object, section: str, source: str) -> list[object]:
    """A section that is a list of strings (items are checked when added)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: {section!r} must be a list, got {type(raw).__name__}")
    return raw


def _mapping(raw: object, section: str, source: str) -> Mapping[Any, Any]:
    """A section that is a mapping (keys are checked when added)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: {section!r} must be a mapping, got {type(raw).__name__}")
    return raw


def _weight_groups(raw: object, section: str, source: str) -> list[tuple[float, list[object]]]:
    """The ``positive`` / ``negative`` sections: lists of ``{weight, words}`` groups."""
    groups: list[tuple[float, list[object]]] = []
    for i, group in enumerate(_string_list(raw, section, source)):
        if not isinstance(group, Mapping) or set(group) != {"weight", "words"}:
            raise ConfigError(
                f"{source}: {section}[{i}] must be a mapping with exactly 'weight' and 'words', "
                f"got {group!r}"
            )
        weight = _number(group["weight"], f"{section}[{i}].weight", source, 0.01, 5.0)
        groups.append((weight, _string_list(group["words"], f"{section}[{i}].words", source)))
    return groups


def _negator_factors(
    word: object, value: object, litotes: float, source: str
) -> tuple[float, float]:
    """A negator's factors ``(on_positive, on_negative)`` from a number or a pair."""
    what = f"negator {word!r}"
    if isinstance(value, list):
        if len(value) != 2:
            raise ConfigError(f"{source}: {what} must be a number or [on_positive, on_negative]")
        return _number(value[0], what, source), _number(value[1], what, source)
    factor = _number(value, what, source)
    return factor, factor * litotes


def _patterns(raw: object, source: str) -> list[tuple[str, float]]:
    """The ``patterns`` section, each regex checked (valid, bounded, no groups, not empty)."""
    out: list[tuple[str, float]] = []
    for i, item in enumerate(_string_list(raw, "patterns", source)):
        if not isinstance(item, Mapping) or set(item) != {"pattern", "weight"}:
            raise ConfigError(
                f"{source}: patterns[{i}] must be a mapping with exactly 'pattern' and 'weight'"
            )
        pattern = item["pattern"]
        weight = _number(item["weight"], f"patterns[{i}].weight", source)
        problem = _pattern_problem(pattern)
        if problem:
            raise ConfigError(f"{source}: patterns[{i}] {pattern!r}: {problem}")
        out.append((pattern, weight))
    return out


def _pattern_problem(pattern: object) -> str | None:
    """What is wrong with a pattern for this scorer, or ``None``."""
    if not isinstance(pattern, str) or not pattern:
        return "must be a non-empty string"
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    if compiled.groups:
        return "capturing groups are not supported; write (?:...)"
    if compiled.fullmatch("") is not None:
        return "it matches the empty string"
    if _unbounded(pattern):
        return "unbounded repetition (+, * or {n,}) can make long messages slow; use {0,8}"
    if pattern != pattern.lower() and re.search("[A-Z]", re.sub(r"\\.", "", pattern)):
        return "ASCII is matched in lowercase; write the pattern in lowercase"
    return None


def _unbounded(pattern: str) -> bool:
    """Whether ``pattern`` repeats without an upper bound (``+``, ``*``, ``{n,}``)."""
    in_class = escaped = False
    for k, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "*+" or (char == "{" and re.match(r"\{\d*,\}", pattern[k:])):
            return True
    return False


def _pattern_union(patterns: Sequence[str]) -> re.Pattern[str]:
    """One regex of all patterns, group ``k + 1`` for pattern ``k``, behind a first-character guard.

    sre tries an alternation branch by branch at every position; a look-ahead class of the
    characters a match can start with skips most positions in C (3 µs instead of 11 µs a message).
    """
    union = "|".join(f"({p})" for p in patterns)
    firsts: set[str] = set()
    for pattern in patterns:
        chars = _first_chars(pattern)
        if chars is None:  # a pattern that may start anywhere: no guard
            return re.compile(union)
        firsts |= chars
    bmp = "".join(re.escape(c) for c in sorted(firsts) if c <= "\uffff")
    astral = "".join(re.escape(c) for c in sorted(firsts) if c > "\uffff")
    guard = "|".join(([f"[{bmp}]"] if bmp else []) + ([f"[{astral}]"] if astral else []))
    return re.compile(f"(?=(?:{guard}))(?:{union})")


@lru_cache(maxsize=8)
def _cached(path: str | None) -> SentimentLexicon:
    return SentimentLexicon.from_file(path)


def load_lexicon(path: str | Path | None = None) -> SentimentLexicon:
    """The lexicon in ``path`` (the shipped one for ``None``), loaded once per process and path.

    Raises:
        ConfigError: the file cannot be read or is not a valid lexicon.
    """
    return _cached(None if path is None else str(Path(path).resolve()))


def default_lexicon() -> SentimentLexicon:
    """The shipped lexicon, loaded once per process."""
    return load_lexicon(None)


def sentiment_score(text: str) -> float:
    """The sentiment of one message with the shipped lexicon, in [-1, 1].

    Args:
        text: a message as written.

    Returns:
        Below 0 negative, above 0 positive, about 0 for neutral questions and acknowledgements.

    Example:
        >>> sentiment_score("质量太差了，我要退货") < -0.5
        True
    """
    return default_lexicon().score(text)


# ------------------------------------------------------------------------------- trajectory


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


@dataclass(frozen=True)
class Sentiment:
    """The sentiment of one conversation: a score per message and its trajectory.

    Attributes:
        scores: one entry per message, in order: a score in [-1, 1] for customer messages,
            ``None`` for guide and system messages.
    """

    scores: list[float | None] = field(default_factory=list)

    def summary(self) -> dict[str, float | None]:
        """Where the customer's mood started and ended.

        ``start`` is the mean of the first customer scores and ``end`` of the last ones: two each
        from four customer messages on, one each with two or three (so the two never share a
        message); with one message both are that score. ``min`` is the lowest score and
        ``trend = end - start`` (``None`` with fewer than two customer messages). All are
        rounded to 3 decimals, and all ``None`` without customer messages.
        """
        values = [s for s in self.scores if s is not None]
        if not values:
            return {"start": None, "end": None, "min": None, "trend": None}
        k = max(1, min(2, len(values) // 2))
        start, end = _mean(values[:k]), _mean(values[-k:])
        return {
            "start": round(start, 3),
            "end": round(end, 3),
            "min": round(min(values), 3),
            "trend": round(end - start, 3) if len(values) >= 2 else None,
        }

    def as_dict(self) -> dict[str, Any]:
        """``{"scores": [...], "summary": {...}}`` with scores rounded to 3 decimals."""
        return {
            "scores": [None if s is None else round(s, 3) for s in self.scores],
            "summary": self.summary(),
        }


class SentimentAnalyzer(Analyzer):
    """Scores every customer message of a conversation (guide and system messages get ``None``).

    Args:
        lexicon_path: a lexicon YAML file; ``None`` for the shipped
            ``copilot/data/sentiment.yaml``. Loaded once per process and path.

    Raises:
        ConfigError: the lexicon file cannot be read or is invalid.

    Example:
        >>> conversation = make_conversation(turns=[("customer", "在吗？这件有M码吗"),
        ...     ("guide", "亲，在的～M码有货哦"), ("customer", "等了三天还没发货，什么态度")])
        >>> [doc] = Pipeline([SentimentAnalyzer()])([conversation])
        >>> doc["sentiment"].summary()
        {'start': 0.0, 'end': -0.97, 'min': -0.97, 'trend': -0.97}
    """

    name = "sentiment"
    requires = ()
    assigns = ("sentiment",)

    def __init__(self, lexicon_path: str | Path | None = None) -> None:
        self.lexicon = load_lexicon(lexicon_path)

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        """One ``{"sentiment": Sentiment}`` per doc; no side effects."""
        score = self.lexicon.score
        return [
            {
                "sentiment": Sentiment(
                    [
                        score(m.text) if m.role == "customer" else None
                        for m in doc.conversation.messages
                    ]
                )
            }
            for doc in docs
        ]
