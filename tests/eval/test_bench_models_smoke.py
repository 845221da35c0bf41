"""A tiny run of ``eval.bench_models``: every measure is there and the JSON is written."""

from __future__ import annotations

from pathlib import Path

from eval.bench_models import main


def test_bench_models_smoke_run_writes_every_measure(tmp_path: Path) -> None:
    out = tmp_path / "bench_models.json"
    bundle_dir = tmp_path / "bundle"
    result = main(
        [
            "--train-conversations", "300",
            "--latency-messages", "50",
            "--throughput-messages", "600",
            "--batch-size", "128",
            "--out", str(out),
            "--keep-bundle", str(bundle_dir),
        ]
    )  # fmt: skip

    assert out.is_file()
    assert (bundle_dir / "manifest.json").is_file()
    assert result["train_seconds"] > 0
    assert result["generate_seconds"] > 0
    assert result["train_peak_rss_mb"] > 0
    assert result["bundle_mb"] > 0
    assert result["latency_messages"] == 50
    assert result["batch_messages"] == 600
    assert {"embedder", "intent", "act", "total"} <= set(result["train_steps_s"])
    for path in ("predict_intents", "classify"):
        assert 0 < result[path]["p50_ms"] <= result[path]["p95_ms"] <= result[path]["p99_ms"]
    assert set(result["targets"]) == {"train_seconds", "predict_intents_p95_ms", "classify_p95_ms"}
