"""Scorecards: what a guide's (or a store's) score reports add up to over a period.

A scorecard is built in one pass over score reports (the dicts of
:mod:`copilot.scoring.report`, e.g. read back from a ``copilot score`` output), keeping per entity
only running sums, per-period sums and a few best/worst candidates, so a day of reports never has
to fit in memory::

    cards = build_scorecards(read_reports("scores.jsonl"), by="guide", since=date(2026, 3, 1))
    for entry in leaderboard(cards):
        print(entry.rank, entry.id, entry.overall)

Averages ignore what is missing: a conversation without an overall score does not count in the
overall average, and a dimension that did not apply (``score: null``) does not count in that
dimension's average. Time is the conversation's own wall clock (``started_at`` as written in the
report, usually China time): a conversation belongs to the day, week (starting Monday) or month of
its first message. Conversations without timestamps are kept when no ``since``/``until`` is given
and counted as ``n_undated``; a period filter drops them.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from copilot.errors import InputError
from copilot.scoring.rubric import DIMENSIONS

__all__ = [
    "UNKNOWN_ID",
    "ConversationRef",
    "DimensionSummary",
    "FlagCounts",
    "GroupBy",
    "LeaderboardEntry",
    "Period",
    "Scorecard",
    "TrendPoint",
    "build_scorecards",
    "leaderboard",
    "parse_started_at",
    "scorecard",
]

GroupBy = Literal["guide", "store"]
Period = Literal["day", "week", "month"]

UNKNOWN_ID = "(unknown)"
"""The entity id of reports without a guide (or store) id."""

_ID_KEY: dict[str, str] = {"guide": "guide_id", "store": "store_id"}
_RELATED_KEY: dict[str, str] = {"guide": "store_id", "store": "guide_id"}
_PERIODS = ("day", "week", "month")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (dates as ISO strings)."""
        return self.model_dump(mode="json")


class DimensionSummary(_Model):
    """One quality dimension over an entity's conversations.

    Attributes:
        name: the display name (Chinese) from the reports, else the id.
        mean: average score (0-100) over the conversations it applied to; ``None`` if none.
        n: how many conversations it applied to.
    """

    name: str
    mean: float | None
    n: int


class TrendPoint(_Model):
    """One period of the trend: its first day, how many conversations, their average overall."""

    period_start: date
    n: int
    overall: float | None


class FlagCounts(_Model):
    """Flags raised in an entity's conversations.

    Attributes:
        total: all flags.
        per_conversation: ``total / n``.
        conversations: conversations with at least one flag.
        by_kind: e.g. ``{"compliance": 3, "timing": 7}``, most frequent first.
        by_rule: e.g. ``{"unanswered": 5, "absolute_claim": 2}``, most frequent first.
        by_severity: e.g. ``{"high": 1, "medium": 9}``.
    """

    total: int
    per_conversation: float
    conversations: int
    by_kind: dict[str, int]
    by_rule: dict[str, int]
    by_severity: dict[str, int]


class ConversationRef(_Model):
    """A conversation singled out as one of an entity's best or worst, with why.

    Attributes:
        reasons: for a worst conversation its lowest dimensions with their first piece of
            evidence (and any high-severity flag); for a best one its strongest dimensions.
    """

    conversation_id: str
    overall: float
    started_at: str | None
    converted: bool | None
    reasons: list[str]


class Scorecard(_Model):
    """The scorecard of one guide or store.

    Attributes:
        by: ``"guide"`` or ``"store"``.
        id: the guide or store id (:data:`UNKNOWN_ID` for reports without one).
        n: conversations counted; ``n_scored`` of them have an overall score.
        n_undated: conversations without a timestamp (kept only when no period filter is given).
        since, until: the period filter (ISO), when given.
        first_at, last_at: the earliest and latest ``started_at`` seen.
        period: the trend's period (day, week or month).
        overall: average overall score.
        dimensions: dimension id -> :class:`DimensionSummary`, in report order.
        win_probability: average predicted win probability.
        n_outcomes, n_converted, conversion_rate: over conversations with a known outcome;
            the rate is ``None`` when no outcome is known.
        flags: flag counts.
        trend: one point per period with conversations, oldest first.
        trend_slope: least-squares slope of the period averages, in score points per period
            (gaps count as periods); ``None`` with fewer than two periods.
        best, worst: the highest and lowest scoring conversations, best (worst) first; among
            equal scores the longer conversation first.
        related: the stores a guide worked in, or the guides of a store.
    """

    by: GroupBy
    id: str
    n: int
    n_scored: int
    n_undated: int
    since: str | None
    until: str | None
    first_at: str | None
    last_at: str | None
    period: Period
    overall: float | None
    dimensions: dict[str, DimensionSummary]
    win_probability: float | None
    n_outcomes: int
    n_converted: int
    conversion_rate: float | None
    flags: FlagCounts
    trend: list[TrendPoint]
    trend_slope: float | None
    best: list[ConversationRef]
    worst: list[ConversationRef]
    related: list[str]


