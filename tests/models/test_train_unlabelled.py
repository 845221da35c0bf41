"""Training on a brand's unlabelled logs on top of the labelled base."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from copilot.io.labels import LabelRow, attach_labels
from copilot.schema import Conversation
from copilot.synth import generate
from copilot.taxonomy import default_taxonomy
from models.bundle import Bundle, load_bundle
from models.train import TrainConfig, _confident, needs_base, train_bundle
from tests.builders import make_conversation

# A brand's after-sales chats, in wordings the synthetic base never uses: price protection
# (价保) and invoices (发票), with the replies its agents send.
ASKS = ["申请价保怎么弄", "价保还能申请吗", "发票开了没有", "电子发票在哪下载", "价保金额到哪了"]
REPLIES = [
    "价保在订单详情页点申请就可以，差价会退回原支付账户",
    "电子发票在订单详情里下载，开好会短信通知您",
    "亲，帮您查了，价保已经申请成功，三个工作日内到账",
]


def _brand_logs(n: int, seed: int) -> list[Conversation]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        turns = [
            ("customer", rng.choice(["你好", "在吗", "有人吗"])),
            ("guide", "您好，有什么可以帮您？"),
            ("customer", rng.choice(ASKS)),
            ("guide", rng.choice(REPLIES)),
            ("customer", rng.choice(["好的谢谢", "知道了", "谢谢"])),
            ("guide", "不客气，祝您生活愉快"),
        ]
        out.append(make_conversation(f"brand-{i}", turns))
    return out


@pytest.fixture(scope="module")
def base() -> list[Conversation]:
    return list(generate(200, seed=3))


@pytest.fixture(scope="module")
def brand_bundle(base: list[Conversation], tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    logs = _brand_logs(60, 0)
    # The brand labels a few of its own messages; the base has no such wording.
    rows = [LabelRow(c.messages[2].text, "after_sales", c.conversation_id, 2) for c in logs[:6]]
    logs, loose, attached = attach_labels(logs, rows, "customer")
    assert (attached, loose) == (6, [])
    bundle = train_bundle(
        logs,
        taxonomy=default_taxonomy(),
        config=TrainConfig(seed=0, label_shift=True),
        base=base,
        name="brand",
    )
    path = tmp_path_factory.mktemp("brand") / "brand"
    bundle.save(path)
    return load_bundle(path)


def test_needs_base_only_when_some_message_is_unlabelled(base: list[Conversation]) -> None:
    assert not needs_base(base[:20])
    assert needs_base(_brand_logs(2, 0))


def test_training_on_unlabelled_logs_reports_what_each_step_used(brand_bundle: Bundle) -> None:
    training = brand_bundle.manifest["training"]
    assert training["conversations"] == 60
    assert training["messages"] == 360
    assert training["base_conversations"] > 150
    report = training["self_training"]["intent"]
    assert report["unlabelled"] > 0
    assert report["threshold"] == 0.5
    assert 0 < report["pseudo_labels"] == sum(report["by_label"].values())
    assert report["pseudo_labels"] <= report["agreed"]
    assert "off for actions" in training["self_training"]["act"]["skipped"]
    shift = report["label_shift"]
    assert shift["messages"] > 50
    assert all(0.1 <= f <= 10.0 for f in shift["factor"].values())
    assert brand_bundle.intent.prior_shift == shift["factor"]  # saved and loaded with the model
    # These logs are greetings, after-sales questions and thanks: no price objections.
    assert shift["factor"]["after_sales"] > 1 > shift["factor"]["price_objection"]
    assert training["reply_matching"]["pairs"] > 0
    assert brand_bundle.reply_matcher is not None


def test_brand_labels_teach_the_brands_own_wording(brand_bundle: Bundle) -> None:
    [prediction] = brand_bundle.predict_intents(["我想申请价保"])
    assert prediction.label == "after_sales"


def test_scripts_come_from_the_brands_conversations_not_the_base(brand_bundle: Bundle) -> None:
    scripts = brand_bundle.scripts
    assert scripts is not None and len(scripts) > 0
    assert all(s.source["conversation_id"].startswith("brand-") for s in scripts.scripts)


def test_brand_bundle_suggests_and_ranks_the_brands_replies(brand_bundle: Bundle) -> None:
    from models.suggest import engine_for

    conversation = make_conversation(
        "q",
        [("customer", "在吗"), ("guide", "您好，有什么可以帮您？"), ("customer", "价保怎么申请")],
    )
    result = engine_for(brand_bundle).suggest(conversation, k=3)
    assert result["suggestions"], "the brand's own replies are served"
    assert any("价保" in s["text"] for s in result["suggestions"])


def test_confident_caps_each_label_and_keeps_the_most_confident() -> None:
    proba = np.asarray(
        [[0.99, 0.01], [0.95, 0.05], [0.90, 0.10], [0.85, 0.15], [0.2, 0.8], [0.6, 0.4]]
    )
    rows, by_label, capped = _confident(proba, ["a", "b"], threshold=0.7, max_share=0.5)
    # Five rows reach 0.7; no label may take more than half of them (2).
    assert by_label == {"a": 2, "b": 1}
    assert rows == [0, 1, 4]
    assert capped == 2


def test_train_without_any_labels_and_no_base_says_what_is_needed() -> None:
    from copilot.errors import InputError

    with pytest.raises(InputError, match="labelled base"):
        train_bundle(_brand_logs(5, 0), taxonomy=default_taxonomy())


def test_attach_labels_leaves_rows_that_name_no_message_of_that_role() -> None:
    logs = _brand_logs(2, 0)
    rows = [
        LabelRow("x", "greeting", "brand-0", 0),  # a customer message: attached
        LabelRow("y", "greeting", "brand-0", 1),  # a guide message: not for intents
        LabelRow("z", "greeting", "nope", 0),  # unknown conversation
        LabelRow("w", "greeting", "brand-1", 99),  # no such message
    ]
    out, loose, attached = attach_labels(logs, rows, "customer")
    assert attached == 1
    assert out[0].labels is not None and out[0].labels.intents == {0: "greeting"}
    assert loose == [("y", "greeting"), ("z", "greeting"), ("w", "greeting")]
    assert logs[0].labels is None  # the input is not changed


def test_saved_brand_bundle_round_trips_reply_matching(
    brand_bundle: Bundle, tmp_path: Path
) -> None:
    brand_bundle.save(tmp_path / "again")
    again = load_bundle(tmp_path / "again")
    assert again.reply_matcher is not None
    context, replies = ["价保怎么申请"], REPLIES
    np.testing.assert_allclose(
        again.reply_matcher.score(context, replies),
        brand_bundle.reply_matcher.score(context, replies),  # type: ignore[union-attr]
    )
