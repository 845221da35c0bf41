"""Fit a rubric to targets: the weights of the dimensions and the points of the experience signals.

:func:`fit_rubric` is the fitting step of :func:`copilot.scoring.calibrate.calibrate` (which adds
the checks, the held-out split and the metrics); evaluations that run their own k-fold split call
it directly, with :func:`overall_scores` to score the held-out reports under the fitted rubric::

    fit = fit_rubric(train_reports, train_ratings, "rating", default_rubric())
    overall_scores(fit.rubric, test_reports)

The model is linear in the dimension scores (non-negative coefficients) and in the summed values
of the evidence signals a report carries (``report["signals"]``, either sign), with an L2 penalty
on the standardised coefficients: least squares for ``rating``, a logistic regression for
``converted``. It becomes a rubric again as follows. A dimension's coefficient is its weight. The
signal part ``u = sum(beta[s] * value[s])`` becomes the experience dimension,
``start + g * u`` clipped to 0-100, with ``g`` chosen so that the middle 96% of training
conversations score between 10 and 90 (points are ``g * beta``), and weight ``1 / g``. All
weights are then normalised to sum to 1, so the overall score orders conversations as the model
does, up to the clipping and the renormalisation over the dimensions that apply.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from copilot.analyzers.signals import SIGNAL_NAMES
from copilot.errors import InputError
from copilot.scoring.rubric import DIMENSIONS, Rubric

__all__ = ["MIN_APPLIES", "Fit", "fit_rubric", "normalised", "overall_scores", "rescored"]

logger = logging.getLogger(__name__)

Array = NDArray[np.float64]

MIN_APPLIES = 10
"""Training conversations a dimension must be scored in (a signal seen in) to be fitted."""
_EXPERIENCE = "experience"
_SPAN = (10.0, 90.0)  # experience scores of the middle 96% of training conversations
_QUANTILES = (0.02, 0.98)


@dataclass(frozen=True)
class Fit:
    """A fitted rubric.

    Attributes:
        rubric: the rubric with fitted weights (and experience points, when fitted); its name and
            version are the original's.
        unfitted: dimensions scored too rarely to fit; they kept their original share.
        unfitted_signals: signals seen too rarely to fit; they kept their original points (empty
            when the experience points were not fitted).
        signals_fitted: whether the experience points were fitted.
    """

    rubric: Rubric
    unfitted: tuple[str, ...]
    unfitted_signals: tuple[str, ...]
    signals_fitted: bool


# --------------------------------------------------------------------------- reading reports


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _dimension_scores(report: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for d, entry in (report.get("dimensions") or {}).items():
        value = entry.get("score") if isinstance(entry, Mapping) else entry
        out[d] = None if value is None or _nan(value) else float(value)
    return out


def _signal_totals(report: Mapping[str, Any]) -> dict[str, float] | None:
    """The report's signal totals (absent signals are 0), or ``None`` if it carries none."""
    totals = report.get("signals")
    if not isinstance(totals, Mapping):
        return None
    return {
        k: float(v)
        for k, v in totals.items()
        if k in SIGNAL_NAMES and isinstance(v, int | float) and math.isfinite(v)
    }


def rescored(rubric: Rubric, report: Mapping[str, Any]) -> dict[str, float | None]:
    """A report's dimension scores, with the experience dimension recomputed under ``rubric``
    from the report's signals (when it carries them and the dimension applies)."""
    scores = _dimension_scores(report)
    totals = _signal_totals(report)
    if totals is not None and scores.get(_EXPERIENCE) is not None:
        scores[_EXPERIENCE] = rubric.experience.score(totals)
    return scores


def overall_scores(rubric: Rubric, reports: Sequence[Mapping[str, Any]]) -> list[float | None]:
    """The overall score of each report under ``rubric``, without running the analyzers again.

    Exact for the weights; the experience dimension is recomputed from the report's signals.
    """
    return [rubric.overall(rescored(rubric, r)) for r in reports]


def normalised(weights: Mapping[str, float], other: Mapping[str, float]) -> dict[str, float]:
    """``weights`` scaled to sum to 1, over every dimension of either mapping, in report order."""
    total = sum(weights.values()) or 1.0
    dims = [d for d in DIMENSIONS if d in weights or d in other]
    return {d: round(weights.get(d, 0.0) / total, 4) for d in dims}


# --------------------------------------------------------------------------- solvers


