"""Score conversations: the analyzer pipeline plus the rubric, producing score reports.

The report's shape is described in ``docs/formats.md`` and :mod:`copilot.scoring.report`.

The CLI (``copilot score``), the batch engines and the server all go through :class:`Scorer`;
``models.runtime.load_scorer`` builds one from a bundle directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from copilot.analyzers import (
    ComplianceAnalyzer,
    LabelAnalyzer,
    OutcomeAnalyzer,
    SentimentAnalyzer,
    SignalsAnalyzer,
    TimingAnalyzer,
)
from copilot.analyzers.labels import LabelModel
from copilot.analyzers.outcome import WinModel
from copilot.pipeline import Doc, Pipeline
from copilot.schema import Conversation
from copilot.scoring.dimensions import RubricAnalyzer
from copilot.scoring.report import build_report
from copilot.scoring.rubric import Rubric, default_rubric

if TYPE_CHECKING:
    from copilot.compliance import ComplianceChecker
    from copilot.taxonomy import Taxonomy

__all__ = ["Scorer", "ScoringModel"]


class ScoringModel(LabelModel, WinModel, Protocol):
    """What the scorer asks of a model (``models.bundle.Bundle`` is one): the labels and win
    probability of the analyzers, the taxonomy and the name reports record."""

    @property
    def taxonomy(self) -> Taxonomy:
        """The labels the model predicts."""
        ...

    @property
    def name(self) -> str:
        """``<name>@<short hash>``, recorded in every report."""
        ...


class Scorer:
    """Annotates conversations and scores them against a rubric.

    Args:
        bundle: the model (intents, acts, win probability): a loaded bundle in production.
        rubric: the rubric; the default one when ``None``.
        checker: the compliance checker; the default rules when ``None``.
        use_gold_labels: take intents and acts from ``labels`` where a conversation has them
            (for evaluating the rubric apart from the classifiers).

    Example:
        >>> from models.runtime import load_scorer
        >>> scorer = load_scorer("bundles/default")
        >>> report = scorer.score(conversation)
        >>> report["overall"], report["dimensions"]["responsiveness"]["score"]
    """

    def __init__(
        self,
        bundle: ScoringModel,
        rubric: Rubric | None = None,
        checker: ComplianceChecker | None = None,
        use_gold_labels: bool = False,
    ) -> None:
        self.bundle = bundle
        self.rubric = (rubric or default_rubric()).check_labels(bundle.taxonomy)
        self.pipeline = Pipeline(
            [
                LabelAnalyzer(bundle, use_gold=use_gold_labels),
                SentimentAnalyzer(),
                TimingAnalyzer(self.rubric.timing),
                SignalsAnalyzer(self.rubric.experience),
                ComplianceAnalyzer(checker),
                OutcomeAnalyzer(bundle),
                RubricAnalyzer(self.rubric, bundle.taxonomy),
            ]
        )

    def analyse(self, conversations: Sequence[Conversation]) -> list[Doc]:
        """Run the pipeline over one batch and return the annotated docs."""
        return self.pipeline(conversations)

    def score_many(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
        """Score reports (JSON-ready dicts, as in ``docs/formats.md``), one per conversation."""
        return [self.report(doc) for doc in self.analyse(conversations)]

    def score(self, conversation: Conversation) -> dict[str, Any]:
        """The score report of one conversation."""
        return self.score_many([conversation])[0]

    def pipe(
        self, conversations: Iterable[Conversation], batch_size: int = 128
    ) -> Iterator[dict[str, Any]]:
        """Score a stream of conversations, ``batch_size`` at a time."""
        for doc in self.pipeline.pipe(conversations, batch_size):
            yield self.report(doc)

    def report(self, doc: Doc) -> dict[str, Any]:
        """The score report of one analysed doc."""
        return build_report(doc, self.bundle.taxonomy, self.bundle.name, self.rubric.label)
