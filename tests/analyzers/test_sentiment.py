"""Tests of the customer sentiment scorer, its lexicon file, the trajectory and the analyzer.

The polarity tables are hand-written retail chat, one case per rule (negation, degree, questions,
contrast, stickers, patterns, normalisation); they check signs and orderings, not exact numbers,
so that the weights in ``copilot/data/sentiment.yaml`` can be tuned without rewriting them.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import pytest

from copilot.analyzers.sentiment import (
    Sentiment,
    SentimentAnalyzer,
    SentimentLexicon,
    default_lexicon,
    load_lexicon,
    sentiment_score,
)
from copilot.errors import ConfigError
from copilot.pipeline import Pipeline
from copilot.text import STICKER_NAMES
from tests.builders import make_conversation

POSITIVE = 0.1  # a score above this is positive, below -POSITIVE negative, between them neutral


def _sign(score: float) -> str:
    return "+" if score > POSITIVE else "-" if score < -POSITIVE else "0"


# --------------------------------------------------------------------------- polarity table

POLARITY: list[tuple[str, str]] = [
    # praise, loyalty, thanks
    ("太好了", "+"),
    ("很喜欢", "+"),
    ("非常满意", "+"),
    ("好评！", "+"),
    ("会回购的", "+"),
    ("不错", "+"),
    ("还不错哦", "+"),
    ("质量很好", "+"),
    ("物美价廉，划算", "+"),
    ("爱了爱了", "+"),
    ("绝了", "+"),
    ("yyds", "+"),
    ("谢谢", "+"),
    ("好的谢谢", "+"),
    ("辛苦了", "+"),
    ("穿着挺舒服的", "+"),
    ("宝贝收到了，和图片一样，很喜欢", "+"),
    ("比图片好看", "+"),
    ("收到了，很满意，下次还来", "+"),
    ("这个color好nice", "+"),
    ("i like it", "+"),
    ("not bad", "+"),
    ("卧槽太好看了", "+"),
    ("不要太好看", "+"),
    # negation of a negative word: relief, mildly positive
    ("没问题", "+"),
    ("不贵", "+"),
    ("一点也不贵", "+"),
    ("不会起球", "+"),
    ("没有色差", "+"),
    # complaints
    ("太差了", "-"),
    ("失望", "-"),
    ("垃圾", "-"),
    ("骗子", "-"),
    ("我要投诉", "-"),
    ("我要退货", "-"),
    ("生气", "-"),
    ("被坑了", "-"),
    ("物流慢死了", "-"),
    ("什么态度", "-"),
    ("再也不买了", "-"),
    ("无语", "-"),
    ("差评", "-"),
    ("气死了", "-"),
    ("好烦", "-"),
    ("等了三天", "-"),
    ("洗了一次就起球", "-"),
    ("掉色严重", "-"),
    ("是假货吧", "-"),
    ("用了过敏了", "-"),
    ("呵呵", "-"),
    ("算了，不要了", "-"),
    ("有点贵", "-"),
    ("太贵了", "-"),
    ("衣服质量不行，穿一次就起球了", "-"),
    # negation of a positive word
    ("不满意", "-"),
    ("不是很好", "-"),
    ("不喜欢", "-"),
    ("不太满意", "-"),
    ("很不满意", "-"),
    ("不好看", "-"),
    ("并不好", "-"),
    ("一点也不好", "-"),
    ("没那么好看", "-"),
    ("不是特别喜欢", "-"),
    ("not good", "-"),
    ("别骗我", "-"),
    # rhetorical complaints (patterns)
    ("还没发货", "-"),
    ("怎么还没到", "-"),
    ("到底什么时候发货", "-"),
    ("说好的包邮呢？", "-"),
    ("凭什么", "-"),
    ("没有想象中好", "-"),
    ("都5天了还没收到货", "-"),
    ("不是说好今天发货吗", "-"),
    # neutral: questions, acknowledgements, bargaining, masks
    ("这件有M码吗", "0"),
    ("多少钱", "0"),
    ("好的", "0"),
    ("在吗", "0"),
    ("嗯嗯", "0"),
    ("收到", "0"),
    ("亲，这个有优惠吗", "0"),
    ("能便宜点吗", "0"),
    ("165/88A穿什么码", "0"),
    ("好不好看", "0"),
    ("差不多", "0"),
    ("不好意思，问一下", "0"),
    ("我电话[手机号]", "0"),
    ("[图片]", "0"),
    ("今天能发货吗?", "0"),
    ("真的假的", "0"),
    ("收到衣服了", "0"),
    ("book ok", "0"),  # ASCII words match whole: no "ok" inside "book"
]


@pytest.mark.parametrize(("text", "expected"), POLARITY)
def test_sentiment_score_polarity(text: str, expected: str) -> None:
    score = sentiment_score(text)
    assert _sign(score) == expected, (score, default_lexicon().explain(text))


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [
        ("質量太差了", "质量太差了"),
        ("很滿意", "很满意"),
        ("這件衣服很好看", "这件衣服很好看"),
        ("發貨太慢了", "发货太慢了"),
        ("說好的包郵呢", "说好的包邮呢"),
    ],
)
def test_sentiment_score_traditional_reads_as_simplified(traditional: str, simplified: str) -> None:
    assert sentiment_score(traditional) == pytest.approx(sentiment_score(simplified))
    assert sentiment_score(traditional) != 0


@pytest.mark.parametrize(
    ("wide", "narrow"),
    [
        ("好评！", "好评!"),
        ("ｙｙｄｓ", "yyds"),
        ("ＮＩＣＥ", "nice"),
        ("怎么还没到？？？", "怎么还没到???"),
        ("太差了！！！", "太差了!!!"),
        ("不错　就是贵", "不错 就是贵"),
    ],
)
def test_sentiment_score_full_width_reads_as_half_width(wide: str, narrow: str) -> None:
    assert sentiment_score(wide) == pytest.approx(sentiment_score(narrow))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *((f"[{name}]", "+") for name in ("呲牙", "愉快", "强", "爱心", "玫瑰", "抱拳", "OK")),
        *((f"[{name}]", "-") for name in ("撇嘴", "发怒", "流泪", "大哭", "委屈", "衰", "鄙视")),
        ("[抓狂]", "-"),
        ("[微笑]", "0"),  # cold or passive-aggressive as often as friendly
        ("好的[微笑]", "0"),
        ("😊", "+"),
        ("👍", "+"),
        ("👍🏻", "+"),  # skin tone
        ("❤️", "+"),  # with the variation selector
        ("❤", "+"),
        ("😡", "-"),
        ("😤", "-"),
        ("😭", "-"),
        ("💢", "-"),
        ("👎", "-"),
        ("[新品]", "0"),  # an unknown bracketed word is not a sticker
    ],
)
def test_sentiment_score_stickers_and_emoji(text: str, expected: str) -> None:
    assert _sign(sentiment_score(text)) == expected


@pytest.mark.parametrize(
    ("stronger", "plain", "weaker"),
    [
        ("太贵了", "贵", "有点贵"),
        ("超喜欢", "喜欢", "有点喜欢"),
        ("非常失望", "失望", "有点失望"),
        ("特别好看", "好看", "稍微好看"),
    ],
)
def test_sentiment_score_degree_adverbs_scale(stronger: str, plain: str, weaker: str) -> None:
    assert abs(sentiment_score(stronger)) > abs(sentiment_score(plain))
    assert abs(sentiment_score(plain)) > abs(sentiment_score(weaker)) > 0


@pytest.mark.parametrize(
    ("negated", "word"),
    [
        ("不满意", "满意"),
        ("不喜欢", "喜欢"),
        ("不好看", "好看"),
        ("没效果", "有效果"),
        ("不贵", "贵"),
    ],
)
def test_sentiment_score_negation_flips_sign(negated: str, word: str) -> None:
    assert sentiment_score(negated) * sentiment_score(word) < 0


def test_sentiment_score_negated_negative_is_milder_than_the_word() -> None:
    # Litotes: 不贵 is "fine", not as strong as 贵 is negative.
    assert 0 < sentiment_score("不贵") < abs(sentiment_score("贵"))


def test_sentiment_score_softened_negation_is_milder() -> None:
    assert sentiment_score("不喜欢") < sentiment_score("不是很喜欢") < 0
    assert sentiment_score("不满意") < sentiment_score("不太满意") < 0


def test_sentiment_score_negator_does_not_cross_punctuation() -> None:
    assert sentiment_score("不，喜欢") > 0


@pytest.mark.parametrize("text", ["这件有M码吗", "多少钱", "好的", "在吗", "尺码", "颜色", "链接"])
def test_sentiment_score_neutral_retail_text_is_zero(text: str) -> None:
    assert sentiment_score(text) == 0.0


@pytest.mark.parametrize("text", ["我再考虑下", "我再看看", "下次吧"])
def test_sentiment_score_hesitation_is_at_most_slightly_negative(text: str) -> None:
    assert -0.3 < sentiment_score(text) <= 0


def test_sentiment_score_thanks_is_mildly_positive() -> None:
    assert 0.1 < sentiment_score("好的谢谢") < 0.6


@pytest.mark.parametrize(("question", "statement"), [("好看吗", "好看"), ("会起球吗", "会起球")])
def test_sentiment_score_questions_are_damped(question: str, statement: str) -> None:
    assert abs(sentiment_score(question)) < abs(sentiment_score(statement)) / 2


def test_sentiment_score_what_follows_but_weighs_more() -> None:
    complaint_last = sentiment_score("质量不错，但是物流太慢了")
    praise_last = sentiment_score("物流太慢了，但是质量不错")
    assert complaint_last < praise_last


@pytest.mark.parametrize(
    ("louder", "quieter"),
    [("太差了!!!", "太差了"), ("太好了!!!", "太好了"), ("怎么还没到???", "怎么还没到")],
)
def test_sentiment_score_punctuation_amplifies(louder: str, quieter: str) -> None:
    assert abs(sentiment_score(louder)) > abs(sentiment_score(quieter))


def test_sentiment_score_question_marks_alone() -> None:
    assert -0.3 < sentiment_score("???") < 0
    assert sentiment_score("这件有M码吗??") == 0.0  # a plain question stays neutral


def test_sentiment_score_pattern_does_not_count_its_words_twice() -> None:
    [(what, value)] = default_lexicon().explain("比图片好看")
    assert what == "比图片好看" and value > 0


@pytest.mark.parametrize(
    "text",
    [
        "衣服还行，但是物流太慢了！！！",
        "你们客服什么态度啊！！！气死我了😡",
        "不是很好看，就是有点贵??",
        "好看吗",
        "[呲牙]好评",
        "",
    ],
)
def test_lexicon_explain_adds_up_to_the_score(text: str) -> None:
    lexicon = default_lexicon()
    raw = sum(value for _, value in lexicon.explain(text))
    assert lexicon.score(text) == pytest.approx(math.tanh(0.5 * raw))


# --------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\u200b\u200b",
        "\x00\x01\x7f",
        "😊" * 200,
        "[微笑]" * 500,
        "[[[[]]]]",
        "[",
        "这个color好nice",
        "[手机号][订单号][图片]",
        "!!!!!!!!",
        "????????",
        "a" * 20_000,
        "差" * 20_000,
        "不" * 20_000,
        "太" * 19_999 + "好",
        "质量太差了，我要投诉！！！" * 1500,
        "\ud800",  # a lone surrogate
        "İ" * 10,  # lowercases to two characters
        "🇨🇳👨‍👩‍👧1️⃣",
    ],
)
def test_sentiment_score_odd_input_never_raises(text: str) -> None:
    score = sentiment_score(text)
    assert isinstance(score, float)
    assert -1.0 <= score <= 1.0


def test_sentiment_score_long_text_is_linear() -> None:
    text = "等了三天还没发货，什么态度，说好的包邮呢？" * 1000  # 20,000 characters
    start = time.perf_counter()
    assert sentiment_score(text) == pytest.approx(-1.0)
    assert time.perf_counter() - start < 1.0


def test_sentiment_score_is_fast() -> None:
    messages = ["在吗？这件有M码吗", "等了三天还没发货，什么态度", "收到了，很满意[玫瑰]"] * 500
    sentiment_score("warm up")
    start = time.perf_counter()
    for message in messages:
        sentiment_score(message)
    per_message = (time.perf_counter() - start) / len(messages)
    assert per_message < 200e-6  # about 15 µs on one core; generous for busy CI machines


# --------------------------------------------------------------------------- the lexicon file


def test_lexicon_shipped_file_sizes() -> None:
    sizes = default_lexicon().sizes
    assert sizes["positive"] >= 150
    assert sizes["negative"] >= 250
    assert sizes["negators"] >= 10 and sizes["degree"] >= 10
    assert sizes["stickers"] >= 20 and sizes["emoji"] >= 20 and sizes["patterns"] >= 5


def test_lexicon_is_loaded_once() -> None:
    assert load_lexicon() is default_lexicon()
    assert SentimentAnalyzer().lexicon is SentimentAnalyzer().lexicon


def _minimal(**sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"version": 1, "positive": [{"weight": 1.0, "words": ["好看"]}]}
    data.update(sections)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": 1, "sentimen": {}}, "unknown section"),
        (_minimal(settings={"gian": 1.0}), "unknown setting"),
        (_minimal(settings={"gain": 0}), "setting 'gain' must be a number"),
        (_minimal(negative=[{"weight": 1.0, "words": ["好看"]}]), "listed twice"),
        (_minimal(negative=[{"weight": -1.0, "words": ["差"]}]), "weight must be a number"),
        (_minimal(negative=[{"weight": 1.0}]), "exactly 'weight' and 'words'"),
        (_minimal(neutral=[666]), "quote it"),
        (_minimal(neutral=[False]), "quote it"),
        (_minimal(neutral="好的"), "must be a list"),
        (_minimal(stickers={"笑哭": 1.0}), "unknown sticker"),
        (_minimal(negators={"不": [-1.0]}), "[on_positive, on_negative]"),
        (_minimal(patterns=[{"pattern": "还没.*发货", "weight": -1.0}]), "unbounded"),
        (_minimal(patterns=[{"pattern": "还没(发货|到)", "weight": -1.0}]), "capturing groups"),
        (_minimal(patterns=[{"pattern": "(?:还没)?", "weight": -1.0}]), "empty string"),
        (_minimal(patterns=[{"pattern": "还没(", "weight": -1.0}]), "invalid regular expression"),
        (_minimal(patterns=[{"pattern": "NICE", "weight": 1.0}]), "lowercase"),
        (_minimal(patterns=["还没发货"]), "exactly 'pattern' and 'weight'"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_lexicon_invalid_file_raises_config_error(data: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        SentimentLexicon(data, "test.yaml")


def test_lexicon_entries_are_folded_like_the_text() -> None:
    lexicon = SentimentLexicon(_minimal(negative=[{"weight": 1.0, "words": ["質量差", "ＢＡＤ"]}]))
    assert lexicon.score("质量差") < 0
    assert lexicon.score("so bad") < 0


def test_lexicon_shipped_stickers_are_wechat_stickers() -> None:
    import yaml

    from copilot.analyzers import sentiment

    path = Path(sentiment.__file__).parent.parent / "data" / "sentiment.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(map(str, data["stickers"])) <= STICKER_NAMES


def test_lexicon_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the sentiment lexicon"):
        SentimentLexicon.from_file(tmp_path / "missing.yaml")


def test_lexicon_bad_yaml_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("positive: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        SentimentLexicon.from_file(path)


# --------------------------------------------------------------------------- trajectory


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([], {"start": None, "end": None, "min": None, "trend": None}),
        ([None, None], {"start": None, "end": None, "min": None, "trend": None}),
        ([0.5, None], {"start": 0.5, "end": 0.5, "min": 0.5, "trend": None}),
        ([0.2, None, -0.4], {"start": 0.2, "end": -0.4, "min": -0.4, "trend": -0.6}),
        ([0.1, 0.5, None, -0.3], {"start": 0.1, "end": -0.3, "min": -0.3, "trend": -0.4}),
        (
            [0.2, None, 0.4, None, -0.6, -0.8],
            {"start": 0.3, "end": -0.7, "min": -0.8, "trend": -1.0},
        ),
        (
            [-0.5, 0.0, 0.1, 0.3, 0.9],
            {"start": -0.25, "end": 0.6, "min": -0.5, "trend": 0.85},
        ),
        ([1 / 3, 2 / 3], {"start": 0.333, "end": 0.667, "min": 0.333, "trend": 0.333}),
    ],
)
def test_sentiment_summary_start_end_trend(
    scores: list[float | None], expected: dict[str, float | None]
) -> None:
    summary = Sentiment(scores).summary()
    assert summary.keys() == expected.keys()
    for key, value in expected.items():
        assert summary[key] == (None if value is None else pytest.approx(value)), key


def test_sentiment_as_dict_rounds_scores() -> None:
    out = Sentiment([0.123456, None]).as_dict()
    assert out["scores"] == [0.123, None]
    assert out["summary"]["start"] == 0.123


# --------------------------------------------------------------------------- the analyzer

SOURING = [
    ("customer", "在吗？这件有M码吗"),
    ("guide", "亲，在的～M码有货哦"),
    ("customer", "好的，那我拍了"),
    ("guide", "好的亲，今天就给您发货"),
    ("customer", "都三天了，怎么还没发货？？"),
    ("system", "[撤回]"),
    ("customer", "什么态度，我要投诉！"),
]


def test_sentiment_analyzer_in_pipeline_scores_customer_messages() -> None:
    pipe = Pipeline([SentimentAnalyzer()])
    assert pipe.names == ["sentiment"]
    [doc] = pipe([make_conversation(turns=SOURING)])
    sentiment = doc["sentiment"]
    assert isinstance(sentiment, Sentiment)
    assert len(sentiment.scores) == len(SOURING)
    for (role, text), score in zip(SOURING, sentiment.scores, strict=True):
        if role == "customer":
            assert score == sentiment_score(text)
        else:
            assert score is None
    summary = sentiment.summary()
    assert summary["start"] == pytest.approx(0.0, abs=0.1)
    assert summary["end"] is not None and summary["end"] < -0.5
    assert summary["trend"] is not None and summary["trend"] < -0.5
    customer = [score for score in sentiment.scores if score is not None]
    assert summary["min"] == round(min(customer), 3) <= summary["end"]


def test_sentiment_analyzer_improving_conversation_has_positive_trend() -> None:
    turns = [
        ("customer", "怎么还没到啊"),
        ("guide", "亲，已经在派送了，今天就到"),
        ("customer", "收到了，质量很好，很喜欢[愉快]"),
    ]
    [doc] = Pipeline([SentimentAnalyzer()])([make_conversation(turns=turns)])
    summary = doc["sentiment"].summary()
    assert summary["start"] < 0 < summary["end"]
    assert summary["trend"] > 0.5


def test_sentiment_analyzer_guide_only_conversation() -> None:
    turns = [("guide", "亲，新品到了哦"), ("guide", "太好看了，有空来看看")]
    [doc] = Pipeline([SentimentAnalyzer()])([make_conversation(turns=turns)])
    assert doc["sentiment"].scores == [None, None]
    assert doc["sentiment"].summary()["trend"] is None


def test_sentiment_analyzer_predict_has_no_side_effects() -> None:
    analyzer = SentimentAnalyzer()
    docs = Pipeline([])([make_conversation(turns=SOURING)])
    preds = analyzer.predict(docs)
    assert [set(p) for p in preds] == [{"sentiment"}]
    assert docs[0].annotations == {}


def test_sentiment_analyzer_batches(tmp_path: Path) -> None:
    conversations = [
        make_conversation(f"c-{i}", turns=[("customer", text)])
        for i, text in enumerate(["太好了", "太差了", "在吗"])
    ]
    docs = list(Pipeline([SentimentAnalyzer()]).pipe(conversations, batch_size=2))
    signs = [_sign(doc["sentiment"].scores[0]) for doc in docs]
    assert signs == ["+", "-", "0"]


def test_sentiment_analyzer_custom_lexicon_file(tmp_path: Path) -> None:
    path = tmp_path / "brand.yaml"
    path.write_text(
        "version: 1\n"
        "positive:\n  - weight: 2.0\n    words: [绝绝子]\n"
        "negative:\n  - weight: 2.0\n    words: [踩雷]\n",
        encoding="utf-8",
    )
    analyzer = SentimentAnalyzer(path)
    turns = [("customer", "绝绝子"), ("customer", "满意"), ("customer", "踩雷")]
    [pred] = analyzer.predict(Pipeline([])([make_conversation(turns=turns)]))
    first, second, third = pred["sentiment"].scores
    assert first > 0.5 and second == 0.0 and third < -0.5


def test_sentiment_analyzer_missing_lexicon_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.yaml"):
        SentimentAnalyzer(tmp_path / "missing.yaml")
