"""Script mining with and without outcomes: reception, consensus, evidence bounds and reasons."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from copilot.compliance import default_checker
from copilot.errors import ConfigError, InputError
from copilot.schema import Conversation
from copilot.slots import template
from copilot.taxonomy import default_taxonomy
from copilot.text import default_pipeline
from models.embedders import OfflineEmbedder
from models.scripts import (
    MiningConfig,
    Script,
    ScriptLibrary,
    evidence_bounds,
    lift_bounds,
    mine_scripts,
    script_reason,
)
from tests.builders import make_conversation
from tests.models.conftest import SAMPLE_TEXTS, jieba_tokenize

Turn = tuple[str, str, str | None]  # (role, text, intent or action label)

ASK = ("customer", "这件有M码吗", "size_fit")
GOOD = ("guide", "亲，M码有货的，165以下穿M刚好哦", "size_advice")
VAGUE = ("guide", "这个要看情况呢", "size_advice")
CURT = ("guide", "不太清楚呢", "size_advice")
THANKS = ("customer", "好的谢谢", "thanks_closing")
REPEAT = ("customer", "这件有M码吗", "size_fit")  # asked again, the same words
COMPLAINT = ("customer", "你们这服务也太差了", "complaint")


def _conversation(
    conversation_id: str, turns: Sequence[Turn], guide: str | None = "g-1", **fields: Any
) -> Conversation:
    """A conversation whose customer turns carry intents and guide turns actions."""
    labels: dict[str, dict[int, str]] = {"intents": {}, "actions": {}}
    for i, (role, _text, label) in enumerate(turns):
        if label is not None:
            labels["intents" if role == "customer" else "actions"][i] = label
    return make_conversation(
        conversation_id,
        [(role, text) for role, text, _label in turns],
        guide_id=guide,
        labels=labels,
        **fields,
    )


def _labels_of(conversation: Conversation) -> list[str | None]:
    labels = conversation.labels
    assert labels is not None
    return [
        labels.intents.get(i) if m.role == "customer" else labels.actions.get(i)
        for i, m in enumerate(conversation.messages)
    ]


@functools.cache
def _embedder() -> OfflineEmbedder:
    """An offline embedder fitted once on retail chat lines and the texts of these tests."""
    texts = [text for _role, text, _label in (ASK, GOOD, VAGUE, CURT, THANKS, REPEAT, COMPLAINT)]
    return OfflineEmbedder().fit(SAMPLE_TEXTS + texts + ["那L码呢", "那什么时候发货"])


def _mine(
    conversations: Sequence[Conversation], **kwargs: Any
) -> tuple[ScriptLibrary, dict[str, Script]]:
    """Mine with the tests' embedder; scripts by their text (as written, before slots)."""
    library = mine_scripts(
        conversations,
        _labels_of,
        _embedder(),
        jieba_tokenize,
        checker=default_checker(),
        pipeline=default_pipeline(),
        **kwargs,
    )
    by_text = {s.text: s for s in library.scripts}
    written = {text for c in conversations for text in (m.text for m in c.messages)}
    # Mined scripts are templates ([尺码] for M码): find each by the text it was mined from.
    return library, {
        text: by_text[template(text)] for text in written if template(text) in by_text
    } | by_text


def _uses(prefix: str, reply: Turn, after: Sequence[Turn], guides: Sequence[str | None]) -> list:
    """One conversation per guide: the size question, ``reply``, then the customer's ``after``."""
    return [
        _conversation(f"{prefix}-{n}", [ASK, reply, *after], guide=g) for n, g in enumerate(guides)
    ]


def _noise() -> list[Conversation]:
    """Badly received replies at the same intent, so its average reception is below 1."""
    return _uses("noise", CURT, [REPEAT], ["g-7", "g-8", "g-7", "g-8"])


# ----------------------------------------------------------------------------- reception rules


