"""The real-data evaluation skips cleanly where the real data are not (CI, other machines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval import real_dev


def test_real_dev_skips_with_a_message_without_the_real_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert real_dev.main(["--realdata", str(tmp_path), "-o", str(tmp_path / "out")]) is None
    assert "skipped: no real logs" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
