"""Tests of the Chinese text pipeline: golden tables for normalisation, masking and tokenisation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import emoji
import pytest

import copilot.text.normalize as normalize_module
from copilot.errors import ConfigError, InputError
from copilot.text import (
    PII_PLACEHOLDERS,
    PII_RULES,
    STICKER_NAMES,
    ProcessedText,
    TextConfig,
    TextPipeline,
    default_pipeline,
    find_emojis,
    find_stickers,
    mask_pii,
    normalize_text,
    to_simplified,
    tokenize,
)
from copilot.text.segment import DEFAULT_USER_DICT, default_cache_dir, get_tokenizer


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep jieba's cache out of the home directory while these tests build tokenizers."""
    path = tmp_path_factory.mktemp("copilot-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPILOT_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def pipe() -> TextPipeline:
    return TextPipeline()


# --------------------------------------------------------------------------- normalisation

NORMALIZE_CASES = [
    ("在吗？这件有Ｍ码吗", "在吗?这件有M码吗"),
    ("ＡＢＣ１２３", "ABC123"),
    ("好的，谢谢！", "好的,谢谢!"),
    ("价格：（３９９元）；", "价格:(399元);"),
    ("亲～在的〜", "亲~在的~"),
    ("好的。收到、谢谢", "好的。收到、谢谢"),
    ("「这件」《说明》【新品】", "「这件」《说明》【新品】"),
    ("等一下…", "等一下..."),
    ("  多个   空格\n\t换行  ", "多个 空格 换行"),
    ("全角\u3000空格", "全角 空格"),
    ("零\u200b宽\ufeff字\u200e符", "零宽字符"),
    ("控制\x00\x07字符\x7f", "控制字符"),
    ("a\u200db", "ab"),
    ("一家人👨\u200d👩\u200d👧", "一家人👨\u200d👩\u200d👧"),
    ("有货🈶 ™ ㊗", "有货🈶 ™ ㊗"),
    ("👍🏻😂", "👍🏻😂"),
    ("①号 5㎏", "1号 5kg"),
    ("￥１２９９", "¥1299"),
    ("", ""),
    ("   \n ", ""),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZE_CASES)
def test_normalize_text_golden(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalize_text_is_idempotent() -> None:
    for raw, _ in NORMALIZE_CASES:
        once = normalize_text(raw)
        assert normalize_text(once) == once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("「這件衣服有貨嗎」", "「这件衣服有货吗」"),
        ("頭髮乾燥用什麼護髮素", "头发干燥用什么护发素"),
        ("这件衣服有货吗", "这件衣服有货吗"),
        ("M码 165/88A 😂", "M码 165/88A 😂"),
        ("[捂臉]", "[捂脸]"),
        ("", ""),
    ],
)
def test_to_simplified_golden(raw: str, expected: str) -> None:
    assert to_simplified(raw) == expected


def test_to_simplified_creates_one_converter() -> None:
    to_simplified("這")
    first = normalize_module._converter
    to_simplified("貨")
    assert first is not None
    assert normalize_module._converter is first


# --------------------------------------------------------------------------- PII masking

