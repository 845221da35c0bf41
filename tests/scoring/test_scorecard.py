"""Scorecards from hand-made score reports: averages, trends, flags, outcomes, best and worst."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from copilot.errors import InputError
from copilot.scoring.scorecard import (
    UNKNOWN_ID,
    Scorecard,
    build_scorecards,
    leaderboard,
    parse_started_at,
    scorecard,
)
from tests.builders import make_report

CST = timezone(timedelta(hours=8))


def once(reports: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The reports as a stream that can be read only once (scorecards take one pass)."""
    yield from reports


def card_of(reports: list[dict[str, Any]], **options: Any) -> Scorecard:
    cards = build_scorecards(once(reports), **options)
    assert len(cards) == 1
    return cards[0]


def test_scorecard_averages_ignore_missing_scores() -> None:
    card = card_of(
        [
            make_report("c-1", {"responsiveness": 90.0, "objection_handling": None}, overall=80.0),
            make_report("c-2", {"responsiveness": 70.0, "objection_handling": 40.0}, overall=60.0),
            make_report("c-3", {"responsiveness": None, "objection_handling": None}, overall=None),
        ]
    )
    assert (card.n, card.n_scored) == (3, 2)
    assert card.overall == 70.0
    assert card.dimensions["responsiveness"].mean == 80.0
    assert card.dimensions["responsiveness"].n == 2
    assert card.dimensions["objection_handling"].mean == 40.0
    assert card.dimensions["objection_handling"].n == 1
    assert list(card.dimensions) == ["responsiveness", "objection_handling"]  # report order


@pytest.mark.parametrize(
    ("period", "starts", "slope"),
    [
        # Mon 2, Sun 8 | Mon 9 | (gap) | Mon 23 -> weeks 0, 1, 3
        ("week", ["2026-03-02", "2026-03-09", "2026-03-23"], 7.86),
        ("day", ["2026-03-02", "2026-03-08", "2026-03-09", "2026-03-23"], 1.35),
        ("month", ["2026-03-01"], None),
    ],
)
def test_scorecard_trend_buckets_by_period(
    period: str, starts: list[str], slope: float | None
) -> None:
    days_scores = [("2026-03-02", 50.0), ("2026-03-08", 60.0), ("2026-03-09", 70.0)]
    days_scores.append(("2026-03-23", 80.0))
    reports = [
        make_report(f"c-{i}", overall=score, started_at=f"{day}T10:00:00+08:00")
        for i, (day, score) in enumerate(days_scores)
    ]
    card = card_of(reports, period=period)
    assert [p.period_start.isoformat() for p in card.trend] == starts
    assert sum(p.n for p in card.trend) == 4
    assert card.trend_slope == slope
    if period == "week":
        assert [p.overall for p in card.trend] == [55.0, 70.0, 80.0]
        # least squares through (0, 55), (1, 70), (3, 80): the empty week counts
    assert card.first_at == "2026-03-02T10:00:00+08:00"
    assert card.last_at == "2026-03-23T10:00:00+08:00"


def test_scorecard_counts_flags_by_kind_rule_and_severity() -> None:
    flag = {"message_index": 2, "excerpt": "最好的"}
    reports = [
        make_report(
            "c-1",
            flags=[
                {**flag, "kind": "compliance", "rule": "absolute_claim", "severity": "high"},
                {**flag, "kind": "timing", "rule": "unanswered", "severity": "medium"},
            ],
        ),
        make_report(
            "c-2", flags=[{**flag, "kind": "timing", "rule": "unanswered", "severity": "medium"}]
        ),
        make_report("c-3"),
    ]
    flags = card_of(reports).flags
    assert flags.total == 3 and flags.conversations == 2 and flags.per_conversation == 1.0
    assert flags.by_kind == {"timing": 2, "compliance": 1}
    assert list(flags.by_kind) == ["timing", "compliance"]  # most frequent first
    assert flags.by_rule == {"unanswered": 2, "absolute_claim": 1}
    assert flags.by_severity == {"medium": 2, "high": 1}


@pytest.mark.parametrize(
    ("outcomes", "rate", "n_outcomes"),
    [
        ([True, False, None, True], 0.6667, 3),
        ([None, None], None, 0),
        ([False], 0.0, 1),
    ],
)
def test_scorecard_conversion_rate_over_known_outcomes(
    outcomes: list[bool | None], rate: float | None, n_outcomes: int
) -> None:
    card = card_of([make_report(f"c-{i}", converted=c) for i, c in enumerate(outcomes)])
    assert card.conversion_rate == rate
    assert card.n_outcomes == n_outcomes


