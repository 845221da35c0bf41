"""Compliance rules and a fast checker of guide messages and reply suggestions.

The rules live in a data file, ``copilot/data/compliance_rules.yaml`` (a brand may ship its own):
advertising-law absolute claims, medical and efficacy claims, off-platform payment, promises of
guaranteed results, exposed personal data and rude replies. Each :class:`Rule` has a ``kind``, a
``severity``, a one-line Chinese ``explanation`` for supervisors, literal ``lexicon`` phrases and
regular-expression ``patterns``, optional ``exceptions`` (a hit overlapping an exception match is
ignored: 第一次, 不能保证有效) and optional ``domains``. ``data_exposure`` rules may name ``pii``
kinds: raw personal data found by :func:`copilot.text.mask_pii` is a hit with its span.

Example::

    from copilot.compliance import default_checker

    checker = default_checker()
    [hit] = checker.check("我们这款是全网第一")
    hit.kind, hit.start, hit.end   # ('absolute_claim', 5, 9)
    checker.is_clean("这款最近到货，第一次买吗？")   # True

**Offsets.** Hits index the text *as given*. Matching runs on a view of the same length:
full-width ASCII folded to half-width (``，`` → ``,``, ``１`` → ``1``) and the text lowercased, one
character for one; traditional characters simplified with :func:`copilot.text.to_simplified`
when that keeps the length (it does for nearly all text; otherwise the unsimplified view is used).
Zero-width characters, a common way to dodge keyword filters (``最\\u200b好``), are dropped from the
view and an index map carries spans back.

**Hits.** Each rule reports what ``finditer`` would (leftmost matches, none inside the one
before); a match overlapping one of the rule's exceptions is dropped. Overlapping hits of one kind
merge ("用了保证白" + "白两个度"); across kinds the more severe, then longer, span is kept, so
the hits never overlap.

**Speed.** It runs on every suggestion and every guide message. A character class of every
character a hit can start with finds the candidate positions in one C scan; at each, one regex of
just the alternatives starting with that character (lexicon phrases as a trie, plus patterns)
says whether anything matches there, and only then are the rules that can start there tried one
by one. With the three guard scans of ``mask_pii`` that is about 16 µs per guide message of
10–60 characters (mean 28) on one busy core. The rules file may only use bounded repetitions
(checked when it loads), so a 200k-character or adversarial text stays linear (under 3 s).

**Excerpts.** A hit's ``excerpt`` is the matched span in 【】 with up to eight characters either side;
personal data in it is shown as placeholders (``[手机号]``), so a report never repeats it.
"""

from __future__ import annotations

import bisect
import difflib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from copilot.errors import ConfigError
from copilot.text import PII_PLACEHOLDERS, mask_pii, to_simplified

__all__ = [
    "KINDS",
    "SEVERITIES",
    "ComplianceChecker",
    "Hit",
    "Kind",
    "Rule",
    "Severity",
    "default_checker",
    "parse_rules",
]

logger = logging.getLogger(__name__)

try:  # sre's parser and constants, read to gate the prefilter and check rule files (see _parse)
    from re import _constants as sre  # type: ignore[attr-defined]
    from re import _parser as _sre_parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a Python without them: no gate, no repetition check
    sre = None
    _sre_parser = None

Kind = Literal[
    "absolute_claim",
    "efficacy_claim",
    "private_payment",
    "guaranteed_result",
    "data_exposure",
    "rude",
]
Severity = Literal["high", "medium", "low"]

KINDS: tuple[Kind, ...] = get_args(Kind)
"""The rule kinds, in the order reports list them."""
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
"""The severities, most severe first."""

_RANK = {"high": 3, "medium": 2, "low": 1}
_ID = re.compile(r"[a-z][a-z0-9_]{2,63}")
_DOMAIN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_RULE_KEYS = (
    "id",
    "kind",
    "severity",
    "explanation",
    "lexicon",
    "patterns",
    "pii",
    "exceptions",
    "domains",
)
_TOP_KEYS = ("version", "shared", "rules")
_CONTEXT = 8  # characters of context either side of a hit in its excerpt
_SPAN_SHOWN = 24  # a longer span shows this many characters at each end in its excerpt


