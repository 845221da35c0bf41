from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing in the tests may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def scoring_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small bundle (800 generated conversations, seed 5) trained and saved once per session,
    for the scoring, batch and CLI tests that need real models."""
    from copilot.synth import generate
    from copilot.taxonomy import default_taxonomy
    from models.train import TrainConfig, train_bundle

    path = tmp_path_factory.mktemp("scoring-bundle") / "bundle"
    bundle = train_bundle(
        list(generate(800, seed=5)), taxonomy=default_taxonomy(), config=TrainConfig(seed=5)
    )
    bundle.save(path)
    return path


@pytest.fixture(scope="session")
def renamed_bundle_dir(scoring_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the scoring bundle named ``renamed`` (so responses tell the two apart), for
    the reload tests."""
    import json
    import shutil

    copy = tmp_path_factory.mktemp("renamed-bundle") / "renamed"
    shutil.copytree(scoring_bundle_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text("utf-8"))
    manifest["name"] = "renamed"
    (copy / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    return copy
