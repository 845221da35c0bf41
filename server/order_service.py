"""What the order endpoints do: ``POST /v1/orders`` and ``GET /v1/orders``.

Storing conversations attributes their customers' orders again too
(:func:`server.service.store_conversations`), so an order posted before its conversation is
attributed when the conversation arrives.

Who may post orders: supervisors and admins (a guide gets 403). A supervisor's orders must
each name one of its stores (``store_id``), and an order already stored under the same id must
be of its stores too; an admin's may name any store or none. An order that names a store is
attributed only to that store's conversations (:mod:`copilot.orders`), so a supervisor's
orders only ever change its own stores' conversations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from copilot.errors import ForbiddenError, InputError
from copilot.orders import Order
from server.auth import Principal
from server.db import orders as orders_repo
from server.service import TimeBound, _write
from server.settings import Settings

__all__ = ["list_orders", "store_orders"]


def _check_order_scope(principal: Principal, store_id: str | None, what: str) -> None:
    if principal.role != "supervisor":
        return
    if store_id is None:
        raise ForbiddenError(
            f"{what} names no store; a supervisor's orders must name one of its stores "
            f"({', '.join(sorted(principal.stores))}) in store_id (an admin key may post "
            "orders without a store)"
        )
    principal.check_scope(None, store_id, what)


def store_orders(
    session: Session, principal: Principal, orders: Sequence[Order], settings: Settings
) -> dict[str, Any]:
    """Store orders (idempotent on ``order_id``) and attribute them to stored conversations.

    Every order of the customers concerned is attributed again, and the conversations whose
    outcome changes are updated in the same transaction.

    Raises:
        ForbiddenError: a guide key; a supervisor's order without a store or of another store,
            or re-posting an order stored for another store.
        InputError: one order id twice in the request.
    """
    principal.require(("supervisor", "admin"))
    seen: set[str] = set()
    for order in orders:
        if order.order_id in seen:
            raise InputError(
                f"order_id {order.order_id!r} occurs twice in the request; send each order once"
                " (orders without an order_id get one from their fields, so two identical "
                "orders are one)"
            )
        seen.add(order.order_id)
        _check_order_scope(principal, order.store_id, f"order {order.order_id!r}")
    ids = [o.order_id for o in orders]
    if principal.role == "supervisor":
        for oid, (_, store) in orders_repo.stored_orders(session, ids).items():
            _check_order_scope(principal, store, f"the stored order {oid!r}")

    def work() -> tuple[list[str], list[str], dict[str, tuple[str | None, str | None]]]:
        # A re-posted order may change its customer: the former one's orders move too.
        stored = orders_repo.stored_orders(session, ids)
        customers = {o.customer_id for o in orders} | {c for c, _ in stored.values()}
        orders_repo.lock_customers(session, customers)
        statuses = orders_repo.upsert_orders(session, orders, key_id=principal.key_id)
        changed = orders_repo.attribute_customers(session, customers, settings.attribution_hours)
        return list(statuses), changed, orders_repo.order_placements(session, ids)

    statuses, changed, placed = _write(session, work)
    items = [
        {
            "order_id": oid,
            "status": status,
            "conversation_id": placed[oid][0],
            "reason": placed[oid][1],
        }
        for oid, status in zip(ids, statuses, strict=True)
    ]
    created = sum(s == "created" for s in statuses)
    return {
        "stored": len(items),
        "created": created,
        "updated": len(items) - created,
        "attributed": sum(item["conversation_id"] is not None for item in items),
        "conversations_updated": changed,
        "items": items,
    }


def list_orders(
    session: Session,
    principal: Principal,
    *,
    store_id: str | None = None,
    since: TimeBound | None = None,
    until: TimeBound | None = None,
    **filters: Any,
) -> tuple[int, list[dict[str, Any]]]:
    """A page of the orders the caller may see (filters of :func:`server.db.orders.list_orders`).

    Raises:
        ForbiddenError: a guide key, or a store outside a supervisor's.
    """
    principal.require(("supervisor", "admin"))
    if principal.role == "supervisor" and store_id is not None and store_id not in principal.stores:
        raise ForbiddenError(
            f"this API key covers stores {', '.join(sorted(principal.stores))} only, "
            f"not store {store_id!r}"
        )
    for name, value in (("store_id", store_id), *filters.items()):
        if isinstance(value, str) and "\x00" in value:
            raise InputError(f"{name} contains a NUL character (\\x00); remove it")
    return orders_repo.list_orders(
        session, principal, store_id=store_id, since=since, until=until, **filters
    )
