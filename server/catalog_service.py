"""What the catalogue endpoints do: ``POST /v1/catalog`` and ``GET /v1/catalog``.

The server keeps one catalogue, the brand's, as it keeps one bundle: products by name and
promotions by title (:mod:`server.db.catalog`). Supervisors and admins post it (a guide gets
403), every key may read it. What is stored is applied at once to this process's suggestion
engine (:meth:`server.runtime.RuntimeHolder.set_catalog`), and by the others within
``COPILOT_SYNC_SECONDS`` (:func:`sync_catalog`); with nothing stored the engine uses the
bundle's own catalogue.

Each item is checked on its own (:func:`copilot.io.catalog.parse_products`): an invalid one is
rejected with its position and reason, and the valid ones are stored.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from copilot.io.catalog import Rejected, parse_products, parse_promotions
from server.auth import Principal
from server.db import catalog as catalog_repo
from server.runtime import RuntimeHolder
from server.service import _write

__all__ = ["get_catalog", "store_catalog", "sync_catalog"]

# The write, the read-back and the apply to the engine happen under one lock, so two
# concurrent posts (or a post and the sync) cannot apply a stale read last.
_CATALOG_LOCK = threading.Lock()


def store_catalog(
    holder: RuntimeHolder,
    session: Session,
    principal: Principal,
    products: Sequence[Any],
    promotions: Sequence[Any],
    *,
    replace: bool = False,
) -> dict[str, Any]:
    """Store products and promotions (idempotent on name and title) and use them at once.

    Args:
        holder: this process's runtime holder (its engine gets the stored catalogue).
        session: an open session.
        principal: the caller.
        products: the request's product objects.
        promotions: the request's promotion objects.
        replace: replace the whole stored catalogue with the valid items (an empty request
            clears it); otherwise add them, replacing those of the same name or title.

    Returns:
        The ``CatalogStored`` object: per part ``{received, created, updated, rejected,
        errors: [{index, error}]}``, ``replaced`` and the ``stored`` totals.

    Raises:
        ForbiddenError: a guide key.
        InputError: text the database cannot store.
    """
    principal.require(("supervisor", "admin"))
    good_products, bad_products = parse_products(products)
    good_promotions, bad_promotions = parse_promotions(promotions)

    def work() -> tuple[list[str], list[str]]:
        if replace:
            catalog_repo.clear_catalog(session)
        key = principal.key_id
        return (
            list(catalog_repo.upsert_products(session, good_products, key_id=key)),
            list(catalog_repo.upsert_promotions(session, good_promotions, key_id=key)),
        )

    with _CATALOG_LOCK:
        product_statuses, promotion_statuses = _write(session, work)
        catalog = catalog_repo.stored_catalog(session)
        holder.set_catalog(catalog)
    return {
        "replaced": replace,
        "products": _part(len(products), product_statuses, bad_products),
        "promotions": _part(len(promotions), promotion_statuses, bad_promotions),
        "stored": {"products": len(catalog.products), "promotions": len(catalog.promotions)},
    }


def _part(received: int, statuses: list[str], rejected: list[Rejected]) -> dict[str, Any]:
    created = statuses.count("created")
    return {
        "received": received,
        "created": created,
        "updated": len(statuses) - created,
        "rejected": len(rejected),
        "errors": [r.to_dict() for r in rejected],
    }


def get_catalog(session: Session) -> dict[str, Any]:
    """The stored catalogue (any key may read it): ``{"products": [...], "promotions":
    [...]}``, by name and by title."""
    catalog = catalog_repo.stored_catalog(session)
    return {
        "products": [p.to_dict() for p in catalog.products.values()],
        "promotions": [p.to_dict() for p in catalog.promotions],
    }


def sync_catalog(holder: RuntimeHolder, session: Session, seen: dict[str, Any]) -> None:
    """Load the stored catalogue into the holder when it changed since the last call (at
    start-up: always), so every process serves what any of them stored.

    Args:
        holder: this process's runtime holder.
        session: an open session.
        seen: what the last call saw (``{"catalog": version}``); updated in place.
    """
    with _CATALOG_LOCK:
        version = catalog_repo.catalog_version(session)
        if version != seen.get("catalog"):
            holder.set_catalog(catalog_repo.stored_catalog(session))
            seen["catalog"] = version
    session.rollback()
