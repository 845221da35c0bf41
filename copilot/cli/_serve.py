"""``copilot serve``: run the HTTP API (and the dashboard) with uvicorn; ``copilot demo``: the
whole product offline in one command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from copilot.cli._common import app, console, err_console, handle_errors, progress_bar
from copilot.errors import BundleError, ConfigError, InputError

__all__ = ["demo", "serve"]


@app.command()
def serve(
    bundle_dir: Annotated[
        Path | None,
        typer.Option("--bundle", "-b", help="Model bundle to serve [env COPILOT_BUNDLE_DIR]."),
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind [env COPILOT_HOST; 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", min=1, max=65535, help="Port [env COPILOT_PORT; 8000]."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL [env COPILOT_DATABASE_URL; sqlite:///<data dir>/copilot.db].",
        ),
    ] = None,
    rubric: Annotated[
        Path | None,
        typer.Option("--rubric", help="Rubric YAML for scoring [env COPILOT_RUBRIC]."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where the default database lives [env COPILOT_DATA_DIR]."),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR [env COPILOT_LOG_LEVEL]."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            max=64,
            help="Server processes, each with its own copy of the models (about the number of "
            "cores; see the README) [env COPILOT_WORKERS; 1].",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (/v1, OpenAPI at /docs, metrics at /metrics, dashboard at /ui).

    Options override the COPILOT_* environment variables. Logs are JSON lines on stderr, one
    per request with its request id. Create API keys with `copilot keys create`.

    Example: copilot serve --bundle bundles/default --port 8000
    """
    import uvicorn
    from pydantic import ValidationError

    from copilot.schema import format_validation_error
    from server.app import create_app
    from server.db import describe_url, migrate
    from server.logs import configure_logging
    from server.protocol import uvicorn_options
    from server.settings import Settings

    options: dict[str, Any] = {
        "bundle_dir": bundle_dir,
        "host": host,
        "port": port,
        "database_url": database_url,
        "rubric": rubric,
        "data_dir": data_dir,
        "log_level": log_level,
        "workers": workers,
    }
    with handle_errors():
        try:
            settings = Settings(**{k: v for k, v in options.items() if v is not None})
        except ValidationError as exc:
            raise ConfigError(f"invalid setting: {format_validation_error(exc)}") from exc
        if not (settings.bundle_dir / "manifest.json").is_file():
            raise BundleError(
                f"no model bundle at {str(settings.bundle_dir)!r} (no manifest.json); train one "
                f"with `copilot train data.jsonl -o {settings.bundle_dir}` or pass --bundle"
            )
        # Fail here, with a clean message, rather than inside the server's start-up.
        check_port_free(settings.host, settings.port)
        migrate(settings.database_url)
        configure_logging(settings.log_level)
        err_console.print(
            f"serving {settings.bundle_dir} on http://{settings.host}:{settings.port} "
            f"(docs /docs, dashboard /ui; database {describe_url(settings.database_url)}; "
            f"{settings.workers} process{'es' if settings.workers > 1 else ''})",
            highlight=False,
        )
        common: dict[str, Any] = {
            "host": settings.host,
            "port": settings.port,
            "log_config": None,  # our JSON logging, set up above
            "access_log": False,  # the app logs each request itself, with its request id
            "ws": "none",
            # h11 with a limit on the request head, and JSON for requests it cannot parse
            **uvicorn_options(settings),
        }
        if settings.workers == 1:
            uvicorn.run(create_app(settings), **common)
            return
        _serve_workers(settings, common)


def _serve_workers(settings: Any, common: dict[str, Any]) -> None:
    """Run ``settings.workers`` server processes on one port (:func:`server.workers.serve_workers`).

    Each worker is a fresh interpreter that builds its app from the environment
    (``server.app:create_app_from_env``), so every setting is passed down as ``COPILOT_*``;
    ``COPILOT_SERVE_ID`` tells the workers of this run apart from earlier runs (a restarted
    worker follows a reload made during this run), and ``PROMETHEUS_MULTIPROC_DIR`` (a fresh
    directory, removed afterwards) lets ``/metrics`` add up every worker.
    """
    import os
    import shutil
    import tempfile
    import uuid

    from server.metrics import MULTIPROC_DIR_ENV
    from server.workers import serve_workers

    for name, value in settings.model_dump(exclude={"serve_id"}).items():
        if value is not None:
            os.environ[f"COPILOT_{name.upper()}"] = str(value)
    os.environ["COPILOT_SERVE_ID"] = uuid.uuid4().hex
    metrics_dir = tempfile.mkdtemp(prefix="copilot-metrics-")
    os.environ[MULTIPROC_DIR_ENV] = metrics_dir
    options = {k: v for k, v in common.items() if k not in ("host", "port")}
    try:
        try:
            code = serve_workers(settings.host, settings.port, settings.workers, **options)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}; is "
                "another server running there? (choose another --port)"
            ) from exc
        if code:
            raise ConfigError("a worker failed to start; its error is logged above")
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        del os.environ[MULTIPROC_DIR_ENV]


