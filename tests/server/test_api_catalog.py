"""``/v1/catalog`` over real HTTP, on SQLite and on PostgreSQL: roles, per-item rejection,
idempotent upserts, replacing the catalogue, and the suggestion engine using what is stored
(at once, after a reload, and when another process stored it).

One server per backend for the module; each test starts by replacing the whole catalogue.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.catalog import Catalog, Product
from server import catalog_service
from server.db import make_engine, make_session_factory
from server.db.catalog import upsert_products
from server.runtime import Runtime
from server.settings import Settings
from tests.server.api_fixtures import LiveServer, assert_error, empty_database, live_server

COAT = {"name": "双面羊绒大衣", "category": "大衣", "price": "¥1299", "attributes": "尺码:S/M/L"}
SHIRT = {"name": "真丝衬衫", "category": "衬衫", "price": 499, "attributes": {"面料": "真丝"}}
COUPON = {"title": "满300减50", "kind": "coupon", "starts": "2026-03-01", "ends": "2026-03-31"}
SHIPPING = {"title": "大衣包邮", "kind": "包邮", "products": ["双面羊绒大衣"]}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest,
    scoring_bundle_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"api-catalog-{request.param}")
    admin = functools.partial(request.getfixturevalue, "postgres_admin")
    with empty_database(request.param, tmp, admin) as url:
        settings = Settings(bundle_dir=scoring_bundle_dir, data_dir=tmp, database_url=url)
        with live_server(settings) as running:
            yield running


def _post(server: LiveServer, body: dict[str, Any], key: str = "admin") -> dict[str, Any]:
    response = server.client(key).post("/v1/catalog", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _get(server: LiveServer, key: str = "admin") -> dict[str, Any]:
    response = server.client(key).get("/v1/catalog")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _runtime(server: LiveServer) -> Runtime:
    runtime: Runtime = server.app.state.holder.current
    return runtime


def _bundle_catalog(runtime: Runtime) -> Catalog:
    return runtime.bundle.catalog or Catalog()


# --------------------------------------------------------------------------- roles


def test_openapi_lists_the_catalog_routes(server: LiveServer) -> None:
    paths = server.client(None).get("/openapi.json").json()["paths"]
    assert set(paths["/v1/catalog"]) == {"get", "post"}


def test_guides_read_the_catalog_but_may_not_post_it(server: LiveServer) -> None:
    _post(server, {"products": [COAT], "replace": True})
    guide = server.client("guide_g001")
    assert_error(
        guide.post("/v1/catalog", json={"products": [SHIRT]}), 403, "role 'guide'", "'supervisor'"
    )
    assert [p["name"] for p in _get(server, "guide_g001")["products"]] == ["双面羊绒大衣"]
    assert_error(server.client(None).get("/v1/catalog"), 401)
    assert _post(server, {"products": [SHIRT]}, key="sup_s01")["products"]["created"] == 1


def test_a_request_of_the_wrong_shape_is_refused_whole(server: LiveServer) -> None:
    admin = server.client()
    assert_error(admin.post("/v1/catalog", json={"product": [COAT]}), 422, "product")
    assert_error(admin.post("/v1/catalog", json={"products": COAT}), 422, "products")
    assert_error(admin.post("/v1/catalog", json={"products": ["大衣"]}), 422, "products[0]")
    assert_error(admin.post("/v1/catalog", json={"replace": "maybe"}), 422, "replace")


# --------------------------------------------------------------------------- storing


def test_post_then_get_round_trips_products_and_promotions(server: LiveServer) -> None:
    result = _post(
        server,
        {"products": [SHIRT, COAT], "promotions": [SHIPPING, COUPON], "replace": True},
    )
    assert result["replaced"] is True
    assert result["products"] == {
        "received": 2,
        "created": 2,
        "updated": 0,
        "rejected": 0,
        "errors": [],
    }
    assert result["stored"] == {"products": 2, "promotions": 2}
    catalog = _get(server)
    assert catalog["products"] == [
        {
            "name": "双面羊绒大衣",
            "category": "大衣",
            "price": 1299.0,
            "attributes": {"尺码": "S/M/L"},
        },
        {"name": "真丝衬衫", "category": "衬衫", "price": 499.0, "attributes": {"面料": "真丝"}},
    ]
    assert catalog["promotions"] == [
        {
            "title": "大衣包邮",
            "kind": "free_shipping",
            "detail": "",
            "starts": None,
            "ends": None,
            "products": ["双面羊绒大衣"],
        },
        {
            "title": "满300减50",
            "kind": "coupon",
            "detail": "",
            "starts": "2026-03-01",
            "ends": "2026-03-31",
            "products": [],
        },
    ]


def test_invalid_items_are_rejected_one_by_one_and_the_rest_stored(server: LiveServer) -> None:
    result = _post(
        server,
        {
            "products": [COAT, {"name": "坏价格", "price": -1}, {"name": "x", "sku": 1}, {}],
            "promotions": [
                COUPON,
                {"title": "倒着的", "starts": "2026-03-10", "ends": "2026-03-01"},
            ],
            "replace": True,
        },
    )
    products, promotions = result["products"], result["promotions"]
    assert (products["received"], products["created"], products["rejected"]) == (4, 1, 3)
    assert [e["index"] for e in products["errors"]] == [1, 2, 3]
    assert "products[1] (product '坏价格'): price: -1 is negative" in products["errors"][0]["error"]
    assert "unknown field 'sku'" in products["errors"][1]["error"]
    assert "products[3]: name: field is required" in products["errors"][2]["error"]
    assert promotions["rejected"] == 1
    assert "ends: 2026-03-01 is before starts 2026-03-10" in promotions["errors"][0]["error"]
    assert result["stored"] == {"products": 1, "promotions": 1}


def test_posting_again_updates_in_place_and_never_duplicates(server: LiveServer) -> None:
    _post(server, {"products": [COAT, SHIRT], "promotions": [COUPON], "replace": True})
    again = _post(server, {"products": [{**COAT, "price": 999}], "promotions": [COUPON]})
    assert again["products"]["updated"] == 1 and again["products"]["created"] == 0
    assert again["promotions"]["updated"] == 1
    assert again["stored"] == {"products": 2, "promotions": 1}
    prices = {p["name"]: p["price"] for p in _get(server)["products"]}
    assert prices == {"双面羊绒大衣": 999.0, "真丝衬衫": 499.0}


def test_replace_replaces_the_whole_catalogue(server: LiveServer) -> None:
    _post(server, {"products": [COAT, SHIRT], "promotions": [COUPON], "replace": True})
    result = _post(server, {"products": [{"name": "帆布包"}], "replace": True})
    assert result["stored"] == {"products": 1, "promotions": 0}
    assert _get(server) == {
        "products": [{"name": "帆布包", "category": "", "price": None, "attributes": {}}],
        "promotions": [],
    }


# --------------------------------------------------------------------------- the engine


def test_the_engine_uses_the_stored_catalogue_at_once(server: LiveServer) -> None:
    _post(server, {"products": [COAT, SHIRT], "promotions": [COUPON], "replace": True})
    engine = _runtime(server).engine
    assert set(engine.catalog.products) == {"双面羊绒大衣", "真丝衬衫"}
    assert engine.catalog.products["双面羊绒大衣"].price == 1299.0
    assert [p.title for p in engine.catalog.promotions] == ["满300减50"]
    assert engine.catalog.terms == _bundle_catalog(_runtime(server)).terms  # learned words kept
    # Only products stored: the bundle's promotions stay.
    _post(server, {"products": [COAT], "replace": True})
    assert list(engine.catalog.products) == ["双面羊绒大衣"]
    assert engine.catalog.promotions == _bundle_catalog(_runtime(server)).promotions
    # Nothing stored: the bundle's own catalogue.
    _post(server, {"replace": True})
    own = _bundle_catalog(_runtime(server))
    assert engine.catalog.products == own.products and engine.catalog.promotions == own.promotions


def test_the_stored_catalogue_survives_a_reload(server: LiveServer) -> None:
    _post(server, {"products": [SHIRT], "promotions": [SHIPPING], "replace": True})
    before = _runtime(server)
    assert server.client().post("/v1/admin/reload").status_code == 200
    after = _runtime(server)
    assert after is not before
    assert list(after.engine.catalog.products) == ["真丝衬衫"]
    assert [p.title for p in after.engine.catalog.promotions] == ["大衣包邮"]


def test_a_catalogue_another_process_stored_is_picked_up_by_the_sync(server: LiveServer) -> None:
    _post(server, {"products": [COAT], "replace": True})
    seen: dict[str, Any] = {}
    engine = make_engine(server.settings.database_url)
    factory = make_session_factory(engine)
    try:
        with factory() as session:
            catalog_service.sync_catalog(server.app.state.holder, session, seen)
        with factory.begin() as session:  # another process's write
            upsert_products(session, [Product("羊毛围巾", "配饰", 299.0)], key_id=None)
        assert "羊毛围巾" not in _runtime(server).engine.catalog.products
        with factory() as session:
            catalog_service.sync_catalog(server.app.state.holder, session, seen)
    finally:
        engine.dispose()
    assert set(_runtime(server).engine.catalog.products) == {"双面羊绒大衣", "羊毛围巾"}
    assert [p.title for p in _runtime(server).engine.catalog.promotions] == [
        p.title for p in _bundle_catalog(_runtime(server)).promotions
    ]