@pytest.mark.parametrize(
    ("after", "expect"),
    [
        ([THANKS], "positive"),  # thanks
        ([("customer", "嗯嗯 收到", None)], "positive"),  # a bare acknowledgement
        ([("customer", "那什么时候发货", "logistics")], "positive"),  # moved on to a new question
        ([("customer", "那我拍了", "purchase_intent")], "positive"),  # buys
        ([("customer", "太好了，很满意", "other")], "positive"),  # satisfied (sentiment)
        ([COMPLAINT], "negative"),  # complaint intent
        ([("customer", "没用，还是不行", "other")], "negative"),  # anger (sentiment only)
        ([REPEAT], "negative"),  # repeated the question
        ([("customer", "好的", None), REPEAT], "negative"),  # an ack does not hide a repeat
        ([("customer", "那L码呢", "size_fit")], "neutral"),  # same topic, not a repeat
        ([("system", "顾客已离开会话", None), THANKS], "positive"),  # system messages skipped
        ([], "unknown"),  # never answered
    ],
)
def test_reception_of_the_customers_next_turn(after: list[Turn], expect: str) -> None:
    library = mine_scripts(
        [_conversation("c", [ASK, GOOD, *after])],
        _labels_of,
        _embedder(),
        jieba_tokenize,
        checker=default_checker(),
        pipeline=default_pipeline(),
    )
    receptions = {"positive": 0, "neutral": 0, "negative": 0, "unknown": 0}
    assert library.stats["receptions"] == {**receptions, expect: 1}


# ----------------------------------------------------------------------------- ranking


def test_no_outcome_mining_ranks_a_thanked_reply_above_repeated_and_complained() -> None:
    corpus = (
        _uses("good", GOOD, [THANKS], ["g-1", "g-2", "g-3", "g-4", "g-1", "g-2"])
        + _uses("vague", VAGUE, [REPEAT], ["g-5", "g-6", "g-5"])
        + _uses("vague-ok", VAGUE, [THANKS], ["g-6"])
        + _uses("curt", CURT, [COMPLAINT], ["g-7", "g-8"])
    )
    library, scripts = _mine(corpus)
    good, vague = scripts[GOOD[1]], scripts[VAGUE[1]]
    assert library.stats["basis"] == "evidence"
    assert {s.basis for s in library.scripts} == {"evidence"}
    assert good.lift_lower > vague.lift_lower
    assert good.lift > 1.0 > vague.lift  # above and below the intent's average
    assert (good.uses, good.guides, good.positive, good.negative) == (6, 4, 6, 0)
    assert (vague.uses, vague.guides, vague.positive, vague.negative) == (4, 2, 1, 3)
    assert good.wins == 0 and good.lift == good.evidence and good.lift_lower == good.evidence_lower
    # Every use was received badly: nothing to serve, so no script.
    assert CURT[1] not in scripts
    # Only uses not received negatively are indexed: 6 of the good reply, 1 of the vague one.
    assert sorted(library.use_script.tolist()) == [good.id] * 6 + [vague.id]


def test_a_neutral_reception_counts_half_and_above_a_negative_one() -> None:
    same_topic = [("customer", "那L码呢", "size_fit")]
    corpus = (
        _uses("neutral", GOOD, same_topic, ["g-1", "g-2", "g-3", "g-4"])
        + _uses("bad", VAGUE, [REPEAT], ["g-5", "g-6", "g-7"])
        + _uses("bad-n", VAGUE, same_topic, ["g-8"])
        + _uses("fine", CURT, [THANKS], ["g-9", "g-10"])
    )
    _library, scripts = _mine(corpus)
    neutral, bad = scripts[GOOD[1]], scripts[VAGUE[1]]
    assert (neutral.judged, neutral.positive, neutral.negative) == (4, 0, 0)
    assert neutral.rate == 0.5 and bad.rate == 0.125  # (0 + 1/2) / 4
    assert neutral.lift_lower > bad.lift_lower