@app.command()
def demo(
    n: Annotated[int, typer.Option("--n", "-n", min=50, help="Demo conversations.")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Corpus and training seed.")] = 7,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Corpus and database.")] = Path(
        "data"
    ),
    bundle_dir: Annotated[Path, typer.Option("--bundle", "-b", help="Bundle to train.")] = Path(
        "bundles/default"
    ),
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port",
            "-p",
            min=1,
            max=65535,
            envvar="COPILOT_PORT",
            help="Port [env COPILOT_PORT; 8000].",
        ),
    ] = 8000,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Prepare everything, print the key, do not serve.")
    ] = False,
) -> None:
    """The whole product offline in one command: corpus, bundle, scored conversations, a
    supervisor key, and the API + dashboard.

    Each step is skipped when its output is already there and current: the corpus for the same
    --n and --seed, the bundle trained on that corpus, the conversations stored by that bundle.
    Besides the corpus, 300 customers who come back over days (copilot generate --journeys),
    moved so that their stories end in the last nine days, with their orders and a headquarters
    task, so today's follow-up queue, the profiles and the task's progress have something to
    show (stored again, moved to the new date, on each run).

    A supervisor key for every store of the demo is printed each time (only its hash is kept,
    so it cannot be shown again): the key an earlier run printed is revoked, so one demo key is
    live at a time. A busy port is reported before anything is minted.

    Example: copilot demo            # then open http://127.0.0.1:8000/ui and paste the key
    """
    corpus = data_dir / f"demo-{n}-{seed}.jsonl"
    database_url = f"sqlite:///{data_dir / 'copilot.db'}"
    with handle_errors():
        if not no_serve:
            check_port_free(host, port)
        data_dir.mkdir(parents=True, exist_ok=True)
        trained = _demo_bundle(corpus, n, seed, data_dir, bundle_dir)
        count, stores, key = _demo_database(corpus, database_url, bundle_dir, seed, trained)
        url = f"http://{host}:{port}/ui"
        console.print(
            f"\n[bold green]ready[/]: {count:,} synthetic conversations scored and "
            f"stored ({len(stores)} stores)\n  dashboard  {url}\n  API docs   "
            f"http://{host}:{port}/docs\n  supervisor key (shown once)  [bold]{key}[/]\n",
            highlight=False,
            soft_wrap=True,
        )
    if not no_serve:
        serve(
            bundle_dir=bundle_dir,
            host=host,
            port=port,
            database_url=database_url,
            rubric=None,
            data_dir=data_dir,
            log_level="WARNING",
        )


def _step(title: str, *args: str) -> None:
    """Run one ``copilot`` command of the demo in a fresh process (exit 1 when it fails)."""
    import subprocess
    import sys

    err_console.print(f"[bold]» {title}[/]", highlight=False)
    if subprocess.run([sys.executable, "-m", "copilot.cli", *args]).returncode != 0:
        raise typer.Exit(1)


def _demo_bundle(corpus: Path, n: int, seed: int, data_dir: Path, bundle_dir: Path) -> bool:
    """Generate the corpus and train the bundle unless current; whether it was already trained."""
    from copilot.cli._data import write_shop
    from models.train import file_digest

    if not corpus.is_file():
        _step("generating the demo corpus", "generate", "-n", str(n), "--seed", str(seed),
              "-o", str(corpus))  # fmt: skip
    products, promotions = write_shop(data_dir / "demo")
    manifest = bundle_dir / "manifest.json"
    digest = file_digest([corpus])
    trained = manifest.is_file() and json.loads(manifest.read_text()).get("data_hash") == digest
    if not trained:
        _step("training the bundle", "train", str(corpus), "-o", str(bundle_dir), "--seed",
              str(seed), "--catalog", str(products), "--promotions", str(promotions))  # fmt: skip
    return trained


def _demo_database(
    corpus: Path, database_url: str, bundle_dir: Path, seed: int, trained: bool
) -> tuple[int, set[str], str]:
    """Score and store the corpus (unless stored by this bundle), the returning customers and
    their task, and mint the demo key: ``(conversations, stores, key)``."""
    from copilot.io import iter_conversations
    from models.runtime import load_scorer
    from server.auth import Principal
    from server.db import list_conversations, make_engine, make_session_factory, migrate

    conversations = list(iter_conversations(corpus))
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_session_factory(engine)
    admin = Principal(key_id=0, role="admin", guide_id=None, stores=frozenset())
    with sessions() as session:
        stored, _ = list_conversations(session, admin, limit=1)
    scorer = load_scorer(bundle_dir)
    if stored < len(conversations) or not trained:
        _store_scored(sessions, scorer, conversations)
    stores = {c.store_id for c in conversations if c.store_id}
    with progress_bar(transient=True) as bar:
        bar.add_task("customers coming back: journeys ending this week, and a task", total=None)
        stores |= demo_customers(sessions, scorer, seed)
    with sessions() as session:
        key = demo_key(session, sorted(stores))
        session.commit()
    engine.dispose()
    return len(conversations), stores, key