@dataclass(frozen=True, slots=True)
class Rule:
    """One compliance rule, as written in the rules file.

    Attributes:
        id: stable ASCII id (``absolute_claim_ranking``).
        kind: what the rule is about; one of :data:`KINDS`.
        severity: ``high``, ``medium`` or ``low``.
        explanation: one line in Chinese for the supervisor: why, and what to say instead.
        lexicon: literal phrases; they are folded like the text (half-width, lowercase, simplified).
        patterns: regular expressions over the folded view of the text.
        pii: ``data_exposure`` only: kinds of raw personal data (keys of ``PII_PLACEHOLDERS``).
        exceptions: regular expressions; a hit overlapping one of their matches is ignored.
        domains: the domains the rule applies to; ``None`` for all. A check without a domain
            applies every rule.
    """

    id: str
    kind: Kind
    severity: Severity
    explanation: str
    lexicon: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    pii: tuple[str, ...] = ()
    exceptions: tuple[str, ...] = ()
    domains: frozenset[str] | None = None

    def applies_to(self, domain: str | None) -> bool:
        """Whether the rule runs for ``domain`` (every rule runs when it is ``None``)."""
        return domain is None or self.domains is None or domain in self.domains


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule violation in one text.

    Attributes:
        rule_id: the rule that fired.
        kind: its kind.
        severity: its severity.
        start: start offset of the span in the original text.
        end: end offset (exclusive).
        excerpt: the span in 【】 with a little context; personal data shown as placeholders.
        explanation: the rule's explanation for the supervisor.
    """

    rule_id: str
    kind: Kind
    severity: Severity
    start: int
    end: int
    excerpt: str
    explanation: str


# ------------------------------------------------------------------------------- text view

# Full-width ASCII -> half-width and the ideographic space -> space, one character for one.
_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
# The full-width punctuation of nearly every Chinese message: str.replace (a C scan each) is much
# cheaper than a translate table over the whole text, which is left to the rare other cases.
_COMMON_WIDE = tuple((chr(ord(c) + 0xFEE0), c) for c in ",?!~:;()%")
_OTHER_WIDE = re.compile("[\uff01-\uff5e\u3000]")
# Invisible characters people slip into words to dodge keyword filters.
_INVISIBLE = re.compile("[\u00ad\u034f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


def _fold(text: str) -> str:
    """Half-width, lowercase, simplified Chinese; always the same length as ``text``."""
    if not text.isascii():
        for wide, narrow in _COMMON_WIDE:
            if wide in text:
                text = text.replace(wide, narrow)
        if _OTHER_WIDE.search(text) is not None:
            text = text.translate(_WIDTH)
    lowered = text.lower()
    if len(lowered) == len(text):  # a few letters lowercase to two characters ("İ")
        text = lowered
    else:
        text = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    if not text.isascii():
        simplified = to_simplified(text)
        if len(simplified) == len(text):
            text = simplified
    return text


def _view(text: str) -> tuple[str, list[int] | None]:
    """The matching view of ``text`` and, when characters were dropped, each view index's source."""
    index: list[int] | None = None
    if _INVISIBLE.search(text) is not None:
        index = [i for i, c in enumerate(text) if _INVISIBLE.match(c) is None]
        text = "".join(text[i] for i in index)
    return _fold(text), index


# ------------------------------------------------------------------------------- raw PII spans

_PLACEHOLDER = re.compile("(" + "|".join(re.escape(p) for p in PII_PLACEHOLDERS.values()) + ")")
_PII_KIND = {placeholder: kind for kind, placeholder in PII_PLACEHOLDERS.items()}
_PII_CONTEXT = 24  # characters before a value that mask_pii may need to see (its cue words)
_PII_MAX_SPAN = 96
_PII_TRIES = 24  # candidate ends checked per value before taking the first one


def _pii_spans(text: str) -> list[tuple[str, int, int]]:
    """Spans of raw personal data in ``text`` as ``(kind, start, end)``, found by ``mask_pii``.

    ``mask_pii`` says what it masked and returns the masked text. The text between placeholders is
    original text, so a placeholder's start is exact; its end is the first place where the next
    original piece follows and where masking the candidate span alone (after its cue words) gives
    back exactly that placeholder. That check tells "138 1234 5678" from "138" when a space follows.
    """
    masked, counts = mask_pii(text)
    if not counts:
        return []
    pieces = _PLACEHOLDER.split(masked)  # literal, placeholder, literal, ...
    spans: list[tuple[str, int, int]] = []
    pos = 0
    floor = 0  # where the context of the next value may start: after the previous value
    for i in range(0, len(pieces), 2):
        literal = pieces[i]
        if not text.startswith(literal, pos):
            return _pii_fallback(text, masked, counts)
        pos += len(literal)
        if i + 1 == len(pieces):
            break
        placeholder = pieces[i + 1]
        if text.startswith(placeholder, pos):  # a placeholder already in the text, not a value
            pos += len(placeholder)
            continue
        following = pieces[i + 2]
        last = i + 3 == len(pieces)
        end = _value_end(text, pos, floor, placeholder, following, last)
        if end is None:
            return _pii_fallback(text, masked, counts)
        spans.append((_PII_KIND[placeholder], pos, end))
        pos = floor = end
    return spans


