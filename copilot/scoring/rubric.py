"""The quality rubric: per-dimension settings and the weights of the overall score.

The default is ``copilot/data/rubric.yaml``; a brand edits a copy and passes it by path, and
``copilot calibrate`` writes one with fitted weights. Every label in the file is checked against the
taxonomy when it is loaded, with a did-you-mean for typos.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from copilot.errors import ConfigError, InputError
from copilot.schema import format_validation_error
from copilot.taxonomy import Taxonomy, default_taxonomy

__all__ = ["DIMENSIONS", "Rubric", "default_rubric", "load_rubric"]

DIMENSIONS = (
    "responsiveness",
    "needs_discovery",
    "answer_coverage",
    "objection_handling",
    "closing",
    "courtesy",
    "compliance",
)
"""The dimensions this code knows how to score, in report order."""

_DEFAULT = Path(__file__).resolve().parent.parent / "data" / "rubric.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimingRules(_Strict):
    working_hours: tuple[int, int] = (0, 24)
    first_response_target_s: float = Field(default=120, gt=0)
    reply_target_s: float = Field(default=300, gt=0)
    unanswered_after_s: float = Field(default=1800, gt=0)
    per_intent_s: dict[str, float] = Field(default_factory=dict)
    no_answer_intents: tuple[str, ...] = ("thanks_closing", "other")
    no_answer_confidence: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _hours(self) -> TimingRules:
        start, end = self.working_hours
        if not 0 <= start < end <= 24:
            raise ValueError(
                f"working_hours must be [start, end] with 0 <= start < end <= 24, got {list(self.working_hours)}"
            )
        return self

    def threshold_for(self, intent: str | None) -> float:
        """Seconds after which a reply to a message of ``intent`` is late."""
        return self.per_intent_s.get(intent or "", self.unanswered_after_s)


class DiscoveryRules(_Strict):
    actions: tuple[str, ...] = ("greet_and_discover", "size_advice")
    recommend_actions: tuple[str, ...] = ("recommend_product", "close_sale")
    sales_intents: tuple[str, ...] = ()


class ClosingRules(_Strict):
    purchase_signals: tuple[str, ...] = ("purchase_intent",)
    close_actions: tuple[str, ...] = ("close_sale",)
    hesitations: tuple[str, ...] = ("hesitation",)
    follow_up_actions: tuple[str, ...] = ("follow_up_later",)
    sales_questions_before_close: int = Field(default=3, ge=1)


class CourtesyRules(_Strict):
    rude_points: float = Field(default=40, ge=0)
    negative_end_points: float = Field(default=15, ge=0)
    curt_points: float = Field(default=8, ge=0)
    curt_reply_chars: int = Field(default=6, ge=0)


class ComplianceRules(_Strict):
    severity_points: dict[str, float] = Field(
        default_factory=lambda: {"high": 50.0, "medium": 25.0, "low": 10.0}
    )


class Rubric(_Strict):
    """A validated rubric file.

    Attributes:
        name, version: recorded in every score report as ``name@version``.
        weights: dimension -> non-negative weight of the overall score.
    """

    name: str = "default"
    version: int = 1
    weights: dict[str, float]
    timing: TimingRules = Field(default_factory=TimingRules)
    answers: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    objections: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    substantive_reply_chars: int = Field(default=12, ge=0)
    terse_credit: float = Field(default=0.5, ge=0, le=1)
    discovery: DiscoveryRules = Field(default_factory=DiscoveryRules)
    closing: ClosingRules = Field(default_factory=ClosingRules)
    courtesy: CourtesyRules = Field(default_factory=CourtesyRules)
    compliance: ComplianceRules = Field(default_factory=ComplianceRules)

    @model_validator(mode="after")
    def _weights(self) -> Rubric:
        unknown = sorted(set(self.weights) - set(DIMENSIONS))
        if unknown:
            raise ValueError(
                f"unknown dimension(s) {unknown} in weights; known: {list(DIMENSIONS)}"
            )
        negative = {k: v for k, v in self.weights.items() if v < 0}
        if negative:
            raise ValueError(f"weights must be >= 0, got {negative}")
        if not any(self.weights.values()):
            raise ValueError("at least one weight must be above 0")
        return self

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def overall(self, scores: Mapping[str, float | None]) -> float | None:
        """Weighted mean of the dimensions that apply (score not ``None``), rounded to 0.1."""
        pairs = [(self.weights.get(d, 0.0), s) for d, s in scores.items() if s is not None]
        total = sum(w for w, _ in pairs)
        if not total:
            return None
        return round(sum(w * s for w, s in pairs) / total, 1)

    def with_weights(self, weights: Mapping[str, float], **changes: Any) -> Rubric:
        """A copy with new weights (normalised to sum to 1) and other top-level changes."""
        total = sum(weights.values()) or 1.0
        data = self.model_dump()
        data["weights"] = {d: round(float(w) / total, 4) for d, w in weights.items()}
        data.update(changes)
        return Rubric.model_validate(data)

    def check_labels(self, taxonomy: Taxonomy) -> Rubric:
        """Raise ConfigError on a label the taxonomy does not know; returns self."""
        t = self.timing
        intents = [*t.per_intent_s, *t.no_answer_intents, *self.answers, *self.objections]
        intents += [*self.discovery.sales_intents, *self.closing.purchase_signals]
        intents += list(self.closing.hesitations)
        actions = [a for acts in (*self.answers.values(), *self.objections.values()) for a in acts]
        actions += [*self.discovery.actions, *self.discovery.recommend_actions]
        actions += [*self.closing.close_actions, *self.closing.follow_up_actions]
        try:
            for label in intents:
                taxonomy.check("intent", label, where=f"in rubric {self.label}")
            for label in actions:
                taxonomy.check("action", label, where=f"in rubric {self.label}")
        except InputError as exc:
            raise ConfigError(str(exc)) from exc
        return self

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json")
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml(), encoding="utf-8")


def load_rubric(path: str | Path, taxonomy: Taxonomy | None = None) -> Rubric:
    """Load and validate a rubric YAML file.

    Raises:
        ConfigError: the file is missing, is not YAML, or has unknown fields, dimensions or labels.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"rubric file {str(path)!r} not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"rubric file {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"rubric file {str(path)!r} must hold a mapping, got {type(data).__name__}"
        )
    try:
        rubric = Rubric.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"rubric file {str(path)!r}: {format_validation_error(exc)}") from exc
    return rubric.check_labels(taxonomy or default_taxonomy())


@cache
def default_rubric() -> Rubric:
    """The rubric shipped with the product (``copilot/data/rubric.yaml``)."""
    return load_rubric(_DEFAULT)
