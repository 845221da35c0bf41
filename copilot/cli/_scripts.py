"""``copilot scripts import``: add a brand's written scripts (话术库) to a bundle's script library.

Headquarters write scripts the logs may never have used. Each CSV row (``text``, ``action``,
optional ``intent`` and ``product``) becomes a script marked as written: its source is
``{"kind": "written", "product", "file", "line"}`` (its conversation ids null). It has no uses
yet, so its lift is neutral (1) and guides' feedback moves it. Retraining mines a new library:
import the file again into the new bundle.

A mined script is found by the contexts it answered; a written one has none, so it is indexed
under what a customer asking for it would say (see :func:`written_contexts`): the script's own
text (a customer asks about what the reply speaks of: 以旧换新, 运费险), the product when given,
and the intent's definition in the taxonomy when given (询问价格、折扣、优惠券…). Pins, bans and
feedback stored by script id stay valid: scripts are only appended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from copilot.cli._common import app, console, csv_rows, err_console, handle_errors
from copilot.cli._models import BundleOpt
from copilot.errors import BundleError, InputError

if TYPE_CHECKING:
    from copilot.compliance import ComplianceChecker
    from copilot.taxonomy import Taxonomy
    from copilot.text import TextPipeline
    from models.bundle import Bundle
    from models.embedders import Embedder
    from models.scripts import ScriptLibrary

__all__ = ["ImportReport", "import_written_scripts", "written_contexts"]

scripts_app = typer.Typer(
    help="A bundle's script library: import the scripts headquarters wrote (话术库).",
    no_args_is_help=True,
)
app.add_typer(scripts_app, name="scripts")

_COLUMNS = ("text", "action")
_OPTIONAL = ("intent", "product")


@dataclass
class ImportReport:
    """What an import did: scripts added, rows skipped as duplicates, rows refused and why."""

    imported: list[int] = field(default_factory=list)
    """Ids of the new scripts."""
    duplicates: list[int] = field(default_factory=list)
    """Line numbers of rows whose text is already a script."""
    refused: list[tuple[int, str]] = field(default_factory=list)
    """``(line number, why)`` of rows that were not imported."""


def written_contexts(
    text: str, intent: str | None, product: str | None, taxonomy: Taxonomy
) -> list[str]:
    """The contexts a written script is indexed under (it has no conversation of its own).

    The reply's own text, so a customer who asks about what it speaks of finds it; the product
    when given (``"羊绒大衣"``); and the intent's Chinese name and definition when given, which
    read as what a customer of that intent asks (``"价格优惠：询问价格、折扣、优惠券…"``).
    """
    contexts = [text]
    if product:
        contexts.append(product)
    if intent:
        label = next(i for i in taxonomy.intents if i.id == intent)
        contexts.append(f"{label.name}：{label.definition}" if label.definition else label.name)
    return contexts


def import_written_scripts(
    library: ScriptLibrary,
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    taxonomy: Taxonomy,
    embedder: Embedder,
    tokenize: Callable[[str], Sequence[str]],
    checker: ComplianceChecker,
    pipeline: TextPipeline,
    file: str,
) -> ImportReport:
    """Add each row as a written script to ``library`` (in place); bad rows are refused, not raised.

    A row is refused when its text is empty, its action (or intent) is not a taxonomy label, or
    its text breaks a compliance rule or holds personal data (it could never be served). A row
    whose text is already a script (case, width and punctuation aside) is a duplicate.

    Args:
        library: the bundle's script library.
        rows: ``(line number, {"text", "action", "intent", "product"})``.
        taxonomy: the bundle's labels.
        embedder: the bundle's embedder (the library's vectors).
        tokenize: tokens of a context for BM25 (as the library was mined with).
        checker: compliance rules.
        pipeline: finds personal data.
        file: the CSV's name, recorded in each script's source.

    Returns:
        The :class:`ImportReport`.
    """
    report = ImportReport()
    for line, row in rows:
        text, action = row["text"], row["action"]
        intent, product = row.get("intent") or None, row.get("product") or None
        try:
            if not text:
                raise InputError("empty text; every script needs its reply text")
            if not action:
                raise InputError(
                    "empty action; give the guide action the script performs "
                    f"(one of {', '.join(taxonomy.action_ids)})"
                )
            taxonomy.check("action", action)
            if intent:
                taxonomy.check("intent", intent)
            _check_safe(text, checker, pipeline)
        except InputError as exc:
            report.refused.append((line, str(exc)))
            continue
        if library.assign(text, None) is not None:
            report.duplicates.append(line)
            continue
        script = library.add_script(
            text,
            action,
            intent or "",
            written_contexts(text, intent, product, taxonomy),
            embedder,
            tokenize,
            source={
                "kind": "written",
                # No conversation of its own: readers of a mined script's source keep working.
                "conversation_id": None,
                "message_index": None,
                "product": product,
                "file": file,
                "line": line,
            },
        )
        report.imported.append(script.id)
    return report


def _check_safe(text: str, checker: ComplianceChecker, pipeline: TextPipeline) -> None:
    """Refuse a script the engine would never serve: a compliance hit or raw personal data."""
    hits = checker.check(text)
    if hits:
        rules = "; ".join(f"{h.rule_id} 「{h.excerpt}」" for h in hits)
        raise InputError(f"breaks compliance rule(s) {rules}; reword the script")
    masked = pipeline.mask(text)[1]
    if masked:
        raise InputError(
            f"holds personal data ({', '.join(sorted(masked))}); scripts are sent to many "
            "customers, so remove it"
        )


@scripts_app.command("import")
def import_(
    library_csv: Annotated[
        Path,
        typer.Argument(
            help="CSV with columns text, action (a taxonomy action) and optionally intent, product."
        ),
    ],
    bundle_dir: BundleOpt = Path("bundles/default"),
) -> None:
    """Add written scripts to a bundle's script library; the bundle is saved back in place.

    Rows whose text is already a script are skipped; bad rows are listed with their line
    numbers. A running server picks the scripts up on `POST /v1/admin/reload`.

    Example: copilot scripts import library.csv --bundle bundles/default
    """
    from copilot.compliance import default_checker
    from copilot.text import default_pipeline
    from models.bundle import load_bundle

    with handle_errors():
        rows = list(csv_rows(library_csv, _COLUMNS, "script library CSV", _OPTIONAL))
        if not rows:
            raise InputError(
                f"script library CSV {str(library_csv)!r} has a header but no rows; add one "
                "script per row (text, action, and optionally intent, product)"
            )
        bundle = load_bundle(bundle_dir)
        library = bundle.scripts
        if library is None:
            raise BundleError(
                f"the bundle {bundle.name} at {str(bundle_dir)!r} has no script library to add "
                "to; train it with scripts (`copilot train` mines them unless --no-scripts)"
            )
        pipeline = default_pipeline()
        report = import_written_scripts(
            library,
            rows,
            taxonomy=bundle.taxonomy,
            embedder=bundle.embedder,
            tokenize=bundle.embedder.tokens,  # as the library was mined (models.train)
            checker=default_checker(),
            pipeline=pipeline,
            file=library_csv.name,
        )
        for line, why in report.refused:
            err_console.print(f"[yellow]refused[/] line {line}: {why}", highlight=False)
        if report.imported:
            _record(bundle, library_csv.name, report)
            bundle.save(bundle_dir)
        console.print(
            f"{len(report.imported):,} imported, {len(report.duplicates):,} duplicates skipped, "
            f"{len(report.refused):,} refused; the library holds {len(library):,} scripts"
            + ("" if report.imported else " (bundle unchanged)"),
            highlight=False,
        )


def _record(bundle: Bundle, file: str, report: ImportReport) -> None:
    """Note the import in the manifest, so the bundle says where its written scripts came from."""
    entry: dict[str, Any] = {
        "file": file,
        "imported": len(report.imported),
        "duplicates": len(report.duplicates),
        "refused": len(report.refused),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    bundle.manifest.setdefault("written_scripts", []).append(entry)
