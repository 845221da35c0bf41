"""A tiny run of ``eval.bench_server``: the real ``copilot serve --workers 2``, both routes paced,
the JSON."""

from __future__ import annotations

import json
from pathlib import Path

from eval.bench_server import main


def test_bench_server_smoke_run_serves_every_row_without_errors(
    scoring_bundle_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench_server.json"
    result = main(
        [
            "--bundle", str(scoring_bundle_dir),
            "--seconds", "1",
            "--n", "5",
            "--clients", "2",
            "--routes", "suggest,conversations",
            "--modes", "paced",
            "--rate", "20",
            "--workers", "2",
            "--out", str(out),
        ]
    )  # fmt: skip

    log = (tmp_path / "bench_server.log").read_text("utf-8")  # the server's: errors, if any
    assert result["bundle"] == str(scoring_bundle_dir) and result["server_workers"] == 2
    rows = {k: v for k, v in result.items() if k not in ("machine", "bundle", "server_workers")}
    assert set(rows) == {"suggest_paced", "conversations_paced"}
    for name, row in rows.items():
        assert row["path"] == f"/v1/{name.removesuffix('_paced')}"
        assert (row["mode"], row["clients"]) == ("paced 20/s", 2)
        assert row["errors"] == 0 and row["error_kinds"] == {}, (row, log[-3000:])
        assert row["requests"] > 0 and row["requests_per_s"] > 0
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert row["client_cpu_ms_per_request"] > 0
        assert sum(row["served_by"]) == row["requests"] and len(row["served_by"]) <= 2
    assert json.loads(out.read_text("utf-8")) == result
