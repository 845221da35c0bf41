"""Many requests at once on a small thread pool: no request may wait forever.

A request used to keep its pooled database connection from authentication to the end, even
while it waited for a worker thread; with more requests in flight than connections, the threads
then waited for connections that only thread-starved requests could give back (a deadlock until
the pool's 30 s timeout). Two threads and 24 concurrent requests reproduce it.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.server.api_fixtures import LiveServer, live_server, make_settings, synthetic


@pytest.fixture(scope="module")
def server(
    scoring_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(
        scoring_bundle_dir, tmp_path_factory.mktemp("api-concurrency"), worker_threads=2
    )
    with live_server(settings) as running:
        yield running


def test_suggest_many_requests_on_two_threads_all_answer(server: LiveServer) -> None:
    conversations = [c.model_dump(mode="json", exclude_none=True) for c in synthetic(24, seed=5)]
    clients = [server.new_client() for _ in conversations]
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            posts = [
                pool.submit(c.post, "/v1/suggest", json={"conversation": conv, "k": 2})
                for c, conv in zip(clients, conversations, strict=True)
            ]
            statuses = [p.result().status_code for p in posts]
    finally:
        for client in clients:
            client.close()
    assert statuses == [200] * len(conversations)
