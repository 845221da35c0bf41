"""copilot scripts import: a brand's written scripts (话术库) added to a bundle's library."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.cli import app
from models.bundle import load_bundle
from models.suggest import engine_for
from tests.builders import make_conversation

runner = CliRunner()

CLOSING = "感谢亲的支持，收到货有任何问题随时找我哦"
TRADE_IN = "亲，这款支持以旧换新，旧衣服折抵30元，今天下单还送运费险哦"
FABRIC = "亲，我们的T恤是新疆长绒棉，亲肤透气不起球"


@pytest.fixture
def bundle_dir(scoring_bundle_dir: Path, tmp_path: Path) -> Path:
    """A copy of the session's bundle that the test may change."""
    return Path(shutil.copytree(scoring_bundle_dir, tmp_path / "bundle"))


def _write_csv(path: Path, rows: list[list[str]], header: tuple[str, ...]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _import(csv_path: Path, bundle: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["scripts", "import", str(csv_path), "--bundle", str(bundle)])
    return result.exit_code, result.output


def test_scripts_import_adds_written_scripts_counts_duplicates_and_refuses_bad_rows(
    bundle_dir: Path, tmp_path: Path
) -> None:
    before = load_bundle(bundle_dir)
    assert before.scripts is not None
    mined = before.scripts.scripts[0].text
    n = len(before.scripts)
    library = _write_csv(
        tmp_path / "library.csv",
        [
            [TRADE_IN, "share_promotion", "price_inquiry", "羊绒大衣"],  # line 2
            [FABRIC, "answer_product_question", "product_inquiry", ""],  # line 3
            [mined, "recommend_product", "", ""],  # 4: already a mined script
            [TRADE_IN.replace("，", ",") + "！", "share_promotion", "", ""],  # 5: same as line 2
            ["亲，明天提醒您哦", "follow_up", "", ""],  # 6: unknown action
            ["亲，有优惠券哦", "share_promotion", "prise_inquiry", ""],  # 7: unknown intent
            ["", "close_sale", "", ""],  # 8: no text
            ["这款是全网第一的大衣", "recommend_product", "", ""],  # 9: breaks a rule
            ["亲，有问题打我电话13812345678", "build_trust", "", ""],  # 10: personal data
            [CLOSING, "polite_closing", "", ""],  # 11: no intent, no product
        ],
        ("text", "action", "intent", "product"),
    )
    code, output = _import(library, bundle_dir)
    assert code == 0, output
    assert "3 imported, 2 duplicates skipped, 5 refused" in output, output
    assert "line 6: unknown action label 'follow_up'" in output
    assert "did you mean 'follow_up_later'?" in output
    assert "line 7: unknown intent label 'prise_inquiry'" in output
    assert "line 8: empty text" in output and "line 9: breaks compliance rule" in output
    assert "line 10: breaks compliance rule(s) data_exposure" in output

    after = load_bundle(bundle_dir)  # saved in place
    assert after.scripts is not None and len(after.scripts) == n + 3
    trade_in, fabric, closing = after.scripts.scripts[-3:]
    assert (trade_in.text, trade_in.action, trade_in.intent) == (
        TRADE_IN,
        "share_promotion",
        "price_inquiry",
    )
    assert trade_in.source["kind"] == "written" and trade_in.source["product"] == "羊绒大衣"
    assert trade_in.source["file"] == "library.csv" and trade_in.source["line"] == 2
    assert (fabric.intent, fabric.source["kind"], fabric.source["product"]) == (
        "product_inquiry",
        "written",
        None,
    )
    assert (closing.intent, closing.action, closing.source["kind"]) == (
        "",
        "polite_closing",
        "written",
    )
    assert after.scripts.scripts[:n] == before.scripts.scripts, "mined scripts keep their ids"
    assert after.manifest["written_scripts"][0]["imported"] == 3
    assert after.manifest["id"] == before.manifest["id"]

    # Indexed under what a customer would ask: the engine ranks them among the best scripts.
    engine = engine_for(after)
    for question, script in (
        ("你们有以旧换新吗，旧衣服能折抵吗", trade_in),
        ("这件T恤什么面料的，透气吗", fabric),
    ):
        conversation = make_conversation("q", [("customer", question)])
        intent, actions = engine.signals(conversation)
        ranked = engine.rank(
            conversation, actions={a.label: a.confidence for a in actions}, intent=intent["label"]
        )
        # Among the best a guide could send here (after slots and the fact check).
        grounded = engine._ground(conversation, ranked)
        assert script.id in [r.script.id for r in grounded[:5]], question

    # Importing the same file again changes nothing.
    code, output = _import(library, bundle_dir)
    assert code == 0 and "0 imported, 5 duplicates skipped, 5 refused" in output, output
    assert "bundle unchanged" in output
    assert len(load_bundle(bundle_dir).scripts or []) == n + 3


def test_scripts_import_refuses_a_bundle_without_scripts(bundle_dir: Path, tmp_path: Path) -> None:
    shutil.rmtree(bundle_dir / "scripts")
    library = _write_csv(
        tmp_path / "l.csv", [[FABRIC, "answer_product_question"]], ("text", "action")
    )
    code, output = _import(library, bundle_dir)
    assert code == 2 and "has no script library" in output and "copilot train" in output, output


@pytest.mark.parametrize(
    ("header", "rows", "fragment"),
    [
        (("text", "intent"), [[FABRIC, "product_inquiry"]], "lacks column(s) action"),
        (("text", "action"), [], "has a header but no rows"),
    ],
)
def test_scripts_import_refuses_a_bad_file(
    bundle_dir: Path,
    tmp_path: Path,
    header: tuple[str, ...],
    rows: list[list[str]],
    fragment: str,
) -> None:
    manifest = (bundle_dir / "manifest.json").read_text("utf-8")
    code, output = _import(_write_csv(tmp_path / "bad.csv", rows, header), bundle_dir)
    assert code == 2 and fragment in output, output
    assert (bundle_dir / "manifest.json").read_text("utf-8") == manifest
    assert "written_scripts" not in json.loads(manifest)
