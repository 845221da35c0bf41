"""Reply matching learned from (context, reply) pairs, and ranking given replies with it."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from copilot.compliance import default_checker
from copilot.errors import InputError, NotFittedError
from models.embedders import OfflineEmbedder
from models.rank import ReplyRanker, fit_action_weight
from models.reply_match import ReplyMatcher, ReplyPair, reply_pairs
from tests.builders import make_conversation
from tests.models.conftest import jieba_tokenize

# Topics a customer raises and the kind of reply a guide sends, each in a few wordings.
TOPICS = {
    "invoice": (
        ["发票怎么开", "我要开发票", "能开专票吗", "发票什么时候寄"],
        ["发票在订单详情里申请，开好会发到邮箱", "专票需要提供税号，开具后寄出"],
    ),
    "delivery": (
        ["快递到哪了", "什么时候发货", "物流怎么不动了", "几天能到"],
        ["已经帮您催仓库了，今天会发出", "物流显示在运输中，明天送达"],
    ),
    "refund": (
        ["怎么退款", "退款什么时候到账", "我要退货", "申请退款了没反应"],
        ["退款会原路返回，一到三个工作日到账", "退货申请已通过，寄回后给您退款"],
    ),
    "size": (
        ["165穿什么码", "这件偏大吗", "M码合适吗", "腰围70选哪个码"],
        ["按您的身高建议选M码", "这款偏大半码，平时穿L的选M"],
    ),
}


def _pairs(n: int, seed: int) -> list[ReplyPair]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        topic = rng.choice(sorted(TOPICS))
        asks, replies = TOPICS[topic]
        out.append(ReplyPair(("你好", rng.choice(asks)), rng.choice(replies), topic))
    return out


@pytest.fixture(scope="module")
def embedder() -> OfflineEmbedder:
    texts = [t for asks, replies in TOPICS.values() for t in [*asks, *replies]] * 3
    return OfflineEmbedder(n_components=16, tokenizer=jieba_tokenize).fit(texts)


@pytest.fixture(scope="module")
def matcher(embedder: OfflineEmbedder) -> ReplyMatcher:
    return ReplyMatcher(dim=16, epochs=5, batch_size=16, seed=0).fit(_pairs(200, 0), embedder)


def test_reply_pairs_merge_consecutive_guide_messages_and_record_where_they_start() -> None:
    messages = [
        ("customer", "在吗"),
        ("guide", "在的"),
        ("guide", "您想看哪款"),
        ("customer", "连衣裙"),
        ("system", "[撤回了一条消息]"),
        ("guide", "这款很好"),
    ]
    pairs = reply_pairs(messages, ["greeting", None, None, "product_inquiry", None, None])
    assert [(p.reply, p.index, p.intent) for p in pairs] == [("在的\n您想看哪款", 1, "greeting")]
    assert pairs[0].context == ("在吗",)


def test_matcher_ranks_the_reply_that_answers_the_question_first(
    matcher: ReplyMatcher,
) -> None:
    wins = 0
    for topic, (asks, replies) in TOPICS.items():
        others = [r for t, (_a, rs) in TOPICS.items() if t != topic for r in rs]
        for ask in asks:
            scores = matcher.score(["你好", ask], [replies[0], *others])
            wins += int(scores.argmax() == 0)
    assert wins >= 14  # of 16 questions; chance is 1 in 7


def test_matcher_learns_beyond_shared_words(embedder: OfflineEmbedder) -> None:
    """'几天能到' shares no word with the delivery replies; training teaches the link."""
    untrained = ReplyMatcher(dim=16, epochs=0, seed=0).fit(_pairs(200, 0), embedder)
    trained = ReplyMatcher(dim=16, epochs=8, batch_size=16, seed=0).fit(_pairs(200, 0), embedder)
    candidates = ["物流显示在运输中，明天送达", "退款会原路返回，一到三个工作日到账"]
    before = untrained.score(["你好", "几天能到"], candidates)
    after = trained.score(["你好", "几天能到"], candidates)
    assert after[0] - after[1] > before[0] - before[1]
    assert after[0] > after[1]


def test_matcher_follows_the_component_contract(
    matcher: ReplyMatcher, embedder: OfflineEmbedder, tmp_path: Path
) -> None:
    with pytest.raises(NotFittedError):
        ReplyMatcher().score(["在吗"], ["在的"])
    fresh = ReplyMatcher(dim=16, epochs=1, batch_size=16)
    assert fresh.fit(_pairs(40, 1), embedder) is fresh
    matcher.save(tmp_path / "m")
    with pytest.raises(NotFittedError):
        ReplyMatcher.load(tmp_path / "m").score(["在吗"], ["在的"])  # needs bind(embedder)
    loaded = ReplyMatcher.load(tmp_path / "m", embedder)
    context, replies = ["你好", "发票怎么开"], ["发票在订单详情里申请，开好会发到邮箱", "好的"]
    # Towers are stored as float16: the same ranking and scores to three decimals.
    np.testing.assert_allclose(
        loaded.score(context, replies), matcher.score(context, replies), atol=2e-3
    )


def test_matcher_refuses_too_few_pairs(embedder: OfflineEmbedder) -> None:
    with pytest.raises(InputError, match="at least 20"):
        ReplyMatcher().fit(_pairs(5, 0), embedder)


def test_hard_negatives_share_the_intent_but_not_the_reply() -> None:
    pairs = _pairs(60, 3)
    partners = ReplyMatcher(seed=0)._hard_partners(pairs)
    for i, j in enumerate(partners):
        if j >= 0:
            assert pairs[j].intent == pairs[i].intent
            assert pairs[j].reply != pairs[i].reply


# --------------------------------------------------------------------------- ranking given replies


@pytest.fixture(scope="module")
def bundle(scoring_bundle_dir: Path):  # type: ignore[no-untyped-def]
    from models.bundle import load_bundle

    return load_bundle(scoring_bundle_dir)


def test_ranker_returns_every_candidate_once_with_the_unsafe_ones_last(bundle) -> None:  # type: ignore[no-untyped-def]
    conversation = make_conversation(turns=[("customer", "这件有M码吗")])
    candidates = [
        "有的亲，M码现货，今天下单今天发",
        "加我微信13812345678私下转账更便宜",
        "我们这款是全网第一",
        "有的亲，M码现货，今天下单今天发",
    ]
    ranked = ReplyRanker(bundle, default_checker()).rank(conversation, candidates)
    assert sorted(r["text"] for r in ranked) == sorted(candidates)
    assert [bool(r["flags"]) for r in ranked] == [False, False, True, True]
    assert all(r["action"] in bundle.taxonomy.action_ids for r in ranked)
    assert "回复匹配度" in ranked[0]["reason"]


@pytest.mark.parametrize(
    ("candidates", "message"),
    [([], "at least one"), (["好的", "  "], r"candidates\[1\]"), (["好"] * 501, "at most 500")],
)
def test_ranker_refuses_bad_candidate_lists(bundle, candidates, message) -> None:  # type: ignore[no-untyped-def]
    conversation = make_conversation(turns=[("customer", "在吗")])
    with pytest.raises(InputError, match=message):
        ReplyRanker(bundle, default_checker()).rank(conversation, candidates)


def test_action_weight_is_chosen_from_held_out_replies(bundle) -> None:  # type: ignore[no-untyped-def]
    from copilot.synth import generate

    held = []
    for conversation in generate(40, seed=11):
        for pair in reply_pairs([(m.role, m.text) for m in conversation.messages]):
            prefix = conversation.model_copy(
                update={"messages": conversation.messages[: pair.index]}
            )
            held.append((prefix, pair.reply))
    weight, table = fit_action_weight(bundle, held[:120], seed=0)
    assert str(weight) in table
    assert table[str(weight)] == max(table.values())
    assert max(table.values()) > 0.1  # far above the 1-in-10 of chance on generated chats


def test_row_by_row_scores_equal_the_stacked_ones(matcher: ReplyMatcher) -> None:
    replies = ["发票在订单详情里申请，开好会发到邮箱", "好的", "物流显示在运输中，明天送达"]
    ctx, ctx_raw = matcher.encode_contexts([["你好", "发票怎么开"]])
    rep, rep_raw = matcher.encode_replies(replies)
    np.testing.assert_allclose(
        matcher.combine_rows(ctx[0], ctx_raw[0], rep, [rep_raw[i] for i in range(3)]),
        matcher.combine(ctx[0], ctx_raw[0], rep, rep_raw),
        rtol=1e-5,
    )
