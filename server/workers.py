"""Several server processes on one port, with connections spread by the kernel.

``copilot serve --workers N`` could use uvicorn's own supervisor, but its workers share one
listening socket: whichever process wakes first accepts every connection waiting, so 20 clients
that connect at once all land on one worker while the others idle (measured: 210 instead of
420 suggestions/s). Here each worker binds its own socket with ``SO_REUSEPORT`` and the kernel
spreads new connections over them (by a hash of the client address and port), as gunicorn's
``--reuse-port`` does::

    parent (no models)   binds the port once to check it is free, starts N workers, restarts
                         a worker that dies, stops them all on Ctrl-C / SIGTERM
    worker i             own SO_REUSEPORT socket, uvicorn, create_app_from_env()

A worker that fails at start-up (exit code 3: bad bundle, database unreachable) stops the
server instead of being restarted in a loop. Where ``SO_REUSEPORT`` does not exist (Windows),
uvicorn's supervisor is used.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from typing import Any

import uvicorn

__all__ = ["serve_workers"]

logger = logging.getLogger(__name__)

APP = "server.app:create_app_from_env"
_STARTUP_FAILURE = 3  # uvicorn's exit code when the app's start-up fails


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: its own socket on the shared port, one uvicorn server."""
    sock = _socket(host, port)
    config = uvicorn.Config(APP, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(host: str, port: int, workers: int, **options: Any) -> int:
    """Run ``workers`` server processes on ``host:port`` until Ctrl-C or SIGTERM.

    Args:
        host: address to bind.
        port: port to bind.
        workers: processes to run.
        **options: passed to :class:`uvicorn.Config` (the app is built from ``COPILOT_*``
            environment variables, which the caller sets).

    Returns:
        The exit code: 0 after a clean stop, 3 when a worker failed to start.

    Raises:
        OSError: the port cannot be bound (in use by a process without ``SO_REUSEPORT``).
    """
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - Windows
        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, **options)
        return 0
    # A plain bind fails if anything listens on the port, even another server's SO_REUSEPORT
    # group (joining it would split the traffic between two servers); then hold the port.
    with socket.socket(_family(host)) as check:
        check.bind((host, port))
    probe = _socket(host, port)
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start(i: int) -> multiprocessing.process.BaseProcess:
        process = context.Process(
            target=_worker, args=(host, port, options), name=f"copilot-worker-{i}"
        )
        process.start()
        return process

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    processes = [start(i) for i in range(workers)]
    code = 0
    try:
        while not stop.wait(0.5):
            for i, process in enumerate(processes):
                if process.is_alive():
                    continue
                if process.exitcode == _STARTUP_FAILURE:
                    logger.error("worker %d failed to start; stopping the server", i)
                    code = _STARTUP_FAILURE
                    stop.set()
                    break
                logger.warning(
                    "worker %d (pid %s) exited with code %s; starting another",
                    i,
                    process.pid,
                    process.exitcode,
                )
                processes[i] = start(i)
    finally:
        for process in processes:  # Ctrl-C reached the workers too: let them finish first
            process.join(timeout=1.0)
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + 30
        for process in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        probe.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return code
