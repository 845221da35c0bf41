"""Storage: migrations, conversations with reports and flags, lists, scopes, suggestions and
feedback, script states; every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from copilot.errors import ConfigError, ForbiddenError, InputError, NotFoundError
from copilot.schema import Conversation
from copilot.scoring.scorecard import build_scorecards
from server.auth import Principal
from server.db import (
    Base,
    acceptance_by_guide,
    acceptance_by_script,
    bundle_state,
    feedback_version,
    get_conversation,
    iter_reports,
    judgements_by_script,
    list_conversations,
    make_engine,
    make_session_factory,
    migrate,
    record_feedback,
    record_suggestions,
    script_states,
    set_bundle_state,
    set_script_state,
    store_script_states,
    upsert_conversations,
)
from server.db.models import ConversationRow, Feedback, FlagRow, MessageRow
from tests.builders import make_conversation, make_report

CST = timezone(timedelta(hours=8))
ADMIN = Principal(key_id=1, role="admin")
UNANSWERED = {"kind": "timing", "rule": "unanswered", "severity": "medium", "message_index": 0}
ABSOLUTE = {"kind": "compliance", "rule": "absolute_claim", "severity": "high", "message_index": 1}
PERSONAL = {"kind": "compliance", "rule": "personal_info", "severity": "high", "message_index": 1}


def pair(
    cid: str,
    *,
    guide: str = "g-1",
    store: str = "s-1",
    overall: float | None = 70.0,
    started_at: str | None = "2026-03-02T10:00:00+08:00",
    flags: tuple[dict[str, Any], ...] = (),
    turns: list[tuple[str, str]] | None = None,
    **fields: Any,
) -> tuple[Conversation, dict[str, Any]]:
    """A conversation and a hand-made report that agrees with it."""
    conversation = make_conversation(cid, turns, guide_id=guide, store_id=store, **fields)
    report = make_report(
        cid,
        guide_id=guide,
        store_id=store,
        overall=overall,
        started_at=started_at,
        flags=list(flags),
        n_messages=len(conversation.messages),
    )
    return conversation, report


def count(session: Session, model: type[Base]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


# ----------------------------------------------------------------------------- engine, migrations


def test_migrations_match_the_models(engine: Engine) -> None:
    migrate(engine)  # a second run on an up-to-date database changes nothing
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert context.get_current_revision() == "0007"


def test_a_database_of_the_first_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from server.db import MIGRATIONS_DIR

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")  # a database made before server_state existed
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO script_states VALUES (4, 'pinned', 'key 1', '2026-01-01')")
        )
    migrate(engine)
    with make_session_factory(engine)() as session:
        assert script_states(session) == {4: "pinned"}  # kept
        assert bundle_state(session) is None  # and the new table is there
    engine.dispose()


def test_migrate_accepts_a_url_and_creates_the_sqlite_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "copilot.db"
    migrate(f"sqlite:///{path}")
    assert path.exists()


def test_sqlite_engine_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a valid URL; use sqlite:///"),
        ("postgres://u:secret@h/db", "names a driver that is not available"),
    ],
)
def test_make_engine_rejects_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        make_engine(url)
    assert "secret" not in str(caught.value)


def test_migrate_names_an_unreachable_database_without_its_password() -> None:
    with pytest.raises(ConfigError, match="cannot open the database") as caught:
        migrate("postgresql+psycopg://copilot:secret@127.0.0.1:1/copilot")
    assert "secret" not in str(caught.value) and "***" in str(caught.value)


# ----------------------------------------------------------------------------- conversations


def test_upsert_is_idempotent_and_replaces_messages_report_and_flags(session: Session) -> None:
    turns = [("customer", "在吗？这件有M码吗"), ("guide", "亲，在的～"), ("customer", "好的")]
    first = pair("c-1", overall=50.0, flags=(UNANSWERED, ABSOLUTE), turns=turns)
    assert upsert_conversations(session, [first]) == ["created"]
    session.commit()

    second = pair("c-1", overall=80.0, flags=(PERSONAL,), turns=turns[:2], channel="taobao")
    assert upsert_conversations(session, [second, pair("c-2")]) == ["updated", "created"]
    session.commit()

    assert (count(session, ConversationRow), count(session, MessageRow)) == (2, 4)
    assert count(session, FlagRow) == 1
    conversation, report = get_conversation(session, "c-1") or pytest.fail("c-1 not stored")
    assert [m.text for m in conversation.messages] == ["在吗？这件有M码吗", "亲，在的～"]
    assert conversation.channel == "taobao"
    assert report["overall"] == 80.0
    _, items = list_conversations(session, ADMIN, guide_id="g-1")
    assert {i["conversation_id"]: i["flags"] for i in items} == {
        "c-1": ["personal_info"],
        "c-2": [],
    }


def test_upsert_stores_an_id_given_twice_in_one_call_once(session: Session) -> None:
    statuses = upsert_conversations(session, [pair("c-1", overall=10.0), pair("c-1", overall=20.0)])
    session.commit()
    assert statuses == ["created", "updated"]
    assert (count(session, ConversationRow), count(session, MessageRow)) == (1, 2)
    assert list_conversations(session, ADMIN)[1][0]["overall"] == 20.0


def test_chinese_text_and_emoji_round_trip(session: Session) -> None:
    conversation = make_conversation(
        "会话-😀-1",
        [("customer", "这件羊毛大衣有M码吗？😍👗"), ("guide", "亲～有的哦🎉，今天下单包邮～")],
        guide_id="导购-张三",
        store_id="上海-静安店",
        outcome={"converted": True, "order_amount": 399.0},
        labels={"intents": {"0": "stock"}, "actions": {"1": "logistics_info"}},
        meta={"备注": "老顾客 🌟", "nested": {"emoji": "👍🏻"}},
    )
    report = make_report(
        conversation.conversation_id,
        guide_id="导购-张三",
        store_id="上海-静安店",
        evidence={"closing": "没有促单：顾客说“好的😊”后没有跟进"},
        flags=[dict(ABSOLUTE, excerpt="最便宜🔥")],
    )
    upsert_conversations(session, [(conversation, report)])
    session.commit()
    session.expunge_all()

    stored, stored_report = get_conversation(session, "会话-😀-1") or pytest.fail("not stored")
    assert stored == conversation
    assert stored.to_json() == conversation.to_json()  # China-time stamps come back as written
    assert stored_report == report
    principal = Principal(key_id=2, role="guide", guide_id="导购-张三")
    total, items = list_conversations(session, principal, store_id="上海-静安店")
    assert total == 1 and items[0]["guide_id"] == "导购-张三"


def test_get_conversation_of_an_unknown_id_is_none(session: Session) -> None:
    assert get_conversation(session, "nope") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"report_id": "c-other"}, "is for conversation 'c-other'"),
        ({"flags": [{"kind": "timing"}]}, "needs text 'kind' and 'rule'"),
        ({"text": "坏\x00字符"}, "contains a NUL character"),
    ],
)
def test_upsert_refuses_reports_and_text_it_cannot_store(
    session: Session, change: dict[str, Any], message: str
) -> None:
    conversation, report = pair("c-1", turns=[("customer", change.get("text", "在吗"))])
    if "report_id" in change:
        report["conversation_id"] = change["report_id"]
    if "flags" in change:
        report["flags"] = change["flags"]
    with pytest.raises(InputError, match=message):
        upsert_conversations(session, [(conversation, report)])


# ----------------------------------------------------------------------------- lists


@pytest.fixture
def corpus(session: Session) -> Session:
    """Five conversations: three guides, two stores, one unscored, one without timestamps."""
    no_times = [{"role": "customer", "text": "在吗"}, {"role": "guide", "text": "在的亲"}]
    upsert_conversations(
        session,
        [
            pair("c-1", overall=90.0, started_at="2026-03-02T10:00:00+08:00", flags=(UNANSWERED,)),
            pair(
                "c-2",
                overall=40.0,
                started_at="2026-03-03T10:00:00+08:00",
                flags=(ABSOLUTE, UNANSWERED),
            ),
            pair("c-3", guide="g-2", overall=70.0, started_at="2026-03-04T10:00:00+08:00"),
            pair(
                "c-4",
                guide="g-3",
                store="s-2",
                overall=None,
                started_at="2026-03-05T02:00:00Z",  # 10:00 China time
                flags=(PERSONAL,),
            ),
            pair("c-5", guide="g-2", store="s-2", overall=55.0, started_at=None, messages=no_times),
        ],
    )
    session.commit()
    return session


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, "c-1 c-2 c-3 c-4 c-5"),
        ({"guide_id": "g-1"}, "c-1 c-2"),
        ({"store_id": "s-2"}, "c-4 c-5"),
        ({"min_score": 55}, "c-1 c-3 c-5"),
        ({"max_score": 55}, "c-2 c-5"),
        ({"min_score": 50, "max_score": 80}, "c-3 c-5"),
        ({"flag": "unanswered"}, "c-1 c-2"),
        ({"flag": "compliance"}, "c-2 c-4"),
        ({"flag": "absolute_claim"}, "c-2"),
        ({"flag": "no_such_rule"}, ""),
        ({"since": datetime(2026, 3, 4, tzinfo=CST)}, "c-3 c-4"),
        ({"until": datetime(2026, 3, 4, 10, tzinfo=CST)}, "c-1 c-2"),  # until is exclusive
        ({"since": datetime(2026, 3, 4, 2, tzinfo=UTC)}, "c-3 c-4"),  # same instant as 10:00 CST
        ({"since": date(2026, 3, 3), "until": date(2026, 3, 4)}, "c-2 c-3"),  # whole days
        ({"store_id": "s-1", "flag": "unanswered", "min_score": 50}, "c-1"),
    ],
)
def test_list_conversations_filters(
    corpus: Session, filters: dict[str, Any], expected: str
) -> None:
    total, items = list_conversations(corpus, ADMIN, **filters)
    assert sorted(i["conversation_id"] for i in items) == expected.split()
    assert total == len(items)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-started_at", "c-4 c-3 c-2 c-1 c-5"),
        ("started_at", "c-1 c-2 c-3 c-4 c-5"),
        ("-overall", "c-1 c-3 c-5 c-2 c-4"),
        ("overall", "c-2 c-5 c-3 c-1 c-4"),
    ],
)
def test_list_conversations_sorts_with_missing_values_last(
    corpus: Session, sort: str, expected: str
) -> None:
    _, items = list_conversations(corpus, ADMIN, sort=sort)
    assert [i["conversation_id"] for i in items] == expected.split()


def test_list_conversations_pages_and_item_shape(corpus: Session) -> None:
    pages = [
        list_conversations(corpus, ADMIN, sort="-overall", limit=2, offset=o) for o in (0, 2, 4)
    ]
    assert [total for total, _ in pages] == [5, 5, 5]
    ids = [i["conversation_id"] for _, items in pages for i in items]
    assert ids == ["c-1", "c-3", "c-5", "c-2", "c-4"]
    assert list_conversations(corpus, ADMIN, offset=10) == (5, [])
    assert list_conversations(corpus, ADMIN, limit=0) == (5, [])
    _, (item,) = list_conversations(corpus, ADMIN, flag="absolute_claim")
    assert item == {
        "conversation_id": "c-2",
        "guide_id": "g-1",
        "store_id": "s-1",
        "started_at": "2026-03-03T10:00:00+08:00",
        "overall": 40.0,
        "n_messages": 2,
        "converted": None,
        "flags": ["absolute_claim", "unanswered"],
        "win_probability": 0.5,
        "last_customer_text": "在吗？这件有M码吗",
        "product": None,
    }
    _, (utc_started,) = list_conversations(corpus, ADMIN, guide_id="g-3")
    assert utc_started["started_at"] == "2026-03-05T10:00:00+08:00"


@pytest.mark.parametrize(
    ("turns", "text", "product"),
    [
        (
            [("customer", "这款羽绒服有黑色吗"), ("guide", "有的亲"), ("customer", "好的\n谢谢")],
            "好的 谢谢",
            "羽绒服",
        ),
        (
            [("customer", "卫衣和羽绒服哪个暖和"), ("guide", "羽绒服")],
            "卫衣和羽绒服哪个暖和",
            "羽绒服",
        ),
        ([("customer", "能机洗吗"), ("guide", "这款羊毛开衫可以手洗")], "能机洗吗", "开衫"),
        ([("guide", "亲，新款卫衣到了")], None, "卫衣"),  # the customer said nothing
        ([("customer", "我想问" + "一" * 80)], "我想问" + "一" * 56 + "…", None),
        # Only the customer's last 20 messages are read for the product.
        ([("customer", "看看大衣")] + [("customer", "嗯")] * 20, "嗯", None),
        ([("customer", "看看大衣")] + [("customer", "嗯")] * 19, "嗯", "大衣"),
    ],
    ids=[
        "newest-naming-message",
        "last-word",
        "the-guides-product",
        "no-customer",
        "cut",
        "past-20",
        "within-20",
    ],
)
def test_list_conversations_show_the_customers_last_words_and_product(
    session: Session, turns: list[tuple[str, str]], text: str | None, product: str | None
) -> None:
    upsert_conversations(session, [pair("c-words", turns=turns)])
    _, (item,) = list_conversations(session, ADMIN)
    assert (item["last_customer_text"], item["product"]) == (text, product)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sort": "score"}, "sort must be one of overall, -overall, started_at, -started_at"),
        ({"limit": -1}, "limit and offset must be >= 0"),
        ({"offset": -5}, "limit and offset must be >= 0"),
        ({"min_score": 80, "max_score": 20}, r"min_score \(80\) is above max_score \(20\)"),
        ({"since": date(2026, 3, 5), "until": date(2026, 3, 1)}, "is not before until"),
    ],
)
def test_list_conversations_rejects_bad_arguments(
    session: Session, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        list_conversations(session, ADMIN, **arguments)


@pytest.mark.parametrize(
    ("principal", "filters", "expected"),
    [
        (Principal(key_id=2, role="guide", guide_id="g-1"), {}, "c-1 c-2"),
        (Principal(key_id=2, role="guide", guide_id="g-1"), {"guide_id": "g-2"}, ""),
        (Principal(key_id=3, role="supervisor", stores=frozenset({"s-2"})), {}, "c-4 c-5"),
        (
            Principal(key_id=3, role="supervisor", stores=frozenset({"s-1", "s-2"})),
            {"guide_id": "g-2"},
            "c-3 c-5",
        ),
        (ADMIN, {"store_id": "s-1"}, "c-1 c-2 c-3"),
        (Principal(key_id=4, role="guide"), {}, ""),  # a guide key without a guide sees nothing
        (Principal(key_id=5, role="intern", guide_id="g-1"), {}, ""),  # unknown role: nothing
    ],
)
def test_lists_and_reports_show_only_the_principals_scope(
    corpus: Session, principal: Principal, filters: dict[str, Any], expected: str
) -> None:
    _, items = list_conversations(corpus, principal, **filters)
    assert sorted(i["conversation_id"] for i in items) == expected.split()
    reports = iter_reports(corpus, principal, **filters)
    assert sorted(r["conversation_id"] for r in reports) == expected.split()


def test_iter_reports_filters_by_time_and_feeds_scorecards(corpus: Session) -> None:
    reports = list(iter_reports(corpus, ADMIN, since=date(2026, 3, 3), until=date(2026, 3, 5)))
    assert [r["conversation_id"] for r in reports] == ["c-2", "c-3", "c-4"]  # oldest first
    cards = build_scorecards(iter_reports(corpus, ADMIN, store_id="s-1"))
    assert {c.id: c.n for c in cards} == {"g-1": 2, "g-2": 1}


def test_stores_and_lists_real_score_reports(
    session: Session, scored: list[tuple[Conversation, dict[str, Any]]]
) -> None:
    upsert_conversations(session, scored)
    session.commit()
    session.expunge_all()
    total, _ = list_conversations(session, ADMIN, limit=0)
    assert total == len(scored)
    for conversation, report in scored:
        stored, stored_report = get_conversation(session, conversation.conversation_id) or (
            pytest.fail(f"{conversation.conversation_id} not stored")
        )
        assert stored == conversation
        assert stored_report == orjson.loads(orjson.dumps(report))
    flagged = {r["conversation_id"]: r["flags"] for _, r in scored if r["flags"]}
    assert flagged, "the generated conversations should raise some flags"
    rule = next(iter(flagged.values()))[0]["rule"]
    _, items = list_conversations(session, ADMIN, flag=rule, limit=200)
    expected = {cid for cid, flags in flagged.items() if any(f["rule"] == rule for f in flags)}
    assert {i["conversation_id"] for i in items} == expected
    by_score = [r["overall"] for _, r in scored if r["overall"] is not None]
    _, top = list_conversations(session, ADMIN, sort="-overall", limit=1)
    assert top[0]["overall"] == max(by_score)
    from_db = build_scorecards(iter_reports(session, ADMIN))
    direct = build_scorecards(report for _, report in scored)
    assert [c.to_dict() for c in from_db] == [c.to_dict() for c in direct]


@pytest.fixture(scope="module")
def scored(scoring_bundle_dir: Path) -> list[tuple[Conversation, dict[str, Any]]]:
    """Twenty generated conversations scored by the real scorer (bundle trained once)."""
    from copilot.synth import generate
    from models.runtime import load_scorer

    conversations = list(generate(20, seed=11))
    reports = load_scorer(scoring_bundle_dir).score_many(conversations)
    return list(zip(conversations, reports, strict=True))


# ----------------------------------------------------------------------------- suggestions


def serve(session: Session, guide: str | None, store: str | None, *script_ids: int) -> list[str]:
    suggestions = [
        {"id": sid, "text": f"亲，这款今天下单包邮哦～（话术 {sid}）", "action": "promotion"}
        for sid in script_ids
    ]
    return record_suggestions(
        session,
        conversation_id="c-1",
        guide_id=guide,
        store_id=store,
        message_index=3,
        suggestions=suggestions,
    )


def test_feedback_is_recorded_and_a_second_one_replaces_the_first(session: Session) -> None:
    ids = serve(session, "g-1", "s-1", 7, 9)
    assert len(ids) == 2 and all(i.startswith("sg_") and len(i) == 35 for i in ids)
    guide = Principal(key_id=2, role="guide", guide_id="g-1")
    first = record_feedback(session, ids[0], "accepted", None, guide)
    assert first == {
        "suggestion_id": ids[0],
        "outcome": "accepted",
        "final_text": None,
        "script_id": 7,
        "replaced": False,
    }
    again = record_feedback(session, ids[0], "edited", "亲，今天下单包邮，还送小样哦🎁", guide)
    session.commit()
    assert again["replaced"] is True
    assert count(session, Feedback) == 1
    assert acceptance_by_script(session)[7] == {
        "shown": 1,
        "accepted": 0,
        "edited": 1,
        "rejected": 0,
        "acceptance_rate": 1.0,
    }


@pytest.mark.parametrize(
    ("suggestion", "outcome", "final_text", "principal", "error", "message"),
    [
        ("sg_nope", "accepted", None, ADMIN, NotFoundError, "no suggestion was served with id"),
        (None, "loved", None, ADMIN, InputError, "outcome must be one of accepted, edited"),
        (None, "edited", "  ", ADMIN, InputError, "'edited' needs final_text"),
        (
            None,
            "accepted",
            None,
            Principal(key_id=2, role="guide", guide_id="g-2"),
            ForbiddenError,
            "belongs to guide 'g-1'",
        ),
        (
            None,
            "rejected",
            None,
            Principal(key_id=3, role="supervisor", stores=frozenset({"s-9"})),
            ForbiddenError,
            "belongs to store 's-1'; this API key covers stores s-9 only",
        ),
    ],
)
def test_record_feedback_errors(
    session: Session,
    suggestion: str | None,
    outcome: str,
    final_text: str | None,
    principal: Principal,
    error: type[Exception],
    message: str,
) -> None:
    (served,) = serve(session, "g-1", "s-1", 7)
    with pytest.raises(error, match=message):
        record_feedback(session, suggestion or served, outcome, final_text, principal)


def test_acceptance_rates_per_script_and_per_guide(session: Session) -> None:
    a = serve(session, "g-1", "s-1", 7, 9, 11)
    b = serve(session, "g-1", "s-1", 7)
    c = serve(session, "g-2", "s-2", 9)
    serve(session, None, None, 9)
    record_suggestions(
        session,
        conversation_id=None,
        guide_id="g-2",
        store_id="s-2",
        message_index=None,
        suggestions=[{"text": "不是话术库里的回复"}],  # no script id: counts per guide only
    )
    for served, outcome in ((a[0], "accepted"), (b[0], "edited"), (a[1], "rejected")):
        record_feedback(session, served, outcome, "改过的回复", ADMIN)
    record_feedback(session, c[0], "accepted", None, ADMIN)
    session.commit()

    by_script = acceptance_by_script(session)
    assert by_script == {
        7: {"shown": 2, "accepted": 1, "edited": 1, "rejected": 0, "acceptance_rate": 1.0},
        9: {"shown": 3, "accepted": 1, "edited": 0, "rejected": 1, "acceptance_rate": 0.5},
        11: {"shown": 1, "accepted": 0, "edited": 0, "rejected": 0, "acceptance_rate": None},
    }
    by_guide = acceptance_by_guide(session, ADMIN)
    assert by_guide["g-1"] == {
        "shown": 4,
        "accepted": 1,
        "edited": 1,
        "rejected": 1,
        "acceptance_rate": 0.6667,
    }
    assert by_guide["g-2"]["shown"] == 2 and by_guide["g-2"]["acceptance_rate"] == 1.0
    assert by_guide["(unknown)"]["shown"] == 1
    supervisor = Principal(key_id=3, role="supervisor", stores=frozenset({"s-2"}))
    assert set(acceptance_by_guide(session, supervisor)) == {"g-2"}
    guide = Principal(key_id=2, role="guide", guide_id="g-1")
    assert set(acceptance_by_guide(session, guide)) == {"g-1"}
    assert acceptance_by_guide(session, ADMIN, guide_id="g-2", store_id="s-2")["g-2"]["shown"] == 2
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert acceptance_by_guide(session, ADMIN, since=tomorrow) == {}
    # What the ranking uses: (judged, accepted) per script, edited counting as accepted.
    assert judgements_by_script(session) == {7: (2, 2), 9: (2, 1)}


def test_feedback_version_changes_with_every_feedback(session: Session) -> None:
    ids = serve(session, "g-1", "s-1", 7, 9)
    session.commit()
    empty = feedback_version(session)
    assert empty == (0, None)
    record_feedback(session, ids[0], "accepted", None, ADMIN)
    session.commit()
    first = feedback_version(session)
    assert first[0] == 1
    record_feedback(session, ids[0], "rejected", None, ADMIN)  # replaces: same count
    session.commit()
    assert feedback_version(session) not in (empty, first)


def test_bundle_state_counts_generations(session: Session) -> None:
    assert bundle_state(session) is None
    assert set_bundle_state(session, "/models/a", "run-1") == 1
    session.commit()
    assert set_bundle_state(session, "/models/b", None) == 2
    session.commit()
    assert bundle_state(session) == {"bundle_dir": "/models/b", "generation": 2, "serve_id": None}


def test_record_suggestions_needs_text(session: Session) -> None:
    with pytest.raises(InputError, match="suggestion 1 has no text"):
        record_suggestions(
            session,
            conversation_id="c-1",
            guide_id="g-1",
            store_id="s-1",
            message_index=0,
            suggestions=[{"text": "好的亲"}, {"text": ""}],
        )


# ----------------------------------------------------------------------------- scripts


def test_script_states_set_replace_and_clear(session: Session) -> None:
    set_script_state(session, 3, "pinned", by="key 1")
    set_script_state(session, 5, "banned", by="key 1")
    set_script_state(session, 3, "banned", by="key 2")
    session.commit()
    assert script_states(session) == {3: "banned", 5: "banned"}
    set_script_state(session, 3, None, by="key 2")
    set_script_state(session, 42, None, by="key 2")  # clearing a script with no state is fine
    session.commit()
    assert script_states(session) == {5: "banned"}


def test_script_states_of_some_stores_stay_there_and_every_store_replaces_them(
    session: Session,
) -> None:
    set_script_state(session, 3, "pinned", by="key 2", stores=["s-1", "s-2"])
    set_script_state(session, 5, "banned", by="key 3", stores=["s-2"])
    set_script_state(session, 3, "banned", by="key 3", stores=["s-2"])  # replaces s-2's pin
    session.commit()
    assert script_states(session) == {}  # nothing holds in every store
    assert store_script_states(session) == {"s-1": {3: "pinned"}, "s-2": {3: "banned", 5: "banned"}}
    set_script_state(session, 3, None, by="key 2", stores=["s-1"])  # clears s-1's only
    session.commit()
    assert store_script_states(session) == {"s-2": {3: "banned", 5: "banned"}}
    set_script_state(session, 3, "pinned", by="key 1")  # every store: replaces s-2's ban
    set_script_state(session, 5, None, by="key 1")  # every store: clears s-2's ban too
    session.commit()
    assert script_states(session) == {3: "pinned"}
    assert store_script_states(session) == {}


@pytest.mark.parametrize(
    ("script_id", "state", "message"),
    [
        (3, "hidden", "script state must be one of pinned, banned"),
        (-1, "pinned", "script_id must be a non-negative integer"),
    ],
)
def test_set_script_state_rejects_bad_values(
    session: Session, script_id: int, state: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        set_script_state(session, script_id, state, by="key 1")


def test_set_script_state_for_some_stores_needs_a_store(session: Session) -> None:
    with pytest.raises(InputError, match="needs at least one store"):
        set_script_state(session, 3, "pinned", by="key 2", stores=[" "])


def test_sessions_from_the_factory_keep_objects_readable_after_commit(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with factory.begin() as session:
        upsert_conversations(session, [pair("c-1")])
        row = session.get(ConversationRow, "c-1")
    assert row is not None and row.overall == 70.0  # no expired-attribute reload needed
