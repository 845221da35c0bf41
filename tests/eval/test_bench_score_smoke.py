"""A tiny run of ``eval.bench_score``: local runs in child processes, memory, floor, the JSON."""

from __future__ import annotations

import json
from pathlib import Path

from eval.bench_score import main, tree_rss_mb


def test_bench_score_smoke_run_writes_every_measure(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench_score.json"
    result = main(
        [
            "--n", "40",
            "--workers", "1",
            "--ray-n", "0",
            "--batch-size", "10",
            "--bundle", str(scoring_bundle_dir),
            "--cache", str(tmp_path / "cache"),
            "--out", str(out),
        ]
    )  # fmt: skip

    assert json.loads(out.read_text("utf-8")) == result
    small, full = result["local"]
    assert (small["workers"], small["conversations"], full["conversations"]) == (1, 4, 40)
    for run in (small, full):
        assert run["scored"] == run["conversations"] and run["quarantined"] == 0
        assert run["conversations_per_s"] > 0 and run["peak_tree_rss_mb"] > 50
    assert result["ray"] is None and result["speedup_2_over_1_workers"] is None
    assert result["floor"]["messages"] > 40 and result["floor"]["jieba_conversations_per_s"] > 0
    assert result["scoring_over_jieba_floor"] > 0
    assert set(result["memory_growth_small_to_full_mb"]) == {"1"}
    assert result["bundle"] == str(scoring_bundle_dir)


def test_tree_rss_counts_this_process() -> None:
    import os

    rss, processes = tree_rss_mb(os.getpid())
    assert rss > 10 and processes >= 1