MASK_CASES = [
    # phones
    ("电话13812345678", "电话[手机号]", {"phone": 1}),
    ("138-1234-5678", "[手机号]", {"phone": 1}),
    ("138 1234 5678", "[手机号]", {"phone": 1}),
    ("+86 138 1234 5678", "[手机号]", {"phone": 1}),
    ("8613812345678到了打我", "[手机号]到了打我", {"phone": 1}),
    ("手机:19912345678,谢谢", "手机:[手机号],谢谢", {"phone": 1}),
    # WeChat
    ("wxid_abc123xyz", "[微信号]", {"wechat": 1}),
    ("加我微信abc_123456", "加我微信[微信号]", {"wechat": 1}),
    ("vx: Lily-2024 发你", "vx: [微信号] 发你", {"wechat": 1}),
    ("加我v abc123456", "加我v [微信号]", {"wechat": 1}),
    ("微信号是 panda_mama88", "微信号是 [微信号]", {"wechat": 1}),
    ("V信:Abc12345", "V信:[微信号]", {"wechat": 1}),
    # ID cards
    ("身份证110105194912310021", "身份证[身份证号]", {"id_card": 1}),
    ("11010519491231002X", "[身份证号]", {"id_card": 1}),
    ("身份证号码是 110105491231002", "身份证号码是 [身份证号]", {"id_card": 1}),
    # e-mail
    ("邮箱 lily.wang@163.com", "邮箱 [邮箱]", {"email": 1}),
    ("发到 abc_d+1@qq.com 吧", "发到 [邮箱] 吧", {"email": 1}),
    # bank cards
    ("银行卡号 6222 0212 3456 7890 123", "银行卡号 [银行卡号]", {"bank_card": 1}),
    ("6222 0212 3456 7890", "[银行卡号]", {"bank_card": 1}),
    ("退到6222021234567894", "退到[银行卡号]", {"bank_card": 1}),
    ("卡是622202123456789012", "卡是[银行卡号]", {"bank_card": 1}),
    # orders: a failed Luhn check leaves a long number to the order rule
    ("6222021234567890", "[订单号]", {"order": 1}),
    ("订单号123456789012345 什么时候发货[捂脸]", "订单号[订单号] 什么时候发货[捂脸]", {"order": 1}),
    ("单号: DD20260308001", "单号: [订单号]", {"order": 1}),
    ("order no. 88812345", "order no. [订单号]", {"order": 1}),
    ("202603081234567890还没发", "[订单号]还没发", {"order": 1}),
    # express
    ("快递单号SF1234567890123", "快递单号[快递单号]", {"express": 1}),
    ("顺丰SF1234567890123到哪了", "顺丰[快递单号]到哪了", {"express": 1}),
    ("运单号:773012345678901", "运单号:[快递单号]", {"express": 1}),
    ("jd0012345678901", "[快递单号]", {"express": 1}),
    # addresses
    ("上海市浦东新区张江路123弄4号501室", "[地址]", {"address": 1}),
    ("北京朝阳区建国路88号SOHO现代城2号楼1单元1001", "[地址]", {"address": 1}),
    ("我住幸福小区3栋2单元502", "我住[地址]", {"address": 1}),
    ("麻烦改成上海市浦东新区张江路123弄4号501室谢谢", "麻烦改成[地址]谢谢", {"address": 1}),
    (
        "寄到杭州市西湖区文三路90号东部软件园1号楼302,电话13912345678",
        "寄到[地址],电话[手机号]",
        {"address": 1, "phone": 1},
    ),
    # several kinds at once, and placeholders that are already there
    (
        "手机13812345678 微信abc_123456",
        "手机[手机号] 微信[微信号]",
        {"phone": 1, "wechat": 1},
    ),
    ("电话[手机号],地址[地址]", "电话[手机号],地址[地址]", {}),
    # not PII: prices, sizes, dates, times, quantities, shades, body measures, models
    ("399元包邮", "399元包邮", {}),
    ("¥1299,满300减50", "¥1299,满300减50", {}),
    ("165/88A穿M码还是L码", "165/88A穿M码还是L码", {}),
    ("38码 XL码 175/96A", "38码 XL码 175/96A", {}),
    ("3月8号10:30下的单", "3月8号10:30下的单", {}),
    ("2026-03-08发货,2026年3月8日到", "2026-03-08发货,2026年3月8日到", {}),
    ("#999和色号02哪个好,还有1号色", "#999和色号02哪个好,还有1号色", {}),
    ("160cm 50kg 穿什么码", "160cm 50kg 穿什么码", {}),
    ("买了3件,第2件半价", "买了3件,第2件半价", {}),
    ("型号A1234 iPhone15", "型号A1234 iPhone15", {}),
    ("万达广场3楼专柜有货", "万达广场3楼专柜有货", {}),
    ("知道3号能到吗", "知道3号能到吗", {}),
    ("每天10:30-22:00营业", "每天10:30-22:00营业", {}),
    ("满100000元减20000元", "满100000元减20000元", {}),
    ("订单3件都到了", "订单3件都到了", {}),
    ("微信支付可以吗,加微信好友", "微信支付可以吗,加微信好友", {}),
    ("[微笑][OK] email me", "[微笑][OK] email me", {}),
    ("a@b 不是邮箱", "a@b 不是邮箱", {}),
    ("12345", "12345", {}),
]


@pytest.mark.parametrize(("raw", "masked", "counts"), MASK_CASES)
def test_mask_pii_golden(raw: str, masked: str, counts: dict[str, int]) -> None:
    assert mask_pii(raw) == (masked, counts)


def test_mask_pii_leaves_placeholders_of_every_kind() -> None:
    text = " ".join(PII_PLACEHOLDERS.values())
    assert mask_pii(text) == (text, {})


