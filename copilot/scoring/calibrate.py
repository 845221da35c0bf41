"""Fit the rubric's weights to what matters: conversions, or supervisors' ratings.

The overall score is a weighted mean of the dimension scores that apply to a conversation
(:meth:`Rubric.overall`). Calibration learns non-negative weights from scored conversations whose
outcome (``converted``) or rating is known, and reports held-out numbers for the fitted **and** the
original weights, so the user sees whether fitting helped before adopting the new rubric::

    result = calibrate(reports, [r["converted"] for r in reports], "converted", rubric)
    result.before["auc"], result.after["auc"]
    result.rubric.save("rubric.calibrated.yaml")

How:

* Features are the per-dimension scores and, when the reports carry them (``signals``, written by
  ``copilot score`` since the experience dimension exists), the summed value of each evidence
  signal (:mod:`copilot.analyzers.signals`). A dimension that does not apply (``score: null``) is
  imputed with its training mean for fitting only; every evaluation recomputes
  ``rubric.overall(...)`` on the real scores, so the weights are renormalised over the dimensions
  that apply, exactly as in production.
* ``converted``: a logistic regression on standardised scores with weights bounded at 0 and an L2
  penalty (L-BFGS-B). ``rating``: non-negative least squares (with the same small ridge).
  A coefficient on the 0-100 score scale is the dimension's weight; weights are normalised to sum
  to 1.
* Signals get a coefficient of either sign (the ratings say whether thanks at the end or an
  apology goes with better conversations); dimensions stay non-negative. The signal part of the
  fit becomes the rubric's ``experience`` section: points per unit of each signal, scaled so that
  the middle 96% of training conversations score 10-90 on the experience dimension, and ``start``;
  the dimension's weight carries the rest of the scale, so the overall score ranks conversations
  as the fitted model does (up to the clipping at 0 and 100 and the renormalisation over the
  dimensions that apply).
* A dimension scored in too few training conversations keeps its original share of the weight; a
  signal seen in too few keeps its original points.
* The split is a seeded shuffle, per class for ``converted`` (both outcomes in both parts).
* Held-out numbers: ``converted`` -> ROC AUC, log-loss of a one-feature logistic on the overall
  score (fitted on the training part), and Spearman correlation; ``rating`` -> Spearman and
  Pearson correlation, and the mean absolute error of a linear map from overall to rating (fitted
  on the training part).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from copilot.errors import InputError
from copilot.scoring.fitting import fit_rubric, normalised, overall_scores
from copilot.scoring.rubric import Rubric

__all__ = [
    "MIN_CONVERSATIONS",
    "MIN_PER_CLASS",
    "CalibrationResult",
    "Target",
    "calibrate",
]

logger = logging.getLogger(__name__)

Target = Literal["converted", "rating"]

MIN_CONVERSATIONS = 30
"""Fewest conversations with a target that calibration accepts."""
MIN_PER_CLASS = 5
"""Fewest converted and not-converted conversations each (target ``converted``)."""

Array = NDArray[np.float64]


@dataclass(frozen=True)
class CalibrationResult:
    """A fitted rubric and how it compares with the original one on held-out conversations.

    Attributes:
        target: ``"converted"`` or ``"rating"``.
        rubric: the rubric with fitted weights (named ``<name>-calibrated``, version bumped).
        original: the rubric the weights started from.
        n, n_train, n_holdout: conversations used, and how they were split.
        before, after: held-out metrics with the original and the fitted weights.
        baseline: held-out numbers of a constant prediction (``log_loss`` of the training base
            rate for converted, ``mae`` of the training mean for rating).
        primary: the metric that decides :attr:`improved` (``auc`` or ``spearman``).
        unfitted: dimensions scored too rarely to fit; they kept their original share.
        seed, holdout: the split settings.
        unfitted_signals: signals seen too rarely to fit; they kept their original points
            (empty when the experience points were not fitted).
    """

    target: Target
    rubric: Rubric
    original: Rubric
    n: int
    n_train: int
    n_holdout: int
    before: dict[str, float | None]
    after: dict[str, float | None]
    baseline: dict[str, float | None]
    primary: str
    unfitted: tuple[str, ...]
    seed: int
    holdout: float
    unfitted_signals: tuple[str, ...] = ()

    @property
    def signals_fitted(self) -> bool:
        """Whether the experience points were fitted (the reports carried signals)."""
        return self.rubric.experience != self.original.experience

    @property
    def improved(self) -> bool:
        """Whether the fitted weights beat the original ones on the primary held-out metric."""
        after, before = self.after.get(self.primary), self.before.get(self.primary)
        if after is None:
            return False
        return before is None or after > before

    @property
    def weights_before(self) -> dict[str, float]:
        """The original weights, normalised to sum to 1, for every calibrated dimension."""
        return normalised(self.original.weights, self.rubric.weights)

    @property
    def weights_after(self) -> dict[str, float]:
        """The fitted weights (sum 1)."""
        return normalised(self.rubric.weights, self.original.weights)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the fitted rubric as a mapping under ``rubric``)."""
        return {
            "target": self.target,
            "n": self.n,
            "n_train": self.n_train,
            "n_holdout": self.n_holdout,
            "seed": self.seed,
            "holdout": self.holdout,
            "primary": self.primary,
            "improved": self.improved,
            "weights_before": self.weights_before,
            "weights_after": self.weights_after,
            "unfitted": list(self.unfitted),
            "unfitted_signals": list(self.unfitted_signals),
            "experience_before": self.original.experience.model_dump(mode="json"),
            "experience_after": self.rubric.experience.model_dump(mode="json"),
            "before": self.before,
            "after": self.after,
            "baseline": self.baseline,
            "original": self.original.label,
            "rubric": self.rubric.model_dump(mode="json"),
        }

    def to_yaml(self) -> str:
        """The fitted rubric as YAML, headed by a comment that says how it was fitted."""

        def fmt(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.4f}"

        header = [
            f"# Weights{' and experience points' if self.signals_fitted else ''} fitted by "
            f"`copilot calibrate` to {self.target} on {self.n:,} conversations",
            f"# (seed {self.seed}, {self.n_holdout:,} held out), starting from {self.original.label}.",
            "# Held-out "
            + ", ".join(
                f"{k} {fmt(self.before.get(k))} -> {fmt(self.after.get(k))}" for k in self.after
            ),
        ]
        if self.signals_fitted and self.unfitted_signals:
            header.append(
                "# Signals seen too rarely to fit kept their points: "
                + ", ".join(self.unfitted_signals)
                + "."
            )
        if not self.improved:
            header.append(f"# The fitted weights did not improve held-out {self.primary}.")
        return "\n".join(header) + "\n" + self.rubric.to_yaml()


