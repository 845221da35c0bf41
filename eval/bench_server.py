"""Load test of the HTTP API from a second process on loopback.

    python -m eval.bench_server [--bundle bundles/default] [--clients 20] [--seconds 30]
        [--routes suggest,conversations] [--modes paced,saturated]
        [--out bench-results/bench_server.json]

Starts ``copilot serve --workers N`` (one process per core by default; a separate process group,
a fresh SQLite database, an admin key from ``copilot keys create``), then drives it from this process with ``--clients`` concurrent
keep-alive HTTP clients for ``--seconds`` each on:

- ``POST /v1/suggest``: generated conversations walked turn by turn, as a guide's chat tool asks
  on every customer message with the conversation so far (each suggestion served is also
  stored, as in production);
- ``POST /v1/conversations``: one generated conversation per request, scored and stored.

Each route is measured twice:

- **paced**: the clients together send ``--rate`` requests/s (200 by default), each on its own
  schedule, as guides' chat tools would; a client that falls behind sends at once. The target on
  this machine is p95 at most 50 ms at 200 requests/s with no errors.
- **saturated**: every client sends its next request as soon as the last one returns, which
  measures the most the server can do; its latencies are queueing (Little's law: mean latency =
  clients / throughput), not the latency a user sees at a given load.

``--routes`` and ``--modes`` pick the rows to run (all four by default).

The clients are ``aiohttp`` (one session, a keep-alive pool of ``--clients`` connections,
bodies pre-encoded): the load generator shares the machine's cores with the server, so it is
kept cheap, and each row reports its CPU time per request (``client_cpu_ms_per_request``, user
+ system time of this process over the row / requests sent) to show its share.

Prints requests/s, p50 / p95 / p99 latency, the error count, the load generator's CPU per
request and how the answers spread over the server's processes (``X-Served-By``), and writes ``--out`` (``bench-results/bench_server.json``; the server's log beside
it, ``bench_server.log``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
from yarl import URL

from copilot.synth import generate
from eval._machine import machine_info

RESULTS = Path("bench-results")
ROUTES = {"suggest": "/v1/suggest", "conversations": "/v1/conversations"}
MODES = ("paced", "saturated")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _copilot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copilot.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"copilot serve exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"copilot serve not ready after {timeout:.0f}s")


def _suggest_bodies(n: int, seed: int) -> list[bytes]:
    """Request bodies as a guide's chat tool sends them: for each conversation, the conversation
    so far at each of its customer messages, in order (one conversation after another)."""
    bodies = []
    for conv in generate(n, seed=seed):
        for cut, message in enumerate(conv.messages, start=1):
            if message.role != "customer":
                continue
            prefix = conv.model_copy(
                update={"messages": conv.messages[:cut], "outcome": None, "labels": None}
            )
            payload = {"conversation": json.loads(prefix.to_json()), "k": 3}
            bodies.append(json.dumps(payload, ensure_ascii=False).encode())
    return bodies


def _conversation_bodies(n: int, seed: int) -> list[bytes]:
    return [conv.to_json() for conv in generate(n, seed=seed)]


async def _load(
    url: str,
    path: str,
    bodies: list[bytes],
    key: str,
    clients: int,
    seconds: float,
    rate: float | None = None,
) -> dict[str, Any]:
    """``clients`` concurrent clients posting ``bodies`` round-robin for ``seconds``: together
    ``rate`` requests/s when given (paced), else each as fast as it gets answers (saturated).

    Latency is of successful requests only, from sending to the whole response body read.
    Errors are counted by status code or exception class name; none stops the run."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    served_by: dict[str, int] = {}  # answers per server process (X-Served-By)
    counter = itertools.count()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    target = URL(f"{url}{path}")  # parsed once, not per request
    interval = clients / rate if rate else 0.0
    cpu_before = time.process_time()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=clients),  # keep-alive pool, one per client
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:
        began = time.perf_counter()
        stop = began + seconds

        async def worker(k: int) -> None:
            due = began + interval * k / clients  # stagger the clients over one interval
            while True:
                if interval:
                    wait = due - time.perf_counter()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    due += interval
                if time.perf_counter() >= stop:
                    return
                body = bodies[next(counter) % len(bodies)]
                started = time.perf_counter()
                try:
                    async with session.post(target, data=body) as response:
                        await response.read()
                        status = response.status
                        by = response.headers.get("x-served-by", "?")
                except Exception as exc:  # any failure is counted, by kind; the run goes on
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                if status >= 400:
                    errors[str(status)] = errors.get(str(status), 0) + 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                served_by[by] = served_by.get(by, 0) + 1

        await asyncio.gather(*(worker(k) for k in range(clients)))
        elapsed = time.perf_counter() - began
    cpu_ms = (time.process_time() - cpu_before) * 1000
    sent = len(latencies) + sum(errors.values())
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "path": path,
        "mode": f"paced {rate:g}/s" if rate else "saturated",
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        # the load generator's own CPU (user + system) per request sent, of the shared cores
        "client_cpu_ms_per_request": round(cpu_ms / sent, 3) if sent else None,
        # how the requests spread over the server's worker processes
        "served_by": sorted(served_by.values(), reverse=True),
    }