def test_pii_rules_table_is_ordered_cues_before_shapes() -> None:
    kinds = [rule.kind for rule in PII_RULES]
    assert kinds.index("id_card") < kinds.index("bank_card") < kinds.index("phone")
    assert kinds[-1] == "address"
    assert all(rule.placeholder == PII_PLACEHOLDERS[rule.kind] for rule in PII_RULES)


@pytest.mark.parametrize(
    "adversarial",
    [
        "1" * 200_000,
        "[" * 100_000,
        "138 " * 50_000,
        "a" * 200_000 + "@",
        "订单" * 100_000,
        "路1号" * 50_000,
        "我" * 200_000 + "路1号",
        "[微笑" * 50_000,
    ],
    ids=["digits", "brackets", "grouped", "email", "cues", "roads", "names", "stickers"],
)
def test_mask_pii_adversarial_input_is_linear(adversarial: str) -> None:
    # Correctness on inputs that would make a backtracking pattern explode; nothing to mask in
    # any of them (a digit run longer than 24 is no known identifier).
    masked, counts = mask_pii(adversarial)
    assert masked == adversarial
    assert counts == {}


def test_mask_pii_long_text_masks_everywhere() -> None:
    text = ("在吗?这件有M码吗 " * 5_000) + "电话13812345678"
    masked, counts = mask_pii(text)
    assert counts == {"phone": 1}
    assert masked.endswith("电话[手机号]")


# --------------------------------------------------------------------------- stickers and emoji


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("好的[微笑][OK]", ("微笑", "OK")),
        ("[捂脸][捂脸]", ("捂脸", "捂脸")),
        ("[手机号][订单号][地址]", ()),
        ("[新品][图片]", ()),
        ("[旺柴]哈哈[裂开]", ("旺柴", "裂开")),
        ("没有表情", ()),
    ],
)
def test_find_stickers_golden(text: str, expected: tuple[str, ...]) -> None:
    assert find_stickers(text) == expected


def test_sticker_names_cover_the_wechat_panel() -> None:
    assert len(STICKER_NAMES) >= 100
    assert {
        "微笑",
        "捂脸",
        "偷笑",
        "呲牙",
        "OK",
        "强",
        "玫瑰",
        "抱拳",
        "旺柴",
        "裂开",
    } <= STICKER_NAMES
    assert not {"手机号", "订单号", "图片", "红包"} & STICKER_NAMES


EMOJI_SAMPLES = [
    "好的😂😂",
    "👍🏻收到",
    "一家人👨\u200d👩\u200d👧",
    "中国🇨🇳",
    "1\ufe0f\u20e3号",
    "❤️❤",
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "Nike™ ©2026",
    "🈶货🉐",
    "没有表情,只有数字123和#号",
]


@pytest.mark.parametrize("text", EMOJI_SAMPLES)
def test_find_emojis_agrees_with_emoji_library(text: str) -> None:
    assert list(find_emojis(text)) == [e["emoji"] for e in emoji.emoji_list(text)]


# --------------------------------------------------------------------------- tokenisation

TOKENS_EXACT = [
    ("我165/88A穿M码还是L码", ["我", "165/88a", "穿", "m码", "还是", "l码"]),
    ("满300减50包邮吗", ["满300减50", "包邮", "吗"]),
    ("七天无理由退货吗", ["七天无理由", "退货", "吗"]),
    ("3.5折399元¥1299", ["3.5折", "399元", "¥1299"]),
    ("斩男色豆沙色正红色", ["斩男色", "豆沙色", "正红色"]),
    ("160cm50kg", ["160cm", "50kg"]),
    ("偏大还是偏小", ["偏大", "还是", "偏小"]),
    ("T恤XL码", ["t恤", "xl码"]),
    ("👍🏻👨\u200d👩\u200d👧", ["👍🏻", "👨\u200d👩\u200d👧"]),
    (
        "订单号[订单号] 什么时候发货[捂脸]",
        ["订单号", "[订单号]", "什么", "时候", "发货", "[捂脸]"],
    ),
    ("[OK]", ["[OK]"]),
    ("", []),
    ("   ", []),
]


