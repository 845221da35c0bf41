"""Tests of the compliance rules and checker: golden tables, offsets, the rules file, speed.

The golden tables are written from the law and ordinary sales talk. The last tests *measure* the
shipped rules against the generator's phrase banks (its compliance slips and its decent replies);
they are a check that the rules generalise, not a target the rules were written to.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from copilot.compliance import (
    KINDS,
    SEVERITIES,
    ComplianceChecker,
    Hit,
    Rule,
    default_checker,
    parse_rules,
)
from copilot.errors import ConfigError
from copilot.text import PII_PLACEHOLDERS, mask_pii


@pytest.fixture(scope="module")
def checker() -> ComplianceChecker:
    return default_checker()


def _spans(hits: list[Hit], text: str, kind: str) -> list[str]:
    return [text[h.start : h.end] for h in hits if h.kind == kind]


# --------------------------------------------------------------------------- golden tables

# (guide message, expected kind, expected span of that kind's hit)
POSITIVES: list[tuple[str, str, str]] = [
    # absolute claims (《广告法》第九条)
    ("我们这款是全网第一", "absolute_claim", "全网第一"),
    ("这是最好的面料了", "absolute_claim", "最好的"),
    ("销量第一的款式，闭眼入", "absolute_claim", "销量第一"),
    ("国家级品质，您放心", "absolute_claim", "国家级"),
    ("这个价格全网最低了亲", "absolute_claim", "价格全网最低"),
    ("这已经是最便宜的了", "absolute_claim", "最便宜"),
    ("顶级羊绒，手感一流", "absolute_claim", "顶级"),
    ("宝妈首选的纸尿裤", "absolute_claim", "首选"),
    ("我们是行业唯一通过这个认证的", "absolute_claim", "行业唯一"),
    ("100%纯天然成分，宝宝也能用", "absolute_claim", "100%纯天然"),
    ("这是我们家卖得最火的", "absolute_claim", "最火"),
    ("口碑排行榜排名第一", "absolute_claim", "排名第一"),
    ("这款No.1的面霜", "absolute_claim", "No.1"),
    ("史上最低价，错过等一年", "absolute_claim", "史上最低价"),
    ("皇室御用的品牌", "absolute_claim", "皇室御用"),
    # efficacy and medical claims (《广告法》第十七条, 化妆品监督管理条例, 食品安全法)
    ("这款能根治湿疹", "efficacy_claim", "根治"),
    ("消炎效果很好的", "efficacy_claim", "消炎"),
    ("这是药妆，皮肤科都在用", "efficacy_claim", "药妆"),
    ("美白效果特别明显", "efficacy_claim", "美白"),
    ("喝了能增强免疫力", "efficacy_claim", "增强免疫力"),
    ("纯植物配方，无副作用", "efficacy_claim", "无副作用"),
    ("孕妇也可以放心用", "efficacy_claim", "孕妇也可以放心用"),
    ("吃了孩子能长高", "efficacy_claim", "吃了孩子能长高"),
    ("这款奶粉最接近母乳", "efficacy_claim", "接近母乳"),
    ("祛痘效果一流", "efficacy_claim", "祛痘"),
    ("用了就不用吃药了", "efficacy_claim", "就不用吃药"),
    ("这个面膜有特效，一夜变白", "efficacy_claim", "特效"),
    ("喝这个奶能补脑", "efficacy_claim", "补脑"),
    ("医用级的面膜，敏感肌专用", "efficacy_claim", "医用级"),
    ("对失眠特别有效", "efficacy_claim", "对失眠特别有效"),
    # private payment off the platform
    ("加我私人微信转账便宜50", "private_payment", "私人微信"),
    ("直接微信转我就行", "private_payment", "微信转我"),
    ("支付宝转我，不走平台", "private_payment", "支付宝转我"),
    ("我们可以线下交易，更便宜", "private_payment", "线下交易"),
    ("钱直接转我银行卡", "private_payment", "钱直接转我"),
    ("扫我个人收款码付款", "private_payment", "个人收款码"),
    ("定金先发我，尾款到货再付", "private_payment", "定金先发我"),
    ("咱们私下交易，省得平台扣钱", "private_payment", "私下交易"),
    # guaranteed results
    ("用了保证白两个度", "guaranteed_result", "用了保证白两个度"),
    ("包你一个月瘦十斤", "guaranteed_result", "一个月瘦十斤"),
    ("无效退款，放心买", "guaranteed_result", "无效退款"),
    ("保证不过敏", "guaranteed_result", "保证不过敏"),
    ("坚持用肯定有效", "guaranteed_result", "用肯定有效"),
    ("三天见效", "guaranteed_result", "三天见效"),
    ("谁用谁白", "guaranteed_result", "谁用谁白"),
    ("百分百能长高", "guaranteed_result", "百分百能长高"),
    ("不见效全额退款", "guaranteed_result", "不见效全额退款"),
    # data exposure: raw personal data and another customer's data
    ("上个顾客电话是13812345678", "data_exposure", "13812345678"),
    ("我把她微信推给你", "data_exposure", "把她微信推给你"),
    ("那个顾客的地址是幸福小区3栋2单元502", "data_exposure", "那个顾客的地址"),
    ("她身份证号110101199003074514", "data_exposure", "110101199003074514"),
    ("之前那位客户的手机号我发你", "data_exposure", "之前那位客户的手机号"),
    ("邮箱 zhang.wei@example.com 发你了", "data_exposure", "zhang.wei@example.com"),
    # rude or dismissive
    ("爱买不买", "rude", "爱买不买"),
    ("不买别问", "rude", "不买别问"),
    ("你自己不会看吗", "rude", "你自己不会看吗"),
    ("烦不烦啊", "rude", "烦不烦"),
    ("问那么多干嘛", "rude", "问那么多干嘛"),
    ("嫌贵别买", "rude", "嫌贵别买"),
    ("穷就别来看了", "rude", "穷就别来"),
    ("有病吧你", "rude", "有病吧"),
    ("滚！", "rude", "滚"),
    ("神经病", "rude", "神经病"),
    ("没空理你", "rude", "没空理你"),
    # more phrasings of the same concepts
    ("这是全国销量冠军", "absolute_claim", "销量冠军"),
    ("全网独一份，别家没有", "absolute_claim", "独一份"),
    ("抑菌率99%，痘痘肌必备", "efficacy_claim", "抑菌"),
    ("喝这个能降血糖", "efficacy_claim", "降血糖"),
    ("宝宝吃了不容易感冒", "efficacy_claim", "吃了不容易感冒"),
    ("能消除黑色素", "efficacy_claim", "消除黑色素"),
    ("货款打到我卡上就行", "private_payment", "货款打到我"),
    ("这单别走系统了", "private_payment", "别走系统"),
    ("用一个月保证淡斑", "guaranteed_result", "一个月保证淡斑"),
    ("绝对不会过敏的", "guaranteed_result", "绝对不会过敏"),
    ("刚才那个宝妈的手机号是[手机号]", "data_exposure", "刚才那个宝妈的手机号"),
    ("隔壁王姐的微信号我推给你", "data_exposure", "王姐的微信号我推给你"),
    ("你闺蜜上周也在我这买了这款", "data_exposure", "你闺蜜上周也在我这买了"),
    ("买不起就别问了", "rude", "买不起就别"),
    ("这么简单的问题还要问", "rude", "这么简单的问题还要问"),
]

# Ordinary, compliant sales talk: none of it may trigger, in any domain.
NEGATIVES: list[str] = [
    "最近到货",
    "第一次买吗？",
    "最后一件了，要的话抓紧哦",
    "不合适七天无理由退换",
    "保证正品，假一赔十",
    "过敏包退，您放心试",
    "这款很受欢迎",
    "首单立减20",
    "好评率很高",
    "销量不错，上个月卖了两千多件",
    "很多老顾客回购",
    "不合适可以退",
    "推荐您试试这款",
    "100%纯棉的，很透气",
    "最好先量一下腰围再选",
    "建议您最好用温水手洗",
    "最快明天发货",
    "最少两件包邮",
    "最多可以叠加两张券",
    "最新款到货了，您看看",
    "第一件原价，第二件半价",
    "加我微信，有新品第一时间通知您",
    "七天无理由，还送运费险",
    "敏感肌也可以用，建议先在耳后试一下",
    "效果因人而异，坚持使用会更好",
    "不能保证百分百有效，但是回购率很高",
    "这款不能治疗湿疹，严重的话建议就医",
    "这款不含激素，成分很温和",
    "黑色显瘦，很百搭",
    "这个颜色很显白",
    "您可以去别家比较一下，我们有价保",
    "随便您挑，都有现货",
    "您自己看看喜欢哪个颜色",
    "我们门店在万达广场3楼",
    "发顺丰，一般两天到",
    "有问题随时找我",
    "您先别急，我帮您查一下",
    "不好意思让您久等了",
    "羊毛含量80%，手感很软",
    "防胀气奶瓶，宝宝喝奶不呛",
    "这款奶粉含DHA和益生菌",
    "宝宝长高了可以换大一码",
    "价格已经很优惠了",
    "现在下单有赠品",
    "线下门店也可以买，您方便的话来试穿",
    "这款有美白特证，国妆特字备案的",
    "别人的电话不能给您哦，要保护顾客隐私",
    "不好意思我有点啰嗦了",
    "送妈妈的话推荐这款",
    "孕妇能用吗？建议先咨询医生",
    "宝宝红屁屁的话建议勤换尿布",
    "厚底增高5厘米，走路不累",
    "您穿M码应该合适，也可以量一下腰围",
    "我把优惠券发给您",
    "把尺码表发给您看看",
    "品牌直营店，正品保障",
    "退款会原路退回，一般1-3个工作日",
    "去死皮很温和，敏感肌也能用",
    "不怪您，是快递的问题",
    "不满意可以退，您放心",
    "孕妇可以穿，面料很柔软",
    "积分永久有效",
    "终身免费修改裤长",
    "这款很靠谱的",
    "您的收货地址是上海对吗",
    "您好😊，这款有S码和M码",
    "抗菌面料，夏天穿很清爽",
    "这款卖得最好的是黑色",
    "没问题，保证今天发货",
    "保证是正品，有效期到2027年",
    "一定要坚持用才有效果哦",
    "最好的办法是先试用小样",
    "这件衣服最大码是XL",
    "那个顾客反馈说很好用",
    "我把订单发给您看看",
    "我把门店地址发给您",
    "售后的电话我发给您",
    "店长的微信推给你，有问题找她",
    "先生的地址我发您确认下",
    "美女的地址是[地址]对吧",
    "这个尺码您穿肯定好看",
    "奶瓶记得消毒哦",
    "宝宝湿疹的话建议先看医生",
    "可以用支付宝付款，在小程序里选就行",
    "我把付款链接发给您",
    "这款纸尿裤很透气，宝宝不容易红屁屁",
    "我们有七天无理由和运费险，您放心拍",
]


@pytest.mark.parametrize(("text", "kind", "span"), POSITIVES)
def test_check_flags_violation_with_kind_and_span(
    checker: ComplianceChecker, text: str, kind: str, span: str
) -> None:
    hits = checker.check(text)
    assert span in _spans(hits, text, kind), [(h.rule_id, text[h.start : h.end]) for h in hits]


@pytest.mark.parametrize("text", NEGATIVES)
@pytest.mark.parametrize("domain", [None, "apparel", "beauty", "baby"])
def test_check_leaves_ordinary_sales_talk_alone(
    checker: ComplianceChecker, text: str, domain: str | None
) -> None:
    hits = checker.check(text, domain=domain)
    assert hits == [], [(h.rule_id, h.excerpt) for h in hits]
    assert checker.is_clean(text, domain=domain)


def test_golden_tables_are_large_enough_and_cover_every_kind() -> None:
    assert len(POSITIVES) >= 40 and len(NEGATIVES) >= 40
    assert {kind for _, kind, _ in POSITIVES} == set(KINDS)


# --------------------------------------------------------------------------- offsets


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("全网第１", (0, 4)),  # full-width digit
        ("全網第一", (0, 4)),  # traditional characters
        ("我們這款是全網第一哦", (5, 9)),
        ("😀😀全网第一", (2, 6)),  # emoji are one code point each
        ("👨\u200d👩\u200d👧全网第一", (5, 9)),  # a ZWJ family emoji: 5 code points
        ("最\u200b好的面料", (0, 4)),  # a zero-width space inside the word
        ("ＮＯ．１的品质", (0, 4)),
        ("这款 No.1 的品质", (3, 7)),
    ],
)
def test_check_spans_index_the_original_text(
    checker: ComplianceChecker, text: str, span: tuple[int, int]
) -> None:
    hits = checker.check(text)
    assert [(h.start, h.end) for h in hits if h.kind == "absolute_claim"] == [span]


def test_check_returns_sorted_non_overlapping_hits_with_explanations(
    checker: ComplianceChecker,
) -> None:
    text = (
        "亲，这是全网第一的面霜，能根治痘痘，保证有效，加我私人微信转账，爱买不买，电话13812345678"
    )
    hits = checker.check(text)
    assert {h.kind for h in hits} == set(KINDS)
    assert all(a.end <= b.start for a, b in zip(hits, hits[1:], strict=False))
    for hit in hits:
        assert hit.severity in SEVERITIES
        assert hit.explanation and "\n" not in hit.explanation
        assert "【" in hit.excerpt and "】" in hit.excerpt
        assert text[hit.start : hit.end] in text


def test_check_merges_overlapping_spans_of_one_kind(checker: ComplianceChecker) -> None:
    [hit] = checker.check("用了保证白两个度")
    assert (hit.kind, hit.start, hit.end) == ("guaranteed_result", 0, 8)


def test_excerpt_shows_personal_data_as_placeholders(checker: ComplianceChecker) -> None:
    text = "上个顾客电话是13812345678，地址幸福小区3栋2单元502，身份证110101199003074514"
    hits = checker.check(text)
    assert hits and all(h.kind == "data_exposure" for h in hits)
    for hit in hits:
        assert not re.search(r"[0-9]{5}", hit.excerpt), hit.excerpt
    assert any("[手机号]" in h.excerpt for h in hits)


def test_excerpt_of_a_long_span_shows_its_ends(checker: ComplianceChecker) -> None:
    rules = [Rule("rude_long", "rude", "low", "长", patterns=("啊{30,60}",))]
    [hit] = ComplianceChecker(rules).check("好" * 20 + "啊" * 60 + "好" * 20)
    assert (
        hit.excerpt == "…" + "好" * 8 + "【" + "啊" * 24 + "…" + "啊" * 24 + "】" + "好" * 8 + "…"
    )


@pytest.mark.parametrize(
    "text",
    [
        "电话138 1234 5678 139 1234 5678 好",
        "您的订单号是123456789012345，顺丰SF1234567890",
        "住在北京市朝阳区建国路88号的那位顾客，微信abc_123456",
        "邮箱a.b@example.com和13812345678",
        "已有的[手机号]和新的13912345678",
        "13812345678",
    ],
)
def test_check_finds_exactly_the_personal_data_mask_pii_masks(text: str) -> None:
    pii_only = ComplianceChecker([r for r in default_checker().rules if r.pii])
    hits = pii_only.check(text)
    masked = mask_pii(text)[0]
    rebuilt, pos = [], 0
    for hit in hits:
        rebuilt += [text[pos : hit.start], "¤"]
        pos = hit.end
    rebuilt.append(text[pos:])
    expected = re.sub("|".join(map(re.escape, PII_PLACEHOLDERS.values())), "¤", masked)
    # a placeholder already in the text stays text: put it back where mask_pii left it
    assert "".join(rebuilt) == expected.replace("已有的¤", "已有的[手机号]")


# --------------------------------------------------------------------------- domains


@pytest.mark.parametrize(
    ("text", "domain", "flagged"),
    [
        ("抗菌配方，洗完不长痘", "beauty", True),
        ("抗菌配方，洗完不长痘", "apparel", False),
        ("抗菌配方，洗完不长痘", None, True),
        ("这款霜能瘦身", "beauty", True),
        ("瘦身牛仔裤，修饰腿型", "apparel", False),
        ("穿这个塑身衣就能减肥", "apparel", True),  # 减肥 is a claim in every domain
        ("比母乳还好的配方", "baby", True),
        ("比母乳还好的配方", "apparel", False),
    ],
)
def test_check_applies_domain_rules_only_in_their_domains(
    checker: ComplianceChecker, text: str, domain: str | None, flagged: bool
) -> None:
    assert bool(checker.check(text, domain=domain)) is flagged


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("text", ["", " ", "😀", "[微笑]", "ok", "\u200b", "12345"])
def test_check_handles_empty_and_trivial_text(checker: ComplianceChecker, text: str) -> None:
    assert checker.check(text) == []


@pytest.mark.parametrize(
    ("text", "hits"),
    [
        ("最" * 200_000, 0),
        ("保证" + "啊" * 200_000 + "有效", 0),
        ("1" * 200_000, 0),  # one digit run longer than any identifier
        ("13812345678," * 16_000, 16_000),
        ("全网第一" * 50_000, 50_000),
        ("不能保证" * 50_000, 0),
        ("幸福小区3栋2单元502" * 15_000, None),
        ("[手机号]" * 40_000, 0),
        ("😀\u200d" * 100_000, 0),
        ("微信" * 100_000, 0),
        ("a" * 200_000, 0),
    ],
)
def test_check_finishes_on_long_adversarial_text(
    checker: ComplianceChecker, text: str, hits: int | None
) -> None:
    found = checker.check(text)
    assert isinstance(found, list)
    if hits is not None:
        assert len(found) == hits
    else:
        assert found and all(h.kind == "data_exposure" for h in found)
    assert all(a.end <= b.start for a, b in zip(found, found[1:], strict=False))


# --------------------------------------------------------------------------- the rules file


def test_default_checker_is_cached_and_covers_every_kind() -> None:
    checker = default_checker()
    assert default_checker() is checker
    assert checker.kinds == KINDS
    assert ComplianceChecker.from_file().kinds == KINDS


def test_shipped_rules_have_enough_coverage_per_kind() -> None:
    rules = default_checker().rules
    entries = {kind: 0 for kind in KINDS}
    for rule in rules:
        entries[rule.kind] += len(rule.lexicon) + len(rule.patterns) + len(rule.pii)
        assert rule.id.isascii() and rule.explanation
    assert sum(entries.values()) >= 60
    assert all(n >= 5 for n in entries.values()), entries


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(body, encoding="utf-8")
    return path


_GOOD = """\
rules:
  - id: rude_one
    kind: rude
    severity: high
    explanation: 不要这样说
    lexicon: [爱买不买]
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _GOOD + "  - id: broken_regex\n    kind: rude\n    severity: low\n"
            "    explanation: x\n    patterns:\n      - '(不买'\n",
            r"line 12: rule 'broken_regex': patterns\[0\] '\(不买': invalid regular expression",
        ),
        (
            _GOOD.replace("kind: rude", "kind: absolut_claim"),
            r"line 3: rule 'rude_one': unknown kind 'absolut_claim' \(did you mean 'absolute_claim'\?\)",
        ),
        (_GOOD.replace("severity: high", "severity: urgent"), "unknown severity 'urgent'"),
        (_GOOD + _GOOD.replace("rules:\n", ""), "rule id 'rude_one' is already used on line 2"),
        (
            _GOOD.replace("lexicon:", "lexicons:"),
            r"unknown key 'lexicons' \(did you mean 'lexicon'\?\)",
        ),
        (_GOOD.replace("    lexicon: [爱买不买]\n", ""), "needs at least one of 'lexicon'"),
        (_GOOD.replace("lexicon: [爱买不买]", "patterns: ['不买，别问']"), "half-width"),
        (_GOOD.replace("lexicon: [爱买不买]", "patterns: ['NO\\.1']"), "lowercase"),
        (_GOOD.replace("lexicon: [爱买不买]", "patterns: ['不买.+别问']"), "unbounded repetition"),
        (_GOOD.replace("lexicon: [爱买不买]", "patterns: ['(?:买)?']"), "empty string"),
        (_GOOD.replace("lexicon: [爱买不买]", "patterns: ['(买)\\1']"), "backreferences"),
        (_GOOD.replace("lexicon: [爱买不买]", "pii: [phone]"), "only for data_exposure"),
        (
            _GOOD.replace("kind: rude", "kind: data_exposure").replace(
                "lexicon: [爱买不买]", "pii: [fone]"
            ),
            "unknown pii kind 'fone'",
        ),
        (_GOOD.replace("id: rude_one", "id: Rude One"), "rule id 'Rude One' is not valid"),
        (_GOOD.replace("explanation: 不要这样说", "explanation: ''"), "one non-empty line"),
        (_GOOD + "extra: 1\n", "unknown top-level key 'extra'"),
        ("rules: [\n", "not valid YAML"),
        ("rules: []\n", "non-empty list"),
    ],
)
def test_from_file_rejects_a_bad_rules_file_with_a_helpful_message(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ComplianceChecker.from_file(_write(tmp_path, body))


def test_from_file_reads_a_good_file_and_shared_exception_lists(tmp_path: Path) -> None:
    body = """\
version: 1
shared:
  negation: &negation
    - '不能保证'
rules:
  - id: guaranteed_one
    kind: guaranteed_result
    severity: high
    explanation: 不要承诺效果
    domains: [beauty]
    patterns: ['保证有效']
    exceptions:
      - *negation
      - '因人而异'
"""
    checker = ComplianceChecker.from_file(_write(tmp_path, body))
    assert checker.kinds == ("guaranteed_result",)
    assert checker.rules[0].exceptions == ("不能保证", "因人而异")
    assert [h.rule_id for h in checker.check("保证有效", domain="beauty")] == ["guaranteed_one"]
    assert checker.check("不能保证有效") == []
    assert checker.check("保证有效", domain="apparel") == []


def test_from_file_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read compliance rules file"):
        ComplianceChecker.from_file(tmp_path / "nope.yaml")


def test_checker_rejects_invalid_rules_built_in_code() -> None:
    with pytest.raises(ConfigError, match="rule 'bad': pattern '\\(x': invalid regular expression"):
        ComplianceChecker([Rule("bad", "rude", "low", "x", patterns=("(x",))])
    duplicate = Rule("twice", "rude", "low", "x", lexicon=("滚蛋",))
    with pytest.raises(ConfigError, match="duplicate compliance rule id 'twice'"):
        ComplianceChecker([duplicate, duplicate])


def test_parse_rules_reports_the_line_of_the_bad_pattern() -> None:
    body = _GOOD.replace(
        "    lexicon: [爱买不买]\n", "    patterns:\n      - '爱买不买'\n      - '[不买'\n"
    )
    with pytest.raises(ConfigError, match=r"<rules> line 8: rule 'rude_one': patterns\[1\]"):
        parse_rules(body)


# --------------------------------------------------------------------------- measurement


def _filler(rng: random.Random, domain: str) -> Callable[[str], str]:
    """Simple slot values from the generator's catalogue, like the simulator's."""
    from copilot.synth import load_bank

    bank = load_bank()
    dom, values = bank.domains[domain], bank.rules["values"]
    product = rng.choice(dom.products)
    table: dict[str, Callable[[], str]] = {
        "product": lambda: rng.choice(values["product_refs"]) + product.name,
        "category": lambda: product.category,
        "attr": lambda: rng.choice(product.attributes or ["材质"]),
        "concern": lambda: rng.choice(product.concerns or ["质量"]),
        "size": lambda: rng.choice(product.sizes or ["均码"]),
        "color": lambda: rng.choice(product.colors or ["黑色"]),
        "body": lambda: rng.choice(dom.body or ["165/50kg"]),
        "price": lambda: str(product.price),
        "price2": lambda: str(int(product.price * 0.8)),
        "promo_price": lambda: str(int(product.price * dom.promo_discount)),
        "diff": lambda: rng.choice(["10", "20", "50"]),
        "order": lambda: "[订单号]" if rng.random() < 0.3 else str(rng.randrange(10**15, 10**19)),
        "call": lambda: rng.choice(bank.guide_noise.get("calls") or ["亲"]),
        "selling_point": lambda: rng.choice(product.selling_points or ["品质很好"]),
        "material": lambda: product.material or "优质面料",
        "coupon": lambda: rng.choice(dom.coupons or ["满300减30"]),
        "policy": lambda: rng.choice(dom.policies or ["七天无理由退换"]),
        "gift": lambda: rng.choice(product.gifts or ["小样"]),
    }

    def fill(slot: str) -> str:
        slot = slot.removesuffix("#2")
        return table[slot]() if slot in table else rng.choice(values[slot])

    return fill


def test_measure_recall_on_generator_slips_and_false_positives_on_its_replies(
    checker: ComplianceChecker,
) -> None:
    from copilot.synth import load_bank

    bank = load_bank()
    rng = random.Random(7)
    domains = sorted(bank.domains)
    recall: dict[str, float] = {}
    for kind, phrases in sorted(bank.slips.items()):
        found = total = 0
        for phrase in phrases:
            for domain in domains:
                for _ in range(2):
                    text = phrase.render(rng, _filler(rng, domain))
                    total += 1
                    found += any(h.kind == kind for h in checker.check(text, domain=domain))
        recall[kind] = found / total
    flagged = total = 0
    for domain in domains:
        for action in bank.actions:
            for part in ("cores", "terse"):
                for phrase in bank.cores("guide", action, domain, "all", part):
                    text = phrase.render(rng, _filler(rng, domain))
                    total += 1
                    flagged += bool(checker.check(text, domain=domain))
    share = flagged / total
    print("\nrecall per kind:", {k: round(v, 3) for k, v in recall.items()})
    print(f"share of decent replies flagged: {share:.4f} ({flagged}/{total})")
    assert set(recall) == set(KINDS)
    assert all(v >= 0.8 for v in recall.values()), recall
    assert share <= 0.05


def test_measure_speed_per_short_guide_message(checker: ComplianceChecker) -> None:
    from copilot.synth import generate

    texts = [
        m.text
        for c in generate(80, seed=5)
        for m in c.messages
        if m.role == "guide" and 10 <= len(m.text) <= 60
    ]
    for text in texts:  # warm: compiles the per-character regexes on first use
        checker.check(text)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        for text in texts:
            checker.check(text)
        runs.append((time.perf_counter() - start) / len(texts) * 1e6)
    print(f"\n{min(runs):.1f} µs per guide message (median {statistics.median(runs):.1f})")
    assert min(runs) < 1000  # a sanity bound against a pathological rule, not a target