def _choices(value: str, allowed: Sequence[str]) -> list[str]:
    """A comma list of names from ``allowed``, in the order given, without repeats."""
    names = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    unknown = [v for v in names if v not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma list from {', '.join(allowed)}; got {value!r}"
        )
    return names


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="bundles/default")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="paced requests/s, all clients")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 8),
        help="server processes (copilot serve --workers; default: one per core)",
    )
    parser.add_argument("--n", type=int, default=2000, help="distinct request bodies")
    parser.add_argument(
        "--routes",
        type=lambda v: _choices(v, list(ROUTES)),
        default=list(ROUTES),
        help="comma list from suggest,conversations (default both)",
    )
    parser.add_argument(
        "--modes",
        type=lambda v: _choices(v, MODES),
        default=list(MODES),
        help="comma list from paced,saturated (default both)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS / "bench_server.json",
        help="the JSON results; the server's log is written beside it (bench_server.log)",
    )
    args = parser.parse_args(argv)

    out_path: Path = args.out
    out_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = out_path.parent / "bench_server.log"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "COPILOT_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "COPILOT_BUNDLE_DIR": args.bundle,
            "COPILOT_LOG_LEVEL": "INFO",  # the default: one JSON access line per request
        }
        key = _copilot(
            "keys", "create", "--role", "admin", "--name", "bench", env=env
        ).stdout.strip()
        serve = [sys.executable, "-m", "copilot.cli", "serve", "--port", str(port)]
        if args.workers > 1:
            serve += ["--workers", str(args.workers)]
        log = log_path.open("w")  # the server's JSON logs: errors, if any
        proc = subprocess.Popen(serve, env=env, stdout=log, stderr=log)
        try:
            _wait_ready(url, proc)
            bodies = {
                "suggest": _suggest_bodies(args.n, seed=11),
                "conversations": _conversation_bodies(args.n, seed=12),
            }
            # warm up (jieba, caches, SQLite pages) before measuring
            asyncio.run(_load(url, "/v1/suggest", bodies["suggest"], key, 2, 2.0))
            rates = {"paced": args.rate, "saturated": None}
            results = {}
            for name in args.routes:
                for mode in args.modes:
                    results[f"{name}_{mode}"] = asyncio.run(
                        _load(
                            url,
                            ROUTES[name],
                            bodies[name],
                            key,
                            args.clients,
                            args.seconds,
                            rates[mode],
                        )
                    )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
    out = {
        "machine": machine_info(load_before),
        "bundle": args.bundle,
        "server_workers": args.workers,
        **results,
    }
    out_path.write_text(json.dumps(out, indent=2))
    print(f"\nload test: {args.clients} clients x {args.seconds:g}s, server workers {args.workers}")
    print(
        "| route | load | req/s | p50 ms | p95 ms | p99 ms | errors | client CPU ms/req "
        "| answers per worker |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results.values():
        print(
            f"| POST {r['path']} | {r['mode']} | {r['requests_per_s']} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['p99_ms']} | {r['errors']} {r['error_kinds'] or ''} | "
            f"{r['client_cpu_ms_per_request']} | {' / '.join(map(str, r['served_by']))} |"
        )
    print(f"wrote {out_path}")
    return out


if __name__ == "__main__":
    main()