class LeaderboardEntry(_Model):
    """One row of :func:`leaderboard`: the rank (ties share one) and the headline numbers."""

    rank: int
    id: str
    n: int
    overall: float | None
    dimensions: dict[str, float | None]
    conversion_rate: float | None
    flags: int
    flags_per_conversation: float
    trend_slope: float | None


# --------------------------------------------------------------------------- time


def parse_started_at(value: Any, conversation_id: Any = None) -> datetime | None:
    """A report's ``started_at`` as a datetime.

    Args:
        value: ISO 8601 text (``Z`` allowed), a datetime, or ``None`` / ``""`` (no timestamp).
        conversation_id: named in the error message.

    Returns:
        The datetime (aware when the text carries an offset), or ``None``.

    Raises:
        InputError: a value that is not an ISO 8601 time.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    where = f" of conversation {conversation_id!r}" if conversation_id is not None else ""
    raise InputError(
        f"started_at{where} is {value!r}, not an ISO 8601 time such as "
        "'2026-03-08T10:01:02+08:00'; re-create the scores with `copilot score`"
    )


def _period_start(day: date, period: Period) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _period_ordinal(start: date, period: Period) -> int:
    """A number per period such that consecutive periods differ by one."""
    if period == "month":
        return start.year * 12 + start.month - 1
    if period == "week":
        return start.toordinal() // 7
    return start.toordinal()


def _sort_key(ts: datetime) -> datetime:
    """Orders aware and naive times together (naive ones taken as UTC)."""
    return ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Window:
    """The since/until filter: a date bound compares the conversation's own calendar day (both
    ends inclusive); a datetime bound compares instants when both sides carry a time zone, else
    wall clocks (``since`` inclusive, ``until`` exclusive)."""

    since: date | datetime | None
    until: date | datetime | None

    @property
    def active(self) -> bool:
        return self.since is not None or self.until is not None

    def contains(self, ts: datetime) -> bool:
        if self.since is not None and _compare(ts, self.since) < 0:
            return False
        if self.until is None:
            return True
        c = _compare(ts, self.until)
        return c <= 0 if not isinstance(self.until, datetime) else c < 0


def _compare(ts: datetime, bound: date | datetime) -> int:
    if not isinstance(bound, datetime):
        day = ts.date()
        return (day > bound) - (day < bound)
    if (ts.tzinfo is None) != (bound.tzinfo is None):
        ts, bound = ts.replace(tzinfo=None), bound.replace(tzinfo=None)
    return (ts > bound) - (ts < bound)


def _iso(bound: date | datetime | None) -> str | None:
    return None if bound is None else bound.isoformat()


# --------------------------------------------------------------------------- accumulation


def _mean(total: float, n: int, digits: int = 1) -> float | None:
    return round(total / n, digits) if n else None


# What supervisors read for a flag: the dashboard's names (server/ui/static/app.js FLAG_NAMES).
FLAG_NAMES = {
    "unanswered": "超时未回复",
    "slow_reply": "回复过慢",
    "absolute_claim": "绝对化用语",
    "efficacy_claim": "功效/医疗宣称",
    "private_payment": "私下交易",
    "guaranteed_result": "承诺效果",
    "data_exposure": "泄露个人信息",
    "rude": "不当言辞",
    "compliance": "合规风险",
    "timing": "响应问题",
}


def flag_name(flag: Mapping[str, Any]) -> str:
    """A flag's name in Chinese: its rule's, else its kind's (a brand's own rule id as is)."""
    rule, kind = str(flag.get("rule") or ""), str(flag.get("kind") or "")
    if rule in FLAG_NAMES:
        return FLAG_NAMES[rule]
    if rule and not rule.isascii():  # a brand named its rule in Chinese
        return rule
    return FLAG_NAMES.get(kind) or rule or kind or "风险"


def _reasons(report: Mapping[str, Any], worst: bool, k: int = 2) -> list[str]:
    """Why a conversation is among the worst (lowest dimensions, first evidence) or the best."""
    dims = report.get("dimensions") or {}
    scored = [
        (float(entry["score"]), d, entry)
        for d, entry in dims.items()
        if isinstance(entry, Mapping) and entry.get("score") is not None
    ]
    reasons: list[str] = []
    if worst:
        scored.sort(key=lambda item: (item[0], item[1]))
        for score, d, entry in scored[:k]:
            if score >= 100:
                break
            text = f"{entry.get('name') or d} {score:.0f}"
            evidence = entry.get("evidence") or []
            if evidence and isinstance(evidence[0], Mapping) and evidence[0].get("reason"):
                first = evidence[0]
                where = first.get("message_index")
                text += f": {first['reason']}" + (f" (#{where})" if where is not None else "")
            reasons.append(text)
        for flag in report.get("flags") or []:
            if flag.get("severity") == "high":
                excerpt = f" 「{flag['excerpt']}」" if flag.get("excerpt") else ""
                reasons.append(f"{flag_name(flag)} (#{flag.get('message_index', '?')}){excerpt}")
                break
    else:
        scored.sort(key=lambda item: (-item[0], item[1]))
        reasons = [f"{entry.get('name') or d} {score:.0f}" for score, d, entry in scored[:k]]
    return reasons


@dataclass
class _TopK:
    """The ``k`` smallest items by key, in O(k) memory: append, and sort-and-cut when full.

    ``bound`` is the largest key of ``k`` items known to be kept so far (``None`` until there are
    ``k``): a key at or above it can never make the final ``k``.
    """

    k: int
    items: list[tuple[tuple[Any, ...], ConversationRef]] = field(default_factory=list)
    bound: tuple[Any, ...] | None = None

    def would_keep(self, key: tuple[Any, ...]) -> bool:
        return self.bound is None or key < self.bound

    def push(self, key: tuple[Any, ...], ref: ConversationRef) -> None:
        self.items.append((key, ref))
        if self.bound is None and len(self.items) == self.k:
            self.bound = max(item[0] for item in self.items)
        elif len(self.items) > 2 * self.k + 16:
            self._cut()

    def _cut(self) -> None:
        self.items.sort(key=lambda item: item[0])
        del self.items[self.k :]
        if len(self.items) == self.k:
            self.bound = self.items[-1][0]

    def result(self) -> list[ConversationRef]:
        self._cut()
        return [ref for _, ref in self.items]


@dataclass
class _Acc:
    """Running sums of one entity."""

    best: _TopK
    worst: _TopK
    n: int = 0
    n_undated: int = 0
    overall_sum: float = 0.0
    overall_n: int = 0
    win_sum: float = 0.0
    win_n: int = 0
    n_outcomes: int = 0
    n_converted: int = 0
    flagged: int = 0
    first: tuple[datetime, str] | None = None
    last: tuple[datetime, str] | None = None
    dim_sum: dict[str, float] = field(default_factory=dict)
    dim_n: dict[str, int] = field(default_factory=dict)
    periods: dict[date, list[float]] = field(default_factory=dict)  # start -> [n, sum, scored]
    kinds: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    related: set[str] = field(default_factory=set)

    def add(
        self,
        report: Mapping[str, Any],
        ts: datetime | None,
        raw_ts: str | None,
        period: Period,
        names: dict[str, str],
        related: Any,
    ) -> None:
        self.n += 1
        overall = report.get("overall")
        overall = None if overall is None or _is_nan(overall) else float(overall)
        if overall is not None:
            self.overall_sum += overall
            self.overall_n += 1
        if related is not None:
            self.related.add(str(related))
        win = report.get("win_probability")
        if win is not None and not _is_nan(win):
            self.win_sum += float(win)
            self.win_n += 1
        converted = report.get("converted")
        if converted is not None:
            self.n_outcomes += 1
            self.n_converted += bool(converted)
        for d, entry in (report.get("dimensions") or {}).items():
            if isinstance(entry, dict):
                score = entry.get("score")
                if d not in names and entry.get("name"):
                    names[d] = str(entry["name"])
            else:  # a bare score
                score = entry
            if score is not None and not _is_nan(score):
                score = float(score)
                self.dim_sum[d] = self.dim_sum.get(d, 0.0) + score
                self.dim_n[d] = self.dim_n.get(d, 0) + 1
        flags = report.get("flags") or []
        if flags:
            self.flagged += 1
        for flag in flags:
            self.kinds[str(flag.get("kind", "unknown"))] += 1
            self.rules[str(flag.get("rule", "unknown"))] += 1
            if flag.get("severity"):
                self.severities[str(flag["severity"])] += 1
        if ts is None:
            self.n_undated += 1
        else:
            key = _sort_key(ts)
            if self.first is None or key < self.first[0]:
                self.first = (key, str(raw_ts))
            if self.last is None or key > self.last[0]:
                self.last = (key, str(raw_ts))
            bucket = self.periods.setdefault(_period_start(ts.date(), period), [0, 0.0, 0])
            bucket[0] += 1
            if overall is not None:
                bucket[1] += overall
                bucket[2] += 1
        if overall is not None:
            self._rank(report, overall, raw_ts)

    def _rank(self, report: Mapping[str, Any], overall: float, raw_ts: str | None) -> None:
        cid = str(report.get("conversation_id"))
        # Among equal scores the longer conversation is the better example, then the id decides.
        length = -int(report.get("n_messages") or 0)
        worst_key, best_key = (overall, length, cid), (-overall, length, cid)
        for top, key, worst in ((self.worst, worst_key, True), (self.best, best_key, False)):
            if top.k and top.would_keep(key):
                top.push(
                    key,
                    ConversationRef(
                        conversation_id=cid,
                        overall=overall,
                        started_at=raw_ts,
                        converted=report.get("converted"),
                        reasons=_reasons(report, worst=worst),
                    ),
                )

    def card(
        self,
        by: GroupBy,
        entity: str,
        window: _Window,
        period: Period,
        names: dict[str, str],
    ) -> Scorecard:
        dims = [d for d in DIMENSIONS if d in self.dim_n or d in names]
        dims += sorted((set(self.dim_n) | set(names)) - set(DIMENSIONS))
        trend = [
            TrendPoint(period_start=start, n=int(b[0]), overall=_mean(b[1], int(b[2])))
            for start, b in sorted(self.periods.items())
        ]
        return Scorecard(
            by=by,
            id=entity,
            n=self.n,
            n_scored=self.overall_n,
            n_undated=self.n_undated,
            since=_iso(window.since),
            until=_iso(window.until),
            first_at=self.first[1] if self.first else None,
            last_at=self.last[1] if self.last else None,
            period=period,
            overall=_mean(self.overall_sum, self.overall_n),
            dimensions={
                d: DimensionSummary(
                    name=names.get(d, d),
                    mean=_mean(self.dim_sum.get(d, 0.0), self.dim_n.get(d, 0)),
                    n=self.dim_n.get(d, 0),
                )
                for d in dims
            },
            win_probability=_mean(self.win_sum, self.win_n, 3),
            n_outcomes=self.n_outcomes,
            n_converted=self.n_converted,
            conversion_rate=_mean(self.n_converted, self.n_outcomes, 4),
            flags=FlagCounts(
                total=sum(self.kinds.values()),
                per_conversation=round(sum(self.kinds.values()) / self.n, 3),
                conversations=self.flagged,
                by_kind=dict(self.kinds.most_common()),
                by_rule=dict(self.rules.most_common()),
                by_severity=dict(self.severities.most_common()),
            ),
            trend=trend,
            trend_slope=_slope(trend, period),
            best=self.best.result(),
            worst=self.worst.result(),
            related=sorted(self.related),
        )


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _slope(trend: list[TrendPoint], period: Period) -> float | None:
    """Least-squares slope of the period averages against the period number."""
    points = [(_period_ordinal(p.period_start, period), p.overall) for p in trend]
    xy = [(float(x), y) for x, y in points if y is not None]
    if len(xy) < 2:
        return None
    mx = sum(x for x, _ in xy) / len(xy)
    my = sum(y for _, y in xy) / len(xy)
    sxx = sum((x - mx) ** 2 for x, _ in xy)
    return round(sum((x - mx) * (y - my) for x, y in xy) / sxx, 2)


def _did_you_mean(wanted: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(wanted, list(known), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


# --------------------------------------------------------------------------- public API


def build_scorecards(
    reports: Iterable[Mapping[str, Any]],
    by: GroupBy = "guide",
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    period: Period = "week",
    ids: Collection[str] | None = None,
    worst_k: int = 3,
    best_k: int = 3,
) -> list[Scorecard]:
    """Scorecards of every guide (or store) in one pass over score reports.

    Args:
        reports: score reports (:mod:`copilot.scoring.report` shape), any iterable; read once.
        by: group by ``"guide"`` (``guide_id``) or ``"store"`` (``store_id``).
        since: first day (a ``date``, inclusive) or instant (a ``datetime``, inclusive) to count.
        until: last day (a ``date``, inclusive) or instant (a ``datetime``, exclusive) to count.
        period: the trend's bucket: ``"day"``, ``"week"`` (from Monday) or ``"month"``.
        ids: only these guides (stores); each must occur in the reports.
        worst_k: how many lowest-scoring conversations each card lists.
        best_k: how many highest-scoring conversations each card lists.

    Returns:
        One :class:`Scorecard` per entity with conversations in the window, sorted by id (in the
        order of ``ids`` when given).

    Raises:
        InputError: an invalid option, a malformed ``started_at``, an id in ``ids`` that no report
            has (with a did-you-mean), or no report in the window.

    Example:
        >>> cards = build_scorecards(reports, by="store", since=date(2026, 3, 1), period="day")
        >>> cards[0].overall, cards[0].trend[-1].overall
    """
    _check_card_options(by, period, worst_k, best_k, since, until)
    window = _Window(since, until)
    wanted = None if ids is None else list(dict.fromkeys(ids))
    scan = _Scan(by, window, period, wanted, worst_k, best_k)
    for report in reports:
        scan.read(report)
    scan.check_found(wanted, since, until)
    accs = scan.accs
    order = [e for e in wanted if e in accs] if wanted else sorted(accs)
    return [accs[e].card(by, e, window, period, scan.names) for e in order]


def _check_card_options(
    by: str,
    period: str,
    worst_k: int,
    best_k: int,
    since: date | datetime | None,
    until: date | datetime | None,
) -> None:
    """Refuse an unknown grouping or period, a negative k, or a window that ends before it starts."""
    if by not in _ID_KEY:
        raise InputError(f"by must be 'guide' or 'store', got {by!r}")
    if period not in _PERIODS:
        raise InputError(f"period must be one of {', '.join(_PERIODS)}, got {period!r}")
    if worst_k < 0 or best_k < 0:
        raise InputError(f"worst_k and best_k must be >= 0, got {worst_k} and {best_k}")
    if since is not None and until is not None and _as_day(since) > _as_day(until):
        raise InputError(
            f"since ({since.isoformat()}) is after until ({until.isoformat()}); swap them"
        )


class _Scan:
    """One pass over the reports: an accumulator per entity in the window, and what the error
    messages need (every entity seen, the number of reports, the span of their dates)."""

    def __init__(
        self,
        by: GroupBy,
        window: _Window,
        period: Period,
        wanted: list[str] | None,
        worst_k: int,
        best_k: int,
    ) -> None:
        self.by = by
        self.window = window
        self.period = period
        self.wanted_set = None if wanted is None else set(wanted)
        self.worst_k = worst_k
        self.best_k = best_k
        self.key, self.related_key = _ID_KEY[by], _RELATED_KEY[by]
        self.accs: dict[str, _Acc] = {}
        self.names: dict[str, str] = {}
        self.seen: set[str] = set()
        self.total = 0
        self.span: list[datetime] = []  # [earliest, latest] of every dated report
        self.span_raw: list[str] = ["", ""]

    def read(self, report: Mapping[str, Any]) -> None:
        """Count one report, and add it to its entity's card when it is in the window."""
        self.total += 1
        entity = report.get(self.key)
        entity = UNKNOWN_ID if entity is None or entity == "" else str(entity)
        self.seen.add(entity)
        raw = report.get("started_at")
        ts = parse_started_at(raw, report.get("conversation_id"))
        if ts is not None:
            self._stretch_span(_sort_key(ts), str(raw))
        if self.window.active and (ts is None or not self.window.contains(ts)):
            return
        if self.wanted_set is not None and entity not in self.wanted_set:
            return
        acc = self.accs.get(entity)
        if acc is None:
            acc = self.accs[entity] = _Acc(best=_TopK(self.best_k), worst=_TopK(self.worst_k))
        acc.add(
            report,
            ts,
            None if raw is None else str(raw),
            self.period,
            self.names,
            report.get(self.related_key),
        )

    def _stretch_span(self, k: datetime, raw: str) -> None:
        span, span_raw = self.span, self.span_raw
        if not span:
            self.span, self.span_raw = [k, k], [raw, raw]
        elif k < span[0]:
            span[0], span_raw[0] = k, raw
        elif k > span[1]:
            span[1], span_raw[1] = k, raw

    def check_found(
        self,
        wanted: list[str] | None,
        since: date | datetime | None,
        until: date | datetime | None,
    ) -> None:
        """Refuse no report at all, a wanted id no report has, or no report in the window."""
        by, seen, total = self.by, self.seen, self.total
        if total == 0:
            raise InputError(
                "no score reports to summarise; score conversations with `copilot score`"
            )
        for entity in wanted or []:
            if entity not in seen:
                raise InputError(
                    f"no {by} {entity!r} in the reports{_did_you_mean(entity, seen)}; "
                    f"{len(seen):,} {by}s are there"
                )
        if not self.accs:
            which = f" of {by} {', '.join(repr(i) for i in wanted)}" if wanted else ""
            spanned = (
                f"; the reports span {self.span_raw[0]} to {self.span_raw[1]}"
                if self.span
                else "; no report has a started_at"
            )
            raise InputError(
                f"no conversations{which} between {_iso(since) or 'the start'} and "
                f"{_iso(until) or 'the end'} ({total:,} reports read){spanned}; widen --since/--until"
            )