def test_consensus_across_guides_raises_the_bound() -> None:
    team = ("guide", "亲，这款M码偏大，165穿S就好", "size_advice")
    alone = ("guide", "建议您拍S码，回头不合适包换", "size_advice")
    corpus = (
        _uses("team", team, [THANKS], [f"g-{n}" for n in range(6)])
        + _uses("alone", alone, [THANKS], ["g-9"] * 6)
        + _noise()
    )
    _library, scripts = _mine(corpus)
    by_team, by_one = scripts[team[1]], scripts[alone[1]]
    assert (by_team.guides, by_one.guides) == (6, 1)
    assert (by_team.positive, by_one.positive) == (6, 6)
    assert by_team.evidence_lower > by_one.evidence_lower


def test_a_single_lucky_use_does_not_outrank_consistent_evidence() -> None:
    lucky = ("guide", "这款卖得特别好，闭眼入", "size_advice")
    neutral = [("customer", "那L码呢", "size_fit")]
    corpus = (
        _uses("steady", GOOD, [THANKS], ["g-1", "g-2", "g-3", "g-4"] * 2)
        + _uses("steady-n", GOOD, neutral, ["g-1", "g-3"])
        + _uses("lucky", lucky, [THANKS], ["g-5"])
        + _noise()
    )
    _library, scripts = _mine(corpus)
    steady, one = scripts[GOOD[1]], scripts[lucky[1]]
    assert (one.uses, one.positive) == (1, 1)
    assert (steady.uses, steady.positive, steady.judged) == (10, 8, 10)
    assert steady.lift_lower > one.lift_lower


def test_without_guide_ids_consensus_counts_conversations() -> None:
    corpus = _uses("anon", GOOD, [THANKS], [None, None, None])
    corpus.append(_conversation("twice", [ASK, GOOD, REPEAT, GOOD, THANKS], guide=None))
    _library, scripts = _mine(corpus)
    script = scripts[GOOD[1]]
    assert script.consensus_unit == "conversation"
    assert (script.guides, script.uses, script.positive, script.negative) == (4, 5, 4, 1)
    assert script_reason(script, default_taxonomy().name_of).startswith("4 个对话中用过 5 次；")


def test_guide_quality_weighs_the_evidence_and_is_reported() -> None:
    strong = ("guide", "亲，这款M码偏大，165穿S就好", "size_advice")
    weak = ("guide", "建议您拍S码，回头不合适包换", "size_advice")
    corpus = (
        _uses("s", strong, [THANKS], ["g-1", "g-2", "g-1", "g-2"])
        + _uses("w", weak, [THANKS], ["g-3", "g-4", "g-3", "g-4"])
        + _noise()
    )
    quality = {"g-1": 0.9, "g-2": 0.8, "g-3": 0.3, "g-4": 0.2, "g-x": 1.0}
    _library, plain = _mine(corpus)
    _library, weighed = _mine(corpus, guide_quality=quality)
    assert plain[strong[1]].evidence_lower == plain[weak[1]].evidence_lower
    assert weighed[strong[1]].evidence_lower > weighed[weak[1]].evidence_lower
    assert weighed[strong[1]].guide_quality == pytest.approx(0.85)
    assert plain[strong[1]].guide_quality is None
    with pytest.raises(InputError, match=r"guide_quality\['g-1'\] is 85.*divide"):
        _mine(corpus, guide_quality={"g-1": 85})


# ----------------------------------------------------------------------------- with outcomes


