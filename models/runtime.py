"""The one place that builds what a bundle serves: bundle -> scorer -> suggestion engine, ranker.

The CLI, the batch engines, the server and the evaluations build scorers and engines here, so the
core (:mod:`copilot.scoring`) never loads a bundle itself: its :class:`~copilot.scoring.Scorer`
takes any model that fits :class:`~copilot.scoring.scorer.ScoringModel`, and this module hands it
a loaded :class:`~models.bundle.Bundle`.

Example:
    >>> scorer = load_scorer("bundles/default")  # doctest: +SKIP
    >>> runtime = load_runtime("bundles/default", rubric="rubric.yaml")  # doctest: +SKIP
    >>> runtime.engine.suggest(conversation, k=3)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from copilot.scoring import Rubric, Scorer, load_rubric
from models.bundle import Bundle, load_bundle
from models.rank import ReplyRanker
from models.suggest import EngineConfig, SuggestionEngine, engine_for

if TYPE_CHECKING:
    from copilot.compliance import ComplianceChecker

__all__ = [
    "ModelRuntime",
    "load_engine",
    "load_runtime",
    "load_scorer",
    "runtime_for",
    "scorer_for",
]

_SCORING_TOKEN_CACHE = 20_000
"""Texts an embedder memoises while scoring (training keeps a much larger memo)."""


@dataclass(frozen=True)
class ModelRuntime:
    """One loaded bundle with its scorer, suggestion engine and ranker."""

    bundle: Bundle
    scorer: Scorer
    engine: SuggestionEngine
    ranker: ReplyRanker


def scorer_for(
    bundle: Bundle,
    rubric: str | Path | Rubric | None = None,
    *,
    checker: ComplianceChecker | None = None,
    use_gold_labels: bool = False,
) -> Scorer:
    """The scorer of a loaded bundle and a rubric (file or object; the default when ``None``).

    Raises:
        ConfigError: the rubric file is invalid or names labels the bundle does not have.
    """
    # Scoring sees most messages once: a small token memo (repeats like 好的 / 在吗 still hit
    # it) keeps memory flat however long the input, where training wants a large one.
    for model in (bundle.intent, bundle.act):
        model.embedder.limit_token_cache(_SCORING_TOKEN_CACHE)
    if rubric is not None and not isinstance(rubric, Rubric):
        rubric = load_rubric(rubric, bundle.taxonomy)
    return Scorer(bundle, rubric, checker=checker, use_gold_labels=use_gold_labels)


def load_scorer(
    bundle_dir: str | Path,
    rubric: str | Path | Rubric | None = None,
    *,
    checker: ComplianceChecker | None = None,
    use_gold_labels: bool = False,
) -> Scorer:
    """A scorer for the bundle in ``bundle_dir``: the batch engines' scorer factory.

    A module-level function, so a worker process or Ray actor can be handed it (pickled by name)
    and call it as ``load_scorer(bundle, rubric=rubric)``.

    Raises:
        BundleError: no usable bundle there.
        ConfigError: the rubric file is invalid.
    """
    bundle = load_bundle(bundle_dir)
    return scorer_for(bundle, rubric, checker=checker, use_gold_labels=use_gold_labels)


def load_engine(bundle_dir: str | Path, config: EngineConfig | None = None) -> SuggestionEngine:
    """The suggestion engine of the bundle in ``bundle_dir``.

    Raises:
        BundleError: no usable bundle there, or one trained without scripts.
    """
    return engine_for(load_bundle(bundle_dir), config)


def runtime_for(
    bundle: Bundle,
    rubric: str | Path | Rubric | None = None,
    engine_config: EngineConfig | None = None,
) -> ModelRuntime:
    """Scorer, suggestion engine and ranker of a loaded bundle.

    Raises:
        BundleError: the bundle was trained without scripts.
        ConfigError: the rubric file is invalid.
    """
    scorer = scorer_for(bundle, rubric)
    engine = engine_for(bundle, engine_config)
    ranker = ReplyRanker(bundle, engine.checker)
    return ModelRuntime(bundle=bundle, scorer=scorer, engine=engine, ranker=ranker)


def load_runtime(
    bundle_dir: str | Path,
    rubric: str | Path | Rubric | None = None,
    engine_config: EngineConfig | None = None,
) -> ModelRuntime:
    """Load the bundle in ``bundle_dir`` and build its scorer, suggestion engine and ranker.

    Args:
        bundle_dir: the bundle directory (from ``copilot train``).
        rubric: a rubric YAML file or object; the default rubric when ``None``.
        engine_config: the suggestion engine's settings; the defaults when ``None``.

    Raises:
        BundleError: no usable bundle in ``bundle_dir``, or one without scripts.
        ConfigError: the rubric file is invalid.
    """
    return runtime_for(load_bundle(bundle_dir), rubric, engine_config)