@pytest.mark.parametrize(("text", "expected"), TOKENS_EXACT)
def test_tokenize_golden_exact(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


TOKENS_CONTAIN = [
    ("这个color好nice,有S码吗", {"color", "nice", "s码"}),
    ("黄皮用什么色号", {"黄皮", "色号"}),
    ("敏感肌烂脸闷痘能用吗", {"敏感肌", "烂脸", "闷痘"}),
    ("宝宝红屁屁用什么纸尿裤", {"红屁屁", "纸尿裤"}),
    ("1号色和#999哪个好", {"1号色", "#999"}),
    ("我165/50kg穿什么码😂", {"50kg", "😂"}),
    ("10:30前下单", {"10:30", "下单"}),
    ("运费险怎么买", {"运费险"}),
    ("一段奶粉转二段", {"一段", "奶粉", "二段"}),
    ("双十一有活动吗", {"双十一"}),
    ("拉拉裤和安全座椅", {"拉拉裤", "安全座椅"}),
    ("素颜霜持妆控油", {"素颜霜", "持妆", "控油"}),
    ("有没有打底衫和阔腿裤", {"打底衫", "阔腿裤"}),
    ("38码偏大吗", {"38码", "偏大"}),
]


@pytest.mark.parametrize(("text", "expected"), TOKENS_CONTAIN)
def test_tokenize_golden_contains(text: str, expected: set[str]) -> None:
    tokens = tokenize(text)
    assert expected <= set(tokens), tokens


def test_tokenize_unknown_bracket_is_not_one_token() -> None:
    tokens = tokenize("[新品]到了")
    assert "[新品]" not in tokens
    assert "新品" in tokens


def test_tokenize_without_lowercase_keeps_case() -> None:
    pipe = TextPipeline(TextConfig(lowercase=False))
    assert pipe.tokenize("我165/88A穿M码") == ["我", "165/88A", "穿", "M码"]


def test_tokenize_without_hmm_uses_dictionary_words_only() -> None:
    pipe = TextPipeline(TextConfig(hmm=False))
    assert {"包邮", "满300减50"} <= set(pipe.tokenize("满300减50包邮吗"))


def test_tokenizer_is_loaded_once_and_shared() -> None:
    first = TextPipeline().tokenizer
    assert TextPipeline(TextConfig(hmm=False)).tokenizer is first
    assert get_tokenizer() is first
    assert get_tokenizer(DEFAULT_USER_DICT) is first
    assert TextPipeline().jieba is first


def test_default_cache_dir_reads_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COPILOT_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("COPILOT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "sales-copilot"


def test_custom_user_dict_adds_words_and_caches_in_cache_dir(tmp_path: Path) -> None:
    path = tmp_path / "dict.txt"
    path.write_text("# a comment\n小猪佩奇同款 3000 n\n", encoding="utf-8")
    pipe = TextPipeline(user_dict=path, cache_dir=tmp_path / "cache")
    assert "小猪佩奇同款" in pipe.tokenize("有小猪佩奇同款吗")
    assert pipe.tokenizer is not default_pipeline().tokenizer
    assert (tmp_path / "cache" / "jieba.cache").is_file()  # not /tmp/jieba.cache


def test_custom_user_dict_malformed_line_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("好词 3000 n\n坏 词 多余 字段\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        TextPipeline(user_dict=path).tokenize("好词")


def test_custom_user_dict_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TextPipeline(user_dict=tmp_path / "nope.txt").tokenize("好")


def test_retail_dict_is_well_formed_and_large() -> None:
    entries = [
        line.split()
        for line in DEFAULT_USER_DICT.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(entries) >= 300
    assert all(len(parts) == 3 and parts[1].isdigit() for parts in entries)
    words = [parts[0] for parts in entries]
    assert len(words) == len(set(words))


# --------------------------------------------------------------------------- the pipeline


def test_process_full_message(pipe: TextPipeline) -> None:
    out = pipe.process("親，這件有Ｍ码吗？我電話13812345678[捂臉]😂")
    assert out == ProcessedText(
        text="亲,这件有M码吗?我电话[手机号][捂脸]😂",
        tokens=(
            "亲",
            ",",
            "这件",
            "有",
            "m码",
            "吗",
            "?",
            "我",
            "电话",
            "[手机号]",
            "[捂脸]",
            "😂",
        ),
        stickers=("捂脸",),
        emojis=("😂",),
        pii={"phone": 1},
        truncated=False,
    )


@pytest.mark.parametrize(
    ("raw", "text", "tokens"),
    [
        ("", "", ()),
        (" \n\t ", "", ()),
        ("😂👍", "😂👍", ("😂", "👍")),
        ("[微笑]", "[微笑]", ("[微笑]",)),
        ("「這件衣服有貨嗎」", "「这件衣服有货吗」", ("「", "这件", "衣服", "有货", "吗", "」")),
        ("这个color好nice，有S码吗", "这个color好nice,有S码吗", None),
        ("订单号[订单号]", "订单号[订单号]", ("订单号", "[订单号]")),
    ],
    ids=["empty", "whitespace", "emoji-only", "sticker-only", "traditional", "mixed", "masked"],
)
def test_process_edge_cases(
    pipe: TextPipeline, raw: str, text: str, tokens: tuple[str, ...] | None
) -> None:
    out = pipe.process(raw)
    assert out.text == text
    if tokens is not None:
        assert out.tokens == tokens


@pytest.mark.parametrize(
    ("stickers", "emoji_mode", "text", "tokens"),
    [
        ("keep", "keep", "好的[微笑] 谢谢😂", ("好", "的", "[微笑]", "谢谢", "😂")),
        ("token", "token", "好的[表情] 谢谢[emoji]", ("好", "的", "[表情]", "谢谢", "[emoji]")),
        ("strip", "strip", "好的 谢谢", ("好", "的", "谢谢")),
    ],
)
def test_process_sticker_and_emoji_modes(
    stickers: str, emoji_mode: str, text: str, tokens: tuple[str, ...]
) -> None:
    pipe = TextPipeline(TextConfig(stickers=stickers, emoji=emoji_mode))  # type: ignore[arg-type]
    out = pipe.process("好的[微笑] 谢谢😂")
    assert (out.text, out.tokens) == (text, tokens)
    assert (out.stickers, out.emojis) == (("微笑",), ("😂",))


def test_process_strip_leaves_placeholders() -> None:
    pipe = TextPipeline(TextConfig(stickers="strip"))
    assert pipe.process("[红包][图片][手机号][OK]").text == "[红包][图片][手机号]"


def test_process_options_off_keep_text() -> None:
    pipe = TextPipeline(TextConfig(to_simplified=False, mask_pii=False))
    out = pipe.process("這件 13812345678")
    assert (out.text, out.pii) == ("這件 13812345678", {})


def test_process_truncates_after_masking() -> None:
    pipe = TextPipeline(TextConfig(max_chars=7))
    out = pipe.process("电话13812345678后面还有很多字")
    assert out.truncated
    assert out.text == "电话[手机号]"
    assert out.pii == {"phone": 1}


def test_process_truncation_does_not_split_a_placeholder() -> None:
    pipe = TextPipeline(TextConfig(max_chars=5))
    out = pipe.process("好的呀啊[微笑]")
    assert out.text == "好的呀啊"
    assert out.stickers == ("微笑",)


def test_process_long_text(pipe: TextPipeline) -> None:
    out = pipe.process("在吗?这件有M码吗 " * 10_000)  # 100k characters
    assert out.truncated
    assert len(out.text) <= 2000
    assert "m码" in out.tokens


@pytest.mark.parametrize("adversarial", ["1" * 200_000, "[" * 100_000], ids=["digits", "brackets"])
def test_process_adversarial_input(pipe: TextPipeline, adversarial: str) -> None:
    out = pipe.process(adversarial)
    # cut to max_chars, less an unclosed bracket at the end
    assert 1990 <= len(out.text) <= 2000
    assert out.text == adversarial[: len(out.text)]
    assert out.pii == {}
    assert out.stickers == ()
    assert "".join(out.tokens) == out.text


def test_process_many_matches_process(pipe: TextPipeline) -> None:
    texts = ["在吗?", "电话13812345678", "[微笑]", ""]
    assert pipe.process_many(texts) == [pipe.process(t) for t in texts]
    assert pipe.process_many(iter(texts)) == pipe.process_many(texts)


def test_pipeline_steps_compose_like_process(pipe: TextPipeline) -> None:
    raw = "這件ＸＬ碼有貨嗎？單號123456789012"
    masked, counts = pipe.mask(pipe.normalize(raw))
    out = pipe.process(raw)
    assert (out.text, out.pii) == (masked, counts)
    assert list(out.tokens) == pipe.tokenize(masked)


def test_process_rejects_non_string(pipe: TextPipeline) -> None:
    with pytest.raises(InputError, match="text must be a str, got NoneType"):
        pipe.process(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stickers": "drop"}, "TextConfig.stickers is 'drop'; valid values"),
        ({"emoji": "demojize"}, "TextConfig.emoji is 'demojize'; valid values"),
        ({"max_chars": 0}, "TextConfig.max_chars is 0; use a positive integer"),
    ],
)
def test_text_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TextConfig(**kwargs)  # type: ignore[arg-type]


def test_default_pipeline_is_cached() -> None:
    assert default_pipeline() is default_pipeline()
    assert default_pipeline().config == TextConfig()
