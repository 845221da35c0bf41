"""``python -m copilot.cli``: the ``copilot`` command without the console script."""

from __future__ import annotations

from copilot.cli import app

# The guard matters: worker processes started by spawn / forkserver import the main module.
if __name__ == "__main__":
    app(prog_name="copilot")
