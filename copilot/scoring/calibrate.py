"""Fit the rubric's weights to what matters: conversions, or supervisors' ratings.

The overall score is a weighted mean of the dimension scores that apply to a conversation
(:meth:`Rubric.overall`). Calibration learns non-negative weights from scored conversations whose
outcome (``converted``) or rating is known, and reports held-out numbers for the fitted **and** the
original weights, so the user sees whether fitting helped before adopting the new rubric::

    result = calibrate(reports, [r["converted"] for r in reports], "converted", rubric)
    result.before["auc"], result.after["auc"]
    result.rubric.save("rubric.calibrated.yaml")

How:

* Features are the per-dimension scores. A dimension that does not apply (``score: null``) is
  imputed with its training mean for fitting only; every evaluation recomputes
  ``rubric.overall(...)`` on the real scores, so the weights are renormalised over the dimensions
  that apply, exactly as in production.
* ``converted``: a logistic regression on standardised scores with weights bounded at 0 and an L2
  penalty (L-BFGS-B). ``rating``: non-negative least squares (with the same small ridge).
  A coefficient on the 0-100 score scale is the dimension's weight; weights are normalised to sum
  to 1.
* A dimension scored in too few training conversations keeps its original share of the weight.
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
from copilot.scoring.rubric import DIMENSIONS, Rubric

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
_MIN_APPLIES = 10  # training conversations a dimension must be scored in to get a fitted weight

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
        return _normalised(self.original.weights, self.rubric.weights)

    @property
    def weights_after(self) -> dict[str, float]:
        """The fitted weights (sum 1)."""
        return _normalised(self.rubric.weights, self.original.weights)

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
            f"# Weights fitted by `copilot calibrate` to {self.target} on {self.n:,} conversations",
            f"# (seed {self.seed}, {self.n_holdout:,} held out), starting from {self.original.label}.",
            "# Held-out "
            + ", ".join(
                f"{k} {fmt(self.before.get(k))} -> {fmt(self.after.get(k))}" for k in self.after
            ),
        ]
        if not self.improved:
            header.append(f"# The fitted weights did not improve held-out {self.primary}.")
        return "\n".join(header) + "\n" + self.rubric.to_yaml()


def _normalised(weights: Mapping[str, float], other: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values()) or 1.0
    dims = [d for d in DIMENSIONS if d in weights or d in other]
    return {d: round(weights.get(d, 0.0) / total, 4) for d in dims}


# --------------------------------------------------------------------------- inputs


def _dimension_scores(report: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for d, entry in (report.get("dimensions") or {}).items():
        value = entry.get("score") if isinstance(entry, Mapping) else entry
        out[d] = None if value is None or _nan(value) else float(value)
    return out


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


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


# --------------------------------------------------------------------------- fitting


def _fit_logistic(z: Array, y: Array, l2: float) -> Array:
    """Non-negative coefficients of a logistic regression (free intercept) with an L2 penalty."""
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
    start = np.concatenate([[math.log(p / (1 - p))], np.full(d, 0.1)])
    result = minimize(
        loss, start, jac=True, method="L-BFGS-B", bounds=[(None, None)] + [(0.0, None)] * d
    )
    if not result.success:
        logger.warning("logistic fit did not converge: %s", result.message)
    return np.maximum(np.asarray(result.x[1:], dtype=np.float64), 0.0)


def _fit_nnls(z: Array, y: Array, l2: float) -> Array:
    """Non-negative least squares (free intercept, by centring) with a small ridge."""
    from scipy.optimize import nnls

    d = z.shape[1]
    a = np.vstack([z - z.mean(axis=0), math.sqrt(l2) * np.eye(d)])
    b = np.concatenate([y - y.mean(), np.zeros(d)])
    coef, _ = nnls(a, b)
    return np.asarray(coef, dtype=np.float64)


# --------------------------------------------------------------------------- evaluation


def _overall(rubric: Rubric, scores: list[dict[str, float | None]]) -> list[float | None]:
    return [rubric.overall(s) for s in scores]


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
    if target not in ("converted", "rating"):
        raise InputError(f"target must be 'converted' or 'rating', got {target!r}")
    if len(reports) != len(targets):
        raise InputError(
            f"got {len(reports):,} reports but {len(targets):,} targets; give one target per report"
        )
    if not 0.0 < holdout < 1.0:
        raise InputError(f"holdout must be between 0 and 1 (e.g. 0.25), got {holdout}")
    if l2 < 0:
        raise InputError(f"l2 must be >= 0, got {l2}")
    if len(reports) < MIN_CONVERSATIONS:
        raise InputError(
            f"calibration needs at least {MIN_CONVERSATIONS} conversations with a {target} "
            f"target, got {len(reports)}; score more conversations that have "
            + ("an outcome" if target == "converted" else "a rating")
        )
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

    scores = [_dimension_scores(r) for r in reports]
    seen = {d for s in scores for d, v in s.items() if v is not None}
    dims = [d for d in DIMENSIONS if d in seen or d in rubric.weights]
    x = np.array(
        [[np.nan if s.get(d) is None else s[d] for d in dims] for s in scores], dtype=np.float64
    ).reshape(len(scores), len(dims))
    train, test = _split(y, target, holdout, np.random.default_rng(seed))
    if len(train) < 15 or len(test) < 5:
        raise InputError(
            f"holdout {holdout} leaves {len(train)} conversations to fit and {len(test)} to "
            "check; use a holdout between 0.1 and 0.5"
        )

    xt = x[train]
    applies = (~np.isnan(xt)).sum(axis=0)
    fitted = [j for j in range(len(dims)) if applies[j] >= _MIN_APPLIES]
    unfitted = tuple(dims[j] for j in range(len(dims)) if applies[j] < _MIN_APPLIES)
    original = _normalised(rubric.weights, dict.fromkeys(dims, 0.0))
    kept_share = sum(original.get(d, 0.0) for d in unfitted)
    if not fitted or kept_share >= 1.0:
        raise InputError(
            f"no dimension is scored in at least {_MIN_APPLIES} training conversations "
            f"(scored: {', '.join(d for d in dims if d in seen) or 'none'}); score more conversations"
        )
    cols = xt[:, fitted]
    mean = np.nanmean(cols, axis=0)
    cols = np.where(np.isnan(cols), mean, cols)
    std = cols.std(axis=0)
    usable = std > 1e-9
    z = np.zeros_like(cols)
    z[:, usable] = (cols[:, usable] - mean[usable]) / std[usable]
    coef = _fit_logistic(z, y[train], l2) if target == "converted" else _fit_nnls(z, y[train], l2)
    raw = np.where(usable, coef / np.where(usable, std, 1.0), 0.0)
    if not np.any(raw > 0):
        raise InputError(
            f"no dimension relates positively to {target} on the {len(train):,} training "
            "conversations, so no non-negative weights fit; keep the current rubric"
        )
    raw = raw / raw.sum() * (1.0 - kept_share)
    weights = {d: original.get(d, 0.0) for d in unfitted}
    weights.update({dims[j]: float(w) for j, w in zip(fitted, raw, strict=True)})
    weights = {d: weights[d] for d in dims}
    name = rubric.name if rubric.name.endswith("-calibrated") else f"{rubric.name}-calibrated"
    new = rubric.with_weights(weights, name=name, version=rubric.version + 1)

    before = _metrics(target, _filled(_overall(rubric, scores), train), y, train, test)
    after = _metrics(target, _filled(_overall(new, scores), train), y, train, test)
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
        unfitted=unfitted,
        seed=seed,
        holdout=holdout,
    )
    logger.info("calibrated %s: %s -> %s", target, before, after)
    return result