def _value_end(
    text: str, start: int, floor: int, placeholder: str, following: str, last: bool
) -> int | None:
    """Where the value masked as ``placeholder`` from ``start`` ends (see :func:`_pii_spans`)."""
    if last:  # nothing is masked after it: the rest of the text is ``following``
        end = len(text) - len(following)
        return end if end > start and text.endswith(following) else None
    context = text[max(floor, start - _PII_CONTEXT) : start]
    first: int | None = None
    end = start + 1
    limit = min(len(text), start + _PII_MAX_SPAN)
    for _ in range(_PII_TRIES):  # bounded: two values written back to back are rare
        end = text.find(following, end) if following else end
        if end < 0 or end > limit:
            break
        if first is None:
            first = end
        if mask_pii(context + text[start:end])[0] == context + placeholder:
            return end
        end += 1
    return first


def _pii_fallback(text: str, masked: str, counts: Mapping[str, int]) -> list[tuple[str, int, int]]:
    """One span covering everything that differs, should masking ever not align (never seen)."""
    logger.debug("mask_pii output does not align with its input; reporting one covering span")
    head = 0
    while head < min(len(text), len(masked)) and text[head] == masked[head]:
        head += 1
    tail = 0
    while tail < min(len(text), len(masked)) - head and text[-1 - tail] == masked[-1 - tail]:
        tail += 1
    return [(next(iter(counts)), head, max(head + 1, len(text) - tail))]


# ------------------------------------------------------------------------------- compiling


