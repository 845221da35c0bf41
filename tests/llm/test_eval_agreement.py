"""``eval/llm_label_agreement.py`` against the scripted server, and its clean skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval import llm_label_agreement
from tests.llm.scripted import ScriptedLLM
from tests.llm.test_cli_label import labeller

LOGS = """conversation_id,role,text
a,customer,你好 这个有货吗
a,guide,有的亲
a,customer,太贵了
b,customer,发货了吗
b,guide,今天发
"""
GOLD = """conversation_id,message_index,text,label
a,2,太贵了,price_objection
b,0,发货了吗,logistics
"""


@pytest.fixture
def realdata(tmp_path: Path) -> Path:
    (tmp_path / "jddc-logs.csv").write_text(LOGS, "utf-8")
    (tmp_path / "jddc-intents-dev.csv").write_text(GOLD, "utf-8")
    return tmp_path


def test_eval_agreement_labels_only_the_hand_labelled_messages(
    monkeypatch: pytest.MonkeyPatch, llm: ScriptedLLM, realdata: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("COPILOT_LLM_BACKEND", "openai")
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.url)
    monkeypatch.setenv("COPILOT_LLM_MODEL", "m")
    llm.responder = labeller()  # message 0: stock, later ones: price_objection
    metrics = llm_label_agreement.main(["--realdata", str(realdata), "-o", str(tmp_path / "out")])
    assert metrics is not None
    assert metrics["agreement"]["n"] == 2 and metrics["agreement"]["accuracy"] == 0.5
    assert metrics["agreement"]["confusions"] == [["logistics", "stock", 1]]
    assert metrics["rows"] == 2 and len(llm.requests) == 2
    assert (tmp_path / "out" / "intents-metrics.json").is_file()


def test_eval_agreement_skips_without_data_or_llm(
    monkeypatch: pytest.MonkeyPatch,
    realdata: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert llm_label_agreement.main(["--realdata", str(tmp_path / "absent")]) is None
    assert "skipped: no hand labels" in capsys.readouterr().out
    monkeypatch.delenv("COPILOT_LLM_BACKEND", raising=False)
    assert llm_label_agreement.main(["--realdata", str(realdata)]) is None
    assert "skipped: no LLM configured" in capsys.readouterr().out
