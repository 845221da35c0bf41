"""Batch scoring: score files of any size, in parallel, resumable after a crash.

- :func:`score_file` runs a :class:`ScoreJob` and returns its :class:`JobSummary`; engines are
  :mod:`~copilot.batch.local` (this machine, ``workers`` processes) and
  :mod:`~copilot.batch.ray_engine` (a Ray cluster).
- :mod:`~copilot.batch.parts` keeps the job's state in ``OUT.parts/`` so ``resume=True`` finishes
  a killed job with every input item in the output or the quarantine exactly once.
- :func:`open_report_writer` and :func:`read_reports` write and read score files (JSONL reports,
  or flat CSV / Parquet rows).

Example::

    from pathlib import Path
    from copilot.batch import ScoreJob, read_reports, score_file
    from models.runtime import load_scorer

    summary = score_file(
        ScoreJob("logs.jsonl", Path("scores.parquet"), Path("bundles/default"), scorer=load_scorer)
    )
    worst = min(read_reports("scores.parquet"), key=lambda r: r["overall"] or 0)
"""

from __future__ import annotations

from copilot.batch.job import ENGINES, JobSummary, ProgressCallback, ScoreJob, score_file
from copilot.batch.outputs import ReportWriter, open_report_writer, read_reports, report_format

__all__ = [
    "ENGINES",
    "JobSummary",
    "ProgressCallback",
    "ReportWriter",
    "ScoreJob",
    "open_report_writer",
    "read_reports",
    "report_format",
    "score_file",
]
