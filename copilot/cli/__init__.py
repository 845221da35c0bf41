"""The ``copilot`` command line.

Exit codes: 0 ok, 1 runtime failure, 2 usage or input error (with a message that says what to fix).
The CLI owns the console: library code logs, the CLI prints.
"""

from __future__ import annotations

from copilot.cli import (  # noqa: F401  (registers the commands)
    _data,
    _followups,
    _keys,
    _llm,
    _models,
    _quality,
    _rank,
    _score,
    _scripts,
    _serve,
)
from copilot.cli._common import app

__all__ = ["app"]