# --------------------------------------------------------------------------- inputs


def _targets(targets: Sequence[Any], target: Target) -> Array:
    values = np.empty(len(targets), dtype=np.float64)
    for i, t in enumerate(targets):
        if target == "converted":
            if t is None or (not isinstance(t, bool | int | float | np.bool_)) or t not in (0, 1):
                raise InputError(
                    f"target {i} is {t!r}; converted targets must be true/false (or 1/0); "
                    "leave out conversations without an outcome"
                )
            values[i] = float(bool(t))
        else:
            try:
                value = float(t)
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value):
                raise InputError(
                    f"rating {i} is {t!r}; ratings must be finite numbers; "
                    "leave out conversations without a rating"
                )
            values[i] = value
    return values


def _split(
    y: Array, target: Target, holdout: float, rng: np.random.Generator
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Seeded train / holdout indexes; per class for ``converted``."""
    groups = (
        [np.flatnonzero(y == 0), np.flatnonzero(y == 1)]
        if target == "converted"
        else [np.arange(len(y))]
    )
    train: list[NDArray[np.intp]] = []
    test: list[NDArray[np.intp]] = []
    for group in groups:
        shuffled = rng.permutation(group)
        k = min(len(group) - 1, max(1, round(holdout * len(group))))
        test.append(shuffled[:k])
        train.append(shuffled[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


# --------------------------------------------------------------------------- evaluation


def _filled(values: list[float | None], train: NDArray[np.intp]) -> Array:
    """Overall scores with ``None`` (nothing weighted applies) set to the training mean."""
    known = [values[i] for i in train if values[i] is not None]
    fill = float(np.mean(known)) if known else 50.0
    return np.array([fill if v is None else v for v in values], dtype=np.float64)


def _constant(x: Array) -> bool:
    return len(x) < 2 or bool(np.all(x == x[0]))


def _spearman(x: Array, y: Array) -> float | None:
    from scipy.stats import spearmanr

    if _constant(x) or _constant(y):
        return None
    return round(float(spearmanr(x, y).statistic), 4)


def _metrics(
    target: Target, o: Array, y: Array, train: NDArray[np.intp], test: NDArray[np.intp]
) -> dict[str, float | None]:
    """Held-out metrics of one overall-score column (see the module docstring)."""
    xs, ys = o[test], y[test]
    if target == "converted":
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss, roc_auc_score

        auc = round(float(roc_auc_score(ys, xs)), 4)
        if _constant(o[train]):
            prob = np.full(len(test), y[train].mean())
        else:
            mu, sd = o[train].mean(), o[train].std()
            model = LogisticRegression().fit(((o[train] - mu) / sd)[:, None], y[train])
            prob = model.predict_proba(((xs - mu) / sd)[:, None])[:, 1]
        return {
            "auc": auc,
            "log_loss": round(float(log_loss(ys, prob, labels=[0.0, 1.0])), 4),
            "spearman": _spearman(xs, ys),
        }
    from scipy.stats import pearsonr

    if _constant(o[train]):
        pred = np.full(len(test), y[train].mean())
    else:
        slope, intercept = np.polyfit(o[train], y[train], 1)
        pred = intercept + slope * xs
    pearson = None if _constant(xs) or _constant(ys) else round(float(pearsonr(xs, ys)[0]), 4)
    return {
        "spearman": _spearman(xs, ys),
        "pearson": pearson,
        "mae": round(float(np.mean(np.abs(pred - ys))), 4),
    }


def _baseline(
    target: Target, y: Array, train: NDArray[np.intp], test: NDArray[np.intp]
) -> dict[str, float | None]:
    if target == "converted":
        from sklearn.metrics import log_loss

        p = float(np.clip(y[train].mean(), 1e-6, 1 - 1e-6))
        return {
            "log_loss": round(float(log_loss(y[test], np.full(len(test), p), labels=[0.0, 1.0])), 4)
        }
    return {"mae": round(float(np.mean(np.abs(y[test] - y[train].mean()))), 4)}


def _check_options(n_reports: int, n_targets: int, target: str, holdout: float, l2: float) -> None:
    """Refuse an unknown target, mismatched lengths, a bad option or too few conversations."""
    if target not in ("converted", "rating"):
        raise InputError(f"target must be 'converted' or 'rating', got {target!r}")
    if n_reports != n_targets:
        raise InputError(
            f"got {n_reports:,} reports but {n_targets:,} targets; give one target per report"
        )
    if not 0.0 < holdout < 1.0:
        raise InputError(f"holdout must be between 0 and 1 (e.g. 0.25), got {holdout}")
    if l2 < 0:
        raise InputError(f"l2 must be >= 0, got {l2}")
    if n_reports < MIN_CONVERSATIONS:
        raise InputError(
            f"calibration needs at least {MIN_CONVERSATIONS} conversations with a {target} "
            f"target, got {n_reports}; score more conversations that have "
            + ("an outcome" if target == "converted" else "a rating")
        )


def _checked_targets(targets: Sequence[float | bool], target: Target) -> Array:
    """The targets as an array, refused when one class is too rare or the ratings never vary."""
    y = _targets(targets, target)
    if target == "converted":
        wins = int(y.sum())
        if min(wins, len(y) - wins) < MIN_PER_CLASS:
            raise InputError(
                f"{wins:,} of {len(y):,} conversations converted; calibration needs at least "
                f"{MIN_PER_CLASS} converted and {MIN_PER_CLASS} not converted"
            )
    elif _constant(y):
        raise InputError(
            f"every rating is {y[0]:g}; ratings that never vary cannot weight the dimensions"
        )
    return y


def _checked_split(
    y: Array, target: Target, holdout: float, seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """``(train, test)`` indices, refused when either side is too small to use."""
    train, test = _split(y, target, holdout, np.random.default_rng(seed))
    if len(train) < 15 or len(test) < 5:
        raise InputError(
            f"holdout {holdout} leaves {len(train)} conversations to fit and {len(test)} to "
            "check; use a holdout between 0.1 and 0.5"
        )
    return train, test


# --------------------------------------------------------------------------- public API


def calibrate(
    reports: Sequence[Mapping[str, Any]],
    targets: Sequence[float | bool],
    target: Target,
    rubric: Rubric,
    holdout: float = 0.25,
    seed: int = 0,
    l2: float = 1.0,
) -> CalibrationResult:
    """Fit non-negative rubric weights to outcomes or ratings, and compare on held-out data.

    Args:
        reports: score reports (:mod:`copilot.scoring.report` shape); only their dimension scores
            are used.
        targets: one per report: ``converted`` (true/false) or a supervisor rating (any scale,
            higher is better).
        target: ``"converted"`` or ``"rating"``.
        rubric: the rubric whose weights are fitted (the rest of it is kept as is).
        holdout: share of the conversations held out for the before/after comparison.
        seed: seed of the train / holdout split.
        l2: strength of the L2 penalty on the standardised coefficients.

    Returns:
        A :class:`CalibrationResult` with the fitted rubric and held-out metrics before and after.

    Raises:
        InputError: mismatched lengths, an invalid target value or option, fewer than
            :data:`MIN_CONVERSATIONS` conversations, a single outcome class (or fewer than
            :data:`MIN_PER_CLASS` of one), constant ratings, or no dimension that relates
            positively to the target.

    Example:
        >>> result = calibrate(reports, [r["converted"] for r in reports], "converted", rubric)
        >>> result.weights_after, result.before["auc"], result.after["auc"]
    """
    _check_options(len(reports), len(targets), target, holdout, l2)
    y = _checked_targets(targets, target)
    train, test = _checked_split(y, target, holdout, seed)
    fit = fit_rubric([reports[i] for i in train], y[train], target, rubric, l2=l2)
    name = rubric.name if rubric.name.endswith("-calibrated") else f"{rubric.name}-calibrated"
    new = fit.rubric.with_weights(fit.rubric.weights, name=name, version=rubric.version + 1)

    before = _metrics(target, _filled(overall_scores(rubric, reports), train), y, train, test)
    after = _metrics(target, _filled(overall_scores(new, reports), train), y, train, test)
    result = CalibrationResult(
        target=target,
        rubric=new,
        original=rubric,
        n=len(y),
        n_train=len(train),
        n_holdout=len(test),
        before=before,
        after=after,
        baseline=_baseline(target, y, train, test),
        primary="auc" if target == "converted" else "spearman",
        unfitted=fit.unfitted,
        seed=seed,
        holdout=holdout,
        unfitted_signals=fit.unfitted_signals,
    )
    logger.info("calibrated %s: %s -> %s", target, before, after)
    return result
