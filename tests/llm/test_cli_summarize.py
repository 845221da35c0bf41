"""``copilot summarize`` end to end against the scripted server: each score report gets a
summary, the scored input found from the score file's summary, failures left null for the next
run, resuming from the journal (a line cut mid-write dropped), and no LLM configured."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from copilot.cli import app
from copilot.llm.summaries import journal_path
from tests.builders import conversation_dict
from tests.llm.scripted import Answer, ScriptedLLM, reply

runner = CliRunner()

CHATS = [
    conversation_dict(
        f"c-{n}",
        [("customer", f"第{n}位顾客：在吗？这件有M码吗"), ("guide", "在的亲，有的")],
    )
    for n in range(1, 5)
]


def summariser(fail: str | None = None) -> Callable[[dict[str, Any]], Answer]:
    """A responder that summarises every chat by its customer's number, and answers HTTP 400
    (not retried) to a chat that mentions ``fail``."""

    def answer(body: dict[str, Any]) -> Answer:
        user = body["messages"][-1]["content"]
        if fail and fail in user:
            return Answer("bad request", status=400)
        who = user.split("位顾客")[0].rsplit("第", 1)[1]
        return reply(
            {
                "wanted": f"{who}号要M码",
                "guide_did": "确认有货",
                "open_items": [],
                "next_step": "报价",
            }
        )

    return answer


@pytest.fixture
def scored(tmp_path: Path) -> Path:
    """Logs, and a score file of their reports (in another order, one missing) with the
    summary `copilot score` writes beside it."""
    logs = tmp_path / "logs.jsonl"
    logs.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in CHATS), "utf-8")
    scores = tmp_path / "scores.jsonl"
    reports = [{"conversation_id": f"c-{n}", "overall": 60.0 + n} for n in (3, 1, 2)]
    scores.write_text("".join(json.dumps(r) + "\n" for r in reports), "utf-8")
    summary = {"input": str(logs), "input_format": "jsonl", "scored": 3}
    (tmp_path / "scores.jsonl.summary.json").write_text(json.dumps(summary), "utf-8")
    return scores


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, llm: ScriptedLLM) -> ScriptedLLM:
    monkeypatch.setenv("COPILOT_LLM_BACKEND", "openai")
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.url)
    monkeypatch.setenv("COPILOT_LLM_MODEL", "test-model")
    monkeypatch.setenv("COPILOT_LLM_BACKOFF_S", "0.01")
    monkeypatch.setenv("COPILOT_LLM_MAX_RETRIES", "1")
    llm.responder = summariser()
    return llm


def said(result: Any) -> str:
    return " ".join(result.output.split())


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_cli_summarize_adds_a_summary_to_each_report(
    configured: ScriptedLLM, scored: Path, tmp_path: Path
) -> None:
    out = tmp_path / "summarized.jsonl"
    result = runner.invoke(app, ["summarize", str(scored), "-o", str(out)])

    assert result.exit_code == 0, result.output
    reports = lines(out)
    assert [(r["conversation_id"], r["overall"]) for r in reports] == [
        ("c-3", 63.0),
        ("c-1", 61.0),
        ("c-2", 62.0),
    ]
    assert reports[0]["summary"] == {
        "wanted": "3号要M码",
        "guide_did": "确认有货",
        "open_items": [],
        "next_step": "报价",
        "prompt_version": "summarize.v1",
        "model": "openai:test-model",
    }
    assert len(configured.requests) == 3  # c-4 was not scored: not summarised
    assert not journal_path(out).exists()
    assert "3 reports written" in said(result) and "3 summaries made" in said(result)


def test_cli_summarize_resumes_and_retries_only_what_failed(
    configured: ScriptedLLM, scored: Path, tmp_path: Path
) -> None:
    out = tmp_path / "summarized.jsonl"
    configured.responder = summariser(fail="第2位")
    first = runner.invoke(app, ["summarize", str(scored), "-o", str(out), "--concurrency", "2"])

    assert first.exit_code == 1, first.output
    assert {r["conversation_id"]: r["summary"] is None for r in lines(out)} == {
        "c-3": False,
        "c-1": False,
        "c-2": True,
    }
    assert "c-2" in said(first) and "run the same command again" in said(first)
    # A summary cut off mid-write is dropped from the journal and made again.
    journal = journal_path(out)
    journal.write_text(journal.read_text("utf-8") + '{"conversation_id": "c-1", "summ', "utf-8")

    configured.reset()
    configured.responder = summariser()
    second = runner.invoke(app, ["summarize", str(scored), "-o", str(out)])

    assert second.exit_code == 0, second.output
    assert len(configured.requests) == 1
    assert all(r["summary"] is not None for r in lines(out))
    assert "1 summaries made, 2 from an earlier run" in said(second)
    assert not journal.exists()


def test_cli_summarize_reports_conversations_missing_from_the_input(
    configured: ScriptedLLM, scored: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps(CHATS[0], ensure_ascii=False) + "\n", "utf-8")
    out = tmp_path / "summarized.jsonl"
    result = runner.invoke(app, ["summarize", str(scored), "-i", str(other), "-o", str(out)])

    assert result.exit_code == 1, result.output
    assert "2 report(s) have no conversation" in said(result)
    assert [r["summary"] is None for r in lines(out)] == [True, False, True]


def test_cli_summarize_needs_an_llm(
    monkeypatch: pytest.MonkeyPatch, scored: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("COPILOT_LLM_BACKEND", "none")
    result = runner.invoke(app, ["summarize", str(scored), "-o", str(tmp_path / "out.jsonl")])

    assert result.exit_code == 2
    assert "no LLM is configured" in said(result)


def test_cli_summarize_asks_for_the_input_when_none_is_recorded(
    configured: ScriptedLLM, tmp_path: Path
) -> None:
    scores = tmp_path / "scores.jsonl"
    scores.write_text('{"conversation_id": "c-1"}\n', "utf-8")
    result = runner.invoke(app, ["summarize", str(scores), "-o", str(tmp_path / "out.jsonl")])

    assert result.exit_code == 2
    assert "pass them with --input" in said(result)
    assert configured.requests == []
