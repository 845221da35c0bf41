"""The catalogue options of ``copilot train`` and ``copilot suggest``: ``--catalog``,
``--promotions`` and ``--catalog-column``, and reading the files they name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from copilot.cli._common import _parse_pairs, err_console

if TYPE_CHECKING:
    from copilot.catalog import Catalog, Product, Promotion
    from copilot.io.readers import Quarantined

__all__ = [
    "CatalogColumnsOpt",
    "CatalogFiles",
    "CatalogOpt",
    "PromotionsOpt",
    "describe",
    "read_catalog_files",
]

CatalogOpt = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        help="The brand's products, CSV or JSONL (name, category, price, attributes as "
        "key:value;key:value; .gz ok): what suggestions may name and price.",
    ),
]
PromotionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--promotions",
        help="The brand's promotions, CSV or JSONL (title, kind, detail, starts, ends, products "
        "separated by ;).",
    ),
]
CatalogColumnsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--catalog-column",
        help="Rename a catalogue or promotions column: SOURCE=TARGET (e.g. 商品名称=name).",
    ),
]

_SHOWN = 5  # quarantined rows printed; the summary counts them all
_KEPT = 20  # quarantined rows kept in the manifest


@dataclass
class CatalogFiles:
    """What ``--catalog`` and ``--promotions`` gave (a part is ``None`` when its file was not
    given, so the bundle keeps its own)."""

    products: list[Product] | None = None
    promotions: list[Promotion] | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def given(self) -> bool:
        return self.products is not None or self.promotions is not None

    def paths(self) -> list[Path]:
        """The files read, for the bundle's data hash."""
        return [
            Path(self.summary[k]["file"]) for k in ("products", "promotions") if k in self.summary
        ]

    def apply(self, base: Catalog | None) -> Catalog:
        """``base`` with the parts these files give replaced (its learned terms kept)."""
        from copilot.io.catalog import combine

        return combine(base, self.products, self.promotions)


def read_catalog_files(
    catalog: Path | None, promotions: Path | None, columns: list[str] | None
) -> CatalogFiles:
    """Read the catalogue and promotions files; print the first quarantined rows to stderr.

    Returns:
        The products and promotions, and a summary per file ``{"file", "read",
        "quarantined", "quarantine": [first 20 entries]}`` under ``"products"`` and
        ``"promotions"`` (for the manifest and the "data used" table).

    Raises:
        InputError: a file that cannot be read, lacks its required column, or a bad renaming.
    """
    from copilot.io.catalog import read_catalog, read_promotions, split_columns

    product_columns, promotion_columns = split_columns(
        _parse_pairs(columns, "--catalog-column") or None
    )
    out = CatalogFiles()
    if catalog is not None:
        out.products, bad = read_catalog(catalog, product_columns)
        out.summary["products"] = _summary(catalog, len(out.products), bad)
    if promotions is not None:
        out.promotions, bad = read_promotions(promotions, promotion_columns)
        out.summary["promotions"] = _summary(promotions, len(out.promotions), bad)
    return out


def _summary(path: Path, read: int, bad: list[Quarantined]) -> dict[str, Any]:
    for item in bad[:_SHOWN]:
        err_console.print(f"[yellow]skipped[/] {path}:{item.line}: {item.error}", highlight=False)
    if len(bad) > _SHOWN:
        err_console.print(f"[yellow]... and {len(bad) - _SHOWN:,} more rows of {path} skipped[/]")
    return {
        "file": str(path),
        "read": read,
        "quarantined": len(bad),
        "quarantine": [q.to_dict() for q in bad[:_KEPT]],
    }


def describe(summary: dict[str, Any]) -> str:
    """``12 products (1 row quarantined), 3 promotions`` for the "data used" table."""
    parts = []
    for key in ("products", "promotions"):
        part = summary.get(key)
        if part is None:
            continue
        noun = key if part["read"] != 1 else key[:-1]
        text = f"{part['read']:,} {noun} from {Path(part['file']).name}"
        if part["quarantined"]:
            rows = "row" if part["quarantined"] == 1 else "rows"
            text += f" ({part['quarantined']:,} {rows} quarantined)"
        parts.append(text)
    return "; ".join(parts)
