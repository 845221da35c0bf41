"""A tiny run of ``eval.bench_suggest``: both index kinds, replication, profiling, the JSON."""

from __future__ import annotations

import json
from pathlib import Path

from eval.bench_suggest import main


def test_bench_suggest_smoke_run_writes_every_measure(tmp_path: Path) -> None:
    out = tmp_path / "bench_suggest.json"
    pool_dir = tmp_path / "pool"
    result = main(
        [
            "--sizes", "300,1500",
            "--queries", "20",
            "--warmup", "5",
            "--train-conversations", "300",
            "--mine-conversations", "100",
            # HNSW from 1,000 entries, so the tiny run builds one of each kind
            "--hnsw-threshold", "1000",
            "--profile-size", "1500",
            "--profile-top", "5",
            "--out", str(out),
            "--pool-dir", str(pool_dir),
        ]
    )  # fmt: skip

    assert json.loads(out.read_text("utf-8")) == result
    pool = result["pool"]
    assert pool["trained_library"]["winning_uses"] > 0
    assert 0 < pool["mined_winning_uses"] < 1500
    small, large = result["sizes"]
    assert (small["size"], small["index_kind"], small["entries"]["replicated"]) == (300, "flat", 0)
    assert (large["size"], large["index_kind"], large["hnsw_m"]) == (1500, "hnsw", 32)
    assert large["entries"]["replicated"] == 1500 - pool["mined_winning_uses"]
    assert large["note"].startswith("scaled by replication from")
    for size in (small, large):
        assert size["queries"] == 20
        assert size["build_seconds"] > 0 and size["build_peak_rss_mb"] > 0
        for path in ("suggest", "faiss_raw", "search_dense", "search_hybrid"):
            assert 0 < size[path]["p50_ms"] <= size[path]["p95_ms"] <= size[path]["p99_ms"]
        assert size["suggest_over_faiss"]["p50"] > 1
    assert "profile" not in small
    assert large["profile"]["top_own"] and large["profile"]["top_cumulative"]
    assert result["targets"] == {}  # no 100k size in this run
