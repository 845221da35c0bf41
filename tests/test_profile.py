"""Customer profiles: facts read from customer messages, and profiles folded from conversations."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from copilot.profile import build_profile, extract, latest_product
from copilot.schema import CHINA_TZ, Conversation


def facts(text: str, context: str = "") -> set[tuple[str, object, str]]:
    return {(f.type, f.value, f.whom) for f in extract(text, context)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "我身高165 体重110斤，平时穿M",
            {("height_cm", 165, "self"), ("weight_kg", 55.0, "self"), ("size", "M", "self")},
        ),
        ("一米六五，一百零五斤", {("height_cm", 165, "self"), ("weight_kg", 52.5, "self")}),
        ("我１６５ｃｍ，５５ｋｇ", {("height_cm", 165, "self"), ("weight_kg", 55.0, "self")}),
        ("165/110斤", {("height_cm", 165, "self"), ("weight_kg", 55.0, "self")}),
        (
            "我55公斤 163 平时都穿M",
            {("height_cm", 163, "self"), ("weight_kg", 55.0, "self"), ("size", "M", "self")},
        ),
        ("身高1.7m", {("height_cm", 170, "self")}),
        ("我穿37码的鞋", {("shoe_size", 37, "self")}),
        ("我平时穿27的牛仔裤", {("size", "27", "self"), ("product", "牛仔裤", "self")}),
    ],
)
def test_measurements_and_sizes_in_every_writing(text: str, expected: set) -> None:
    assert facts(text) >= expected
    assert {f for f in facts(text) if f[0] in ("height_cm", "weight_kg", "size", "shoe_size")} == {
        f for f in expected if f[0] in ("height_cm", "weight_kg", "size", "shoe_size")
    }


@pytest.mark.parametrize(
    "text",
    [
        "M码还有货吗",  # asks about a size, does not say it is theirs
        "穿M还是L",  # undecided
        "这件165元吗",  # a price
        "订单号123456789",
        "买两斤",  # a quantity
        "模特172 穿S",  # someone else's body
        "柜姐说干皮油皮都能用",  # someone else's words
        "用了3个月了还没效果",  # a duration
        "怀孕7个月能用吗",
        "6个月以上的那款还有货吗",  # a product's range
        "10月15号之前能到吗",  # a date
        "平时穿L码 要不要拿XL",  # L is a fact, XL is a question
    ],
)
def test_traps_state_no_measurement_of_the_customer(text: str) -> None:
    found = facts(text)
    wrong = {
        f
        for f in found
        if f[0] in ("height_cm", "weight_kg", "shoe_size", "baby_age_months", "skin_type")
        or f[0] == "size"
        and f[1] != "L"
    }
    assert not wrong, (text, wrong)


def test_whose_fact_follows_the_subject() -> None:
    found = facts("我老公175 140斤 一般穿XL，我160 穿S")
    assert ("height_cm", 175, "partner") in found
    assert ("weight_kg", 70.0, "partner") in found
    assert ("size", "XL", "partner") in found
    assert ("height_cm", 160, "self") in found
    assert ("size", "S", "self") in found
    assert ("buying_for", "parent", "self") in facts("给我妈买件羽绒服")
    assert ("preference", "深色", "partner") in facts("我老公喜欢深色的 太亮的他不穿")


def test_child_ages_and_measurements() -> None:
    assert ("baby_age_months", 30, "child") in facts("孩子两岁半")
    assert ("baby_age_months", 14, "child") in facts("孩子一岁零两个月 刚会走")
    found = facts("宝宝八个月大 体重二十斤 身高七十五")
    assert {
        ("baby_age_months", 8, "child"),
        ("weight_kg", 10.0, "child"),
        ("height_cm", 75, "child"),
    } <= found
    assert ("baby_age_months", 1, "child") in facts("刚满月的宝宝用什么湿巾好")


def test_beauty_budget_objections_preferences_and_come_back() -> None:
    assert {("skin_type", "combination", "self"), ("skin_type", "sensitive", "self")} <= facts(
        "我是混油皮，有点敏感"
    )
    assert ("skin_tone", "dark", "self") in facts("黄黑皮适合哪个色号")
    assert ("budget_max", 300, "self") in facts("预算两三百")
    assert ("budget_max", 1000, "self") in facts("我男朋友脚43的 想给他买双跑鞋 一千以内")
    assert ("objection", "price", "self") in facts("太贵了 别家便宜50")
    assert ("objection", "trust", "self") in facts("是正品吗？会不会起球")
    assert ("objection", "price", "self") not in facts("贵是贵了点 宝宝用的安全最重要 是正品吧")
    assert ("preference", "不要羊毛", "self") in facts("不要羊毛的 会扎")
    assert ("preference", "宽松", "self") in facts("喜欢宽松一点的")
    assert ("come_back", "发工资", "self") in facts("等发工资再买")
    assert ("come_back", "问问老公", "self") in facts("我回去问问我老公")
    assert ("come_back", "双十一", "self") in facts("那等双十一再买吧")
    assert ("come_back", "过两天", "self") in facts("过两天再来看看")


def test_bare_answers_count_only_after_the_guide_asked() -> None:
    assert facts("M", "亲平时穿什么码呀") == {("size", "M", "self")}
    assert facts("M") == set()
    assert {("height_cm", 162, "self"), ("weight_kg", 52.5, "self")} <= facts(
        "162 ，105", "身高体重多少呀"
    )


@pytest.mark.parametrize("text", ["", "   ", "[微笑][微笑]", "😂" * 500, "哈" * 20_000, "M" * 3000])
def test_odd_messages_do_not_break_extraction(text: str) -> None:
    assert isinstance(extract(text), list)


@pytest.mark.parametrize(
    ("texts", "products", "expected"),
    [
        (["好的谢谢", "这款羽绒服有黑色吗", "看看卫衣"], (), "羽绒服"),  # newest first
        (["卫衣和羽绒服哪个好"], (), "羽绒服"),  # the last word of the message
        (["赠品面膜有吗", "好的"], (), None),  # a gift is not what they want
        (["星空系列还有吗"], ("星空系列",), "星空系列"),  # a catalogue name
        ([], (), None),
    ],
)
def test_latest_product_is_the_newest_product_fact(
    texts: list[str], products: tuple[str, ...], expected: str | None
) -> None:
    assert latest_product(texts, products) == expected


def test_traditional_characters_are_read() -> None:
    assert ("skin_type", "oily", "partner") in facts("給我女朋友買 她是油性肌膚 200以內")
    assert ("budget_max", 200, "self") in facts("給我女朋友買 她是油性肌膚 200以內")


def _conversation(
    cid: str, start: datetime, turns: list[tuple[str, str]], **extra: object
) -> Conversation:
    messages = [
        {"role": role, "text": text, "ts": (start + timedelta(minutes=i)).isoformat()}
        for i, (role, text) in enumerate(turns)
    ]
    return Conversation.model_validate(
        {
            "conversation_id": cid,
            "customer_id": "u-1",
            "guide_id": "g-1",
            "messages": messages,
            **extra,
        }
    )


def test_profile_newer_facts_supersede_older_and_lists_accumulate() -> None:
    day = datetime(2026, 11, 1, 10, tzinfo=CHINA_TZ)
    first = _conversation(
        "c-1",
        day,
        [
            ("customer", "我165 110斤 平时穿M，想看看羽绒服"),
            ("guide", "好的亲"),
            ("customer", "太贵了，等发工资再买"),
        ],
    )
    second = _conversation(
        "c-2",
        day + timedelta(days=20),
        [("customer", "瘦了 现在100斤 穿S"), ("customer", "还想看看围巾")],
    )
    profile = build_profile("u-1", [second, first])  # any order: sorted by time
    assert profile.get("weight_kg") == 50.0
    assert profile.get("size") == "S"
    assert profile.get("height_cm") == 165  # not restated: the older fact stands
    assert {f.value for f in profile.superseded if f.type == "size"} == {"M"}
    assert profile.values("product") == ["围巾", "羽绒服"]  # newest first
    newest = next(f for f in profile.facts if f.type == "size")
    assert (newest.conversation_id, newest.message_index) == ("c-2", 0)
    assert newest.text == "瘦了 现在100斤 穿S"
    assert profile.get("come_back") == "发工资"
    assert profile.stage == "considering"
    assert profile.last_contact == day + timedelta(days=20, minutes=1)
    assert profile.conversations == ["c-1", "c-2"]
    data = profile.to_dict()
    assert data["facts"][0]["at"].startswith("2026-11-21")


def test_profile_stage_follows_orders_and_after_sales() -> None:
    day = datetime(2026, 11, 1, 10, tzinfo=CHINA_TZ)
    chat = _conversation("c-1", day, [("customer", "在吗"), ("guide", "在的")])
    assert build_profile("u-1", [chat]).stage == "new"
    order = {
        "order_id": "o-1",
        "paid_at": day + timedelta(hours=2),
        "amount": 299.0,
        "product": "羽绒服",
    }
    bought = build_profile("u-1", [chat], orders=[order])
    assert bought.stage == "bought"
    assert bought.orders[0]["order_id"] == "o-1"
    later = _conversation("c-2", day + timedelta(days=3), [("customer", "衣服有质量问题 想退货")])
    assert build_profile("u-1", [chat, later], orders=[order]).stage == "after_sales"
