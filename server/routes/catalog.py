"""``/v1/catalog``: the brand's products and promotions, which suggestions may name and state
(supervisors and admins post them; every key reads them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from server import catalog_service
from server.deps import HolderDep, PrincipalDep, SessionDep
from server.routes import error_responses
from server.schemas import CatalogCreate, CatalogPublic, CatalogStored

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.post(
    "/catalog", response_model=CatalogStored, responses=error_responses(400, 401, 403, 413, 422)
)
def store(
    body: Annotated[CatalogCreate, Body()],
    holder: HolderDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Store products (by name) and promotions (by title); suggestions use them at once.

    Idempotent: an item posted again replaces the stored one of the same name or title;
    ``"replace": true`` replaces the whole catalogue with this request's valid items. Each
    invalid item is rejected with its position and the reason, and the others are stored.
    Supervisors and admins only.
    """
    return catalog_service.store_catalog(
        holder, session, principal, body.products, body.promotions, replace=body.replace
    )


@router.get("/catalog", response_model=CatalogPublic, responses=error_responses(401))
def read(session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """The stored catalogue (empty when none was posted: suggestions then use the bundle's)."""
    return catalog_service.get_catalog(session)
