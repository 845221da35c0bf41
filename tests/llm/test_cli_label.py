"""``copilot label`` end to end against the scripted server: the CSV `copilot train` reads,
resuming after an interruption, failures left for the next run, agreement and the report."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from copilot.cli import app
from copilot.cli._models import read_label_csv
from tests.builders import conversation_dict
from tests.llm.scripted import Answer, ScriptedLLM, reply

runner = CliRunner()

CHATS = [
    conversation_dict(
        f"c-{n}",
        [
            ("customer", f"第{n}位顾客：在吗？这件有M码吗"),
            ("guide", "在的亲，有的"),
            ("customer", f"第{n}位顾客：太贵了"),
            ("guide", "今天满300减50哦"),
        ],
    )
    for n in range(1, 5)
]


def labeller(fail: str | None = None) -> Callable[[dict[str, Any]], Answer]:
    """A responder that labels every target (stock for message 0, price_objection after), and
    answers HTTP 400 (not retried) to a chat that mentions ``fail``."""

    def answer(body: dict[str, Any]) -> Answer:
        user = body["messages"][-1]["content"]
        if fail and fail in user:
            return Answer("bad request", status=400)
        found = re.search(r"<targets>\s*(\[.*?\])\s*</targets>", user, re.S)
        targets = json.loads(found[1]) if found else []
        labels = [{"i": i, "label": "stock" if i == 0 else "price_objection"} for i in targets]
        return reply({"labels": labels})

    return answer


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    path = tmp_path / "logs.jsonl"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in CHATS), "utf-8")
    return path


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, llm: ScriptedLLM) -> ScriptedLLM:
    monkeypatch.setenv("COPILOT_LLM_BACKEND", "openai")
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.url)
    monkeypatch.setenv("COPILOT_LLM_MODEL", "test-model")
    monkeypatch.setenv("COPILOT_LLM_BACKOFF_S", "0.01")
    monkeypatch.setenv("COPILOT_LLM_MAX_RETRIES", "1")
    llm.responder = labeller()
    return llm


def said(result: Any) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_cli_label_writes_the_csv_train_reads(
    configured: ScriptedLLM, logs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "labels.csv"
    report = tmp_path / "report.json"
    result = runner.invoke(
        app, ["label", str(logs), "--task", "intents", "-o", str(out), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text("utf-8").splitlines()[0] == "conversation_id,message_index,text,label"
    got = {(r["conversation_id"], r["message_index"]): r["label"] for r in rows(out)}
    assert got == {
        **{(f"c-{n}", "0"): "stock" for n in range(1, 5)},
        **{(f"c-{n}", "2"): "price_objection" for n in range(1, 5)},
    }
    parsed = read_label_csv(out, "intent CSV")
    assert {(r.conversation_id, r.message_index) for r in parsed} == {
        (f"c-{n}", i) for n in range(1, 5) for i in (0, 2)
    }
    assert parsed[0].text.endswith("在吗？这件有M码吗")  # the original text, not the masked one
    assert len(configured.requests) == 4
    numbers = json.loads(report.read_text("utf-8"))
    assert numbers["rows"] == 8 and numbers["items"] == 4 and numbers["failed"] == 0
    assert numbers["prompt_tokens"] > 0 and numbers["prompt_version"] == "label.v1"
    assert "prompt + " in said(result) and "labels written" in said(result)


def test_cli_label_resumes_after_an_interruption(
    configured: ScriptedLLM, logs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "labels.csv"
    assert runner.invoke(app, ["label", str(logs), "-o", str(out)]).exit_code == 0
    lines = out.read_text("utf-8").splitlines(keepends=True)
    # Stopped while writing: c-4's rows are gone but for half of its first row.
    kept = [line for line in lines if not line.startswith("c-4")]
    out.write_text("".join(kept) + "c-4,0,第4位顾客：在吗？这件有M", "utf-8")
    configured.requests.clear()
    result = runner.invoke(app, ["label", str(logs), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (
        len(configured.requests) == 1
        and "第4位" in configured.requests[0]["messages"][-1]["content"]
    )
    final = rows(out)
    keys = [(r["conversation_id"], r["message_index"]) for r in final]
    assert len(keys) == len(set(keys)) == 8
    assert "6 already there" in said(result)
    # A third run has nothing left to do.
    configured.requests.clear()
    assert runner.invoke(app, ["label", str(logs), "-o", str(out)]).exit_code == 0
    assert configured.requests == []


def test_cli_label_failed_items_are_reported_and_retried_next_run(
    configured: ScriptedLLM, logs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "labels.csv"
    configured.responder = labeller(fail="第3位")
    result = runner.invoke(app, ["label", str(logs), "-o", str(out), "--concurrency", "2"])
    assert result.exit_code == 1
    assert "failed c-3" in said(result) and "HTTP 400" in said(result)
    assert {r["conversation_id"] for r in rows(out)} == {"c-1", "c-2", "c-4"}
    configured.responder = labeller()
    configured.requests.clear()
    assert runner.invoke(app, ["label", str(logs), "-o", str(out)]).exit_code == 0
    assert len(configured.requests) == 1
    assert len(rows(out)) == 8


def test_cli_label_actions_and_agreement(
    configured: ScriptedLLM, logs: Path, tmp_path: Path
) -> None:
    configured.responder = lambda body: reply(
        {"labels": [{"i": i, "label": "close_sale"} for i in (1, 3)]}
    )
    gold = tmp_path / "gold.csv"
    gold.write_text(
        "conversation_id,message_index,text,label\n"
        "c-1,1,在的亲，有的,close_sale\nc-1,3,今天满300减50哦,share_promotion\nc-9,1,x,close_sale\n",
        "utf-8",
    )
    out = tmp_path / "acts.csv"
    result = runner.invoke(
        app, ["label", str(logs), "--task", "actions", "-o", str(out), "--agreement", str(gold)]
    )
    assert result.exit_code == 0, result.output
    assert {r["message_index"] for r in rows(out)} == {"1", "3"}
    assert "agreement with" in said(result) and "on 2 messages: accuracy 0.500" in said(result)
    assert "share_promotion -> close_sale: 1" in said(result)


def test_cli_label_agreement_file_absent_is_skipped(
    configured: ScriptedLLM, logs: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "label",
            str(logs),
            "-o",
            str(tmp_path / "l.csv"),
            "--limit",
            "1",
            "--agreement",
            str(tmp_path / "none.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "agreement skipped" in said(result)
    assert len(configured.requests) == 1


def test_cli_label_without_an_llm_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, logs: Path, tmp_path: Path
) -> None:
    monkeypatch.delenv("COPILOT_LLM_BACKEND", raising=False)
    result = runner.invoke(app, ["label", str(logs), "-o", str(tmp_path / "l.csv")])
    assert result.exit_code == 2
    assert "no LLM is configured" in said(result)


def test_cli_label_refuses_an_output_with_another_header(
    configured: ScriptedLLM, logs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "other.csv"
    out.write_text("text,label\n在吗,greeting\n", "utf-8")
    result = runner.invoke(app, ["label", str(logs), "-o", str(out)])
    assert result.exit_code == 2
    assert "to resume it must be conversation_id,message_index,text,label" in said(result)