def _trie_regex(words: Iterable[str]) -> str:
    """One alternation matching the longest of ``words`` at a position, factored by prefix."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_regex(trie)


def _node_regex(node: Mapping[str, Any]) -> str:
    """The alternation of one trie node (``""`` marks the end of a word)."""
    ends = "" in node
    branches = [re.escape(c) + _node_regex(child) for c, child in sorted(node.items()) if c]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends:  # a shorter word ends here: the longer ones are tried first
        return f"(?:{body})?" if len(branches) > 1 or len(body) > 1 else f"{body}?"
    return body


_MAX_FIRST = 4096  # a pattern that may start with more characters than this is not gated


def _parse(regex: str) -> Any:
    """The parsed form of ``regex`` (sre's own parser), or ``None`` where that is unavailable.

    ``re._parser`` is internal to the standard library; the two analyses that read it (the
    prefilter's first characters, the unbounded-repetition check) degrade to "unknown" without it.
    """
    try:
        return _sre_parser.parse(regex) if _sre_parser is not None else None
    except Exception:  # the analyses are optional; a pattern sre rejects is reported elsewhere
        return None


def _first_chars(regex: str) -> frozenset[str] | None:
    """The characters a match of ``regex`` can start with, or ``None`` when that is not known.

    Read from the parsed pattern (``re._parser``, the parser behind ``re.compile``): literals,
    classes, groups, alternations, repeats and zero-width assertions. ``None`` when a match may
    start with any character (``.``, a negated class, a category such as ``\\w``), with more than
    ``_MAX_FIRST`` characters, or on anything the analysis does not know; such a pattern is then
    simply searched everywhere.
    """
    parsed = _parse(regex)
    if parsed is None:
        return None
    ranges: list[tuple[int, int]] = []

    def first(items: Any) -> bool | None:
        """Add the first characters of ``items`` to ``ranges``; whether it can match empty."""
        for op, av in items:
            if op is sre.LITERAL:
                ranges.append((av, av))
                return False
            if op is sre.IN:
                for member_op, member in av:
                    if member_op is sre.LITERAL:
                        ranges.append((member, member))
                    elif member_op is sre.RANGE:
                        ranges.append(member)
                    else:  # NEGATE, CATEGORY
                        return None
                return False
            if op in (sre.ASSERT, sre.ASSERT_NOT, sre.AT):
                continue  # zero-width: the match starts with what follows
            nullable: bool | None
            if op is sre.SUBPATTERN:
                nullable = first(av[-1])
            elif op is sre.BRANCH:
                results = [first(alternative) for alternative in av[1]]
                nullable = None if None in results else any(results)
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
                inner = first(av[2])
                nullable = None if inner is None else inner or av[0] == 0
            else:
                return None
            if nullable is None:
                return None
            if not nullable:
                return False
        return True

    if first(parsed) is not False:  # unknown, or the pattern can match the empty string
        return None
    if sum(hi - lo + 1 for lo, hi in ranges) > _MAX_FIRST:
        return None
    return frozenset(chr(c) for lo, hi in ranges for c in range(lo, hi + 1))


_CharRules = tuple[re.Pattern[str], tuple[tuple[int, re.Pattern[str]], ...]]


class _Scanner:
    """Finds where each rule matches, trying at each position only what can start there.

    A gate class holds every character a hit can start with and finds the candidate positions in
    one C scan. At each, one regex of every alternative starting with that character (lexicon
    phrases as a trie, plus patterns) says whether anything matches; only then are the rules
    with such alternatives tried one by one, to tell which. Both are compiled on first use of a
    character. sre walks an alternation one branch at a time, so one union of all the rules tried
    at every position would cost several times more. Patterns whose first characters are
    unknown are searched over the whole text.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        # char -> rule index -> (words, patterns) of that rule's alternatives starting with char
        self._parts: dict[str, dict[int, tuple[list[str], list[str]]]] = {}
        anywhere: list[tuple[int, re.Pattern[str]]] = []
        for i, rule in enumerate(rules):
            for word in (_fold(w) for w in rule.lexicon):
                self._parts.setdefault(word[0], {}).setdefault(i, ([], []))[0].append(word)
            for pattern in rule.patterns:
                chars = _first_chars(pattern)
                if chars is None:
                    anywhere.append((i, re.compile(pattern)))
                    continue
                for char in chars:
                    self._parts.setdefault(char, {}).setdefault(i, ([], []))[1].append(pattern)
        self._anywhere = tuple(anywhere)
        starts = "".join(re.escape(c) for c in sorted(self._parts))
        self._gate = re.compile(f"[{starts}]") if starts else None
        self._by_char: dict[str, _CharRules] = {}

    def _for_char(self, char: str) -> _CharRules:
        """The alternatives starting with ``char``: all in one regex, and one regex per rule."""
        compiled = self._by_char.get(char)
        if compiled is None:
            parts = sorted(self._parts.get(char, {}).items())
            everything = _alternation(
                [w for _, (words, _) in parts for w in words],
                [p for _, (_, patterns) in parts for p in patterns],
            )
            by_rule = tuple((i, _alternation(words, patterns)) for i, (words, patterns) in parts)
            compiled = self._by_char[char] = (everything, by_rule)
        return compiled

    def find(self, view: str, active: Sequence[bool]) -> list[tuple[int, int, int]]:
        """``(start, end, rule index)`` of every match of an ``active`` rule in ``view``."""
        found = [
            (m.start(), m.end(), i)
            for i, regex in self._anywhere
            if active[i]
            for m in regex.finditer(view)
        ]
        if self._gate is None:
            return found
        by_char = self._by_char
        for gate in self._gate.finditer(view):
            pos = gate.start()
            char = view[pos]
            everything, by_rule = by_char.get(char) or self._for_char(char)
            if everything.match(view, pos) is None:  # nearly every candidate position
                continue
            for i, regex in by_rule:
                if active[i]:
                    match = regex.match(view, pos)
                    if match is not None:
                        found.append((pos, match.end(), i))
        return found


def _alternation(words: Sequence[str], patterns: Sequence[str]) -> re.Pattern[str]:
    """One regex of ``words`` (as a trie, longest first) and then ``patterns``."""
    parts = ([_trie_regex(words)] if words else []) + [f"(?:{p})" for p in patterns]
    return re.compile("|".join(parts))


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    exception: re.Pattern[str] | None


# ------------------------------------------------------------------------------- the checker


class ComplianceChecker:
    """Finds compliance violations in guide messages and reply suggestions.

    Args:
        rules: the rules; ids must be unique and each ``pii`` kind may belong to one rule.

    Raises:
        ConfigError: a rule that cannot be compiled (the message names the rule).

    Example:
        >>> checker = ComplianceChecker.from_file()
        >>> [(h.rule_id, h.start, h.end) for h in checker.check("我们这款是全网第一")]
        [('absolute_claim_ranking', 5, 9)]
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = tuple(rules)
        seen: set[str] = set()
        pii_owner: dict[str, str] = {}
        compiled = []
        for rule in self._rules:
            if rule.id in seen:
                raise ConfigError(f"duplicate compliance rule id {rule.id!r}; ids must be unique")
            seen.add(rule.id)
            if rule.kind not in KINDS or rule.severity not in SEVERITIES:
                raise ConfigError(
                    f"rule {rule.id!r}: kind {rule.kind!r} / severity {rule.severity!r} not valid; "
                    f"kinds: {', '.join(KINDS)}; severities: {', '.join(SEVERITIES)}"
                )
            for regex in rule.patterns + rule.exceptions:
                problem = _regex_problem(regex)
                if problem:
                    raise ConfigError(f"rule {rule.id!r}: pattern {regex!r}: {problem}")
            for kind in rule.pii:
                if kind in pii_owner:
                    raise ConfigError(
                        f"rule {rule.id!r}: pii kind {kind!r} is already checked by rule "
                        f"{pii_owner[kind]!r}; list each kind in one rule only"
                    )
                pii_owner[kind] = rule.id
            exception = (
                re.compile("|".join(f"(?:{p})" for p in rule.exceptions))
                if rule.exceptions
                else None
            )
            compiled.append(_Compiled(rule, exception))
        self._compiled = tuple(compiled)
        self._scanner = _Scanner(self._rules)
        index = {rule.id: i for i, rule in enumerate(self._rules)}
        self._pii_rule = {kind: index[rule_id] for kind, rule_id in pii_owner.items()}
        self._for_domain: dict[str | None, tuple[list[bool], frozenset[str]]] = {}

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> ComplianceChecker:
        """Load the rules from a YAML file.

        Args:
            path: the rules file; ``None`` for the shipped ``copilot/data/compliance_rules.yaml``.

        Returns:
            A checker with those rules.

        Raises:
            ConfigError: the file cannot be read, or a rule is invalid (the message names the
                rule id, the line and what is wrong, e.g. an unknown kind or an invalid regex).
        """
        if path is None:
            source = "compliance_rules.yaml"
            resource = resources.files("copilot").joinpath("data/compliance_rules.yaml")
            try:
                text = resource.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read the shipped compliance rules: {exc}") from exc
        else:
            source = str(path)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read compliance rules file {source}: {exc}") from exc
        return cls(parse_rules(text, source=source))

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in file order."""
        return self._rules

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The kinds the loaded rules cover, in :data:`KINDS` order."""
        present = {rule.kind for rule in self._rules}
        return tuple(kind for kind in KINDS if kind in present)

    def _active(self, domain: str | None) -> tuple[list[bool], frozenset[str]]:
        """Which rules apply to ``domain`` (by index) and the PII kinds checked (cached)."""
        active = self._for_domain.get(domain)
        if active is None:
            applies = [rule.applies_to(domain) for rule in self._rules]
            pii = frozenset(k for k, i in self._pii_rule.items() if applies[i])
            active = self._for_domain[domain] = (applies, pii)
        return active

    def check(self, text: str, *, domain: str | None = None) -> list[Hit]:
        """Find the violations in one message.

        Args:
            text: the message as written (any width, case, script; emoji welcome).
            domain: the retail domain (``apparel``, ``beauty``, ``baby`` ...); rules limited to
                other domains are skipped. ``None`` applies every rule.

        Returns:
            Non-overlapping hits sorted by start; spans index ``text``. Where two rules match
            overlapping spans the more severe (then the longer) one is kept.
        """
        if not text:
            return []
        view, index = _view(text)
        active, pii_kinds = self._active(domain)
        spans: dict[int, list[tuple[int, int]]] = {}  # rule index -> spans before exceptions
        for start, end, i in sorted(self._scanner.find(view, active)):
            # What finditer would give: leftmost matches, each starting after the one before.
            mine = spans.setdefault(i, [])
            if start < end and (not mine or mine[-1][1] <= start):
                mine.append((start, end))
        pii: list[tuple[str, int, int]] = []
        if pii_kinds:
            pii = _pii_spans(view)
            for kind, start, end in pii:
                if kind in pii_kinds:
                    spans.setdefault(self._pii_rule[kind], []).append((start, end))
        if not spans:
            return []
        found: list[tuple[int, int, Rule]] = []
        for i, pairs in spans.items():
            found += _kept(self._compiled[i], view, pairs)
        if not found:
            return []
        chosen = _non_overlapping(found)
        if index is not None:
            chosen = [(index[s], index[e - 1] + 1, rule) for s, e, rule in chosen]
            pii = [(k, index[s], index[e - 1] + 1) for k, s, e in pii]
        pii_starts = [s for _, s, _ in pii]
        return [
            Hit(
                rule_id=rule.id,
                kind=rule.kind,
                severity=rule.severity,
                start=start,
                end=end,
                excerpt=_excerpt(text, start, end, pii, pii_starts),
                explanation=rule.explanation,
            )
            for start, end, rule in chosen
        ]

    def is_clean(self, text: str, *, domain: str | None = None) -> bool:
        """Whether ``text`` has no violation (see :meth:`check`)."""
        return not self.check(text, domain=domain)


def _kept(
    compiled: _Compiled, view: str, spans: list[tuple[int, int]]
) -> list[tuple[int, int, Rule]]:
    """The ``spans`` of one rule that overlap none of its exception matches."""
    if compiled.exception is None:
        return [(start, end, compiled.rule) for start, end in spans]
    # finditer's matches are sorted and disjoint, so their ends are sorted too: the one exception
    # that can overlap [start, end) is the last one starting before ``end``.
    exceptions = [m.span() for m in compiled.exception.finditer(view)]
    starts = [s for s, _ in exceptions]
    kept = []
    for start, end in spans:
        i = bisect.bisect_left(starts, end) - 1
        if i < 0 or exceptions[i][1] <= start:
            kept.append((start, end, compiled.rule))
    return kept


def _non_overlapping(found: list[tuple[int, int, Rule]]) -> list[tuple[int, int, Rule]]:
    """Non-overlapping hits sorted by start.

    Overlapping spans of one kind merge into one span cited by the more severe (then longer)
    rule ("用了保证白" + "白两个度" -> "用了保证白两个度"); across kinds the most severe, then
    longest, then leftmost span is kept.
    """
    if len(found) == 1:
        return found
    merged: list[tuple[int, int, Rule]] = []
    for start, end, rule in sorted(found, key=lambda f: (f[2].kind, f[0], -f[1])):
        if merged and merged[-1][2].kind == rule.kind and start < merged[-1][1]:
            s, e, r = merged[-1]
            better = (_RANK[rule.severity], end - start) > (_RANK[r.severity], e - s)
            merged[-1] = (s, max(e, end), rule if better else r)
        else:
            merged.append((start, end, rule))
    order = sorted(merged, key=lambda f: (-_RANK[f[2].severity], f[0] - f[1], f[0]))
    kept: list[tuple[int, int, Rule]] = []  # disjoint, sorted by start
    starts: list[int] = []
    for start, end, rule in order:
        i = bisect.bisect_left(starts, start)
        if (i == 0 or kept[i - 1][1] <= start) and (i == len(kept) or end <= kept[i][0]):
            kept.insert(i, (start, end, rule))
            starts.insert(i, start)
    return kept


def _excerpt(
    text: str, start: int, end: int, pii: list[tuple[str, int, int]], pii_starts: list[int]
) -> str:
    """The span in 【】 with context, personal data shown as placeholders.

    ``pii`` are the spans of personal data in ``text`` (sorted, disjoint); ``pii_starts`` their
    starts, for bisection. The context never cuts a value in half (half a phone number is still
    half a leak), and a span longer than ``2 * _SPAN_SHOWN`` shows its two ends.
    """
    lo, hi = max(0, start - _CONTEXT), min(len(text), end + _CONTEXT)
    i = bisect.bisect_right(pii_starts, lo) - 1
    if i >= 0 and pii[i][2] > lo:
        lo = pii[i][1]
    i = bisect.bisect_left(pii_starts, hi) - 1
    if i >= 0 and pii[i][2] > hi:
        hi = pii[i][2]

    def shown(a: int, b: int) -> str:
        """``text[a:b]`` with each value that starts in it as its placeholder."""
        out: list[str] = []
        i = bisect.bisect_right(pii_starts, a) - 1
        pos = a if i < 0 or pii[i][2] <= a or pii[i][1] == a else min(b, pii[i][2])
        j = bisect.bisect_left(pii_starts, pos)
        while pos < b:
            if j < len(pii) and pii[j][1] < b:
                kind, s, e = pii[j]
                out += (text[pos:s], PII_PLACEHOLDERS[kind])
                pos, j = e, j + 1
            else:
                out.append(text[pos:b])
                pos = b
        return "".join(out)

    if end - start > 2 * _SPAN_SHOWN:
        middle = f"{shown(start, start + _SPAN_SHOWN)}…{shown(end - _SPAN_SHOWN, end)}"
    else:
        middle = shown(start, end)
    head = "…" if lo > 0 else ""
    tail = "…" if hi < len(text) else ""
    return f"{head}{shown(lo, start)}【{middle}】{shown(end, hi)}{tail}"


# ------------------------------------------------------------------------------- the file


def parse_rules(text: str, *, source: str = "<rules>") -> list[Rule]:
    """Parse and validate a rules file (see the comments at the top of the shipped file).

    Args:
        text: the YAML text.
        source: the file name, for messages.

    Returns:
        The rules, in file order.

    Raises:
        ConfigError: invalid YAML or an invalid rule; the message names the rule id, the line
            and what is wrong.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{source}: expected a mapping with a 'rules' list at the top")
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"{source}: unknown top-level key {key!r}; valid keys: {', '.join(_TOP_KEYS)}"
            )
    raw_rules = data.get("rules")
    rules_node = _child(root, "rules")
    if not isinstance(raw_rules, list) or not raw_rules or rules_node is None:
        raise ConfigError(f"{source}: 'rules' must be a non-empty list of rules")
    assert isinstance(rules_node, yaml.SequenceNode)
    rules = []
    seen: dict[str, int] = {}
    for raw, node in zip(raw_rules, rules_node.value, strict=True):
        rule = _parse_rule(raw, node, source)
        line = node.start_mark.line + 1
        if rule.id in seen:
            raise ConfigError(
                f"{source} line {line}: rule id {rule.id!r} is already used on line "
                f"{seen[rule.id]}; ids must be unique"
            )
        seen[rule.id] = line
        rules.append(rule)
    return rules


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node
    return None


def _line(node: yaml.Node | None, key: str | None = None, item: int | None = None) -> int:
    """1-based line of ``node``, of its ``key`` value, or of item ``item`` of that value."""
    assert node is not None
    target: yaml.Node | None = node if key is None else _child(node, key)
    if target is None:
        target = node
    if item is not None and isinstance(target, yaml.SequenceNode) and item < len(target.value):
        target = target.value[item]
    return int(target.start_mark.line) + 1


def _parse_rule(raw: Any, node: yaml.Node, source: str) -> Rule:
    line = node.start_mark.line + 1
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} line {line}: a rule must be a mapping, got {raw!r}")
    rid = raw.get("id")
    if not isinstance(rid, str) or _ID.fullmatch(rid) is None:
        raise ConfigError(
            f"{source} line {line}: rule id {rid!r} is not valid; use 3-64 lowercase ASCII "
            "letters, digits and underscores starting with a letter (e.g. absolute_claim_ranking)"
        )
    reader = _RuleReader(raw, node, source, rid)
    reader.check_keys()
    kind, severity, explanation = reader.header()
    lexicon, patterns, exceptions, pii = reader.matchers(kind)
    return Rule(
        id=rid,
        kind=kind,
        severity=severity,
        explanation=explanation,
        lexicon=lexicon,
        patterns=patterns,
        pii=pii,
        exceptions=exceptions,
        domains=reader.domains(),
    )