def _as_day(bound: date | datetime) -> date:
    return bound.date() if isinstance(bound, datetime) else bound


def scorecard(
    reports: Iterable[Mapping[str, Any]],
    guide_id: str | None = None,
    store_id: str | None = None,
    **options: Any,
) -> Scorecard:
    """The scorecard of one guide or one store (give exactly one of the two ids).

    Args:
        reports: score reports, read once.
        guide_id: the guide to summarise.
        store_id: the store to summarise.
        **options: ``since``, ``until``, ``period``, ``worst_k``, ``best_k`` of
            :func:`build_scorecards`.

    Returns:
        The entity's :class:`Scorecard`.

    Raises:
        InputError: neither or both ids given, an unknown id (with a did-you-mean), or no
            conversation of it in the window.
    """
    if (guide_id is None) == (store_id is None):
        raise InputError("give exactly one of guide_id or store_id")
    by: GroupBy = "guide" if guide_id is not None else "store"
    entity = guide_id if guide_id is not None else store_id
    assert entity is not None
    return build_scorecards(reports, by=by, ids=[entity], **options)[0]


def leaderboard(
    scorecards: Iterable[Scorecard],
    key: str = "overall",
    min_n: int = 1,
) -> list[LeaderboardEntry]:
    """Rank scorecards, best first; equal values share a rank (1, 2, 2, 4).

    Args:
        scorecards: from :func:`build_scorecards`.
        key: ``"overall"``, ``"conversion_rate"``, ``"win_probability"`` or a dimension id.
            Higher is better; cards without a value rank last, unranked (rank 0).
        min_n: cards with fewer conversations are left out (small samples rank by luck).

    Returns:
        The leaderboard rows; ties keep the busier entity first, then the id.

    Raises:
        InputError: an unknown key.
    """
    cards = [c for c in scorecards if c.n >= min_n]
    dims = {d for c in cards for d in c.dimensions}
    valid = ("overall", "conversion_rate", "win_probability", *DIMENSIONS)
    if key not in valid and key not in dims:
        raise InputError(
            f"cannot rank by {key!r}{_did_you_mean(key, (*valid, *dims))}; "
            f"rank by one of {', '.join(valid)}"
        )

    def value(card: Scorecard) -> float | None:
        if key == "overall":
            return card.overall
        if key == "conversion_rate":
            return card.conversion_rate
        if key == "win_probability":
            return card.win_probability
        summary = card.dimensions.get(key)
        return summary.mean if summary else None

    cards.sort(key=lambda c: (value(c) is None, -(value(c) or 0.0), -c.n, c.id))
    rows: list[LeaderboardEntry] = []
    previous: float | None = None
    rank = 0
    for position, card in enumerate(cards, 1):
        v = value(card)
        if v is None:
            rank = 0
        elif v != previous:
            rank = position
        previous = v
        rows.append(
            LeaderboardEntry(
                rank=rank,
                id=card.id,
                n=card.n,
                overall=card.overall,
                dimensions={d: s.mean for d, s in card.dimensions.items()},
                conversion_rate=card.conversion_rate,
                flags=card.flags.total,
                flags_per_conversation=card.flags.per_conversation,
                trend_slope=card.trend_slope,
            )
        )
    return rows
