"""train, classify and eval from the command line, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-models")
    for args in (
        [
            "generate",
            "-n",
            "500",
            "--seed",
            "21",
            "--phrases",
            "train",
            "-o",
            str(path / "train.jsonl"),
        ],
        [
            "generate",
            "-n",
            "200",
            "--seed",
            "22",
            "--phrases",
            "heldout",
            "-o",
            str(path / "test.jsonl"),
        ],
    ):
        assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(
        app, ["train", str(path / "train.jsonl"), "-o", str(path / "bundle"), "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    return path


def test_cli_train_writes_a_bundle_and_reports_validation(workdir: Path) -> None:
    manifest = json.loads((workdir / "bundle" / "manifest.json").read_text("utf-8"))
    assert manifest["seed"] == 4 and manifest["data_hash"]
    assert manifest["metrics"]["intent_macro_f1"] > 0.5


def test_cli_classify_json_one_line_per_text(workdir: Path) -> None:
    result = runner.invoke(
        app, ["classify", "--bundle", str(workdir / "bundle"), "--json", "这件有M码吗", "太贵了"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in lines] == ["这件有M码吗", "太贵了"]
    assert set(lines[0]) == {"text", "intent", "confidence", "actions"}
    assert set(lines[0]["actions"][0]) == {"label", "probability"}
    assert lines[1]["intent"] == "price_objection"


def test_cli_classify_reads_an_input_file(workdir: Path, tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("在吗\n\n好的谢谢\n", encoding="utf-8")
    result = runner.invoke(
        app, ["classify", "-b", str(workdir / "bundle"), "--input", str(texts), "--json"]
    )
    assert result.exit_code == 0
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["在吗", "好的谢谢"]


def test_cli_eval_writes_metrics_report_and_plots(workdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    csv = tmp_path / "independent.csv"
    csv.write_text(
        "text,label\n太贵了吧,price_objection\n有M码吗,stock\n谢谢,thanks_closing\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        [
            "eval",
            str(workdir / "test.jsonl"),
            "--bundle",
            str(workdir / "bundle"),
            "-o",
            str(out),
            "--intent-csv",
            str(csv),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert metrics["next_best_action"]["top1"] >= 0 and metrics["intent"]["n"] > 100
    assert metrics["context"]["independent"]["n"] == 3
    report = (out / "report.md").read_text("utf-8")
    assert "baseline" in report.lower() and "macro" in report.lower()
    for png in ("confusion_intent.png", "calibration_outcome.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["classify", "--bundle", "no/such/bundle", "x"], "no model bundle"),
        (["classify", "--bundle", "no/such/bundle"], "nothing to classify"),
        (
            ["train", "README.md", "-o", "x", "--classifier", "svm"],
            "--classifier must be linear or finetune",
        ),
        (
            ["train", "README.md", "-o", "x", "--embedder", "bert"],
            "--embedder must be offline or st:",
        ),
    ],
)
def test_cli_model_commands_explain_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_train_finetune_without_model_explains(workdir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            str(workdir / "train.jsonl"),
            "-o",
            str(tmp_path / "b"),
            "--classifier",
            "finetune",
        ],
    )
    assert result.exit_code == 2
    assert "needs a pretrained model" in result.output


def test_cli_train_bad_intent_csv_explains(workdir: Path, tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("sentence,intent\n你好,greeting\n", encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "train",
            str(workdir / "train.jsonl"),
            "-o",
            str(tmp_path / "b"),
            "--intent-csv",
            str(csv),
        ],
    )
    assert result.exit_code == 2
    assert "lacks column(s) label, text" in result.output


def test_cli_train_script_options(workdir: Path, tmp_path: Path) -> None:
    args = [
        "train",
        str(workdir / "train.jsonl"),
        "-o",
        str(tmp_path / "b"),
        "--index-kind",
        "hnsw",
        "--win-min-amount",
        "300",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text("utf-8"))
    assert (
        manifest["config"]["win_min_amount"] == 300 and manifest["config"]["index_kind"] == "hnsw"
    )
    index_config = json.loads(
        (tmp_path / "b" / "scripts" / "index" / "config.json").read_text("utf-8")
    )
    assert "hnsw" in json.dumps(index_config).lower()
    bad = runner.invoke(
        app,
        ["train", str(workdir / "train.jsonl"), "-o", str(tmp_path / "c"), "--index-kind", "lsh"],
    )
    assert bad.exit_code == 2 and "--index-kind must be" in bad.output


def test_cli_train_on_an_unlabelled_export_with_orders_reports_each_step(
    workdir: Path, tmp_path: Path
) -> None:
    """A brand's export: message rows with no labels and no outcomes, and an orders file."""
    rows = ["conversation_id,role,text,ts,customer_id"]
    for i in range(40):
        customer = f"u-{i}"
        day = 1 + i % 20
        stamp = f"2026-03-{day:02d}T10:0{{}}:00+08:00"
        rows += [
            f"e-{i},customer,申请价保怎么弄,{stamp.format(0)},{customer}",
            f"e-{i},guide,价保在订单详情页点申请，差价退回原账户,{stamp.format(1)},{customer}",
            f"e-{i},customer,好的谢谢,{stamp.format(2)},{customer}",
        ]
    export = tmp_path / "export.csv"
    export.write_text("\n".join(rows) + "\n", "utf-8")
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "customer_id,paid_at,amount\nu-0,2026-03-01T12:00:00+08:00,199\n"
        "u-unknown,2026-03-01T12:00:00+08:00,99\n",
        "utf-8",
    )
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "conversation_id,message_index,text,label\ne-0,0,申请价保怎么弄,after_sales\n", "utf-8"
    )
    out = tmp_path / "brand"
    result = runner.invoke(
        app,
        [
            "train",
            str(export),
            "-o",
            str(out),
            "--base",
            str(workdir / "train.jsonl"),
            "--orders",
            str(orders),
            "--intent-csv",
            str(labels),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "data used" in result.output and "pseudo-labels (intent)" in result.output
    training = json.loads((out / "manifest.json").read_text("utf-8"))["training"]
    assert training["conversations"] == 40 and training["base_conversations"] > 400
    assert training["labels_attached"] == {"intents": 1, "actions": 0}
    assert training["orders"]["orders"]["attributed"] == 1
    assert training["orders"]["orders"]["unattributed_by_reason"]["unknown_customer"] == 1
    assert training["outcomes"] == {"with_outcome": 40, "converted": 1}
    assert (out / "reply_match" / "towers.npz").is_file()