def test_scorecard_best_and_worst_in_order_with_reasons() -> None:
    reports = [
        make_report(
            f"c-{i:03d}",
            {"responsiveness": float(i), "closing": 100.0 - i / 2},
            overall=float(i),
            evidence={"responsiveness": f"第{i}条消息等了很久"},
        )
        for i in range(100)
    ]
    reports.reverse()  # arrival order must not matter
    card = card_of(reports, worst_k=3, best_k=2)
    assert [r.conversation_id for r in card.worst] == ["c-000", "c-001", "c-002"]
    assert [r.overall for r in card.worst] == [0.0, 1.0, 2.0]
    assert [r.conversation_id for r in card.best] == ["c-099", "c-098"]
    assert card.worst[1].reasons[0] == "responsiveness 1: 第1条消息等了很久 (#1)"
    assert card.best[0].reasons[0].startswith("responsiveness 99")


def test_scorecard_worst_reasons_name_high_severity_flags() -> None:
    high = {"kind": "compliance", "rule": "private_payment", "severity": "high"}
    report = make_report(
        "c-1", overall=30.0, flags=[{**high, "message_index": 4, "excerpt": "私下转账"}]
    )
    card = card_of([report])
    assert "私下交易 (#4) 「私下转账」" in card.worst[0].reasons
    # No English ids reach a supervisor: timing rules and compliance kinds are named in Chinese;
    # a brand's own rule id (not one we can name) stays as the brand wrote it.
    for flag, name in (
        ({"kind": "timing", "rule": "unanswered"}, "超时未回复 (#3)"),
        ({"kind": "compliance", "rule": "efficacy_claim"}, "功效/医疗宣称 (#3)"),
        ({"kind": "compliance", "rule": "品牌禁用词"}, "品牌禁用词 (#3)"),
    ):
        flagged = make_report(
            "c-2", overall=30.0, flags=[{**flag, "severity": "high", "message_index": 3}]
        )
        assert name in card_of([flagged]).worst[0].reasons


def test_scorecard_ties_break_by_length_then_conversation_id() -> None:
    reports = [make_report(cid, overall=50.0, n_messages=4) for cid in ("c-b", "c-c", "c-a")]
    reports.append(make_report("c-z", overall=50.0, n_messages=12))
    card = card_of(reports, worst_k=2, best_k=3)
    assert [r.conversation_id for r in card.worst] == ["c-z", "c-a"]
    assert [r.conversation_id for r in card.best] == ["c-z", "c-a", "c-b"]


def _dated(day: str, cid: str, hour: int = 10) -> dict[str, Any]:
    return make_report(cid, started_at=f"{day}T{hour:02d}:00:00+08:00")


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (date(2026, 3, 3), None, ["c-3", "c-4", "c-5"]),
        (None, date(2026, 3, 3), ["c-2", "c-3"]),  # until is inclusive
        (date(2026, 3, 3), date(2026, 3, 3), ["c-3"]),
        # a datetime bound: since inclusive, until exclusive, compared as instants
        (datetime(2026, 3, 4, 3, tzinfo=UTC), None, ["c-5"]),
        (None, datetime(2026, 3, 4, 10, tzinfo=CST), ["c-2", "c-3"]),
    ],
)
def test_scorecard_since_until_filter(
    since: date | None, until: date | None, expected: list[str]
) -> None:
    reports = [
        _dated("2026-03-02", "c-2"),
        _dated("2026-03-03", "c-3"),
        _dated("2026-03-04", "c-4"),
        _dated("2026-03-04", "c-5", hour=11),
        make_report("c-undated", started_at=None),
    ]
    card = card_of(reports, since=since, until=until, worst_k=10)
    assert sorted(r.conversation_id for r in card.worst) == expected
    assert card.n == len(expected) and card.n_undated == 0


def test_scorecard_day_is_the_conversations_own_calendar_day() -> None:
    # 01:00 in China on 3 March is still 2 March in UTC; the conversation belongs to 3 March.
    late = make_report("c-1", started_at="2026-03-03T01:00:00+08:00")
    with pytest.raises(InputError, match="no conversations"):
        build_scorecards([late], until=date(2026, 3, 2))
    assert card_of([late], since=date(2026, 3, 3)).n == 1