def _fit_logistic(z: Array, y: Array, l2: float, lower: Array) -> Array:
    """Coefficients of a logistic regression (free intercept) with an L2 penalty, each at least
    ``lower`` (``-inf``: free)."""
    from scipy.optimize import minimize

    n, d = z.shape
    alpha = l2 / n

    def loss(theta: Array) -> tuple[float, Array]:
        s = theta[0] + z @ theta[1:]
        value = float(np.mean(np.logaddexp(0.0, s) - y * s)) + 0.5 * alpha * float(
            theta[1:] @ theta[1:]
        )
        r = 1.0 / (1.0 + np.exp(-s)) - y
        grad = np.concatenate([[r.mean()], z.T @ r / n + alpha * theta[1:]])
        return value, grad

    p = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    start = np.concatenate([[math.log(p / (1 - p))], np.where(np.isfinite(lower), 0.1, 0.0)])
    bounds = [(None, None)] + [(float(lo) if np.isfinite(lo) else None, None) for lo in lower]
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    if not result.success:
        logger.warning("logistic fit did not converge: %s", result.message)
    return np.maximum(np.asarray(result.x[1:], dtype=np.float64), lower)


def _fit_least_squares(z: Array, y: Array, l2: float, lower: Array) -> Array:
    """Least squares (free intercept, by centring) with a small ridge, each coefficient at least
    ``lower`` (``-inf``: free)."""
    from scipy.optimize import lsq_linear

    d = z.shape[1]
    a = np.vstack([z - z.mean(axis=0), math.sqrt(l2) * np.eye(d)])
    b = np.concatenate([y - y.mean(), np.zeros(d)])
    result = lsq_linear(a, b, bounds=(lower, np.full(d, np.inf)), method="bvls")
    return np.maximum(np.asarray(result.x, dtype=np.float64), lower)


def _standardised(x: Array) -> tuple[Array, Array]:
    """Columns imputed with their mean (NaN = does not apply), centred and scaled; and the
    scales (0 for a constant column, which gets a zero column)."""
    mean = np.nanmean(x, axis=0) if x.size else np.zeros(x.shape[1])
    filled = np.where(np.isnan(x), mean, x)
    std = filled.std(axis=0)
    usable = std > 1e-9
    z = np.zeros_like(filled)
    z[:, usable] = (filled[:, usable] - mean[usable]) / std[usable]
    return z, np.where(usable, std, 0.0)


# --------------------------------------------------------------------------- fitting


def _experience(rubric: Rubric, beta: Array, names: list[str], s: Array) -> tuple[Any, float]:
    """The experience section for signal coefficients ``beta`` (target units per unit of each
    signal in ``names``) on the training signal matrix ``s``, and its weight in target units per
    experience point."""
    u = s @ beta
    lo, hi = (float(q) for q in np.quantile(u, _QUANTILES))
    if hi - lo <= 1e-9:  # one conversation in fifty or fewer differs: span the full range
        lo, hi = float(u.min()), float(u.max())
    g = (_SPAN[1] - _SPAN[0]) / (hi - lo)
    points = dict(rubric.experience.points)
    points.update({name: round(g * float(b), 2) for name, b in zip(names, beta, strict=True)})
    section = rubric.experience.model_copy(
        update={"start": round(_SPAN[1] - g * hi, 1), "points": points}
    )
    return section, 1.0 / g


def fit_rubric(
    reports: Sequence[Mapping[str, Any]],
    targets: Sequence[float] | Array,
    target: Literal["converted", "rating"],
    rubric: Rubric,
    l2: float = 1.0,
    signals: bool = True,
) -> Fit:
    """Fit the weights (and, from the reports' signals, the experience points) on every report.

    Args:
        reports: score reports; their dimension scores and ``signals`` are used.
        targets: one finite number per report (1/0 for ``converted``).
        target: ``"converted"`` (logistic) or ``"rating"`` (least squares).
        rubric: the rubric to start from; everything but the weights and experience is kept.
        l2: strength of the L2 penalty on the standardised coefficients.
        signals: fit the experience points when every report carries signals; ``False`` keeps
            the experience dimension as it is (weight and points), which is how calibration
            worked before the dimension existed.

    Returns:
        The :class:`Fit`.

    Raises:
        InputError: no dimension or signal is seen in :data:`MIN_APPLIES` reports, or none relates
            positively to the target.
    """
    y = np.asarray(targets, dtype=np.float64)
    d = _design(reports, rubric, signals)
    original = normalised(rubric.weights, dict.fromkeys(d.dims, 0.0))
    kept = (*d.unfitted, *d.fixed)
    kept_share = sum(original.get(k, 0.0) for k in kept)
    if (not d.fitted and not d.names) or kept_share >= 1.0:
        raise InputError(
            f"no dimension is scored in at least {MIN_APPLIES} training conversations "
            f"(scored: {', '.join(k for k in d.dims if k in d.seen) or 'none'}); "
            "score more conversations"
        )
    raw = _raw_coefficients(d, y, target, l2)
    weights = {k: float(w) for k, w in zip(d.fitted, raw[: len(d.fitted)], strict=True)}
    beta = raw[len(d.fitted) :]
    experience = rubric.experience
    if d.derived:
        weights[_EXPERIENCE] = 0.0
        if np.any(beta != 0):
            experience, weights[_EXPERIENCE] = _experience(rubric, beta, d.names, d.s)
    if not any(w > 0 for w in weights.values()):
        raise InputError(
            f"no dimension relates positively to {target} on the {len(y):,} training "
            "conversations, so no non-negative weights fit; keep the current rubric"
        )
    total = sum(weights.values())
    out = {k: original.get(k, 0.0) for k in kept}
    out.update({k: w / total * (1.0 - kept_share) for k, w in weights.items()})
    new = rubric.with_weights(
        {k: out[k] for k in DIMENSIONS if k in out}, experience=experience.model_dump()
    )
    return Fit(new, d.unfitted, d.unfitted_signals, d.derived and experience != rubric.experience)