def test_outcomes_still_rank_by_lift_and_record_the_evidence() -> None:
    won = {"outcome": {"converted": True, "order_amount": 199.0}}
    lost = {"outcome": {"converted": False}}
    corpus = [
        _conversation("w1", [ASK, GOOD, THANKS], guide="g-1", **won),
        _conversation("w2", [ASK, GOOD, THANKS], guide="g-2", **won),
        _conversation("l1", [ASK, GOOD, REPEAT], guide="g-3", **lost),
        _conversation("l2", [ASK, VAGUE, COMPLAINT], guide="g-3", **lost),
        _conversation("none", [ASK, VAGUE, THANKS], guide="g-4"),  # no outcome: left out
    ]
    library, scripts = _mine(corpus)
    good = scripts[GOOD[1]]
    assert library.stats["basis"] == "lift" and library.stats["dropped"] == {"without_outcome": 1}
    assert VAGUE[1] not in scripts  # its only outcome lost
    assert (good.basis, good.uses, good.wins, good.baseline) == ("lift", 3, 2, 0.5)
    assert (good.lift, good.lift_lower) == pytest.approx(lift_bounds(2, 3, 0.5), abs=1e-4)
    assert (good.judged, good.positive, good.negative, good.guides) == (3, 2, 1, 3)
    assert library.use_script.tolist() == [good.id, good.id]  # the winning uses


def test_outcomes_without_any_win_fall_back_to_evidence(caplog: pytest.LogCaptureFixture) -> None:
    lost = {"outcome": {"converted": False}}
    corpus = _uses("l", GOOD, [THANKS], ["g-1", "g-2"])
    corpus = [c.model_copy(update={"outcome": None}) for c in corpus] + [
        _conversation("l-x", [ASK, GOOD, THANKS], guide="g-3", **lost)
    ]
    with caplog.at_level(logging.WARNING, logger="models.scripts"):
        library, scripts = _mine(corpus)
    assert library.stats["basis"] == "evidence" and scripts[GOOD[1]].uses == 3
    assert "no conversation counts as won" in caplog.text


def test_mining_without_any_reply_is_refused() -> None:
    with pytest.raises(InputError, match="no guide reply to mine"):
        _mine([_conversation("c", [ASK, THANKS])])


def test_min_uses_applies_without_outcomes() -> None:
    corpus = _uses("a", GOOD, [THANKS], ["g-1", "g-2"]) + _uses("b", VAGUE, [THANKS], ["g-3"])
    library, _scripts = _mine(corpus, config=MiningConfig(min_uses=2))
    assert [s.text for s in library.scripts] == [template(GOOD[1])]


# ----------------------------------------------------------------------------- the formula


@pytest.mark.parametrize(
    ("score", "judged", "per_guide", "baseline", "expect"),
    [
        (0.0, 0.0, [], 0.6, "below"),  # nothing judged: the prior alone, a bound below average
        (1.0, 1.0, [1], 0.6, "below"),  # one lucky use proves nothing
        (38.0, 40.0, [10, 10, 10, 10], 0.6, "above"),  # consistent, across guides
        (12.0, 40.0, [10, 10, 10, 10], 0.6, "below"),  # consistently poor
        (0.0, 0.0, [], 0.0, "zero"),  # every reply at the intent was received badly
    ],
)
def test_evidence_bound_needs_evidence(
    score: float, judged: float, per_guide: list[int], baseline: float, expect: str
) -> None:
    mean, lower = evidence_bounds(score, judged, per_guide, baseline)
    assert lower <= mean
    assert {"below": lower < 1.0, "above": lower > 1.0, "zero": mean == lower == 0.0}[expect]


def test_evidence_bound_counts_one_guide_at_most_guide_prior_plus_one_uses() -> None:
    # 1000 uses by one guide weigh like guide_prior + 1 = 11 independent uses at most.
    one_guide = evidence_bounds(1000.0, 1000.0, [1000], 0.5)
    eleven = evidence_bounds(11.0, 11.0, [1] * 11, 0.5)
    assert one_guide[1] < eleven[1]
    assert one_guide[1] == pytest.approx(eleven[1], abs=0.01)


def test_mining_config_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="MiningConfig.repeat_threshold is 1.5"):
        MiningConfig(repeat_threshold=1.5)
    with pytest.raises(ConfigError, match="MiningConfig.min_uses is 0"):
        MiningConfig(min_uses=0)


# ----------------------------------------------------------------------------- reasons