class _RuleReader:
    """Reads one rule's fields, each checked; errors name the file, line and rule id."""

    def __init__(self, raw: dict[str, Any], node: yaml.Node, source: str, rid: str) -> None:
        self.raw = raw
        self.node = node
        self.source = source
        self.rid = rid

    def fail(self, what: str, key: str | None = None, item: int | None = None) -> ConfigError:
        line = _line(self.node, key, item)
        return ConfigError(f"{self.source} line {line}: rule {self.rid!r}: {what}")

    def check_keys(self) -> None:
        for key in self.raw:
            if key not in _RULE_KEYS:
                close = difflib.get_close_matches(str(key), _RULE_KEYS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(
                    f"unknown key {key!r}{hint}; valid keys: {', '.join(_RULE_KEYS)}", key
                )

    def header(self) -> tuple[Any, Any, str]:
        """The rule's kind, severity and (stripped) explanation."""
        raw, fail = self.raw, self.fail
        kind = raw.get("kind")
        if kind not in KINDS:
            close = difflib.get_close_matches(str(kind), KINDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(f"unknown kind {kind!r}{hint}; valid kinds: {', '.join(KINDS)}", "kind")
        severity = raw.get("severity")
        if severity not in SEVERITIES:
            raise fail(
                f"unknown severity {severity!r}; valid severities: {', '.join(SEVERITIES)}",
                "severity",
            )
        explanation = raw.get("explanation")
        if (
            not isinstance(explanation, str)
            or not explanation.strip()
            or "\n" in explanation.strip()
        ):
            raise fail("'explanation' must be one non-empty line of text", "explanation")
        return kind, severity, explanation.strip()

    def strings(self, key: str, flatten: bool = False) -> tuple[str, ...]:
        """The non-empty strings listed under ``key`` (nested lists flattened when asked)."""
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(f"{key!r} must be a list, got {type(value).__name__}", key)
        out: list[str] = []
        for i, item in enumerate(value):
            items = item if flatten and isinstance(item, list) else [item]
            for one in items:
                if not isinstance(one, str) or not one:
                    raise self.fail(f"{key}[{i}] must be a non-empty string, got {one!r}", key, i)
                out.append(one)
        return tuple(out)

    def matchers(
        self, kind: str
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """``(lexicon, patterns, exceptions, pii)``: at least one matcher, every regex usable."""
        fail = self.fail
        lexicon = self.strings("lexicon")
        patterns = self.strings("patterns")
        exceptions = self.strings("exceptions", flatten=True)
        pii = self.strings("pii")
        for i, kind_name in enumerate(pii):
            if kind_name not in PII_PLACEHOLDERS:
                raise fail(
                    f"unknown pii kind {kind_name!r}; valid kinds: {', '.join(PII_PLACEHOLDERS)}",
                    "pii",
                    i,
                )
        if pii and kind != "data_exposure":
            raise fail(f"'pii' is only for data_exposure rules, not {kind!r}", "pii")
        if not (lexicon or patterns or pii):
            raise fail("a rule needs at least one of 'lexicon', 'patterns' or 'pii'")
        for key, regexes in (("patterns", patterns), ("exceptions", exceptions)):
            for i, regex in enumerate(regexes):
                problem = _regex_problem(regex)
                if problem:
                    item = i if key == "patterns" else None  # exceptions may be flattened lists
                    raise fail(f"{key}[{i}] {regex!r}: {problem}", key, item)
        return lexicon, patterns, exceptions, pii

    def domains(self) -> frozenset[str] | None:
        """The domains the rule is limited to; ``None``: every domain."""
        domains_raw = self.raw.get("domains")
        if domains_raw is None:
            return None
        if not isinstance(domains_raw, list) or not domains_raw:
            raise self.fail("'domains' must be a non-empty list such as [beauty, baby]", "domains")
        for i, d in enumerate(domains_raw):
            if not isinstance(d, str) or _DOMAIN.fullmatch(d) is None:
                raise self.fail(f"domain {d!r} is not a lowercase ASCII id", "domains", i)
        return frozenset(domains_raw)


_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
_GLOBAL_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")
_ESCAPE = re.compile(r"\\[uU][0-9a-fA-F]{4,8}|\\x[0-9a-fA-F]{2}|\\N\{[^}]*\}|\\.")


def _regex_problem(regex: str) -> str | None:
    """What is wrong with a rule's regex for this checker, or ``None``."""
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        return f"invalid regular expression: {exc}; fix it (Python re syntax)"
    if _BACKREF.search(regex) or compiled.groupindex:
        return "named groups and backreferences are not supported; use (?:...) groups"
    if _GLOBAL_FLAGS.search(regex):
        return "global inline flags such as (?i) are not supported; the text is lowercased already"
    if compiled.fullmatch("") is not None:
        return "it matches the empty string, which would flag every message"
    if _unbounded(regex):
        return (
            "unbounded repetition (+, * or {n,}) can make long messages slow; "
            "use a bounded one such as {1,4} or [^,.!?。]{0,8}"
        )
    bare = _ESCAPE.sub("", regex)
    if re.search("[A-Z]", bare):
        return "ASCII is matched in lowercase; write the pattern in lowercase (e.g. 'no\\.1')"
    if re.search("[\uff01-\uff5e\u3000]", bare):
        return "full-width ASCII is matched as half-width; write '，' as ',' and '％' as '%'"
    return None


def _unbounded(regex: str) -> bool:
    """Whether ``regex`` has a repetition without an upper bound (``+``, ``*``, ``{n,}``)."""
    parsed = _parse(regex)
    if parsed is None:
        return False
    repeats = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None))

    def walk(items: Any) -> bool:
        for op, av in items:
            if op in repeats:
                if av[1] == sre.MAXREPEAT or walk(av[2]):
                    return True
            elif op is sre.SUBPATTERN:
                if walk(av[-1]):
                    return True
            elif op is sre.BRANCH:
                if any(walk(alternative) for alternative in av[1]):
                    return True
            elif op in (sre.ASSERT, sre.ASSERT_NOT) and walk(av[1]):
                return True
        return False

    return walk(parsed)


@lru_cache(maxsize=1)
def default_checker() -> ComplianceChecker:
    """The checker with the shipped rules, built once per process."""
    return ComplianceChecker.from_file()
