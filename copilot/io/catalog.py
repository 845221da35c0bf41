"""Reading a brand's catalogue and promotions: from files (``--catalog``, ``--promotions``) and
from the items of ``POST /v1/catalog``.

The catalogue file lists products, the promotions file what the brand runs; each is CSV (a
header row) or JSONL (one object per line), ``.gz`` too (the file handling of
:mod:`copilot.io.tables`)::

    name,category,price,attributes
    双面羊绒大衣,大衣,¥1299,尺码:S/M/L;颜色:驼色/黑色
    真丝衬衫,衬衫,499元,面料：真丝；尺码：S/M

    title,kind,detail,starts,ends,products
    满300减50,coupon,全店满300减50,2026-03-01,2026-03-31,
    大衣包邮,free_shipping,大衣全国包邮,2026-03-01,,双面羊绒大衣

Fields (:data:`CATALOG_COLUMNS`, :data:`PROMOTION_COLUMNS`):

- ``name`` (required): the product's name; each product once (variants go in attributes).
- ``category``: its category (大衣); ``price``: a non-negative number, ``¥``/``￥``/``元`` and
  thousands separators allowed, empty when unknown.
- ``attributes``: ``key:value;key:value`` (full-width ``：`` and ``；`` too); in JSONL also an
  object (a list value is joined with ``/``).
- ``title`` (required): the promotion's title, each once; ``kind``: one of
  :data:`~copilot.catalog.PROMOTION_KINDS` or a Chinese name of one (优惠券, 折扣, 赠品,
  包邮, 其他), ``other`` when empty; ``detail``: what it gives.
- ``starts``/``ends``: ISO days (``2026-03-01``), both included, empty for an open side;
  ``ends`` may not be before ``starts``.
- ``products``: the names it applies to, separated by ``;`` (or a JSON list); empty for all.

A row that cannot be used is quarantined with its line, the field, the value and what is valid;
a CSV header without ``name`` (or ``title``) stops the read with an
:class:`~copilot.errors.InputError` naming the columns found and the ones expected.

Example::

    products, bad = read_catalog("products.csv", columns={"商品名称": "name"})
    promotions, _ = read_promotions("promotions.jsonl.gz")
    catalog = combine(bundle.catalog, products, promotions)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from copilot.catalog import PROMOTION_KINDS, Catalog, Product, Promotion, PromotionKind
from copilot.errors import InputError, RecordError
from copilot.io.readers import Quarantined
from copilot.io.tables import TableSpec, read_table

__all__ = [
    "CATALOG_COLUMNS",
    "KIND_ALIASES",
    "PROMOTION_COLUMNS",
    "Rejected",
    "combine",
    "parse_product",
    "parse_products",
    "parse_promotion",
    "parse_promotions",
    "read_catalog",
    "read_promotions",
    "split_columns",
]

T = TypeVar("T")

CATALOG_COLUMNS = ("name", "category", "price", "attributes")
"""Columns of a catalogue file; rename others with ``columns={"商品名称": "name"}``."""
PROMOTION_COLUMNS = ("title", "kind", "detail", "starts", "ends", "products")
"""Columns of a promotions file."""

KIND_ALIASES: dict[str, str] = {
    **{kind: kind for kind in PROMOTION_KINDS},
    **dict.fromkeys(("优惠券", "券", "满减"), "coupon"),
    **dict.fromkeys(("折扣", "打折", "特价"), "discount"),
    **dict.fromkeys(("赠品", "赠送", "买赠"), "gift"),
    **dict.fromkeys(("包邮", "免运费", "free shipping"), "free_shipping"),
    **dict.fromkeys(("其他", "其它"), "other"),
}
"""Promotion kinds accepted in ``kind`` (case-insensitive): the kinds and their Chinese names."""

_MAX_NAME = 200
_MAX_DETAIL = 2_000
_PRICE_EXAMPLE = "a non-negative number of yuan such as 1299, ¥1299 or 1299元, or empty"
_ATTRIBUTES_EXAMPLE = "key:value;key:value (e.g. 尺码:S/M/L;颜色:驼色)"

_CATALOG_FILE = TableSpec(
    noun="product",
    file="catalogue file",
    columns=CATALOG_COLUMNS,
    required=("name",),
    key="name",
    option="--catalog-column",
    unique_hint="put its variants in attributes, e.g. 尺码:S/M/L",
)
_PROMOTIONS_FILE = TableSpec(
    noun="promotion",
    file="promotions file",
    columns=PROMOTION_COLUMNS,
    required=("title",),
    key="title",
    option="--catalog-column",
    unique_hint="give a different title to each",
)


# --------------------------------------------------------------------------- files


def read_catalog(
    path: str | Path, columns: Mapping[str, str] | None = None
) -> tuple[list[Product], list[Quarantined]]:
    """Read a catalogue file: CSV or JSONL of ``name,category,price,attributes`` (``.gz`` too).

    Args:
        path: the file (``"-"`` for standard input).
        columns: source column name -> catalogue column, e.g. ``{"商品名称": "name",
            "售价": "price"}`` (the CLI's ``--catalog-column 商品名称=name``).

    Returns:
        ``(products, quarantined)`` in file order; a row that cannot be used (no name, a bad
        price or attributes, a name already given) is a :class:`Quarantined` entry naming the
        field and the value.

    Raises:
        InputError: the file does not exist or cannot be read, a mapping names no catalogue
            column, or a CSV header has no ``name`` column.

    Example:
        >>> products, bad = read_catalog("products.csv")
        >>> products[0].price, bad[0].error
        (1299.0, "line 3 (product '真丝衬衫'): price: 'abc' is not a number; ...")
    """
    return read_table(path, _CATALOG_FILE, parse_product, columns, unique=True)


def read_promotions(
    path: str | Path, columns: Mapping[str, str] | None = None
) -> tuple[list[Promotion], list[Quarantined]]:
    """Read a promotions file: CSV or JSONL of ``title,kind,detail,starts,ends,products``.

    Args:
        path: the file (``"-"`` for standard input; ``.gz`` too).
        columns: source column name -> promotion column (``{"活动名称": "title"}``).

    Returns:
        ``(promotions, quarantined)`` in file order; a row with no title, an unknown kind, a
        day that is not ISO, ``ends`` before ``starts`` or a title already given is
        quarantined.

    Raises:
        InputError: the file does not exist or cannot be read, a mapping names no promotion
            column, or a CSV header has no ``title`` column.

    Example:
        >>> promotions, bad = read_promotions("promotions.csv")
    """
    return read_table(path, _PROMOTIONS_FILE, parse_promotion, columns, unique=True)


def split_columns(
    columns: Mapping[str, str] | None,
) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """One renaming for both files split into the catalogue's and the promotions' (their
    columns differ, so ``--catalog-column`` serves both).

    Raises:
        InputError: a target that is a column of neither file.
    """
    products: dict[str, str] = {}
    promotions: dict[str, str] = {}
    for source, target in (columns or {}).items():
        if target in CATALOG_COLUMNS:
            products[source] = target
        elif target in PROMOTION_COLUMNS:
            promotions[source] = target
        else:
            raise InputError(
                f"catalogue column mapping {source!r} -> {target!r}: {target!r} is not a column "
                f"of the catalogue ({', '.join(CATALOG_COLUMNS)}) or of the promotions "
                f"({', '.join(PROMOTION_COLUMNS)})"
            )
    return products or None, promotions or None


def combine(
    base: Catalog | None,
    products: Sequence[Product] | None = None,
    promotions: Sequence[Promotion] | None = None,
) -> Catalog:
    """``base`` with the parts that are given replaced: products, promotions, or both.

    A part that is ``None`` stays as ``base`` has it (a brand that gives only a promotions
    file keeps the products it had); the product words learned from the logs are kept.
    """
    base = base or Catalog()
    return Catalog(
        list(base.products.values()) if products is None else products,
        base.promotions if promotions is None else promotions,
        terms=base.terms,
    )


# --------------------------------------------------------------------------- API items


@dataclass(frozen=True)
class Rejected:
    """An item of a request that was not used: where it was and why.

    Attributes:
        index: its position in its list (0-based).
        error: ``products[3] (product '大衣'): price: -5 is negative; ...``.
    """

    index: int
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "error": self.error}


def parse_products(items: Iterable[Any]) -> tuple[list[Product], list[Rejected]]:
    """The products of ``POST /v1/catalog``: each object a product (unknown fields refused),
    each name once; the others are rejected with the reason."""
    return _parse_items(items, "products", _CATALOG_FILE, parse_product)


def parse_promotions(items: Iterable[Any]) -> tuple[list[Promotion], list[Rejected]]:
    """The promotions of ``POST /v1/catalog``, as :func:`parse_products` does the products."""
    return _parse_items(items, "promotions", _PROMOTIONS_FILE, parse_promotion)


def _parse_items(
    items: Iterable[Any],
    field: str,
    spec: TableSpec,
    parse: Callable[[Mapping[str, Any]], T],
) -> tuple[list[T], list[Rejected]]:
    records: list[T] = []
    rejected: list[Rejected] = []
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        key = item.get(spec.key) if isinstance(item, Mapping) else None
        where = f"{field}[{index}]" + (
            f" ({spec.noun} {str(key).strip()!r})" if isinstance(key, str | int) else ""
        )
        try:
            if not isinstance(item, Mapping):
                raise RecordError(f"expected an object with the fields {', '.join(spec.columns)}")
            unknown = sorted(set(map(str, item)) - set(spec.columns))
            if unknown:
                raise RecordError(
                    f"unknown field{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(map(repr, unknown))}; a {spec.noun} has the fields "
                    f"{spec.expected}"
                )
            record = parse(item)
        except RecordError as exc:
            rejected.append(Rejected(index, f"{where}: {exc.reason}"))
            continue
        name = str(getattr(record, spec.key))
        if name in first:
            rejected.append(
                Rejected(
                    index,
                    f"{where}: {spec.key}: {name!r} is already {field}[{first[name]}]; give each "
                    f"{spec.noun} once ({spec.unique_hint})",
                )
            )
            continue
        first[name] = index
        records.append(record)
    return records, rejected


# --------------------------------------------------------------------------- one record


def parse_product(values: Mapping[str, Any]) -> Product:
    """A product from its fields (a file row's canonical values, or an API item).

    Raises:
        RecordError: a missing name or a bad field; the message names the field, the value
            and what is valid.
    """
    name = _text(values, "name", _MAX_NAME, required=True)
    return Product(
        name=name,
        category=_text(values, "category", _MAX_NAME),
        price=_price(values.get("price")),
        attributes=_attributes(values.get("attributes")),
    )


def parse_promotion(values: Mapping[str, Any]) -> Promotion:
    """A promotion from its fields (a file row's canonical values, or an API item).

    Raises:
        RecordError: a missing title or a bad field (the message says what is valid).
    """
    title = _text(values, "title", _MAX_NAME, required=True)
    starts, ends = _day(values.get("starts"), "starts"), _day(values.get("ends"), "ends")
    if starts is not None and ends is not None and ends < starts:
        raise RecordError(
            f"ends: {ends.isoformat()} is before starts {starts.isoformat()}; a promotion runs "
            "from starts to ends, both days included"
        )
    return Promotion(
        title=title,
        kind=_kind(values.get("kind")),
        detail=_text(values, "detail", _MAX_DETAIL),
        starts=starts,
        ends=ends,
        products=_names(values.get("products")),
    )


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _clean(value: str, field: str, limit: int) -> str:
    if "\x00" in value:
        raise RecordError(f"{field}: contains a NUL character (\\x00); remove it")
    if len(value) > limit:
        raise RecordError(
            f"{field}: {len(value):,} characters ({value[:20]!r}...); at most {limit:,}"
        )
    return value


def _text(values: Mapping[str, Any], field: str, limit: int, *, required: bool = False) -> str:
    value = values.get(field)
    if _blank(value):
        if required:
            raise RecordError(f"{field}: field is required (the value is empty)")
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a numeric name or SKU is text
    if not isinstance(value, str):
        raise RecordError(f"{field}: expected text, got {_kind_of(value)} ({value!r})")
    return _clean(value.strip(), field, limit)


def _price(value: object) -> float | None:
    if _blank(value):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordError(f"price: expected {_PRICE_EXAMPLE}, got {_kind_of(value)}")
    if isinstance(value, str):
        text = value.strip().lstrip("¥￥").rstrip("元").replace(",", "").strip()
        try:
            price = float(text)
        except ValueError:
            raise RecordError(
                f"price: {value!r} is not a number; expected {_PRICE_EXAMPLE}"
            ) from None
    else:
        price = float(value)
    if not math.isfinite(price):
        raise RecordError(f"price: {value!r} is not a finite number; expected {_PRICE_EXAMPLE}")
    if price < 0:
        raise RecordError(f"price: {value!r} is negative; expected {_PRICE_EXAMPLE}")
    return price


def _attribute_value(key: str, value: object) -> str:
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return "/".join(str(v).strip() for v in value)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value).strip()
    raise RecordError(
        f"attributes: the value of {key!r} is {_kind_of(value)}; expected text, a number or a "
        "list of them"
    )


def _attributes(value: object) -> dict[str, str]:
    if _blank(value):
        return {}
    pairs: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        pairs = [(str(k).strip(), _attribute_value(str(k), v)) for k, v in value.items()]
    elif isinstance(value, str):
        for piece in value.replace("；", ";").split(";"):
            if not piece.strip():
                continue
            key, sep, item = piece.replace("：", ":").partition(":")
            if not sep:
                raise RecordError(
                    f"attributes: {piece.strip()!r} has no ':' between key and value; expected "
                    f"{_ATTRIBUTES_EXAMPLE}"
                )
            pairs.append((key.strip(), item.strip()))
    else:
        raise RecordError(
            f"attributes: expected {_ATTRIBUTES_EXAMPLE} or an object, got {_kind_of(value)}"
        )
    out: dict[str, str] = {}
    for key, item in pairs:
        if not key or not item:
            raise RecordError(
                f"attributes: {f'{key}:{item}'!r} has an empty {'key' if not key else 'value'}; "
                f"expected {_ATTRIBUTES_EXAMPLE}"
            )
        if key in out:
            raise RecordError(
                f"attributes: the key {key!r} is given twice ({out[key]!r} and {item!r}); give "
                "each key once, with its values joined by / (e.g. 尺码:S/M/L)"
            )
        out[_clean(key, "attributes", _MAX_NAME)] = _clean(item, "attributes", _MAX_DETAIL)
    return out


def _kind(value: object) -> PromotionKind:
    if _blank(value):
        return "other"
    kind = KIND_ALIASES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if kind is None:
        raise RecordError(
            f"kind: unknown promotion kind {value!r}; valid kinds: {', '.join(PROMOTION_KINDS)} "
            "(or 优惠券, 折扣, 赠品, 包邮, 其他), or empty for other"
        )
    return cast(PromotionKind, kind)


def _day(value: object, field: str) -> date | None:
    if _blank(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(text).date()
        except ValueError:
            pass
    raise RecordError(
        f"{field}: {value!r} is not an ISO day; expected YYYY-MM-DD (e.g. 2026-03-01), or "
        "empty for an open side"
    )


def _names(value: object) -> tuple[str, ...]:
    if _blank(value):
        return ()
    if isinstance(value, str):
        names = value.replace("；", ";").split(";")
    elif isinstance(value, list | tuple) and all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        names = [str(v) for v in value]
    else:
        raise RecordError(
            f"products: expected product names separated by ';' (or a list of names), got "
            f"{_kind_of(value)}"
        )
    return tuple(
        dict.fromkeys(_clean(n.strip(), "products", _MAX_NAME) for n in names if n.strip())
    )