def _script(**fields: Any) -> Script:
    base: dict[str, Any] = {
        "id": 0,
        "text": "亲，这款很适合您",
        "action": "handle_price_objection",
        "intent": "price_objection",
        "uses": 57,
        "wins": 24,
        "rate": 0.42,
        "baseline": 0.18,
        "lift": 2.1,
        "lift_lower": 1.6,
        "variants": 1,
    }
    return Script(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "同类价格异议中，该话术成交率 42%（n=57），高于平均 18%"),
        (
            {"uses": 2, "wins": 1, "rate": 0.5},
            "与当前对话情境相似的成交对话中使用过的价格异议处理话术（n=2，样本较少）",
        ),
        (
            {"basis": "evidence", "uses": 23, "guides": 5, "judged": 18, "positive": 14},
            "5 位导购共用 23 次；顾客随后致谢或继续 78%（n=18），追问或不满 0%",
        ),
        (
            {"basis": "evidence", "uses": 3, "guides": 3, "judged": 2, "positive": 1,
             "negative": 1, "consensus_unit": "conversation", "guide_quality": 0.82},
            "3 个对话中用过 3 次；顾客随后致谢或继续 50%（n=2，样本较少），追问或不满 50%；"
            "使用导购平均质量分 82",
        ),
        (
            {"basis": "evidence", "uses": 1, "guides": 1},
            "1 位导购共用 1 次；顾客随后未再回复，反应未知",
        ),
        ({"uses": 0, "wins": 0}, "新增的价格异议处理话术，尚无使用记录"),
        ({"basis": "evidence", "uses": 0, "wins": 0}, "新增的价格异议处理话术，尚无使用记录"),
    ],
)  # fmt: skip
def test_script_reason_names_the_evidence(fields: dict[str, Any], reason: str) -> None:
    assert script_reason(_script(**fields), default_taxonomy().name_of) == reason


def test_mined_reasons_say_what_customers_did() -> None:
    corpus = _uses("good", GOOD, [THANKS], ["g-1", "g-2", "g-3"]) + _uses(
        "rep", GOOD, [REPEAT], ["g-4"]
    )
    _library, scripts = _mine(corpus)
    reason = script_reason(scripts[GOOD[1]], default_taxonomy().name_of)
    assert reason == "4 位导购共用 4 次；顾客随后致谢或继续 75%（n=4），追问或不满 25%"


# ----------------------------------------------------------------------------- persistence


def test_evidence_library_is_identical_after_save_and_load(tmp_path: Path) -> None:
    library, _scripts = _mine(_uses("good", GOOD, [THANKS], ["g-1", "g-2"]))
    library.save(tmp_path / "lib")
    loaded = ScriptLibrary.load(tmp_path / "lib")
    assert loaded.scripts == library.scripts
    assert loaded.config == library.config
    assert loaded.stats == library.stats


def test_a_library_saved_before_evidence_loads(tmp_path: Path) -> None:
    library, _scripts = _mine(_uses("good", GOOD, [THANKS], ["g-1", "g-2"]))
    library.save(tmp_path / "lib")
    path = tmp_path / "lib" / "scripts.json"
    data = json.loads(path.read_text("utf-8"))
    old_script = {"id", "text", "action", "intent", "uses", "wins", "rate", "baseline", "lift"}
    old_script |= {"lift_lower", "variants", "source"}
    old_config = {"context_turns", "duplicate_threshold", "min_wins", "max_reply_chars"}
    old_config |= {"prior", "quantile"}
    data["scripts"] = [{k: v for k, v in s.items() if k in old_script} for s in data["scripts"]]
    data["config"] = {k: v for k, v in data["config"].items() if k in old_config}
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    loaded = ScriptLibrary.load(tmp_path / "lib")
    script = loaded.scripts[0]
    assert (script.basis, script.judged, script.evidence_lower, script.guide_quality) == (
        "lift",
        0,
        1.0,
        None,
    )
    assert loaded.config == MiningConfig()