def test_scorecard_keeps_undated_reports_without_a_filter() -> None:
    card = card_of([_dated("2026-03-02", "c-1"), make_report("c-2", started_at=None)])
    assert card.n == 2 and card.n_undated == 1
    assert [p.n for p in card.trend] == [1]


def test_scorecards_group_by_store() -> None:
    reports = [
        make_report("c-1", guide_id="g-1", store_id="s-1", overall=80.0),
        make_report("c-2", guide_id="g-2", store_id="s-1", overall=60.0),
        make_report("c-3", guide_id="g-2", store_id="s-2", overall=40.0),
        make_report("c-4", guide_id="g-3", store_id=None, overall=10.0),
    ]
    stores = build_scorecards(once(reports), by="store")
    assert [(c.id, c.n, c.overall) for c in stores] == [
        (UNKNOWN_ID, 1, 10.0),
        ("s-1", 2, 70.0),
        ("s-2", 1, 40.0),
    ]
    assert stores[1].related == ["g-1", "g-2"]
    guides = build_scorecards(once(reports), by="guide")
    assert [(c.id, c.related) for c in guides][1] == ("g-2", ["s-1", "s-2"])


def test_scorecard_one_entity_and_did_you_mean() -> None:
    reports = [make_report("c-1", guide_id="g-12"), make_report("c-2", guide_id="g-7")]
    assert scorecard(once(reports), guide_id="g-7").id == "g-7"
    assert scorecard(once(reports), store_id="s-1").n == 2
    with pytest.raises(InputError, match=r"no guide 'g-13' in the reports \(did you mean 'g-12'"):
        scorecard(once(reports), guide_id="g-13")
    with pytest.raises(InputError, match="exactly one"):
        scorecard(once(reports))


def test_scorecard_ids_keep_the_requested_order() -> None:
    reports = [make_report(f"c-{g}", guide_id=g) for g in ("g-1", "g-2", "g-3")]
    cards = build_scorecards(once(reports), ids=["g-3", "g-1"])
    assert [c.id for c in cards] == ["g-3", "g-1"]


@pytest.mark.parametrize(
    ("reports", "options", "message"),
    [
        ([], {}, "no score reports to summarise"),
        (
            [make_report(started_at="2026-03-02T10:00:00+08:00")],
            {"since": date(2026, 4, 1)},
            "the reports span 2026-03-02T10:00:00\\+08:00 to 2026-03-02T10:00:00\\+08:00",
        ),
        ([make_report()], {"since": date(2026, 4, 2), "until": date(2026, 4, 1)}, "swap them"),
        ([make_report()], {"period": "year"}, "period must be one of day, week, month"),
        ([make_report()], {"by": "region"}, "by must be 'guide' or 'store'"),
        ([make_report(started_at="yesterday")], {}, "not an ISO 8601 time"),
    ],
)
def test_scorecard_explains_bad_input(
    reports: list[dict[str, Any]], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        build_scorecards(once(reports), **options)


def test_scorecard_to_dict_is_json() -> None:
    card = card_of([make_report(converted=True)])
    data = json.loads(json.dumps(card.to_dict()))
    assert data["trend"][0]["period_start"] == "2026-03-02"
    assert data["conversion_rate"] == 1.0 and data["by"] == "guide"


def test_leaderboard_ranks_with_ties_and_min_n() -> None:
    reports = [
        make_report("c-1", guide_id="g-a", overall=70.0),
        make_report("c-2", guide_id="g-b", overall=90.0),
        make_report("c-3", guide_id="g-b", overall=50.0),  # g-b: 70 over two conversations
        make_report("c-4", guide_id="g-c", overall=95.0),
        make_report("c-5", guide_id="g-d", overall=None, scores={}),
    ]
    cards = build_scorecards(once(reports))
    rows = leaderboard(cards)
    assert [(r.rank, r.id) for r in rows] == [(1, "g-c"), (2, "g-b"), (2, "g-a"), (0, "g-d")]
    assert [r.id for r in leaderboard(cards, min_n=2)] == ["g-b"]
    by_dim = leaderboard(cards, key="closing")
    assert by_dim[0].dimensions["closing"] == 60.0
    with pytest.raises(InputError, match="did you mean 'closing'"):
        leaderboard(cards, key="closng")


def test_parse_started_at_accepts_iso_and_datetimes() -> None:
    assert parse_started_at("2026-03-02T10:00:00Z") == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert parse_started_at(None) is None
    stamp = datetime(2026, 3, 2, 10)
    assert parse_started_at(stamp) is stamp
