"""The stored catalogue: the brand's products and promotions, posted to ``/v1/catalog``.

One catalogue per server (the brand's, as the bundle is): products keyed by name, promotions by
title. Like :mod:`server.db.repository`, every function takes a session first, flushes what it
writes and leaves the commit to the caller.

Example:
    >>> with Session.begin() as session:
    ...     upsert_products(session, products, key_id=3)
    ...     catalog = stored_catalog(session)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from copilot.catalog import Catalog, Product, Promotion, PromotionKind
from server.db.models import CatalogProduct, CatalogPromotion, utcnow
from server.db.repository import UpsertStatus, _chunks

__all__ = [
    "catalog_version",
    "clear_catalog",
    "stored_catalog",
    "upsert_products",
    "upsert_promotions",
]


def clear_catalog(session: Session) -> None:
    """Delete every stored product and promotion (before storing a replacement)."""
    session.execute(delete(CatalogProduct))
    session.execute(delete(CatalogPromotion))
    session.flush()


def upsert_products(
    session: Session, products: Sequence[Product], *, key_id: int | None = None
) -> list[UpsertStatus]:
    """Store products, idempotent on ``name`` (a product posted again replaces the stored one).

    Args:
        session: an open session; the caller commits.
        products: the products (each name once).
        key_id: the API key that posted them, kept for the record.

    Returns:
        ``"created"`` or ``"updated"`` per product, in order.
    """
    now = utcnow()
    rows = _stored(session, CatalogProduct, CatalogProduct.name, [p.name for p in products])
    statuses: list[UpsertStatus] = []
    for product in products:
        values = {
            "category": product.category,
            "price": product.price,
            "attributes": dict(product.attributes),
            "key_id": key_id,
            "updated_at": now,
        }
        statuses.append(_put(session, rows, CatalogProduct, "name", product.name, values, now))
    session.flush()
    return statuses


def upsert_promotions(
    session: Session, promotions: Sequence[Promotion], *, key_id: int | None = None
) -> list[UpsertStatus]:
    """Store promotions, idempotent on ``title``; as :func:`upsert_products`."""
    now = utcnow()
    rows = _stored(session, CatalogPromotion, CatalogPromotion.title, [p.title for p in promotions])
    statuses: list[UpsertStatus] = []
    for promotion in promotions:
        values = {
            "kind": promotion.kind,
            "detail": promotion.detail,
            "starts": promotion.starts,
            "ends": promotion.ends,
            "products": list(promotion.products),
            "key_id": key_id,
            "updated_at": now,
        }
        statuses.append(
            _put(session, rows, CatalogPromotion, "title", promotion.title, values, now)
        )
    session.flush()
    return statuses


def _stored(session: Session, model: Any, column: Any, keys: list[str]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for chunk in _chunks(keys):
        rows.update(
            (getattr(row, column.key), row)
            for row in session.scalars(select(model).where(column.in_(chunk)))
        )
    return rows


def _put(
    session: Session,
    rows: dict[str, Any],
    model: Any,
    key: str,
    value: str,
    values: dict[str, Any],
    now: datetime,
) -> UpsertStatus:
    row = rows.get(value)
    if row is None:
        rows[value] = model(**{key: value}, created_at=now, **values)
        session.add(rows[value])
        return "created"
    for name, item in values.items():
        setattr(row, name, item)
    return "updated"


def stored_catalog(session: Session) -> Catalog:
    """The stored products (by name) and promotions (by title) as a :class:`Catalog`."""
    products = [
        Product(row.name, row.category, row.price, dict(row.attributes))
        for row in session.scalars(select(CatalogProduct).order_by(CatalogProduct.name))
    ]
    promotions = [
        Promotion(
            row.title,
            cast(PromotionKind, row.kind),  # stored only after validation
            row.detail,
            row.starts,
            row.ends,
            tuple(row.products),
        )
        for row in session.scalars(select(CatalogPromotion).order_by(CatalogPromotion.title))
    ]
    return Catalog(products, promotions)


def catalog_version(session: Session) -> tuple[Any, ...]:
    """``(products, latest product change, promotions, latest promotion change)``: changes
    whenever the catalogue does, so each server process can tell it must load it again."""
    version: list[Any] = []
    for model in (CatalogProduct, CatalogPromotion):
        n, latest = session.execute(select(func.count(), func.max(model.updated_at))).one()
        version += [int(n), latest.isoformat() if isinstance(latest, datetime) else latest]
    return tuple(version)
