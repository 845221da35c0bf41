"""Slots, fact checks, moves and the shop's voice: one case per failure seen on real chats."""

from __future__ import annotations

from datetime import date

import pytest

from copilot.catalog import Catalog, Product, Promotion, learn_terms
from copilot.facts import Evidence
from copilot.replies import belong_together, in_shop_voice, moves, utterances
from copilot.slots import SlotValues, fill, has_words, slots_in, template

CATALOG = Catalog(
    [
        Product("双面羊绒大衣", "大衣", 1299.0, {"尺码": "S/M/L", "库存": "有货"}),
        Product("高腰阔腿牛仔裤", "牛仔裤", 259.0),
        Product("儿童安全座椅", "安全座椅", 899.0),
    ],
    [
        Promotion("双12", "coupon", "满300减50", date(2026, 12, 1), date(2026, 12, 31)),
        Promotion("国庆", "gift", "送收纳袋", date(2026, 10, 1), date(2026, 10, 7)),
    ],
    terms=["笔记本", "手机"],
)
DAY = date(2026, 12, 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("这款双面羊绒大衣现在1299元，M码有货", "这款[商品]现在[价格]，[尺码]有货"),
        ("这件大衣很显瘦", "这件[品类]很显瘦"),
        ("您买的笔记本已经到了", "您买的[商品]已经到了"),
        ("可以用手机APP查看", "可以用手机APP查看"),  # not pointed at: not this chat's product
        ("订单[订单x]在[日期x]由[站点x]发出", "订单[订单号]在[日期]由[地点]发出"),
        ("满300减50，顺丰包邮，3天内到", "[优惠]，[快递]包邮，[时间]内到"),
        ("7天无理由退货哦", "7天无理由退货哦"),  # a policy, not a delivery time
        ("165cm 110斤穿L码[微笑]", "[尺寸] [尺寸]穿[尺码][微笑]"),
        ("链接发您了 https://shop.example.com/item?id=1", "链接发您了 [链接]"),
    ],
)
def test_template_turns_values_into_typed_slots(text: str, expected: str) -> None:
    assert template(text, CATALOG) == expected


def test_slots_fill_from_the_chat_catalogue_and_promotions() -> None:
    chat = [
        ("customer", "这条高腰阔腿牛仔裤我165穿什么码"),
        ("guide", "建议M码哦"),
        ("customer", "有优惠吗"),
    ]
    values = SlotValues.of(chat, CATALOG, DAY)
    out = fill("这款[商品]现在[价格]，[优惠]，建议[尺码]", values)
    assert out.text == "这款高腰阔腿牛仔裤现在259元，满300减50，建议M码"
    assert not out.needs_edit


def test_a_slot_nothing_fills_is_left_marked_for_the_guide() -> None:
    out = fill("您的订单[订单号]已登记，[链接]", SlotValues.of([("customer", "在吗")], CATALOG))
    assert out.needs_edit and out.missing == ["订单号", "链接"]
    assert slots_in(out.text) == ["订单号", "链接"]


def test_a_customer_price_is_not_the_shop_price() -> None:
    values = SlotValues.of([("customer", "别家才卖99元")], Catalog())
    assert fill("这款现在[价格]", values).missing == ["价格"]


def test_wrong_product_is_unsupported() -> None:
    ev = Evidence.of([("customer", "笔记本电脑开不了机")], CATALOG)
    assert [p.kind for p in ev.problems("这款儿童安全座椅很稳")] == ["product"]
    assert ev.problems("笔记本可以先长按电源键试试") == []


def test_a_catalogue_item_of_the_chats_category_may_be_named() -> None:
    ev = Evidence.of([("customer", "有没有适合通勤的大衣")], CATALOG)
    assert ev.problems("推荐这款双面羊绒大衣") == []


def test_contradicted_logistics_state_is_caught() -> None:
    ev = Evidence.of([("customer", "三天了都没有物流信息，怎么回事")], CATALOG)
    problems = ev.problems("亲，包裹在派送中了，请耐心等待")
    assert problems and problems[0].kind == "logistics" and problems[0].verdict == "contradicted"
    assert ev.problems("非常抱歉，我马上帮您联系仓库核实") == []


