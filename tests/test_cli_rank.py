"""copilot rank: given replies ranked as the next guide message, from the command line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.cli import app
from copilot.taxonomy import default_taxonomy
from tests.builders import conversation_dict

runner = CliRunner()

PRICE = [("customer", "在吗？这件大衣有M码吗，能便宜点吗")]
SAFE = [
    "亲，M码有货哦，今天下单还能用满300减50的券",
    "好的，谢谢亲",
    "亲，这款大衣是羊毛混纺的，很保暖",
]
PHONE = "亲，加我微信13812345678给你优惠"
CLAIM = "这款是全网第一的大衣，M码有货"


@pytest.fixture
def conversation_file(tmp_path: Path) -> Path:
    path = tmp_path / "conversation.json"
    path.write_text(json.dumps(conversation_dict("rank-1", PRICE), ensure_ascii=False), "utf-8")
    return path


def _rank(bundle: Path, conversation: Path, candidates: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["rank", "--bundle", str(bundle), str(conversation), str(candidates), *extra]
    )
    return result.exit_code, result.output


def test_cli_rank_json_every_candidate_once_unsafe_last_with_flags(
    scoring_bundle_dir: Path, conversation_file: Path, tmp_path: Path
) -> None:
    given = [PHONE, SAFE[0], CLAIM, SAFE[1], SAFE[2], SAFE[0]]  # a duplicate, too
    candidates = tmp_path / "candidates.txt"
    # A BOM, blank lines and CRLF line ends are fine.
    candidates.write_bytes(("\ufeff" + "\r\n\r\n".join(given) + "\r\n  \r\n").encode("utf-8"))
    code, output = _rank(scoring_bundle_dir, conversation_file, candidates, "--json")
    assert code == 0, output
    body = json.loads(output)
    assert set(body) == {"ranked", "bundle"} and body["bundle"].startswith("bundle@")
    ranked = body["ranked"]
    assert Counter(r["text"] for r in ranked) == Counter(given), "every candidate exactly once"
    actions = set(default_taxonomy().action_ids)
    for r in ranked:
        assert set(r) == {"text", "score", "action", "reason", "flags"}
        assert r["action"] in actions and r["reason"]
    assert {r["text"] for r in ranked[-2:]} == {PHONE, CLAIM}, "unsafe ones last"
    assert all(r["flags"] and "排在最后" in r["reason"] for r in ranked[-2:])
    rules = {f["rule"] for r in ranked[-2:] for f in r["flags"]}
    # One meaning of ``rule`` everywhere: the kind of rule, as score reports give it.
    assert {"absolute_claim", "data_exposure"} <= rules, rules
    safe = ranked[:-2]
    assert all(not r["flags"] for r in safe)
    assert [r["score"] for r in safe] == sorted((r["score"] for r in safe), reverse=True)
    order = [r["text"] for r in safe]
    assert order.index(SAFE[0]) < order.index(SAFE[1]), "a price reply beats a bare thank-you"


def test_cli_rank_table_lists_the_replies_best_first(
    scoring_bundle_dir: Path, conversation_file: Path, tmp_path: Path
) -> None:
    # Short texts: the table is 80 columns wide here and folds long cells.
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("全网第一的好货\n好的，谢谢亲\n有券，满300减50\n", "utf-8")
    code, output = _rank(scoring_bundle_dir, conversation_file, candidates)
    assert code == 0, output
    assert "ranked by bundle" in output and "flags" in output
    positions = [output.index(t) for t in ("有券，满300减50", "好的，谢谢亲", "全网第一的好货")]
    assert positions == sorted(positions), output


def test_cli_rank_reads_the_text_column_of_a_csv(
    scoring_bundle_dir: Path, conversation_file: Path, tmp_path: Path
) -> None:
    candidates = tmp_path / "library.csv"
    candidates.write_text(
        f'\ufeffid,text\n1,"{SAFE[0]}"\n2,\n3,{SAFE[1]}\n', "utf-8"
    )  # an empty text is skipped, like a blank line
    code, output = _rank(scoring_bundle_dir, conversation_file, candidates, "--json")
    assert code == 0, output
    assert sorted(r["text"] for r in json.loads(output)["ranked"]) == sorted(SAFE[:2])


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.txt", None, "does not exist"),
        ("blank.txt", "\n   \n\n", "holds no candidate reply"),
        ("many.txt", "\n".join(f"亲，第{i}条回复" for i in range(501)), "at most 500"),
        ("latin1.txt", b"\xe9t\xe9\n", "as UTF-8"),
        ("no-text.csv", "reply\n你好\n", "lacks column(s) text"),
    ],
)
def test_cli_rank_refuses_bad_candidate_files(
    scoring_bundle_dir: Path,
    conversation_file: Path,
    tmp_path: Path,
    name: str,
    content: str | bytes | None,
    fragment: str,
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, "utf-8")
    code, output = _rank(scoring_bundle_dir, conversation_file, path)
    assert code == 2, output
    assert fragment in output and name in output, output


def test_cli_rank_refuses_a_bad_conversation(scoring_bundle_dir: Path, tmp_path: Path) -> None:
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("好的\n", "utf-8")
    code, output = _rank(scoring_bundle_dir, tmp_path / "nothing.json", candidates)
    assert code == 2 and "cannot read conversation file" in output, output
