"""The stored catalogue on SQLite and PostgreSQL: the migration in place, idempotent upserts,
clearing, and the version every server process compares."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from copilot.catalog import Product, Promotion
from server.db import make_engine, make_session_factory, migrate
from server.db.catalog import (
    catalog_version,
    clear_catalog,
    stored_catalog,
    upsert_products,
    upsert_promotions,
)


def test_a_database_of_the_third_schema_gets_the_catalogue_tables(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from server.db import MIGRATIONS_DIR

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    assert "catalog_products" not in inspect(engine).get_table_names()
    migrate(engine)
    assert {"catalog_products", "catalog_promotions"} <= set(inspect(engine).get_table_names())
    with make_session_factory(engine).begin() as session:
        upsert_products(session, [Product("大衣")])
    engine.dispose()


def test_upserts_are_idempotent_and_round_trip(session: Session) -> None:
    coat = Product("双面羊绒大衣", "大衣", 1299.0, {"尺码": "S/M/L"})
    sale = Promotion(
        "满300减50", "coupon", "全店", date(2026, 3, 1), date(2026, 3, 31), ("双面羊绒大衣",)
    )
    assert upsert_products(session, [coat, Product("帆布包")], key_id=1) == ["created", "created"]
    assert upsert_promotions(session, [sale], key_id=1) == ["created"]
    session.commit()
    empty_version = catalog_version(session)
    cheaper = Product("双面羊绒大衣", "大衣", 999.0, {"尺码": "S/M"})
    assert upsert_products(session, [cheaper], key_id=2) == ["updated"]
    session.commit()
    catalog = stored_catalog(session)
    assert list(catalog.products) == ["双面羊绒大衣", "帆布包"]
    assert catalog.products["双面羊绒大衣"] == cheaper
    assert catalog.promotions == [sale]
    assert catalog_version(session) != empty_version
    clear_catalog(session)
    session.commit()
    assert not stored_catalog(session)
    assert catalog_version(session)[0::2] == (0, 0)
