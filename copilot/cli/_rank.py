"""``copilot rank``: score given replies (a brand's script library, a tool's own candidates).

The command ranks the candidates with :class:`models.rank.ReplyRanker`, the same scoring that
``POST /v1/rank`` serves, and prints a table or (``--json``) the response object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from copilot.cli._common import app, console, csv_rows, handle_errors
from copilot.cli._models import BundleOpt, read_conversation
from copilot.errors import InputError

__all__ = ["read_candidates"]


def read_candidates(path: Path, limit: int) -> list[str]:
    """The candidate replies of a file: one per line, or the ``text`` column of a ``.csv``.

    Blank lines (and CSV rows with an empty text) are skipped; a UTF-8 BOM is fine.

    Args:
        path: a text file (one reply per line) or a CSV whose header names ``text``.
        limit: the most candidates accepted (``models.rank.MAX_CANDIDATES``).

    Raises:
        InputError: the file is missing or unreadable, holds no candidate, or more than ``limit``.
    """
    if path.suffix.lower() == ".csv":
        texts = [
            row["text"] for _, row in csv_rows(path, ("text",), "candidates CSV") if row["text"]
        ]
    else:
        try:
            raw = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError as exc:
            raise InputError(
                f"candidates file {str(path)!r} does not exist; give a text file with one "
                "reply per line, or a CSV with a text column"
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"cannot read candidates file {str(path)!r} as UTF-8 text: {exc}"
            ) from exc
        texts = [line.strip() for line in raw.splitlines() if line.strip()]
    if not texts:
        raise InputError(
            f"candidates file {str(path)!r} holds no candidate reply; write one reply per line "
            "(or a CSV with a text column)"
        )
    if len(texts) > limit:
        raise InputError(
            f"candidates file {str(path)!r} holds {len(texts):,} candidate replies; at most "
            f"{limit} can be ranked at once: split the file"
        )
    return texts


@app.command()
def rank(
    conversation_file: Annotated[
        Path, typer.Argument(help="A conversation as JSON (the canonical shape; '-' for stdin).")
    ],
    candidates_file: Annotated[
        Path,
        typer.Argument(
            help="Candidate replies: one per line (UTF-8), or a .csv with a text column."
        ),
    ],
    bundle_dir: BundleOpt = Path("bundles/default"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the POST /v1/rank response object.")
    ] = False,
) -> None:
    """Rank given replies as the guide's next message: best first, unsafe ones last.

    Each candidate is scored by reply matching and the predicted next action, as suggestions
    are; one that breaks a compliance rule or carries personal data comes last, with its flags.

    Example: copilot rank --bundle bundles/default conversation.json scripts.txt
    """
    from copilot.compliance import default_checker
    from models.bundle import load_bundle
    from models.rank import MAX_CANDIDATES, ReplyRanker

    with handle_errors():
        conversation = read_conversation(conversation_file)
        candidates = read_candidates(candidates_file, MAX_CANDIDATES)
        bundle = load_bundle(bundle_dir)
        ranked = ReplyRanker(bundle, default_checker()).rank(conversation, candidates)
        if as_json:
            print(json.dumps({"ranked": ranked, "bundle": bundle.name}, ensure_ascii=False))
            return
        console.print(_table(ranked, bundle.taxonomy.name_of, bundle.name))


def _table(ranked: list[dict[str, Any]], name: Any, bundle: str) -> Table:
    """The ranked candidates, unsafe ones in red with their flags."""
    table = Table(title=f"ranked by bundle {bundle}", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("action")
    table.add_column("reply", overflow="fold")
    table.add_column("why", overflow="fold")
    for i, r in enumerate(ranked, 1):
        flags = "; ".join(
            f"{f['rule']}" + (f" 「{f['excerpt']}」" if f["excerpt"] else "") for f in r["flags"]
        )
        why = escape(r["reason"]) + (f"\n[red]flags: {escape(flags)}[/]" if flags else "")
        table.add_row(
            str(i),
            f"{r['score']:.3f}",
            escape(name(r["action"])),
            escape(r["text"]),
            why,
            style="red" if r["flags"] else None,
        )
    return table
