"""Every trainable component honours one contract (scikit-learn's estimator checks, in spirit):
fit returns self, predicting before fit raises NotFittedError, and predictions are identical
after save and load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.errors import NotFittedError
from models.embedders import OfflineEmbedder
from models.finetune import FinetuneClassifier
from models.linear import LinearClassifier
from models.nba import NextBestActionModel
from models.outcome import OutcomeModel
from tests.models.conftest import jieba_tokenize

TEXTS = [
    "这件有M码吗",
    "还有L码吗",
    "多少钱呀",
    "有优惠券吗",
    "太贵了",
    "能便宜点吗",
    "好的谢谢",
    "谢谢亲",
] * 3
LABELS = ["stock", "stock", "price", "price", "objection", "objection", "thanks", "thanks"] * 3
ROWS = [
    {"intent=stock": 1.0, "pos=1": 1.0},
    {"intent=price": 1.0},
    {"intent=thanks": 1.0, "late": 1.0},
] * 8
ACTIONS = ["logistics_info", "share_promotion", "polite_closing"] * 8


@dataclass
class Case:
    """How to build, fit and query one component."""

    make: Callable[[Any], Any]
    fit: Callable[[Any], Any]
    predict: Callable[[Any], np.ndarray]


def _sparse(texts: list[str]) -> Any:
    return (
        OfflineEmbedder(n_components=4, tokenizer=jieba_tokenize).fit(TEXTS).transform_sparse(texts)
    )


CASES: dict[str, Case] = {
    "offline_embedder": Case(
        lambda _: OfflineEmbedder(n_components=4, tokenizer=jieba_tokenize),
        lambda m: m.fit(TEXTS),
        lambda m: m.encode(TEXTS),
    ),
    "linear_classifier": Case(
        lambda _: LinearClassifier(seed=0),
        lambda m: m.fit(_sparse(TEXTS), LABELS),
        lambda m: m.predict_proba(_sparse(TEXTS)),
    ),
    "next_best_action": Case(
        lambda _: NextBestActionModel(seed=0),
        lambda m: m.fit(ROWS, ACTIONS),
        lambda m: m.predict_proba(ROWS),
    ),
    "outcome": Case(
        lambda _: OutcomeModel(seed=0),
        lambda m: m.fit(ROWS, ["won", "lost", "won"] * 8),
        lambda m: m.predict_proba(ROWS),
    ),
    "finetune_classifier": Case(
        lambda tiny: FinetuneClassifier(str(tiny), epochs=1, batch_size=8, seed=0),
        lambda m: m.fit(TEXTS, LABELS),
        lambda m: m.predict_proba(TEXTS),
    ),
}


@pytest.fixture
def model_dir(request: pytest.FixtureRequest) -> Path | None:
    if request.node.callspec.params["name"] != "finetune_classifier":
        return None
    return Path(request.getfixturevalue("tiny_bert_dir"))


@pytest.mark.parametrize("name", list(CASES))
def test_trainable_contract(name: str, model_dir: Path | None, tmp_path: Path) -> None:
    case = CASES[name]
    model = case.make(model_dir)
    with pytest.raises(NotFittedError, match="not fitted"):
        case.predict(model)
    assert case.fit(model) is model
    before = case.predict(model)
    assert np.isfinite(before).all()
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    assert np.array_equal(case.predict(loaded), before)
