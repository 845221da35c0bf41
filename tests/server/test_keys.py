"""API keys: principals and scopes, hashed storage, authentication, revocation, and the
``copilot keys`` commands; database tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from copilot.cli import app
from copilot.errors import ForbiddenError, InputError
from server.auth import Principal, generate_key, hash_key, require
from server.db import (
    authenticate,
    create_api_key,
    list_api_keys,
    make_engine,
    make_session_factory,
    revoke_api_key,
)
from server.db.models import ApiKey

runner = CliRunner()
GUIDE = Principal(key_id=1, role="guide", guide_id="g-1")
SUPERVISOR = Principal(key_id=2, role="supervisor", stores=frozenset({"s-1", "s-3"}))
ADMIN = Principal(key_id=3, role="admin")


# ----------------------------------------------------------------------------- principals


@pytest.mark.parametrize(
    ("principal", "guide_id", "store_id", "visible"),
    [
        (GUIDE, "g-1", "s-9", True),
        (GUIDE, "g-2", "s-1", False),
        (GUIDE, None, "s-1", False),
        (SUPERVISOR, "g-7", "s-3", True),
        (SUPERVISOR, "g-1", "s-2", False),
        (SUPERVISOR, "g-1", None, False),
        (ADMIN, None, None, True),
        (Principal(key_id=4, role="guide"), None, None, False),
    ],
)
def test_principal_can_see_only_its_scope(
    principal: Principal, guide_id: str | None, store_id: str | None, visible: bool
) -> None:
    assert principal.can_see(guide_id, store_id) is visible


def test_principal_require_and_check_scope_explain_the_refusal() -> None:
    assert SUPERVISOR.require(("supervisor", "admin")) is SUPERVISOR
    assert require(ADMIN, "admin") is ADMIN
    with pytest.raises(ForbiddenError, match="has role 'guide'; this action needs role 'super"):
        GUIDE.require(["supervisor", "admin"])
    with pytest.raises(ForbiddenError, match="conversation 'c-1' belongs to store 's-2'; this "):
        SUPERVISOR.check_scope("g-1", "s-2", what="conversation 'c-1'")
    with pytest.raises(ForbiddenError, match="belongs to guide 'g-2'; this API key may only see"):
        GUIDE.check_scope("g-2", "s-1")
    assert SUPERVISOR.to_dict() == {
        "role": "supervisor",
        "guide_id": None,
        "stores": ["s-1", "s-3"],
        "key_id": 2,
    }


def test_generated_keys_are_random_and_hashed_with_sha256() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    key = keys.pop()
    assert key.startswith("cpk_") and len(key) == 47
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()


# ----------------------------------------------------------------------------- repository


def test_keys_are_stored_hashed_and_authenticate(session: Session) -> None:
    key, info = create_api_key(session, "supervisor", stores=["s-3", " s-1 ", "s-3"], name="店长")
    session.commit()
    row = session.scalars(select(ApiKey)).one()
    assert row.key_hash != key and row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = [getattr(row, c.key) for c in ApiKey.__table__.columns]
    assert not any(key in str(value) for value in stored)  # no column holds the plaintext
    assert info["stores"] == ["s-1", "s-3"] and info["prefix"] == key[:8]
    assert authenticate(session, key) == Principal(
        key_id=info["id"], role="supervisor", guide_id=None, stores=frozenset({"s-1", "s-3"})
    )
    for wrong in (key[:-1], key + "x", "", None, "Bearer " + key, hash_key(key)):
        assert authenticate(session, wrong) is None
    listed = list_api_keys(session)
    assert listed == [info] and "key_hash" not in listed[0]


def test_revoked_keys_stop_authenticating(session: Session) -> None:
    key, info = create_api_key(session, "guide", guide_id="g-1")
    other, _ = create_api_key(session, "admin")
    assert revoke_api_key(session, info["id"]) is True
    session.commit()
    assert authenticate(session, key) is None
    assert authenticate(session, other) is not None
    first = list_api_keys(session)[0]["revoked_at"]
    assert first is not None and list_api_keys(session)[0]["active"] is False
    assert revoke_api_key(session, info["id"]) is True  # again: keeps the first time
    assert list_api_keys(session)[0]["revoked_at"] == first
    assert revoke_api_key(session, 999) is False


@pytest.mark.parametrize(
    ("role", "guide_id", "stores", "message"),
    [
        ("owner", None, (), "role must be one of guide, supervisor, admin, got 'owner'"),
        ("guide", None, (), "a guide key needs the guide it speaks for"),
        ("guide", "  ", (), "a guide key needs the guide it speaks for"),
        ("supervisor", None, (), "a supervisor key needs at least one store"),
        ("supervisor", None, ("", " "), "a supervisor key needs at least one store"),
        ("supervisor", "g-1", ("s-1",), "only guide keys have a guide"),
        ("guide", "g-1", ("s-1",), "only supervisor keys have stores"),
        ("admin", None, ("s-1",), r"an admin sees every store"),
    ],
)
def test_create_api_key_checks_the_scope_fits_the_role(
    session: Session, role: str, guide_id: str | None, stores: tuple[str, ...], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        create_api_key(session, role, guide_id=guide_id, stores=stores)
    assert list_api_keys(session) == []


# ----------------------------------------------------------------------------- CLI


def test_cli_keys_create_prints_the_key_once_and_it_authenticates(
    database_url: str, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        ["keys", "create", "--role", "supervisor", "--store", "s-3", "--store", "s-1"]
        + ["--name", "店长 张三", "--database-url", database_url],
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("cpk_") and "\n" not in key
    assert result.output.count(key) == 1
    assert "role supervisor, sees stores s-1, s-3, name '店长 张三'" in result.stderr
    assert "only time the key is shown" in result.stderr

    listed = runner.invoke(app, ["keys", "list", "--database-url", database_url])
    assert listed.exit_code == 0 and "supervisor" in listed.stdout and key not in listed.output
    if database_url.startswith("sqlite"):
        db_file = Path(database_url.removeprefix("sqlite:///"))
        files = [db_file, *db_file.parent.glob(db_file.name + "-*")]  # with the WAL
        assert not any(key.encode() in f.read_bytes() for f in files)

    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        principal = authenticate(session, key)
    engine.dispose()
    assert principal is not None and principal.stores == frozenset({"s-1", "s-3"})

    revoked = runner.invoke(app, ["keys", "revoke", "1", "--database-url", database_url])
    assert revoked.exit_code == 0 and "Revoked API key 1" in revoked.stderr
    as_json = runner.invoke(app, ["keys", "list", "--json", "--database-url", database_url])
    (info,) = json.loads(as_json.stdout)
    assert info["active"] is False and info["name"] == "店长 张三"


def test_cli_keys_use_the_environment_then_the_default_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COPILOT_DATA_DIR", raising=False)
    monkeypatch.delenv("COPILOT_DATABASE_URL", raising=False)
    assert runner.invoke(app, ["keys", "create", "--role", "admin"]).exit_code == 0
    assert (tmp_path / "data" / "copilot.db").exists()
    monkeypatch.setenv("COPILOT_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    result = runner.invoke(app, ["keys", "create", "--role", "guide", "--guide", "g-1"])
    assert result.exit_code == 0, result.output
    assert "env.db" in result.stderr
    assert (tmp_path / "env.db").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["create", "--role", "guide"], "a guide key needs the guide it speaks for: pass --guide"),
        (["create", "--role", "supervisor"], "a supervisor key needs at least one store: pass"),
        (["create", "--role", "boss"], "--role must be guide, supervisor or admin, got 'boss'"),
        (["create", "--role", "admin", "--database-url", "nope"], "'nope' is not a valid URL"),
        (
            ["list", "--database-url", "postgresql+psycopg://u:pw@127.0.0.1:1/x"],
            "cannot open the database postgresql+psycopg://u:***@127.0.0.1:1/x",
        ),
        (["revoke", "7"], "no API key has id 7; `copilot keys list` shows the ids"),
    ],
)
def test_cli_keys_errors_exit_2_with_a_message(
    engine: Engine, database_url: str, arguments: list[str], message: str
) -> None:
    if "--database-url" not in arguments:
        arguments = [*arguments, "--database-url", database_url]
    result = runner.invoke(app, ["keys", *arguments])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""
