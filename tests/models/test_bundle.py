"""Training a bundle, saving and loading it, and the errors a user can hit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from copilot.errors import BundleError, InputError
from copilot.schema import Conversation
from copilot.synth import generate
from copilot.taxonomy import default_taxonomy, load_taxonomy
from models.bundle import FORMAT_VERSION, Bundle, load_bundle
from models.evaluate import evaluate_bundle
from models.train import TrainConfig, train_bundle

PROBES = [
    "这件有M码吗",
    "太贵了，能便宜点吗",
    "等了三天还没发货",
    "好的谢谢",
    "[捂脸]",
    "",
    "這件還有貨嗎",
]


@pytest.fixture(scope="module")
def corpus() -> list[Conversation]:
    return list(generate(1200, seed=3, split="train"))


@pytest.fixture(scope="module")
def bundle(corpus: list[Conversation]) -> Bundle:
    return train_bundle(
        corpus, taxonomy=default_taxonomy(), config=TrainConfig(seed=1), data_hash="abc", name="t"
    )


@pytest.fixture(scope="module")
def saved(bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundles") / "default"
    bundle.save(path)
    return path


def test_train_same_data_and_seed_give_identical_predictions(
    bundle: Bundle, corpus: list[Conversation]
) -> None:
    again = train_bundle(
        corpus, taxonomy=default_taxonomy(), config=TrainConfig(seed=1), data_hash="abc", name="t"
    )
    assert again.manifest["id"] == bundle.manifest["id"]
    assert np.array_equal(again.intent.predict_proba(PROBES), bundle.intent.predict_proba(PROBES))
    assert np.array_equal(again.act.predict_proba(PROBES), bundle.act.predict_proba(PROBES))
    conversation = corpus[0]
    assert again.next_actions(conversation) == bundle.next_actions(conversation)
    assert again.win_probability(conversation) == bundle.win_probability(conversation)


def test_bundle_predictions_identical_after_save_and_load(
    bundle: Bundle, saved: Path, corpus: list[Conversation]
) -> None:
    loaded = load_bundle(saved)
    assert loaded.name == bundle.name
    assert np.array_equal(loaded.intent.predict_proba(PROBES), bundle.intent.predict_proba(PROBES))
    assert loaded.classify(PROBES) == bundle.classify(PROBES)
    for conversation in corpus[:20]:
        assert loaded.annotate(conversation) == bundle.annotate(conversation)
        assert loaded.next_actions(conversation) == bundle.next_actions(conversation)
        assert loaded.win_probability(conversation) == bundle.win_probability(conversation)


def test_bundle_manifest_records_what_made_it(saved: Path) -> None:
    manifest = json.loads((saved / "manifest.json").read_text("utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["package_version"]
    assert manifest["embedder"] == "offline"
    assert manifest["data_hash"] == "abc"
    assert manifest["seed"] == 1
    assert manifest["taxonomy"]["intents"] == list(default_taxonomy().intent_ids)
    for key in ("intent_macro_f1", "act_macro_f1", "nba_top1", "nba_baseline_top1", "outcome_auc"):
        assert 0.0 <= manifest["metrics"][key] <= 1.0


def test_classify_gives_intent_confidence_and_ranked_actions(bundle: Bundle) -> None:
    results = bundle.classify(PROBES, k=3)
    assert [r["text"] for r in results] == PROBES
    actions = set(default_taxonomy().action_ids)
    for r in results:
        assert r["intent"] in default_taxonomy().intent_ids
        assert 0.0 <= r["confidence"] <= 1.0
        assert len(r["actions"]) == 3 and {a["label"] for a in r["actions"]} <= actions
        probs = [a["probability"] for a in r["actions"]]
        assert probs == sorted(probs, reverse=True)
    assert results[1]["intent"] == "price_objection"
    assert results[3]["intent"] == "thanks_closing"


def test_low_confidence_intent_falls_back_to_other(bundle: Bundle) -> None:
    bundle.intent_threshold = 1.01  # nothing is confident enough
    try:
        assert {p.label for p in bundle.predict_intents(PROBES)} == {"other"}
    finally:
        bundle.intent_threshold = float(bundle.manifest["intent_threshold"])


def test_next_best_action_beats_intent_baseline_on_other_seed(bundle: Bundle) -> None:
    metrics = evaluate_bundle(bundle, list(generate(1000, seed=99)))
    nba = metrics["next_best_action"]
    assert nba["n"] > 200
    assert nba["top1"] > nba["baseline_top1"]
    assert nba["top3"] >= nba["baseline_top3"]
    assert (
        metrics["intent"]["macro_f1"] > 0.7
    )  # 600 training conversations; the demo bundle reaches ~0.93
    assert metrics["outcome"]["auc"] > 0.8


def test_load_bundle_refuses_another_format_version(saved: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(saved, copy)
    manifest = json.loads((copy / "manifest.json").read_text("utf-8"))
    manifest["format_version"] = FORMAT_VERSION + 1
    manifest["package_version"] = "9.0.0"
    (copy / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(
        BundleError, match=r"format version 2 \(written by sales-copilot 9.0.0\).*Retrain"
    ):
        load_bundle(copy)


def test_load_bundle_missing_or_broken(tmp_path: Path, saved: Path) -> None:
    with pytest.raises(BundleError, match="no model bundle.*copilot train"):
        load_bundle(tmp_path / "nowhere")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    shutil.rmtree(broken / "intent")
    with pytest.raises(BundleError, match="incomplete or corrupt|cannot load"):
        load_bundle(broken)


def test_train_unknown_label_names_it_and_suggests(corpus: list[Conversation]) -> None:
    bad = corpus[0].model_copy(deep=True)
    assert bad.labels is not None
    first = min(bad.labels.intents)
    bad.labels.intents[first] = "prise_inquiry"
    with pytest.raises(
        InputError,
        match=r"unknown intent label 'prise_inquiry'.*message \d+.*did you mean 'price_inquiry'",
    ):
        train_bundle([bad, *corpus[1:50]], taxonomy=default_taxonomy())


def test_train_too_few_examples_per_label(corpus: list[Conversation]) -> None:
    with pytest.raises(InputError, match="too few examples per intent label"):
        train_bundle(corpus[:8], taxonomy=default_taxonomy(), config=TrainConfig(min_examples=5))


def test_train_finetune_without_model_is_explained(corpus: list[Conversation]) -> None:
    with pytest.raises(InputError, match="needs a pretrained model.*--base-model"):
        train_bundle(
            corpus[:100], taxonomy=default_taxonomy(), config=TrainConfig(classifier="finetune")
        )


def test_train_with_partial_labels_and_intent_rows(corpus: list[Conversation]) -> None:
    partial = []
    for i, conversation in enumerate(corpus[:300]):
        c = conversation.model_copy(deep=True)
        if i % 2 and c.labels is not None:  # half the conversations lose their act labels
            c.labels.actions = {}
        partial.append(c)
    rows = [("请问可以用花呗分期吗", "price_inquiry")] * 6
    b = train_bundle(partial, taxonomy=default_taxonomy(), extra_intents=rows)
    assert b.manifest["training"]["extra_intent_rows"] > 0
    assert b.predict_intents(["请问可以用花呗分期吗"])[0].label == "price_inquiry"


def test_train_with_a_brand_taxonomy(corpus: list[Conversation], tmp_path: Path) -> None:
    # A brand that merges every objection into one intent.
    merge = {
        "price_objection": "objection",
        "trust_objection": "objection",
        "hesitation": "objection",
    }
    data = default_taxonomy().model_dump(mode="json")
    data["intents"] = [i for i in data["intents"] if i["id"] not in merge] + [
        {"id": "objection", "name": "顾虑", "definition": "价格、信任或犹豫"}
    ]
    path = tmp_path / "brand.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    taxonomy = load_taxonomy(path)
    relabelled = []
    for conversation in corpus[:300]:
        c = conversation.model_copy(deep=True)
        assert c.labels is not None
        c.labels.intents = {i: merge.get(label, label) for i, label in c.labels.intents.items()}
        relabelled.append(c)
    b = train_bundle(relabelled, taxonomy=taxonomy)
    assert set(b.intent.classes_) <= set(taxonomy.intent_ids)
    assert "objection" in b.intent.classes_ and "price_objection" not in b.intent.classes_
    with pytest.raises(
        InputError, match="unknown intent label '(price_objection|trust_objection|hesitation)'"
    ):
        train_bundle(corpus[:50], taxonomy=taxonomy)


def test_tiny_transformer_embedding_and_finetuning_through_train(
    corpus: list[Conversation],
    tiny_st_dir: Path,
    tiny_bert_dir: Path,
    tmp_path: Path,
    one_torch_thread: None,
) -> None:
    config = TrainConfig(
        embedder=f"st:{tiny_st_dir}",
        classifier="finetune",
        base_model=str(tiny_bert_dir),
        epochs=1,
        min_examples=1,
    )
    b = train_bundle(corpus[:60], taxonomy=default_taxonomy(), config=config)
    assert b.manifest["embedder"].startswith("st:") and b.manifest["classifier"] == "finetune"
    b.save(tmp_path / "tiny")
    loaded = load_bundle(tmp_path / "tiny")
    assert np.allclose(
        loaded.intent.predict_proba(PROBES), b.intent.predict_proba(PROBES), atol=1e-6
    )
    assert loaded.classify(["这件有M码吗"])[0]["intent"] in default_taxonomy().intent_ids
    assert loaded.embedder.encode(["这件有M码吗"]).shape[1] == b.embedder.dim
