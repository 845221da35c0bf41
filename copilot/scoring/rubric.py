"""The quality rubric: per-dimension settings and the weights of the overall score.

The default is ``copilot/data/rubric.yaml``; a brand edits a copy and passes it by path, and
``copilot calibrate`` writes one with fitted weights (and, from ratings, fitted experience points).
Every label and signal in the file is checked when it is loaded, with a did-you-mean for typos.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from copilot.analyzers.signals import SIGNAL_NAMES, SIGNALS
from copilot.analyzers.timing import TimingRules
from copilot.errors import ConfigError, InputError
from copilot.schema import format_validation_error
from copilot.taxonomy import Taxonomy, default_taxonomy

__all__ = [
    "DIMENSIONS",
    "ExperienceRules",
    "Rubric",
    "TimingRules",
    "default_rubric",
    "load_rubric",
]

DIMENSIONS = (
    "responsiveness",
    "needs_discovery",
    "answer_coverage",
    "objection_handling",
    "closing",
    "courtesy",
    "compliance",
    "experience",
)
"""The dimensions this code knows how to score, in report order."""

_DEFAULT = Path(__file__).resolve().parent.parent / "data" / "rubric.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


_POINTS_LIMIT = 1000.0  # |start| and |points| beyond this are typos, not rubrics


class ExperienceRules(_Strict):
    """The experience dimension (顾客体验): evidence signals turned into a 0-100 score.

    The score is ``start + sum(points[s] * value of s)`` over the signals found
    (:mod:`copilot.analyzers.signals`), clipped to 0-100. A signal not in ``points`` counts 0.

    Attributes:
        start: the score of a conversation in which no weighted signal is found. A fitted rubric
            may put it above 100 or below 0 when every conversation carries some signals.
        points: signal -> points per unit of its value (negative: a deduction).
        complaint_intents: customer intents that count as a complaint.
        thanks_intents: customer intents that count as thanks at the end.
    """

    start: float = 70.0
    points: dict[str, float] = Field(
        default_factory=lambda: {
            "end_sentiment": 20.0,
            "lowest_sentiment": 10.0,
            "negative_messages": -5.0,
            "thanks_at_end": 10.0,
            "question_at_end": -10.0,
            "unanswered": -15.0,
            "follow_ups": -3.0,
            "repeated_questions": -10.0,
            "complaints": -5.0,
            "late_replies": -10.0,
        }
    )
    complaint_intents: tuple[str, ...] = ("complaint",)
    thanks_intents: tuple[str, ...] = ("thanks_closing",)

    @field_validator("start")
    @classmethod
    def _start(cls, value: float) -> float:
        if not math.isfinite(value) or abs(value) > _POINTS_LIMIT:
            raise ValueError(
                f"start must be a number between {-_POINTS_LIMIT:g} and {_POINTS_LIMIT:g} "
                f"(the score before any signal, usually 0-100), got {value}"
            )
        return value

    @field_validator("points")
    @classmethod
    def _points(cls, points: dict[str, float]) -> dict[str, float]:
        for name, value in points.items():
            if name not in SIGNAL_NAMES:
                close = difflib.get_close_matches(name, SIGNAL_NAMES, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"unknown signal {name!r}{hint}; known signals: {', '.join(SIGNAL_NAMES)}"
                )
            if not math.isfinite(value) or abs(value) > _POINTS_LIMIT:
                raise ValueError(
                    f"points of {name!r} must be a number between {-_POINTS_LIMIT:g} and "
                    f"{_POINTS_LIMIT:g} (points per unit of the signal), got {value}"
                )
        return points

    def score(self, totals: Mapping[str, float]) -> float:
        """The 0-100 score of a conversation whose signals sum to ``totals`` (signal -> value)."""
        raw = self.start + sum(self.points.get(k, 0.0) * v for k, v in totals.items())
        return min(100.0, max(0.0, raw))


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
    experience: ExperienceRules = Field(default_factory=ExperienceRules)

    @model_validator(mode="after")
    def _weights(self) -> Rubric:
        unknown = sorted(set(self.weights) - set(DIMENSIONS))
        if unknown:
            raise ValueError(
                f"unknown dimension(s) {unknown} in weights; known: {list(DIMENSIONS)}"
            )
        negative = {k: v for k, v in self.weights.items() if not v >= 0 or math.isinf(v)}
        if negative:
            raise ValueError(f"weights must be finite numbers >= 0, got {negative}")
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
        intents += [*self.experience.complaint_intents, *self.experience.thanks_intents]
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
        """The rubric as YAML; each experience point says what its signal is in a comment."""
        data = self.model_dump(mode="json")
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        specs = {s.name: s for s in SIGNALS}
        lines = []
        for line in text.splitlines():
            key = line.strip().split(":", 1)[0]
            if line.startswith("    ") and key in specs:  # only experience.points nests them
                line = f"{line:<36} # {specs[key].label}: {specs[key].describe}"
            lines.append(line)
        return "\n".join(lines) + "\n"

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
