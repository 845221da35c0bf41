"""Analyzers: each adds annotations to a conversation (see :mod:`copilot.pipeline`).

========================  =====================  ===================================
analyzer                  requires               assigns
========================  =====================  ===================================
``LabelAnalyzer``         -                      ``labels`` (intent / act per message)
``SentimentAnalyzer``     -                      ``sentiment`` (per customer message)
``TimingAnalyzer``        ``labels``             ``timing`` (latencies, unanswered)
``SignalsAnalyzer``       ``labels``, ``timing``,  ``signals`` (evidence for the experience
                          ``sentiment``          dimension, each on its message)
``ComplianceAnalyzer``    -                      ``compliance`` (flags with spans)
``OutcomeAnalyzer``       ``labels``             ``win_probability``
========================  =====================  ===================================

The rubric (:class:`copilot.scoring.dimensions.RubricAnalyzer`) turns them into dimension scores.
"""

from __future__ import annotations

from copilot.analyzers.compliance import ComplianceAnalyzer
from copilot.analyzers.labels import LabelAnalyzer
from copilot.analyzers.outcome import OutcomeAnalyzer
from copilot.analyzers.sentiment import Sentiment, SentimentAnalyzer, sentiment_score
from copilot.analyzers.signals import Signal, Signals, SignalsAnalyzer
from copilot.analyzers.timing import Reply, Timing, TimingAnalyzer, needs_answer, working_seconds

__all__ = [
    "ComplianceAnalyzer",
    "LabelAnalyzer",
    "OutcomeAnalyzer",
    "Reply",
    "Sentiment",
    "SentimentAnalyzer",
    "Signal",
    "Signals",
    "SignalsAnalyzer",
    "Timing",
    "TimingAnalyzer",
    "needs_answer",
    "sentiment_score",
    "working_seconds",
]
