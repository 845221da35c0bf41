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
full-width ASCII folded to half-width and ASCII lowercased character by character (a table
translate), traditional characters simplified with :func:`copilot.text.to_simplified` when that
keeps the length (it does for nearly all text; otherwise the unsimplified view is used).
Zero-width characters, a common way to dodge keyword filters (``最\\u200b好``), are dropped from the
view and an index map carries spans back.

**Speed.** Every rule's lexicon is compiled into one trie-shaped alternation and joined with its
patterns; one union of all rules is searched first and a message it does not match costs one
regex scan plus the three guard scans of ``mask_pii``. Only messages with a candidate run the rules
one by one, then their exceptions. Rules are written with bounded repetitions only, so a long or
adversarial text stays linear.

**Excerpts.** A hit's ``excerpt`` is the matched span in 【】 with up to eight characters either side;
personal data in it is shown as placeholders (``[手机号]``), so a report never repeats it.
"""

from __future__ import annotations

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
]

logger = logging.getLogger(__name__)

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
_RULE_KEYS = ("id", "kind", "severity", "explanation", "lexicon", "patterns", "pii", "exceptions",
              "domains")
_TOP_KEYS = ("version", "shared", "rules")
_CONTEXT = 8  # characters of context either side of a hit in its excerpt


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
    while end <= limit:
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
    ends = "" in node
    branches = [re.escape(c) + _node_regex(child) for c, child in sorted(node.items()) if c]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends:  # a shorter word ends here: the longer ones are tried first
        return f"(?:{body})?" if len(branches) > 1 or len(body) > 1 else f"{body}?"
    return body


_MAX_FIRST = 4096  # a pattern that may start with more characters than this is not gated


def _first_chars(regex: str) -> frozenset[str] | None:
    """The characters a match of ``regex`` can start with, or ``None`` when that is not known.

    Read from the parsed pattern (``re._parser``, the parser behind ``re.compile``): literals,
    classes, groups, alternations, repeats and zero-width assertions. ``None`` when a match may
    start with any character (``.``, a negated class, a category such as ``\\w``), with more than
    ``_MAX_FIRST`` characters, or on anything the analysis does not know; such a pattern is then
    simply searched everywhere.
    """
    try:
        from re import _constants as sre  # type: ignore[attr-defined]
        from re import _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(regex)
    except Exception:  # an internal module; without it there is just no gate
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


class _Prefilter:
    """Does any rule match anywhere in a text? One C scan for most messages.

    A gate class holds every character a hit can start with; at each position the gate finds,
    only the alternatives starting with that character are tried (one small regex per character,
    compiled on first use). sre walks an alternation one branch at a time, so trying all of the
    rules' alternatives at every candidate position would cost ten times more. Patterns whose
    first characters are unknown are searched as one union over the whole text.
    """

    def __init__(self, words: Iterable[str], patterns: Iterable[str]) -> None:
        self._words: dict[str, list[str]] = {}
        self._patterns: dict[str, list[str]] = {}
        anywhere = []
        for word in words:
            self._words.setdefault(word[0], []).append(word)
        for pattern in patterns:
            chars = _first_chars(pattern)
            if chars is None:
                anywhere.append(pattern)
                continue
            for char in chars:
                self._patterns.setdefault(char, []).append(pattern)
        starts = sorted(set(self._words) | set(self._patterns))
        self._gate = re.compile("[" + "".join(re.escape(c) for c in starts) + "]") if starts else None
        self._anywhere = re.compile("|".join(f"(?:{p})" for p in anywhere)) if anywhere else None
        self._by_char: dict[str, re.Pattern[str]] = {}

    def _for_char(self, char: str) -> re.Pattern[str]:
        compiled = self._by_char.get(char)
        if compiled is None:
            parts = [f"(?:{p})" for p in self._patterns.get(char, ())]
            words = self._words.get(char)
            if words:
                parts.insert(0, _trie_regex(words))
            compiled = self._by_char[char] = re.compile("|".join(parts))
        return compiled

    def search(self, view: str) -> bool:
        """Whether some rule (before exceptions and domains) matches in ``view``."""
        if self._anywhere is not None and self._anywhere.search(view) is not None:
            return True
        if self._gate is None:
            return False
        by_char = self._by_char
        for start in self._gate.finditer(view):
            pos = start.start()
            char = view[pos]
            regex = by_char.get(char) or self._for_char(char)
            if regex.match(view, pos) is not None:
                return True
        return False


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    matcher: re.Pattern[str] | None
    exception: re.Pattern[str] | None


def _rule_source(rule: Rule) -> str | None:
    """The regex source of one rule: its lexicon trie and its patterns."""
    parts = []
    words = [_fold(w) for w in rule.lexicon]
    if words:
        parts.append(_trie_regex(words))
    parts += [f"(?:{p})" for p in rule.patterns]
    return "|".join(parts) if parts else None


# ------------------------------------------------------------------------------- the checker


class ComplianceChecker:
    """Finds compliance violations in guide messages and reply suggestions.

    Args:
        rules: the rules; ids must be unique and each ``pii`` kind may belong to one rule.

    Raises:
        ConfigError: a rule that cannot be compiled (the message names the rule).

    Example:
        >>> checker = ComplianceChecker.from_file()
        >>> [(h.kind, h.start, h.end) for h in checker.check("加我私人微信转账便宜50")]
        [('private_payment', 2, 8)]
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
            for kind in rule.pii:
                if kind in pii_owner:
                    raise ConfigError(
                        f"rule {rule.id!r}: pii kind {kind!r} is already checked by rule "
                        f"{pii_owner[kind]!r}; list each kind in one rule only"
                    )
                pii_owner[kind] = rule.id
            source = _rule_source(rule)
            try:
                matcher = re.compile(source) if source else None
                exception = (
                    re.compile("|".join(f"(?:{p})" for p in rule.exceptions))
                    if rule.exceptions
                    else None
                )
            except re.error as exc:
                raise ConfigError(f"rule {rule.id!r}: invalid regular expression: {exc}") from exc
            compiled.append(_Compiled(rule, matcher, exception))
        self._compiled = tuple(compiled)
        self._prefilter = _Prefilter(
            (_fold(w) for r in self._rules for w in r.lexicon),
            (p for r in self._rules for p in r.patterns),
        )
        self._pii_rule = {kind: self._by_id(rule_id) for kind, rule_id in pii_owner.items()}
        self._for_domain: dict[str | None, tuple[tuple[_Compiled, ...], frozenset[str]]] = {}

    def _by_id(self, rule_id: str) -> _Compiled:
        return next(c for c in self._compiled if c.rule.id == rule_id)

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

    def _active(self, domain: str | None) -> tuple[tuple[_Compiled, ...], frozenset[str]]:
        """The text rules and the PII kinds that apply to ``domain`` (cached per domain)."""
        active = self._for_domain.get(domain)
        if active is None:
            text_rules = tuple(
                c for c in self._compiled if c.matcher is not None and c.rule.applies_to(domain)
            )
            pii = frozenset(k for k, c in self._pii_rule.items() if c.rule.applies_to(domain))
            active = self._for_domain[domain] = (text_rules, pii)
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
        text_rules, pii_kinds = self._active(domain)
        found: list[tuple[int, int, Rule]] = []
        if text_rules and self._prefilter.search(view):
            for compiled in text_rules:
                assert compiled.matcher is not None
                pairs = [m.span() for m in compiled.matcher.finditer(view)]
                if pairs:
                    found += _kept(compiled, view, pairs)
        pii: list[tuple[str, int, int]] = []
        if pii_kinds:
            pii = _pii_spans(view)
            by_rule: dict[str, tuple[_Compiled, list[tuple[int, int]]]] = {}
            for k, s, e in pii:
                if k in pii_kinds:
                    owner = self._pii_rule[k]
                    by_rule.setdefault(owner.rule.id, (owner, []))[1].append((s, e))
            for owner, pairs in by_rule.values():
                found += _kept(owner, view, pairs)
        if not found:
            return []
        chosen = _non_overlapping(found)
        if index is not None:
            chosen = [(index[s], index[e - 1] + 1, rule) for s, e, rule in chosen]
            pii = [(k, index[s], index[e - 1] + 1) for k, s, e in pii]
        return [
            Hit(
                rule_id=rule.id,
                kind=rule.kind,
                severity=rule.severity,
                start=start,
                end=end,
                excerpt=_excerpt(text, start, end, pii),
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
    """The non-empty ``spans`` of one rule that overlap none of its exception matches."""
    exceptions = (
        [m.span() for m in compiled.exception.finditer(view)] if compiled.exception else []
    )
    return [
        (start, end, compiled.rule)
        for start, end in spans
        if start < end and not any(s < end and start < e for s, e in exceptions)
    ]


def _non_overlapping(found: list[tuple[int, int, Rule]]) -> list[tuple[int, int, Rule]]:
    """Non-overlapping hits sorted by start.

    Overlapping spans of one kind merge into one span cited by the more severe (then longer)
    rule ("用了保证白" + "白两个度" -> "用了保证白两个度"); across kinds the most severe, then longest,
    then leftmost span is kept.
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
    kept: list[tuple[int, int, Rule]] = []
    for start, end, rule in order:
        if all(end <= s or e <= start for s, e, _ in kept):
            kept.append((start, end, rule))
    return sorted(kept, key=lambda f: f[0])


def _excerpt(text: str, start: int, end: int, pii: list[tuple[str, int, int]]) -> str:
    """The span in 【】 with context; personal data (``pii`` spans of ``text``) as placeholders."""
    lo, hi = max(0, start - _CONTEXT), min(len(text), end + _CONTEXT)
    for _, s, e in pii:  # never cut a value in half: a half phone number is still half a leak
        if s < lo < e:
            lo = s
        if s < hi < e:
            hi = e
    cuts = sorted({lo, start, end, hi} | {p for _, s, e in pii for p in (s, e) if lo < p < hi})
    out = ["…" if lo > 0 else ""]
    shown: set[int] = set()  # values already shown as their placeholder
    for a, b in zip(cuts, cuts[1:], strict=False):
        if a == start:
            out.append("【")
        value = next((i for i, (_, s, e) in enumerate(pii) if s <= a and b <= e), None)
        if value is None:
            out.append(text[a:b])
        elif value not in shown:  # a value cut by the hit's bracket is shown once
            shown.add(value)
            out.append(PII_PLACEHOLDERS[pii[value][0]])
        if b == end:
            out.append("】")
    out.append("…" if hi < len(text) else "")
    return "".join(out)


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

    def fail(what: str, key: str | None = None, item: int | None = None) -> ConfigError:
        return ConfigError(f"{source} line {_line(node, key, item)}: rule {rid!r}: {what}")

    for key in raw:
        if key not in _RULE_KEYS:
            close = difflib.get_close_matches(str(key), _RULE_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(f"unknown key {key!r}{hint}; valid keys: {', '.join(_RULE_KEYS)}", key)
    kind = raw.get("kind")
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise fail(f"unknown kind {kind!r}{hint}; valid kinds: {', '.join(KINDS)}", "kind")
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        raise fail(
            f"unknown severity {severity!r}; valid severities: {', '.join(SEVERITIES)}", "severity"
        )
    explanation = raw.get("explanation")
    if not isinstance(explanation, str) or not explanation.strip() or "\n" in explanation.strip():
        raise fail("'explanation' must be one non-empty line of text", "explanation")

    def strings(key: str, flatten: bool = False) -> tuple[str, ...]:
        value = raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise fail(f"{key!r} must be a list, got {type(value).__name__}", key)
        out: list[str] = []
        for i, item in enumerate(value):
            items = item if flatten and isinstance(item, list) else [item]
            for one in items:
                if not isinstance(one, str) or not one:
                    raise fail(f"{key}[{i}] must be a non-empty string, got {one!r}", key, i)
                out.append(one)
        return tuple(out)

    lexicon = strings("lexicon")
    patterns = strings("patterns")
    exceptions = strings("exceptions", flatten=True)
    pii = strings("pii")
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
    domains_raw = raw.get("domains")
    domains: frozenset[str] | None = None
    if domains_raw is not None:
        if not isinstance(domains_raw, list) or not domains_raw:
            raise fail("'domains' must be a non-empty list such as [beauty, baby]", "domains")
        for i, d in enumerate(domains_raw):
            if not isinstance(d, str) or _DOMAIN.fullmatch(d) is None:
                raise fail(f"domain {d!r} is not a lowercase ASCII id", "domains", i)
        domains = frozenset(domains_raw)
    return Rule(
        id=rid,
        kind=kind,
        severity=severity,
        explanation=explanation.strip(),
        lexicon=lexicon,
        patterns=patterns,
        pii=pii,
        exceptions=exceptions,
        domains=domains,
    )


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
    try:
        from re import _constants as sre  # type: ignore[attr-defined]
        from re import _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(regex)
    except Exception:  # an internal module; without it the check is skipped
        return False
    repeats = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None))

    def walk(items: Any) -> bool:
        for op, av in items:
            if op in repeats:
                if av[1] is sre.MAXREPEAT or walk(av[2]):
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
