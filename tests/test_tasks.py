"""Tasks from headquarters: who is targeted, whether each guide sent the script, and what came of it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from copilot.errors import InputError
from copilot.profile import build_profile
from copilot.schema import CHINA_TZ, Conversation
from copilot.tasks import Segment, Task, execution, summarise, targets

DAY = datetime(2026, 11, 2, 10, 0, tzinfo=CHINA_TZ)
SCRIPT = "亲，双十二羽绒服全场8折，您上次看的那款也参加哦，需要帮您留一件吗？"


def chat(
    cid: str,
    customer: str,
    start: datetime,
    turns: list[tuple[str, str]],
    guide: str = "g-1",
    store: str = "s-1",
) -> Conversation:
    return Conversation.model_validate(
        {
            "conversation_id": cid,
            "customer_id": customer,
            "guide_id": guide,
            "store_id": store,
            "messages": [
                {"role": role, "text": text, "ts": (start + timedelta(minutes=i)).isoformat()}
                for i, (role, text) in enumerate(turns)
            ],
        }
    )


def task(**segment: object) -> Task:
    return Task(
        "t-1",
        "双十二羽绒服",
        (SCRIPT,),
        Segment.from_dict(segment),
        DAY + timedelta(days=10),
        DAY + timedelta(days=14),
    )


def test_segment_asked_about_recently_and_did_not_buy() -> None:
    asked = chat("c-1", "u-1", DAY, [("customer", "羽绒服有黑色吗"), ("guide", "有的")])
    old = chat("c-2", "u-2", DAY - timedelta(days=60), [("customer", "羽绒服有黑色吗")])
    other = chat("c-3", "u-3", DAY, [("customer", "面霜怎么用")], store="s-2")
    bought = chat("c-4", "u-4", DAY, [("customer", "这件羽绒服就要M码")])
    profiles = [
        (build_profile("u-1", [asked]), "g-1", "s-1"),
        (build_profile("u-2", [old]), "g-1", "s-1"),
        (build_profile("u-3", [other]), "g-2", "s-2"),
        (
            build_profile(
                "u-4", [bought], orders=[{"paid_at": DAY + timedelta(hours=1), "amount": 599}]
            ),
            "g-1",
            "s-1",
        ),
    ]
    chosen = targets(task(asked_about=["羽绒服"], within_days=30, bought=False), profiles)
    assert [t.customer_id for t in chosen] == ["u-1"]
    assert [t.customer_id for t in targets(task(stores=["s-2"]), profiles)] == ["u-3"]
    assert [t.customer_id for t in targets(task(stages=["bought"]), profiles)] == ["u-4"]


def test_execution_counts_the_script_or_a_close_variant_inside_the_window_only() -> None:
    start = DAY + timedelta(days=11)
    sent = chat(
        "c-1",
        "u-1",
        start,
        [
            (
                "guide",
                "[姓名]亲，双十二羽绒服全场8折！您上次看的那款也参加哦，需要帮您留一件吗[玫瑰]",
            ),
            ("customer", "好呀 留一件M"),
        ],
    )
    other = chat(
        "c-2", "u-2", start, [("guide", "亲，新款毛衣到货啦，欢迎来店里看看"), ("customer", "好的")]
    )
    late = chat("c-3", "u-3", DAY + timedelta(days=20), [("guide", SCRIPT)])
    silent: list[Conversation] = []
    chosen = targets(
        task(), [(build_profile(c, []), "g-1", "s-1") for c in ("u-1", "u-2", "u-3", "u-4")]
    )
    conversations = {"u-1": [sent], "u-2": [other], "u-3": [late], "u-4": silent}
    orders = {"u-1": [{"paid_at": start + timedelta(hours=3)}]}
    done = {t.customer_id: t for t in execution(task(), chosen, conversations, orders)}
    assert done["u-1"].executed and done["u-1"].replied and done["u-1"].converted
    assert done["u-1"].conversation_id == "c-1" and done["u-1"].similarity >= 0.4
    assert not done["u-2"].executed and done["u-2"].similarity < 0.4  # same shop, another message
    assert not done["u-3"].executed  # after the deadline
    assert not done["u-4"].executed
    report = summarise(list(done.values()))
    assert report["overall"] == {
        "targeted": 4, "executed": 1, "execution_rate": 0.25, "replied": 1, "converted": 1, "conversion_rate": 1.0,
    }  # fmt: skip
    assert report["guides"]["g-1"]["targeted"] == 4


def test_a_given_encoder_decides_similarity() -> None:
    import numpy as np

    def encode(texts):  # two directions: the script's and everything else
        return np.asarray([[1.0, 0.0] if "羽绒服" in t else [0.0, 1.0] for t in texts])

    start = DAY + timedelta(days=11)
    chosen = targets(task(), [(build_profile("u-1", []), "g-1", "s-1")])
    paraphrase = chat("c-1", "u-1", start, [("guide", "双十二羽绒服打八折，给您留一件？")])
    [target] = execution(task(), chosen, {"u-1": [paraphrase]}, encode=encode, threshold=0.9)
    assert target.executed and target.similarity == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variants": ()}, "variant"),
        ({"variants": ("  ",)}, "variant"),
        ({"deadline": DAY}, "deadline"),
    ],
)
def test_bad_tasks_are_refused(kwargs: dict, message: str) -> None:
    fields = {
        "task_id": "t", "title": "x", "variants": (SCRIPT,), "segment": Segment(),
        "starts": DAY, "deadline": DAY + timedelta(days=1),
    }  # fmt: skip
    with pytest.raises(InputError, match=message):
        Task(**{**fields, **kwargs})


def test_bad_segments_are_refused() -> None:
    with pytest.raises(InputError, match="unknown segment filters"):
        Segment.from_dict({"asked": ["羽绒服"]})
    with pytest.raises(InputError, match="unknown stages"):
        Segment.from_dict({"stages": ["shopping"]})