@dataclass(frozen=True)
class _Design:
    """What a fit reads: which dimensions and signals it fits, and their training matrices."""

    dims: list[str]  # every dimension scored in the reports or weighted by the rubric
    seen: set[str]  # the dimensions some report scores
    fixed: list[str]  # kept as they are (experience, when signals are not fitted)
    fitted: list[str]  # scored in at least MIN_APPLIES reports
    unfitted: tuple[str, ...]  # scored in fewer: their weights are kept
    x: Array  # the fitted dimensions' scores, NaN where one does not apply
    derived: bool  # experience is fitted from the signals
    names: list[str]  # the signals fitted
    unfitted_signals: tuple[str, ...]
    s: Array  # the fitted signals' totals


def _design(reports: Sequence[Mapping[str, Any]], rubric: Rubric, signals: bool) -> _Design:
    """The dimension and signal columns a fit can use, each seen in enough reports."""
    scores = [_dimension_scores(r) for r in reports]
    totals = [_signal_totals(r) for r in reports]
    derived = signals and all(t is not None for t in totals)
    seen = {d for sc in scores for d, v in sc.items() if v is not None}
    dims = [d for d in DIMENSIONS if d in seen or d in rubric.weights]
    fixed = [] if signals else [d for d in dims if d == _EXPERIENCE]
    columns = [d for d in dims if d not in fixed and not (derived and d == _EXPERIENCE)]
    x = np.array(
        [[np.nan if sc.get(d) is None else sc[d] for d in columns] for sc in scores],
        dtype=np.float64,
    ).reshape(len(scores), len(columns))
    applies = (~np.isnan(x)).sum(axis=0)
    fitted = [d for j, d in enumerate(columns) if applies[j] >= MIN_APPLIES]

    s = np.array([[(t or {}).get(k, 0.0) for k in SIGNAL_NAMES] for t in totals])
    s = s.reshape(len(totals), len(SIGNAL_NAMES))
    seen_signals = (s != 0).sum(axis=0) >= MIN_APPLIES
    names = [k for j, k in enumerate(SIGNAL_NAMES) if derived and seen_signals[j]]
    return _Design(
        dims=dims,
        seen=seen,
        fixed=fixed,
        fitted=fitted,
        unfitted=tuple(d for d in columns if d not in fitted),
        x=x[:, [columns.index(d) for d in fitted]],
        derived=derived,
        names=names,
        unfitted_signals=tuple(k for k in SIGNAL_NAMES if derived and k not in names),
        s=s[:, [SIGNAL_NAMES.index(k) for k in names]],
    )


def _raw_coefficients(
    design: _Design, y: Array, target: Literal["converted", "rating"], l2: float
) -> Array:
    """Fitted coefficients in raw units: the dimensions' (non-negative), then the signals'."""
    zd, sd = _standardised(design.x)
    zs, ss = _standardised(design.s)
    z = np.hstack([zd, zs])
    lower = np.concatenate([np.zeros(len(design.fitted)), np.full(len(design.names), -np.inf)])
    fit = _fit_logistic if target == "converted" else _fit_least_squares
    coef = fit(z, y, l2, lower)
    scale = np.concatenate([sd, ss])
    return np.where(scale > 0, coef / np.where(scale > 0, scale, 1.0), 0.0)
