"""The generated corpus the benchmarks share, written once per size and seed and reused."""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["cached_corpus"]


def cached_corpus(n: int, seed: int, cache: Path) -> Path:
    """``cache/bench-corpus-{n}-{seed}.jsonl``: ``n`` generated conversations, made on first use.

    The imports are local, so a benchmark's parent process stays light until it needs them.
    """
    from copilot.io import write_conversations
    from copilot.synth import generate

    path = cache / f"bench-corpus-{n}-{seed}.jsonl"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        write_conversations(path, generate(n, seed=seed))
        print(f"generated {n:,} conversations in {time.perf_counter() - t0:.1f}s -> {path}")
    return path
