"""Conversation quality: the rubric, dimension scores with evidence, score reports, scorecards
and calibration of the rubric's weights.

Example:
    >>> from models.runtime import load_scorer
    >>> scorer = load_scorer("bundles/default")
    >>> scorer.score(conversation)["overall"]
"""

from __future__ import annotations

from copilot.scoring.report import REPORT_COLUMNS, build_report, flatten_report, unflatten_report
from copilot.scoring.rubric import DIMENSIONS, Rubric, default_rubric, load_rubric
from copilot.scoring.scorer import Scorer

__all__ = [
    "DIMENSIONS",
    "REPORT_COLUMNS",
    "Rubric",
    "Scorer",
    "build_report",
    "default_rubric",
    "flatten_report",
    "load_rubric",
    "unflatten_report",
]
