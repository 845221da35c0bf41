from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from copilot.errors import ConfigError
from copilot.pipeline import Analyzer, Doc, Pipeline
from tests.builders import make_conversation


class _Count(Analyzer):
    name = "count"
    assigns = ("n",)

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        return [{"n": len(d.conversation.messages)} for d in docs]


class _Double(Analyzer):
    name = "double"
    requires = ("n",)
    assigns = ("n2",)

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        return [{"n2": 2 * d["n"]} for d in docs]


class _Sneaky(Analyzer):
    name = "sneaky"
    assigns = ("declared",)

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        return [{"declared": 1, "undeclared": 2} for _ in docs]


def test_pipeline_runs_analyzers_in_order() -> None:
    docs = Pipeline([_Count(), _Double()])([make_conversation()])
    assert docs[0]["n"] == 2 and docs[0]["n2"] == 4
    assert docs[0].conversation.messages[0].text == "在吗？这件有M码吗"  # the original is untouched


def test_pipeline_refuses_an_analyzer_before_what_it_requires() -> None:
    with pytest.raises(ConfigError, match="requires \\['n'\\].*reorder"):
        Pipeline([_Double(), _Count()])


def test_pipeline_refuses_two_analyzers_assigning_one_key() -> None:
    with pytest.raises(ConfigError, match="both assign 'n'"):
        Pipeline([_Count(), _Count()])


def test_pipeline_refuses_undeclared_annotations() -> None:
    with pytest.raises(ConfigError, match="declares it assigns"):
        Pipeline([_Sneaky()])([make_conversation()])


def test_pipeline_pipe_batches_a_stream() -> None:
    convs = (make_conversation(f"c-{i}") for i in range(7))
    docs = list(Pipeline([_Count()]).pipe(convs, batch_size=3))
    assert [d.conversation.conversation_id for d in docs] == [f"c-{i}" for i in range(7)]