def test_logistics_state_the_chat_states_is_supported() -> None:
    ev = Evidence.of([("customer", "显示已签收了但是我没拿到")], CATALOG)
    assert ev.problems("显示已经签收了，我帮您联系快递员") == []
    assert (
        Evidence.of([("customer", "到哪了")]).problems("已经发货了哦")[0].verdict == "unsupported"
    )


@pytest.mark.parametrize(
    ("chat", "reply", "kind", "verdict"),
    [
        ([("customer", "这件多少钱")], "现在只要999元", "price", "unsupported"),
        ([("customer", "有优惠吗")], "送您一份小样哦", "gift", "unsupported"),
        (
            [("customer", "能送赠品吗"), ("guide", "赠品已经送完了哦")],
            "送您赠品",
            "gift",
            "contradicted",
        ),
        ([("customer", "还有货吗")], "有货的亲", "stock", "unsupported"),
        ([("customer", "什么时候到")], "明天就能到哦", "delivery_time", "unsupported"),
        ([("customer", "从哪发货")], "从华东仓发出", "place", "unsupported"),
        ([("customer", "能便宜点吗")], "付款后到手764哦", "price", "unsupported"),
        ([("customer", "有活动吗")], "七夕力度挺大的", "event", "unsupported"),
        ([("customer", "订单号:[订单x] 查下")], "麻烦您提供一下订单号", "asks", "contradicted"),
        ([("customer", "那你帮我查查")], "已经帮您催促了", "done", "unsupported"),
        ([("customer", "下单了")], "今天下午就能发出", "delivery_time", "unsupported"),
    ],
)
def test_invented_facts_are_unsupported(
    chat: list[tuple[str, str]], reply: str, kind: str, verdict: str
) -> None:
    problems = Evidence.of(chat, Catalog(), DAY).problems(reply)
    assert (problems[0].kind, problems[0].verdict) == (kind, verdict)


def test_facts_the_catalogue_and_promotions_hold_are_supported() -> None:
    ev = Evidence.of([("customer", "双面羊绒大衣还有吗")], CATALOG, DAY)
    assert ev.problems("双面羊绒大衣有货，现在1299元，可以领优惠券") == []
    # The gift promotion ended in October.
    assert ev.problems("现在下单送收纳袋赠品")[0].kind == "gift"


def test_unrelated_messages_are_separate_moves() -> None:
    texts = ["这款是双面呢", "所以不用加里衬", "您的快递明天到", "亲"]
    assert [t for _i, t in moves(texts)] == ["这款是双面呢\n所以不用加里衬", "您的快递明天到\n亲"]
    assert not belong_together("您好，请问有什么可以帮您", "您的订单已经发货了")


def test_an_exports_spaces_separate_utterances() -> None:
    assert utterances("正在为您查询，请稍等  亲爱的，此单是京东退的款") == [
        "正在为您查询，请稍等",
        "亲爱的，此单是京东退的款",
    ]
    assert utterances("iPhone 12 有货") == ["iPhone 12 有货"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你们家男士免烫衬衫很好穿", "我们家男士免烫衬衫很好穿"),
        ("你家这款卖得最好", "我们家这款卖得最好"),
        ("你们店里有现货", "我们店里有现货"),
        ("你家宝宝多大了", "你家宝宝多大了"),
        ("您家离门店近吗", "您家离门店近吗"),
    ],
)
def test_guide_replies_speak_in_the_shops_voice(text: str, expected: str) -> None:
    assert in_shop_voice(text) == expected


def test_learned_terms_are_product_words_customers_ask_about() -> None:
    chats = [
        ["这款冰箱噪音大吗", "我的订单到哪了"],
        ["冰箱能分期吗"],
        ["买的冰箱坏了", "订单号多少"],
    ]
    assert learn_terms(chats, lambda t: __import__("jieba").lcut(t)) == ["冰箱"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[数字]", False), ("[订单号] [日期]", False), ("[订单号] 这个订单吗", True), ("好的", True)],
)
def test_a_reply_of_only_slots_is_not_a_script(text: str, expected: bool) -> None:
    assert has_words(text) is expected
