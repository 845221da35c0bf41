"""``--catalog`` and ``--promotions`` on the command line: train stores them in the bundle
(catalog.json) and reports what it read; suggest uses them for one run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from copilot.catalog import Catalog
from copilot.cli import app
from tests.builders import conversation_dict

runner = CliRunner()

PRODUCTS = "商品名称,category,price,attributes\n双面羊绒大衣,大衣,¥1299,尺码:S/M/L\n坏,x,abc,\n"
PROMOTIONS = (
    "title,kind,detail,starts,ends,products\n满300减50,coupon,全店,2026-03-01,2026-03-31,\n"
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small bundle trained with a catalogue and promotions (about 15 s)."""
    path = tmp_path_factory.mktemp("cli-catalog")
    (path / "products.csv").write_text(PRODUCTS, "utf-8")
    (path / "promotions.csv").write_text(PROMOTIONS, "utf-8")
    generated = runner.invoke(
        app, ["generate", "-n", "200", "--seed", "3", "-o", str(path / "train.jsonl")]
    )
    assert generated.exit_code == 0, generated.output
    args = ["train", str(path / "train.jsonl"), "-o", str(path / "bundle"), "--base", "none"]
    args += ["--no-reply-model", "--no-self-training"]
    args += ["--catalog", str(path / "products.csv"), "--promotions", str(path / "promotions.csv")]
    args += ["--catalog-column", "商品名称=name"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (path / "train.out").write_text(result.output, "utf-8")
    return path


def test_cli_train_stores_the_catalogue_in_the_bundle(workdir: Path) -> None:
    catalog = Catalog.load(workdir / "bundle" / "catalog.json")
    assert list(catalog.products) == ["双面羊绒大衣"]
    assert catalog.products["双面羊绒大衣"].price == 1299.0
    assert [p.title for p in catalog.promotions] == ["满300减50"]
    training = json.loads((workdir / "bundle" / "manifest.json").read_text("utf-8"))["training"]
    files = training["catalog_files"]
    assert files["products"]["read"] == 1 and files["products"]["quarantined"] == 1
    assert "price: 'abc' is not a number" in files["products"]["quarantine"][0]["error"]
    assert files["promotions"] == {
        "file": str(workdir / "promotions.csv"),
        "read": 1,
        "quarantined": 0,
        "quarantine": [],
    }
    output = (workdir / "train.out").read_text("utf-8")
    assert "catalogue" in output and "1 product from products.csv" in output
    assert "products.csv:3" in output  # the quarantined row is shown


def test_cli_train_refuses_a_catalogue_without_names(workdir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "products.csv"
    bad.write_text("商品,价格\n大衣,1\n", "utf-8")
    args = ["train", str(workdir / "train.jsonl"), "-o", str(tmp_path / "b"), "--catalog", str(bad)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "lacks the column 'name'" in result.output and "expected columns" in result.output
    assert not (tmp_path / "b").exists()  # refused before training


def test_cli_suggest_uses_the_files_for_this_run(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.suggest import SuggestionEngine

    given: list[Any] = []
    original = SuggestionEngine.set_catalog

    def spy(self: SuggestionEngine, catalog: Catalog | None) -> None:
        given.append(catalog)
        original(self, catalog)

    monkeypatch.setattr(SuggestionEngine, "set_catalog", spy)
    conversation = tmp_path / "conversation.json"
    conversation.write_text(json.dumps(conversation_dict("c-1", [("customer", "大衣有M码吗")])))
    promotions = tmp_path / "promotions.jsonl"
    promotions.write_text('{"title": "会员日", "kind": "折扣"}\n', "utf-8")
    args = ["suggest", str(conversation), "--bundle", str(workdir / "bundle"), "--json"]
    result = runner.invoke(app, [*args, "--promotions", str(promotions)])
    assert result.exit_code == 0, result.output
    (catalog,) = given
    assert list(catalog.products) == ["双面羊绒大衣"]  # the bundle's products stay
    assert [(p.title, p.kind) for p in catalog.promotions] == [("会员日", "discount")]
    assert "suggestions" in json.loads(result.stdout)
