"""A conversation flows through a pipeline of small analyzers, each adding annotations.

::

    Conversation ──► Doc ──► labels ──► timing ──► sentiment ──► compliance ──► ... ──► report
                     (the original, never rewritten, plus ``annotations``)

Each analyzer declares what it ``requires`` (annotations written by earlier analyzers) and what it
``assigns``. :class:`Pipeline` checks the order when it is built and, when it runs, that every
analyzer wrote exactly what it declared. ``predict(docs)`` computes without side effects;
``set_annotations(docs, preds)`` writes; :meth:`Pipeline.pipe` runs batches, so an analyzer backed
by a model predicts every message of a batch in one call. The CLI, the batch engine and the server
all call the same pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, ClassVar

from copilot.errors import ConfigError
from copilot.schema import Conversation

__all__ = ["Analyzer", "Doc", "Pipeline"]


@dataclass
class Doc:
    """A conversation and what the analyzers found in it.

    Attributes:
        conversation: the input, as read; analyzers never change it.
        annotations: analyzer name -> value, each key written by the analyzer that assigns it.
    """

    conversation: Conversation
    annotations: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.annotations[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.annotations.get(key, default)


class Analyzer(ABC):
    """Base of all analyzers: implement ``predict``; ``set_annotations`` writes its result.

    Subclasses set the class attributes ``name``, ``requires`` and ``assigns``. ``predict`` returns
    one ``{key: value}`` dict per doc, with exactly the keys of ``assigns``.
    """

    name: ClassVar[str] = "analyzer"
    requires: ClassVar[tuple[str, ...]] = ()
    assigns: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        """One ``{key: value}`` per doc, with exactly the keys of ``assigns``; no side effects."""

    def set_annotations(self, docs: Sequence[Doc], preds: Sequence[dict[str, Any]]) -> None:
        for doc, pred in zip(docs, preds, strict=True):
            if set(pred) != set(self.assigns):
                raise ConfigError(
                    f"analyzer {self.name!r} returned {sorted(pred)} but declares it assigns "
                    f"{sorted(self.assigns)}"
                )
            doc.annotations.update(pred)

    def __call__(self, docs: Sequence[Doc]) -> Sequence[Doc]:
        self.set_annotations(docs, self.predict(docs))
        return docs


class Pipeline:
    """An ordered list of analyzers, checked when built.

    Args:
        analyzers: in the order they run.

    Raises:
        ConfigError: an analyzer requires an annotation that no earlier analyzer assigns, or two
            analyzers assign the same one.

    Example:
        >>> pipe = Pipeline([LabelAnalyzer(bundle), TimingAnalyzer(rubric.timing)])
        >>> docs = pipe([conversation])
    """

    def __init__(self, analyzers: Sequence[Analyzer]) -> None:
        seen: dict[str, str] = {}
        for analyzer in analyzers:
            missing = [r for r in analyzer.requires if r not in seen]
            if missing:
                raise ConfigError(
                    f"analyzer {analyzer.name!r} requires {missing}, which no earlier analyzer "
                    f"assigns (assigned so far: {sorted(seen) or 'nothing'}); reorder the pipeline"
                )
            for key in analyzer.assigns:
                if key in seen:
                    raise ConfigError(
                        f"analyzers {seen[key]!r} and {analyzer.name!r} both assign {key!r}"
                    )
                seen[key] = analyzer.name
        self.analyzers = list(analyzers)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.analyzers]

    def __call__(self, conversations: Sequence[Conversation]) -> list[Doc]:
        """Analyse one batch of conversations."""
        docs = [Doc(c) for c in conversations]
        for analyzer in self.analyzers:
            analyzer(docs)
        return docs

    def pipe(self, conversations: Iterable[Conversation], batch_size: int = 128) -> Iterator[Doc]:
        """Analyse a stream of conversations, ``batch_size`` at a time."""
        it = iter(conversations)
        while batch := list(islice(it, batch_size)):
            yield from self(batch)
