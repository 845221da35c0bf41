"""The layer contracts of pyproject.toml ([tool.importlinter]) hold: layers point one way.

``make test`` and CI run pytest, so an import against the arrows (the core importing the models,
the models importing the server, an analyzer importing the scoring) fails the build here, with
import-linter's report of the offending chain.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> Path:
    path = Path(sys.executable).parent / "lint-imports"
    assert path.exists(), (
        f"lint-imports not found next to {sys.executable}; install the dev extra: "
        "pip install -e '.[dev]' (make install does)"
    )
    return path


def test_layers_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(_lint_imports()), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, f"import contracts broken:\n{result.stdout}\n{result.stderr}"
    assert "0 broken" in result.stdout
