"""API key commands: ``copilot keys create | list | revoke``.

The database is ``--database-url``, else ``$COPILOT_DATABASE_URL``, else the server's default
``sqlite:///$COPILOT_DATA_DIR/copilot.db`` (``data/copilot.db``); it is migrated before use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from copilot.cli._common import app, console, err_console, handle_errors
from copilot.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

keys_app = typer.Typer(
    help="Create, list and revoke the server's API keys (role guide, supervisor or admin).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Database URL (default: $COPILOT_DATABASE_URL, else sqlite:///data/copilot.db).",
        show_default=False,
    ),
]


def database_url(option: str | None) -> str:
    """The database to use: the option, else the environment, else the server's default."""
    if option:
        return option
    if os.environ.get("COPILOT_DATABASE_URL"):
        return os.environ["COPILOT_DATABASE_URL"]
    # Mirrors server.settings.Settings: database_url defaults to a file in data_dir.
    return f"sqlite:///{os.environ.get('COPILOT_DATA_DIR') or 'data'}/copilot.db"


@contextmanager
def _session(url: str | None) -> Iterator[Session]:
    """A session on the migrated database that commits when the block succeeds."""
    from server.db import make_engine, make_session_factory, migrate

    engine = make_engine(database_url(url))
    try:
        migrate(engine)
        with make_session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


def _scope(info: dict[str, object]) -> str:
    if info["role"] == "guide":
        return f"guide {info['guide_id']}"
    if info["role"] == "supervisor":
        stores = info["stores"]
        assert isinstance(stores, list)
        return f"stores {', '.join(stores)}"
    return "everything"


@keys_app.command("create")
def create(
    role: Annotated[
        str, typer.Option("--role", help="guide, supervisor or admin.", show_default=False)
    ],
    guide: Annotated[
        str | None, typer.Option("--guide", help="The guide a guide key speaks for.")
    ] = None,
    store: Annotated[
        list[str] | None,
        typer.Option("--store", help="A store a supervisor key covers; repeatable."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="A label for people, e.g. 店长 张三.")] = "",
    url: DatabaseOpt = None,
) -> None:
    """Create an API key and print it once (only its SHA-256 hash is stored).

    The key alone goes to stdout, so KEY=$(copilot keys create ...) captures it; its id, role
    and scope go to stderr.

    Example: copilot keys create --role supervisor --store s-3 --name "店长 张三"
    """
    from server.db import check_key_scope, create_api_key, describe_url

    with handle_errors():
        if role not in ("guide", "supervisor", "admin"):
            raise InputError(f"--role must be guide, supervisor or admin, got {role!r}")
        check_key_scope(role, guide, store or ())  # before the database is created or touched
        with _session(url) as session:
            key, info = create_api_key(session, role, guide_id=guide, stores=store or (), name=name)
    typer.echo(key)
    label = f", name {info['name']!r}" if info["name"] else ""
    err_console.print(
        f"Created API key {info['id']} (role {info['role']}, sees {_scope(info)}{label}) in "
        f"{describe_url(database_url(url))}.\n"
        "[bold]This is the only time the key is shown[/]: store it now. The server keeps only "
        "its SHA-256 hash; a lost key cannot be recovered, only revoked and replaced.",
        highlight=False,
    )


@keys_app.command("list")
def list_(
    url: DatabaseOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List API keys (id, role, scope, name, created, revoked); never the keys themselves.

    Example: copilot keys list --json
    """
    from server.db import list_api_keys

    with handle_errors(), _session(url) as session:
        keys = list_api_keys(session)
    if as_json:
        typer.echo(json.dumps(keys, ensure_ascii=False, indent=2))
        return
    if not keys:
        err_console.print("No API keys yet; create one with `copilot keys create --role admin`.")
        return
    table = Table(title="API keys")
    for column in ("id", "key", "role", "scope", "name", "created (UTC)", "revoked (UTC)"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for info in keys:
        revoked = info["revoked_at"]
        table.add_row(
            str(info["id"]),
            f"{info['prefix']}…",
            info["role"],
            _scope(info),
            info["name"],
            info["created_at"][:19].replace("T", " "),
            "-" if revoked is None else f"[red]{revoked[:19].replace('T', ' ')}[/]",
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `copilot keys list`).")],
    url: DatabaseOpt = None,
) -> None:
    """Revoke an API key: requests with it get 401 from now on.

    Example: copilot keys revoke 3
    """
    from server.db import revoke_api_key

    with handle_errors(), _session(url) as session:
        if not revoke_api_key(session, key_id):
            raise InputError(f"no API key has id {key_id}; `copilot keys list` shows the ids")
    err_console.print(f"Revoked API key {key_id}.")
