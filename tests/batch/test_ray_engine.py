"""The Ray engine writes what the local engine writes; without Ray it names the extra."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from copilot.batch import ScoreJob, score_file
from copilot.batch.parts import quarantine_path
from copilot.errors import ConfigError
from copilot.io import write_conversations
from copilot.synth import generate
from models.runtime import load_scorer
from tests.batch.conftest import BROKEN_LINES

# Ray Data's DataContext warns about its own deprecated fields (use_push_based_shuffle,
# use_polars) whenever it copies itself for a job; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def test_ray_engine_writes_the_local_engines_reports(
    scoring_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray.data")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # else Ray writes ~/.ray/auth_token
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    source = tmp_path / "logs.jsonl"
    write_conversations(source, generate(40, seed=47))
    with source.open("ab") as handle:
        handle.write(b"\n".join(BROKEN_LINES) + b"\n")
    local, ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    job = ScoreJob(source, local, scoring_bundle_dir, batch_size=8, scorer=load_scorer)
    score_file(job)

    summary = score_file(
        ScoreJob(
            source,
            ray,
            scoring_bundle_dir,
            batch_size=8,
            workers=2,
            engine="ray",
            scorer=load_scorer,
        )
    )

    assert (summary.engine, summary.read, summary.scored, summary.quarantined) == ("ray", 49, 44, 5)
    assert ray.read_bytes() == local.read_bytes()
    assert quarantine_path(ray).read_bytes() == quarantine_path(local).read_bytes()


def test_ray_engine_without_ray_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.batch import ray_engine

    real = importlib.import_module

    def no_ray(name: str, *args: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(ray_engine.importlib, "import_module", no_ray)
    with pytest.raises(ConfigError, match=r"pip install 'sales-copilot\[ray\]'"):
        ray_engine.import_ray()
