"""Score conversations: the analyzer pipeline plus the rubric, producing DESIGN.md score reports.

The CLI (``copilot score``), the batch engines and the server all go through :class:`Scorer`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copilot.analyzers import (
    ComplianceAnalyzer,
    LabelAnalyzer,
    OutcomeAnalyzer,
    SentimentAnalyzer,
    SignalsAnalyzer,
    TimingAnalyzer,
)
from copilot.pipeline import Doc, Pipeline
from copilot.schema import Conversation
from copilot.scoring.dimensions import RubricAnalyzer
from copilot.scoring.report import build_report
from copilot.scoring.rubric import Rubric, default_rubric, load_rubric

if TYPE_CHECKING:
    from copilot.compliance import ComplianceChecker
    from models.bundle import Bundle

__all__ = ["Scorer"]

_TOKEN_CACHE = 20_000


class Scorer:
    """Annotates conversations and scores them against a rubric.

    Args:
        bundle: a loaded model bundle (intents, acts, win probability).
        rubric: the rubric; the default one when ``None``.
        checker: the compliance checker; the default rules when ``None``.
        use_gold_labels: take intents and acts from ``labels`` where a conversation has them
            (for evaluating the rubric apart from the classifiers).

    Example:
        >>> scorer = Scorer.load("models/default")
        >>> report = scorer.score(conversation)
        >>> report["overall"], report["dimensions"]["responsiveness"]["score"]
    """

    def __init__(
        self,
        bundle: Bundle,
        rubric: Rubric | None = None,
        checker: ComplianceChecker | None = None,
        use_gold_labels: bool = False,
    ) -> None:
        self.bundle = bundle
        self.rubric = (rubric or default_rubric()).check_labels(bundle.taxonomy)
        # Scoring sees most messages once: a small token memo (repeats like 好的 / 在吗 still
        # hit it) keeps memory flat however long the input, where training wants a large one.
        from models.embedders import OfflineEmbedder

        for model in (bundle.intent, bundle.act):
            if isinstance(model.embedder, OfflineEmbedder):
                model.embedder.token_cache_size = _TOKEN_CACHE
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

    @classmethod
    def load(
        cls, bundle_dir: str | Path, rubric: str | Path | Rubric | None = None, **kwargs: Any
    ) -> Scorer:
        """A scorer for the bundle in ``bundle_dir`` and the rubric file (or object) ``rubric``.

        Raises:
            BundleError: no usable bundle there.
            ConfigError: the rubric file is invalid.
        """
        from models.bundle import load_bundle

        bundle = load_bundle(bundle_dir)
        if rubric is not None and not isinstance(rubric, Rubric):
            rubric = load_rubric(rubric, bundle.taxonomy)
        return cls(bundle, rubric, **kwargs)

    def analyse(self, conversations: Sequence[Conversation]) -> list[Doc]:
        """Run the pipeline over one batch and return the annotated docs."""
        return self.pipeline(conversations)

    def score_many(self, conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
        """Score reports (JSON-ready dicts in the DESIGN.md shape), one per conversation, in order."""
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
        return build_report(doc, self.bundle.taxonomy, self.bundle.name, self.rubric.label)
