"""Model commands: train, classify, eval."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from copilot.cli._catalog import (
    CatalogColumnsOpt,
    CatalogOpt,
    PromotionsOpt,
    describe,
    read_catalog_files,
)
from copilot.cli._common import (
    AttributionHoursOpt,
    ColumnsOpt,
    FormatOpt,
    OrderColumnsOpt,
    OrdersOpt,
    RoleOpt,
    StaffOpt,
    app,
    console,
    csv_rows,
    err_console,
    handle_errors,
    order_columns,
    reader_options,
)
from copilot.errors import InputError
from copilot.io.labels import LabelRow, attach_labels

BundleOpt = Annotated[
    Path, typer.Option("--bundle", "-b", help="Model bundle directory (from `copilot train`).")
]
IntentCsvOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--intent-csv",
        help="CSV with columns text,label of customer messages and their intents; repeatable.",
    ),
]


def read_intent_csv(path: Path) -> list[tuple[str, str]]:
    """``(text, label)`` rows of a CSV with a header holding ``text`` and ``label`` columns.

    Raises:
        InputError: a missing file, missing columns, or a row without text or label.
    """
    return [(row.text, row.label) for row in read_label_csv(path, "intent CSV")]


def read_label_csv(path: Path, what: str) -> list[LabelRow]:
    """Rows of a label CSV: ``text,label`` and optionally ``conversation_id,message_index``.

    Raises:
        InputError: a missing file, missing columns, a row without text or label, or a
            message_index that is not a whole number.
    """
    rows = []
    for line, row in csv_rows(path, ("text", "label"), what, ("conversation_id", "message_index")):
        if not row["text"] or not row["label"]:
            raise InputError(f"{what} {str(path)!r} line {line}: empty text or label")
        index = row["message_index"]
        if index and not index.isdigit():
            raise InputError(
                f"{what} {str(path)!r} line {line}: message_index must be a whole number "
                f"counting the conversation's messages from 0, got {index!r}"
            )
        rows.append(
            LabelRow(
                row["text"], row["label"], row["conversation_id"], int(index) if index else None
            )
        )
    return rows


def _load_conversations(
    paths: list[Path], fmt: str, options: dict[str, Any]
) -> tuple[list[Any], int]:
    from copilot.io import Quarantined, open_conversations

    conversations, quarantined = [], 0
    for path in paths:
        reader = open_conversations(path, format=fmt, **options)
        for item in reader:
            if isinstance(item, Quarantined):
                quarantined += 1
                if quarantined <= 5:
                    err_console.print(
                        f"[yellow]skipped[/] {path}:{item.line}: {item.error}", highlight=False
                    )
            else:
                conversations.append(item)
    if quarantined:
        err_console.print(
            f"[yellow]{quarantined:,} unreadable records skipped (run `copilot validate` for all reasons)[/]"
        )
    return conversations, quarantined


@app.command()
def train(
    data: Annotated[
        list[Path],
        typer.Argument(help="Training conversations (any input format; labels full or partial)."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Bundle directory to write.")],
    taxonomy: Annotated[
        Path | None,
        typer.Option("--taxonomy", help="A brand's own taxonomy YAML (default: built-in)."),
    ] = None,
    embedder: Annotated[
        str,
        typer.Option(
            "--embedder", help="offline, or st:<path-or-hub-name> (sentence-transformers)."
        ),
    ] = "offline",
    classifier: Annotated[
        str, typer.Option("--classifier", help="linear (fast default) or finetune (transformer).")
    ] = "linear",
    base_model: Annotated[
        str | None,
        typer.Option(
            "--base-model", help="Pretrained transformer directory for --classifier finetune."
        ),
    ] = None,
    intent_csv: IntentCsvOpt = None,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", help="Seed of every random choice: same data and seed, same bundle."
        ),
    ] = 0,
    min_examples: Annotated[
        int, typer.Option("--min-examples", min=1, help="Fewest examples a label may have.")
    ] = 5,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Fine-tuning epochs (--classifier finetune).")
    ] = 3,
    win_min_amount: Annotated[
        float | None,
        typer.Option(
            "--win-min-amount",
            help="Scripts: only conversions with at least this order amount count as wins.",
        ),
    ] = None,
    index_kind: Annotated[
        str,
        typer.Option(
            "--index-kind",
            help="Script index: auto (exact below 20k contexts, HNSW above), flat, hnsw, ivf.",
        ),
    ] = "auto",
    no_scripts: Annotated[
        bool, typer.Option("--no-scripts", help="Skip mining winning scripts.")
    ] = False,
    base: Annotated[
        str,
        typer.Option(
            "--base",
            help="Labelled corpus to learn on top of: auto (the built-in synthetic corpus when "
            "the data have unlabelled messages), none, or a file of labelled conversations.",
        ),
    ] = "auto",
    act_csv: Annotated[
        list[Path] | None,
        typer.Option(
            "--act-csv",
            help="CSV with columns text,label of guide replies and the action each performs; "
            "repeatable.",
        ),
    ] = None,
    self_training: Annotated[
        bool,
        typer.Option(
            "--self-training/--no-self-training",
            help="Learn from the confident predictions on the data's unlabelled messages.",
        ),
    ] = True,
    co_train_acts: Annotated[
        bool,
        typer.Option(
            "--co-train-acts", help="Co-train the act classifier too (off: see the README)."
        ),
    ] = False,
    label_shift: Annotated[
        bool,
        typer.Option(
            "--label-shift",
            help="Re-estimate the intents' class priors on the unlabelled messages (EM) and "
            "adapt to them (off: see the README).",
        ),
    ] = False,
    no_reply_model: Annotated[
        bool,
        typer.Option("--no-reply-model", help="Skip learning reply matching from the logs."),
    ] = False,
    orders: OrdersOpt = None,
    attribution_hours: AttributionHoursOpt = 72.0,
    order_column: OrderColumnsOpt = None,
    catalog: CatalogOpt = None,
    promotions: PromotionsOpt = None,
    catalog_column: CatalogColumnsOpt = None,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    role_map: RoleOpt = None,
    staff: StaffOpt = None,
) -> None:
    """Train a model bundle from a brand's logs: embedder, intent and act classifiers (self-trained
    on unlabelled messages), next-best action, outcome, scripts and reply matching.

    The logs need no labels and no outcomes: unlabelled logs are learned on top of the built-in
    labelled synthetic corpus (see --base); --orders turns payments into outcomes; a brand's own
    labels (in the logs, --intent-csv, --act-csv) outweigh the base's. --catalog and
    --promotions store the brand's products and promotions in the bundle (catalog.json).

    Example: copilot train export.csv --orders orders.csv --catalog products.csv -o bundles/brand
    """
    from copilot.taxonomy import default_taxonomy, load_taxonomy
    from models.train import TrainConfig, default_base, file_digest, needs_base, train_bundle

    with handle_errors():
        if classifier not in ("linear", "finetune"):
            raise InputError(f"--classifier must be linear or finetune, got {classifier!r}")
        if index_kind not in ("auto", "flat", "hnsw", "ivf"):
            raise InputError(f"--index-kind must be auto, flat, hnsw or ivf, got {index_kind!r}")
        if not (embedder == "offline" or embedder.startswith("st:")):
            raise InputError(f"--embedder must be offline or st:<path-or-name>, got {embedder!r}")
        tax = load_taxonomy(taxonomy) if taxonomy else default_taxonomy()
        intent_rows = [r for path in intent_csv or [] for r in read_label_csv(path, "intent CSV")]
        act_rows = [r for path in act_csv or [] for r in read_label_csv(path, "act CSV")]
        catalog_files = read_catalog_files(catalog, promotions, catalog_column)
        options = reader_options(columns, role_map, staff, 12.0, 20_000)
        with console.status("reading conversations"):
            conversations, _ = _load_conversations(data, fmt, options)
        if not conversations and not intent_rows:
            raise InputError(
                f"no readable conversations in {', '.join(map(str, data))}: the training data "
                "must hold conversations (JSONL, or message rows with conversation_id, role, "
                "text; see `copilot validate`)"
            )
        conversations, extra, n_intent = attach_labels(conversations, intent_rows, "customer")
        conversations, extra_acts, n_act = attach_labels(conversations, act_rows, "guide")
        order_summary = None
        if orders is not None:
            from copilot.orders import apply_orders

            conversations, order_summary = apply_orders(
                conversations, orders, hours=attribution_hours, columns=order_columns(order_column)
            )
        base_conversations: list[Any] = []
        if base == "auto" and needs_base(conversations):
            with console.status("generating the labelled base"):
                base_conversations = default_base(seed=seed)
        elif base not in ("auto", "none"):
            base_conversations, _ = _load_conversations([Path(base)], "auto", {})
            if not base_conversations:
                raise InputError(f"--base {base!r} holds no readable conversations")
        config = TrainConfig(
            embedder=embedder,
            classifier=classifier,  # type: ignore[arg-type]
            base_model=base_model,
            seed=seed,
            min_examples=min_examples,
            epochs=epochs,
            scripts=not no_scripts,
            win_min_amount=win_min_amount,
            index_kind=index_kind,
            self_training=self_training,
            co_train_acts=co_train_acts,
            label_shift=label_shift,
            reply_model=not no_reply_model,
        )
        started = time.perf_counter()
        with console.status("training") as status:

            def step(name: str) -> None:
                status.update(f"{name} ({time.perf_counter() - started:.0f}s)")
                err_console.print(
                    f"[dim]{time.perf_counter() - started:6.1f}s[/] {name}", highlight=False
                )

            bundle = train_bundle(
                conversations,
                taxonomy=tax,
                config=config,
                base=base_conversations,
                extra_intents=extra,
                extra_actions=extra_acts,
                data_hash=file_digest(
                    [
                        *data,
                        *(intent_csv or []),
                        *(act_csv or []),
                        *([orders] if orders else []),
                        *catalog_files.paths(),
                    ]
                ),
                name=output.name,
                progress=step,
                # Mining turns the catalogue's products into slots; the bundle keeps it
                # (catalog.json) with the product words learned from the logs.
                catalog=catalog_files.apply(None) if catalog_files.given else None,
            )
            training = bundle.manifest["training"]
            training["base"] = base if base_conversations else "none"
            training["labels_attached"] = {"intents": n_intent, "actions": n_act}
            if order_summary is not None:
                training["orders"] = order_summary
            if catalog_files.given:
                training["catalog_files"] = catalog_files.summary
            status.update("saving")
            bundle.save(output)
        _print_training(bundle, output, time.perf_counter() - started)


def _print_training(bundle: Any, output: Path, seconds: float) -> None:
    m = bundle.manifest
    console.print(
        f"bundle [bold]{bundle.name}[/] written to {output} in {seconds:.1f}s "
        f"({m['training']['conversations']:,} training conversations)",
        highlight=False,
    )
    console.print(_data_table(m["training"]))
    metrics = m.get("metrics")
    if not metrics:
        console.print(
            "[yellow]too few conversations for a validation split; run `copilot eval` on other data[/]"
        )
        return
    table = Table(title=f"validation: {metrics['split']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if key != "split" and value is not None:
            table.add_row(key, f"{value:.4f}")
    console.print(table)


def _data_table(t: dict[str, Any]) -> Table:
    """What each step of training used: the summary a brand reads after `copilot train`."""
    import numpy as np

    table = Table(title="data used")
    table.add_column("step")
    table.add_column("used", overflow="fold")
    table.add_row(
        "logs", f"{t['conversations']:,} conversations, {t.get('messages', 0):,} messages"
    )
    table.add_row(
        "labelled base",
        f"{t['base_conversations']:,} conversations ({t.get('base', 'none')})"
        if t.get("base_conversations")
        else "none",
    )
    attached = t.get("labels_attached") or {}
    table.add_row(
        "brand labels",
        f"{attached.get('intents', 0):,} intent and {attached.get('actions', 0):,} action rows "
        f"attached to their messages; {t.get('extra_intent_rows', 0):,} intent and "
        f"{t.get('extra_action_rows', 0):,} action rows as bare texts",
    )
    for kind, report in (t.get("self_training") or {}).items():
        if report.get("skipped"):
            text = f"skipped ({report['skipped']})"
        else:
            labels = ", ".join(f"{k} {v}" for k, v in report.get("by_label", {}).items())
            text = (
                f"{report['pseudo_labels']:,} of {report['unlabelled']:,} unlabelled messages "
                f"(both views agreed on {report.get('agreed', 0):,}; "
                f"p >= {report['threshold']}, at most {report['max_share']:.0%} per label, "
                f"{report.get('capped', 0):,} capped, weight {report['weight']}): {labels}"
            )
        table.add_row(f"pseudo-labels ({kind})", text)
        shift = report.get("label_shift") or {}
        if shift.get("factor"):
            moved = sorted(shift["factor"].items(), key=lambda kv: -abs(np.log(kv[1])))[:4]
            table.add_row(
                f"label shift ({kind})",
                f"class priors re-estimated on {shift['messages']:,} unlabelled messages; "
                + ", ".join(f"{k} x{v:.2f}" for k, v in moved),
            )
    orders = t.get("orders")
    if orders:
        o, c = orders["orders"], orders["conversations"]
        table.add_row(
            "orders",
            f"{o['attributed']:,} of {o['total']:,} orders attributed; {c['converted']:,} "
            f"conversations converted, {c['not_converted']:,} not; {c['no_customer']:,} without "
            f"customer, {c['no_time']:,} without time; unattributed: "
            + (
                ", ".join(f"{k} {v}" for k, v in o["unattributed_by_reason"].items() if v) or "none"
            ),
        )
    if t.get("catalog_files"):
        table.add_row("catalogue", describe(t["catalog_files"]))
    outcomes = t.get("outcomes") or {}
    table.add_row(
        "outcomes",
        f"{outcomes.get('with_outcome', 0):,} conversations with an outcome, "
        f"{outcomes.get('converted', 0):,} converted",
    )
    scripts = t.get("scripts")
    if scripts:
        table.add_row(
            "scripts",
            f"{scripts.get('scripts', 0):,} scripts from {scripts.get('kept_candidates', 0):,} replies"
            + (f" (ranked by {scripts['basis']})" if scripts.get("basis") else ""),
        )
    reply = t.get("reply_matching")
    if reply:
        table.add_row(
            "reply matching",
            f"skipped: {reply['skipped']}"
            if reply.get("skipped")
            else f"{reply['pairs']:,} (context, reply) pairs from {reply['source']}",
        )
    return table


@app.command()
def classify(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Customer messages to classify.")
    ] = None,
    bundle_dir: BundleOpt = Path("bundles/default"),
    input_file: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="A file with one message per line ('-' for stdin)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line per text.")
    ] = False,
    k: Annotated[int, typer.Option("-k", min=1, help="How many next-best actions to list.")] = 3,
) -> None:
    """Intent and next-best actions for customer messages.

    Example: copilot classify --bundle bundles/default "这件有M码吗"
    """
    from models.bundle import load_bundle

    with handle_errors():
        items = list(texts or [])
        if input_file is not None:
            try:
                lines = (
                    sys.stdin.read()
                    if str(input_file) == "-"
                    else input_file.read_text(encoding="utf-8")
                )
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read {str(input_file)!r}: {exc}") from exc
            items += [line for line in lines.splitlines() if line.strip()]
        if not items:
            raise InputError("nothing to classify: pass texts as arguments or --input FILE")
        bundle = load_bundle(bundle_dir)
        results = bundle.classify(items, k=k)
        if as_json:
            for result in results:
                print(json.dumps(result, ensure_ascii=False))
            return
        name = bundle.taxonomy.name_of
        table = Table(title=f"bundle {bundle.name}")
        table.add_column("text")
        table.add_column("intent")
        table.add_column("confidence", justify="right")
        table.add_column("next-best actions")
        for r in results:
            actions = ", ".join(f"{name(a['label'])} {a['probability']:.0%}" for a in r["actions"])
            table.add_row(
                r["text"], f"{r['intent']} {name(r['intent'])}", f"{r['confidence']:.2f}", actions
            )
        console.print(table)


@app.command(name="eval")
def evaluate(
    data: Annotated[
        list[Path],
        typer.Argument(
            help="Labelled conversations to evaluate on (use another seed than training)."
        ),
    ],
    bundle_dir: BundleOpt = Path("bundles/default"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Report directory.")] = Path(
        "reports"
    ),
    intent_csv: IntentCsvOpt = None,
    fmt: FormatOpt = "auto",
) -> None:
    """Evaluate a bundle: metrics.json, report.md, confusion matrices and a calibration plot.

    Example: copilot eval data/test.jsonl --bundle bundles/default -o reports/
    """
    from eval.report import write_report
    from models.bundle import load_bundle
    from models.evaluate import classification_metrics, evaluate_bundle, retrieval_metrics

    with handle_errors():
        bundle = load_bundle(bundle_dir)
        with console.status("reading conversations"):
            conversations, quarantined = _load_conversations(
                data, fmt, reader_options(None, None, None, 12.0, 20_000)
            )
        labelled = [c for c in conversations if c.labels is not None]
        if not labelled:
            raise InputError(
                "the evaluation data has no labelled conversations; eval needs gold labels"
            )
        with console.status(f"evaluating on {len(labelled):,} conversations"):
            metrics = evaluate_bundle(bundle, labelled)
        if bundle.scripts is not None:
            with console.status("evaluating script retrieval"):
                metrics["retrieval"] = retrieval_metrics(bundle, labelled)
        extra: dict[str, Any] = {
            "data": [str(p) for p in data],
            "quarantined_records": quarantined,
            "synthetic_conversations": sum(bool(c.meta.get("synthetic")) for c in labelled),
            "phrase_splits": sorted(
                {str(c.meta.get("phrase_split")) for c in labelled if "phrase_split" in c.meta}
            ),
            "seeds": sorted({c.meta["seed"] for c in labelled if "seed" in c.meta}),
        }
        if intent_csv:
            rows = [row for path in intent_csv for row in read_intent_csv(path)]
            pred = [p.label for p in bundle.predict_intents([t for t, _ in rows])]
            extra["independent"] = {
                "source": [str(p) for p in intent_csv],
                **classification_metrics(
                    [label for _, label in rows], pred, bundle.taxonomy.intent_ids
                ),
            }
        names = {
            label.id: label.name for label in (*bundle.taxonomy.intents, *bundle.taxonomy.actions)
        }
        files = write_report(
            metrics,
            output,
            title="Model evaluation",
            bundle_name=bundle.name,
            data_name=", ".join(str(p) for p in data),
            extra=extra,
            names=names,
        )
        _print_eval(metrics, extra)
        console.print(f"report: {files.get('report.md', output)}")


def _print_eval(metrics: dict[str, Any], extra: dict[str, Any]) -> None:
    nba = metrics["next_best_action"]
    table = Table(title="evaluation")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("baseline", justify="right")
    rows = [
        ("intent accuracy", metrics["intent"].get("accuracy"), None),
        ("intent macro-F1", metrics["intent"].get("macro_f1"), None),
        ("act macro-F1", metrics["act"].get("macro_f1"), None),
        ("next-best action top-1", nba.get("top1"), nba.get("baseline_top1")),
        ("next-best action top-3", nba.get("top3"), nba.get("baseline_top3")),
        ("outcome AUC", metrics["outcome"].get("auc"), None),
    ]
    if "independent" in extra:
        rows.append(("independent intents macro-F1", extra["independent"].get("macro_f1"), None))
    for label, value, base in rows:
        table.add_row(
            label, "-" if value is None else f"{value:.4f}", "" if base is None else f"{base:.4f}"
        )
    console.print(table)
    retrieval = metrics.get("retrieval") or {}
    if retrieval.get("methods"):
        columns = ("recall@1", "recall@3", "recall@10", "mrr", "R10@1", "R10@2", "R10@5")
        table = Table(
            title=f"script retrieval ({retrieval['evaluated']} turns, coverage {retrieval['coverage']:.0%})"
        )
        table.add_column("method")
        for col in columns:
            table.add_column(col, justify="right")
        for method, row in retrieval["methods"].items():
            table.add_row(method, *("-" if row[c] is None else f"{row[c]:.3f}" for c in columns))
        console.print(table)


def read_conversation(path: Path) -> Any:
    """One conversation from a JSON file (or ``-`` for stdin), validated.

    Raises:
        InputError: unreadable file, invalid JSON, or an invalid conversation (naming the field).
    """
    from pydantic import ValidationError

    from copilot.schema import Conversation, format_validation_error

    try:
        raw = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read conversation file {str(path)!r}: {exc}") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    if isinstance(data, dict) and "conversation" in data and "messages" not in data:
        data = data["conversation"]  # the body of POST /v1/suggest works too
    try:
        return Conversation.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            f"{path}: not a valid conversation: {format_validation_error(exc)}"
        ) from exc


@app.command()
def suggest(
    conversation_file: Annotated[
        Path, typer.Argument(help="A conversation as JSON (the canonical shape; '-' for stdin).")
    ],
    bundle_dir: BundleOpt = Path("bundles/default"),
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=20, help="How many suggestions.")] = 3,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the POST /v1/suggest response object.")
    ] = False,
    catalog: CatalogOpt = None,
    promotions: PromotionsOpt = None,
    catalog_column: CatalogColumnsOpt = None,
) -> None:
    """Suggestions for the guide's next reply, mined from conversations that converted.

    --catalog and --promotions replace the bundle's products and promotions for this run.

    Example: copilot suggest --bundle bundles/default conversation.json --k 3
    """
    from models.runtime import load_engine

    with handle_errors():
        conversation = read_conversation(conversation_file)
        catalog_files = read_catalog_files(catalog, promotions, catalog_column)
        engine = load_engine(bundle_dir)
        if catalog_files.given:
            engine.set_catalog(catalog_files.apply(engine.bundle.catalog))
        result = engine.suggest(conversation, k=k)
        if as_json:
            print(json.dumps(result, ensure_ascii=False))
            return
        name = engine.bundle.taxonomy.name_of
        intent = result["intent"]
        if intent["label"]:
            console.print(
                f"intent: [bold]{name(intent['label'])}[/] ({intent['label']}, {intent['confidence']:.2f})"
            )
        console.print(
            "next-best actions: "
            + ", ".join(f"{name(a['label'])} {a['probability']:.0%}" for a in result["actions"])
        )
        if not result["suggestions"]:
            console.print("[yellow]no suggestion fits this conversation[/]")
        for i, s in enumerate(result["suggestions"], 1):
            console.print(
                f"\n[bold]{i}. {name(s['action'])}[/] (score {s['score']:.2f}, lift {s['lift']:.2f}, n={s['n']})",
                highlight=False,
            )
            console.print(s["text"], highlight=False)
            if s.get("needs_edit"):
                console.print(
                    f"[yellow]需编辑：请补全 {'、'.join(s['slots'])}[/]", highlight=False
                )
            console.print(
                f"[dim]{s['reason']} · 来源 {_source(s['source'])}[/]",
                highlight=False,
            )
        for flag in result["flags"]:
            console.print(
                f"[red]compliance[/] message {flag['message_index']}: {flag['rule']} 「{flag['excerpt']}」",
                highlight=False,
            )


def _source(source: dict[str, Any]) -> str:
    """Where a suggestion comes from: the script library file and line, or the mined message."""
    if source.get("kind") == "written":
        return f"话术库 {source.get('file')}#{source.get('line')}"
    return f"{source.get('conversation_id')}#{source.get('message_index')}"
