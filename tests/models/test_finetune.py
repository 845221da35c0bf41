"""The fine-tuned transformer classifier, on the tiny local BERT."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from copilot.errors import BundleError, ConfigError, InputError, NotFittedError
from models.finetune import FinetuneClassifier

_SIZES = ["S", "M", "L", "XL", "XXL"]
_ITEMS = ["这件", "那件", "外套", "裙子"]
# A trivially separable toy task: size questions vs delivery questions, 40 texts.
TEXTS = [f"{item}有{size}码吗" for item in _ITEMS for size in _SIZES] + [
    f"{item}的快递{when}到"
    for item in _ITEMS
    for when in ["今天", "明天", "什么时候", "几号", "哪天"]
]
LABELS = ["size"] * 20 + ["delivery"] * 20
FAST = {"epochs": 8, "lr": 2e-3, "batch_size": 8, "max_length": 32}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fitted(tiny_bert_dir: Path, one_torch_thread: None) -> FinetuneClassifier:
    return FinetuneClassifier(str(tiny_bert_dir), device="cpu", **FAST).fit(TEXTS, LABELS)


def test_finetune_fit_returns_self_and_learns(
    tiny_bert_dir: Path, fitted: FinetuneClassifier
) -> None:
    assert list(fitted.classes_) == ["delivery", "size"]
    accuracy = float(np.mean(fitted.predict(TEXTS) == np.array(LABELS)))
    assert accuracy >= 0.9, (accuracy, fitted.loss_curve_)
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]


def test_finetune_predict_proba_rows_sum_to_one(fitted: FinetuneClassifier) -> None:
    proba = fitted.predict_proba(TEXTS[:3] + ["", "😀", "好" * 500])
    assert proba.shape == (6, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert fitted.predict_proba([]).shape == (0, 2)
    assert fitted.predict([]).shape == (0,)
    np.testing.assert_array_equal(
        fitted.predict(TEXTS[:3]), fitted.classes_[proba[:3].argmax(axis=1)]
    )


def test_finetune_identical_after_save_and_load(fitted: FinetuneClassifier, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert config["classes"] == ["delivery", "size"]
    assert config["params"]["epochs"] == FAST["epochs"]
    loaded = FinetuneClassifier.load(tmp_path, device="cpu")
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), fitted.predict_proba(TEXTS))


def test_finetune_same_seed_same_model(tiny_bert_dir: Path) -> None:
    import torch

    rng_before = torch.random.get_rng_state()
    runs = [
        FinetuneClassifier(str(tiny_bert_dir), epochs=1, batch_size=16, device="cpu", seed=3)
        .fit(TEXTS, LABELS)
        .predict_proba(TEXTS[:5])
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the global RNG is left alone


def test_finetune_predict_before_fit_raises(tiny_bert_dir: Path, tmp_path: Path) -> None:
    clf = FinetuneClassifier(str(tiny_bert_dir))
    for call in (
        lambda: clf.predict(["在吗"]),
        lambda: clf.predict_proba(["在吗"]),
        lambda: clf.save(tmp_path),
    ):
        with pytest.raises(NotFittedError, match="fit"):
            call()


def test_finetune_missing_model_path_is_an_input_error() -> None:
    with pytest.raises(InputError, match="model path '/no/such/bert' does not exist"):
        FinetuneClassifier("/no/such/bert").fit(TEXTS, LABELS)


def test_finetune_directory_without_model_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="could not load the model in"):
        FinetuneClassifier(str(tmp_path)).fit(TEXTS, LABELS)


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        (TEXTS, LABELS[:-1], "40 texts but 39 labels"),
        (TEXTS[:2], ["size", "size"], "at least 2 classes"),
        (TEXTS[:2], ["size", 1], r"labels\[1\] is int"),
        ("这件有M码吗", ["size"], "single string"),
    ],
)
def test_finetune_fit_rejects_bad_input(
    tiny_bert_dir: Path, texts: list[str], labels: list[object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        FinetuneClassifier(str(tiny_bert_dir)).fit(texts, labels)  # type: ignore[arg-type]


def test_finetune_load_missing_dir_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="cannot read"):
        FinetuneClassifier.load(tmp_path / "nothing")


def test_finetune_missing_transformers_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tiny_bert_dir: Path
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'sales-copilot\[transformers\]'"):
        FinetuneClassifier(str(tiny_bert_dir)).fit(TEXTS, LABELS)