def _store_scored(sessions: Any, scorer: Any, conversations: list[Any]) -> None:
    from server.db import upsert_conversations

    with progress_bar() as bar:
        task = bar.add_task("scoring and storing", total=len(conversations))
        for start in range(0, len(conversations), 250):
            batch = conversations[start : start + 250]
            with sessions() as session:
                upsert_conversations(
                    session, list(zip(batch, scorer.score_many(batch), strict=True))
                )
                session.commit()
            bar.advance(task, len(batch))


_DEMO_KEY = "demo supervisor"
_DEMO_TASK = "演示任务：回访犹豫的顾客"
_DEMO_CUSTOMERS = 300


def demo_customers(sessions: Any, scorer: Any, seed: int) -> set[str]:
    """Store :data:`_DEMO_CUSTOMERS` journey customers whose stories end in the last nine days
    (each customer's times moved by one offset), their orders, and a task for the follow-ups;
    returns their stores. Idempotent: ids are fixed, so a later run replaces them."""
    from datetime import datetime

    from copilot.orders import Order
    from copilot.schema import CHINA_TZ
    from copilot.synth import journey_orders, journeys
    from server.db import upsert_conversations
    from server.db.orders import attribute_customers, lock_customers, upsert_orders

    now = datetime.now(CHINA_TZ).replace(microsecond=0)
    chats = list(journeys(_DEMO_CUSTOMERS, seed=seed))
    orders = journey_orders(chats, seed=seed)
    shift = _recent_offsets(chats, now)
    moved = [_moved(c, shift[c.customer_id or ""]) for c in chats]
    paid = [Order(**{**o, "paid_at": o["paid_at"] + shift[o["customer_id"]]}) for o in orders]
    with sessions() as session:
        for start in range(0, len(moved), 250):
            batch = moved[start : start + 250]
            upsert_conversations(session, list(zip(batch, scorer.score_many(batch), strict=True)))
        customers = {c.customer_id for c in moved if c.customer_id}
        lock_customers(session, customers)
        upsert_orders(session, paid)
        attribute_customers(session, customers, 72.0)
        _demo_task(session, moved, now)
        session.commit()
    return {c.store_id for c in moved if c.store_id}


def _recent_offsets(chats: list[Any], now: Any) -> dict[str, Any]:
    """Per customer, the offset that ends their story 0 to 9 days before ``now``."""
    from datetime import timedelta

    last: dict[str, Any] = {}
    for c in chats:
        end = max(m.ts for m in c.messages if m.ts is not None)
        last[c.customer_id] = max(end, last.get(c.customer_id, end))
    return {
        cid: now - timedelta(days=n % 10, hours=1 + n % 7) - end
        for n, (cid, end) in enumerate(sorted(last.items()))
    }


def _moved(conversation: Any, offset: Any) -> Any:
    messages = [
        m.model_copy(update={"ts": m.ts + offset if m.ts else None}) for m in conversation.messages
    ]
    return conversation.model_copy(update={"messages": messages})


def _demo_task(session: Any, chats: list[Any], now: Any) -> None:
    """A task whose scripts are the guides' own follow-up openers (so its progress shows
    execution), unless one is already running."""
    from datetime import timedelta

    from server.db import tasks as tasks_repo

    if any(t.title == _DEMO_TASK and t.deadline > now for t in tasks_repo.list_tasks(session)):
        return
    openers = [
        c.messages[0].text
        for c in chats
        if c.meta.get("journey", {}).get("followed_up") and c.messages[0].role == "guide"
    ]
    variants = list(dict.fromkeys(openers))[:3] or ["您好，上次看的还在考虑吗？"]
    tasks_repo.insert_task(
        session,
        title=_DEMO_TASK,
        variants=variants,
        segment={"within_days": 30},
        stores=sorted({c.store_id for c in chats if c.store_id}),
        starts=now - timedelta(days=10),
        deadline=now + timedelta(days=3),
    )


def demo_key(session: Any, stores: list[str]) -> str:
    """A new demo supervisor key for ``stores``; the ones earlier demo runs printed are revoked
    (only hashes are kept, so a key cannot be shown twice: one live demo key at a time)."""
    from server.db import create_api_key, list_api_keys, revoke_api_key

    for old in list_api_keys(session):
        if old["name"] == _DEMO_KEY and old["active"]:
            revoke_api_key(session, old["id"])
    key, _ = create_api_key(session, "supervisor", stores=stores, name=_DEMO_KEY)
    return key


def check_port_free(host: str, port: int) -> None:
    """Raise a usage error (exit 2) when ``host:port`` cannot be listened on, before any work."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): another server "
                f"(an earlier copilot demo or serve?) may be using it; stop it, or choose "
                f"another port with --port {port + 1} (make demo PORT={port + 1})"
            ) from None
