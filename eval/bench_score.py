"""Batch scoring throughput and memory: local engine at 1 and 2 workers, Ray beside it.

Measures, on a generated corpus (100k conversations by default, cached under ``data/bench/``):
- ``local``: ``copilot.batch.score_file`` (what ``copilot score`` runs) with the local engine at
  each worker count, on the first tenth of the corpus and on the whole of it; each run in a child
  process of its own, whose whole process tree (workers and fork server included) has its RSS
  sampled from ``/proc`` every 0.1 s: the peak at 10k beside the peak at 100k shows whether
  memory stays flat as the input grows;
- ``ray``: the Ray engine on a local Ray instance (as many CPUs as workers) on ``--ray-n``
  conversations (20k by default; fewer than the local runs, start-up included, said in the
  output), with the same memory sampling (Ray's own processes are in the tree);
- ``floor``: tokenising the same messages alone, in one process, with the project's text
  pipeline (jieba via ``default_pipeline()``, as ``bench_io`` does), and the whole text pipeline
  (normalise + mask + tokens): scoring can go no faster per core than its tokeniser.

The bundle is ``--bundle`` (default ``bundles/default``); when it does not exist, one is trained on
2,000 generated conversations and cached beside the corpus.

Run: ``python -m eval.bench_score [--n 100000] [--workers 1,2] [--ray-n 20000]
[--out bench-results/bench_score.json]`` (``make bench`` runs it; ``--n 2000 --ray-n 1000`` is a
quick run, ``--ray-n 0`` skips Ray).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eval._corpus import cached_corpus
from eval._machine import machine_info

__all__ = ["main"]

_SAMPLE_S = 0.1


def _head(path: Path, n: int) -> Path:
    """The first ``n`` lines of a corpus file, cached beside it."""
    with path.open("rb") as source:
        if n >= sum(1 for _ in source):
            return path
    head = path.with_name(f"{path.stem}.head{n}.jsonl")
    if not head.exists():
        with path.open("rb") as source, head.open("wb") as out:
            for i, line in enumerate(source):
                if i >= n:
                    break
                out.write(line)
    return head


def _bundle(requested: Path, cache: Path, seed: int) -> tuple[Path, str]:
    if (requested / "manifest.json").is_file():
        return requested, f"{requested}"
    path = cache / f"bench-score-bundle-{seed}"
    if not (path / "manifest.json").is_file():
        from copilot.synth import generate
        from copilot.taxonomy import default_taxonomy
        from models.train import TrainConfig, train_bundle

        print(f"no bundle at {requested}; training one on 2,000 conversations -> {path}")
        conversations = list(generate(2_000, seed=seed + 1))
        train_bundle(
            conversations, taxonomy=default_taxonomy(), config=TrainConfig(seed=seed)
        ).save(path)
    return path, f"{path} (trained for the benchmark: {requested} was missing)"


# --- process-tree memory --------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                # the command name (field 2) may hold spaces; the parent pid follows its ")"
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(root: int) -> tuple[float, int]:
    """RSS of ``root`` and all its descendants (MiB), and how many processes that is."""
    tree = _children()
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(tree.get(pid, []))
    return sum(_rss_kb(pid) for pid in pids) / 1024, len(pids)


@contextmanager
def _sampling(root: int) -> Iterator[dict[str, float]]:
    """Samples the tree RSS of ``root`` every 0.1 s; the dict holds the peak when it ends."""
    peak = {"peak_tree_rss_mb": 0.0, "peak_processes": 0.0}
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            rss, count = tree_rss_mb(root)
            if rss > peak["peak_tree_rss_mb"]:
                peak["peak_tree_rss_mb"] = rss
            peak["peak_processes"] = max(peak["peak_processes"], count)
            stop.wait(_SAMPLE_S)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak["peak_tree_rss_mb"] = round(peak["peak_tree_rss_mb"], 1)


# --- one run, in a child process ----------------------------------------------------------------


def _run_stage(args: argparse.Namespace) -> None:
    """The child process: one ``score_file`` run; its measures go to ``--report``."""
    from copilot.batch import ScoreJob, score_file
    from models.runtime import load_scorer

    with tempfile.TemporaryDirectory(prefix="bench-score-") as scratch:
        output = Path(scratch) / "scores.jsonl"
        job = ScoreJob(
            args.input,
            output,
            args.bundle,
            workers=args.workers,
            engine=args.engine,
            batch_size=args.batch_size,
            scorer=load_scorer,
        )
        t0 = time.perf_counter()
        summary = score_file(job)
        wall = time.perf_counter() - t0
        output_mb = output.stat().st_size / (1 << 20)
    result = {
        "scored": summary.scored,
        "quarantined": summary.quarantined,
        "seconds": round(wall, 3),
        "conversations_per_s": round(summary.scored / wall, 1),
        "output_mb": round(output_mb, 1),
    }
    args.report.write_text(json.dumps(result) + "\n", encoding="utf-8")


def _measure(
    input: Path, bundle: Path, workers: int, engine: str, batch_size: int, scratch: Path
) -> dict[str, Any]:
    report = scratch / f"run-{engine}-{workers}-{input.stem}.json"
    command = [
        sys.executable, "-m", "eval.bench_score", "--stage", "run",
        "--input", str(input), "--bundle", str(bundle), "--engine", engine,
        "--workers", str(workers), "--batch-size", str(batch_size), "--report", str(report),
    ]  # fmt: skip
    env = dict(os.environ)
    if engine == "ray" and "RAY_ADDRESS" not in env:
        env.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local instance
    process = subprocess.Popen(command, env=env)
    with _sampling(process.pid) as memory:
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"the {engine} run with {workers} worker(s) failed (exit code {code})")
    result: dict[str, Any] = json.loads(report.read_text("utf-8"))
    result.update(memory)
    result["peak_processes"] = int(result["peak_processes"])
    return result


# --- the tokeniser floor ------------------------------------------------------------------------


def _floor(path: Path) -> dict[str, Any]:
    from copilot.io import iter_conversations
    from copilot.text import default_pipeline

    texts: list[str] = []
    conversations = 0
    for conversation in iter_conversations(path):
        conversations += 1
        texts.extend(m.text for m in conversation.messages)
    pipeline = default_pipeline()
    pipeline.process("预热一下分词器，加载词典 M码 165/88A")  # dictionary load is not throughput
    jieba_tok, hmm = pipeline.jieba, pipeline.config.hmm
    t0 = time.perf_counter()
    for text in texts:
        jieba_tok.lcut(text, HMM=hmm)
    jieba_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for text in texts:
        pipeline.process(text)
    pipeline_s = time.perf_counter() - t0
    return {
        "conversations": conversations,
        "messages": len(texts),
        "jieba_seconds": round(jieba_s, 3),
        "jieba_conversations_per_s": round(conversations / jieba_s, 1),
        "text_pipeline_seconds": round(pipeline_s, 3),
        "text_pipeline_conversations_per_s": round(conversations / pipeline_s, 1),
    }


# --- main ---------------------------------------------------------------------------------------


def _bench(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    corpus = cached_corpus(args.n, args.seed, args.cache)
    bundle, bundle_note = _bundle(args.bundle, args.cache, args.seed)
    sizes = sorted({max(1, args.n // 10), args.n})
    workers = [int(w) for w in args.workers.split(",")]

    local: list[dict[str, Any]] = []
    for count in workers:
        for size in sizes:
            print(f"local engine, {count} worker(s), {size:,} conversations ...", flush=True)
            run = _measure(_head(corpus, size), bundle, count, "local", args.batch_size, scratch)
            local.append({"workers": count, "conversations": size, **run})

    ray: dict[str, Any] | None = None
    if args.ray_n > 0:
        size = min(args.ray_n, args.n)
        count = max(workers)
        print(f"ray engine, {count} worker(s), {size:,} conversations ...", flush=True)
        try:
            run = _measure(_head(corpus, size), bundle, count, "ray", args.batch_size, scratch)
            ray = {"workers": count, "conversations": size, **run}
            ray["note"] = (
                f"local Ray instance with {count} CPUs, on {size:,} conversations (the local "
                f"engine ran on {args.n:,}); Ray start-up (~3-6 s here) is included"
            )
        except RuntimeError as exc:
            ray = {"error": str(exc)}

    print("tokeniser floor ...", flush=True)
    floor = _floor(corpus)
    biggest = {r["workers"]: r for r in local if r["conversations"] == args.n}
    one = biggest.get(1)
    return {
        "conversations": args.n,
        "batch_size": args.batch_size,
        "bundle": bundle_note,
        "local": local,
        "ray": ray,
        "floor": floor,
        "scoring_over_jieba_floor": (
            round(floor["jieba_conversations_per_s"] / one["conversations_per_s"], 2)
            if one
            else None
        ),
        "speedup_2_over_1_workers": (
            round(biggest[2]["conversations_per_s"] / biggest[1]["conversations_per_s"], 2)
            if 1 in biggest and 2 in biggest
            else None
        ),
        "memory_growth_small_to_full_mb": _growth(local, sizes),
        "machine": machine_info(load_before),
    }


def _growth(local: list[dict[str, Any]], sizes: list[int]) -> dict[str, float]:
    """Peak tree RSS on the whole corpus minus that on its first tenth, by worker count."""
    peaks = {(r["workers"], r["conversations"]): r["peak_tree_rss_mb"] for r in local}
    return {
        str(count): round(peaks[(count, sizes[-1])] - peaks[(count, sizes[0])], 1)
        for count in sorted({r["workers"] for r in local})
    }


def _print(result: dict[str, Any]) -> None:
    print()
    header = f"{'engine':<8}{'workers':>8}{'conversations':>15}{'seconds':>10}{'conv/s':>10}{'peak tree RSS MB':>18}{'procs':>7}"
    print(header)
    print("-" * len(header))
    rows = list(result["local"])
    if result["ray"] and "error" not in result["ray"]:
        rows.append({**result["ray"], "engine": "ray"})
    for row in rows:
        print(
            f"{row.get('engine', 'local'):<8}{row['workers']:>8}{row['conversations']:>15,}"
            f"{row['seconds']:>10.1f}{row['conversations_per_s']:>10.1f}"
            f"{row['peak_tree_rss_mb']:>18.1f}{row['peak_processes']:>7}"
        )
    floor = result["floor"]
    print(
        f"{'floor':<8}{1:>8}{floor['conversations']:>15,}{floor['jieba_seconds']:>10.1f}"
        f"{floor['jieba_conversations_per_s']:>10.1f}   (jieba tokens alone, one process)"
    )
    print(
        f"{'floor':<8}{1:>8}{floor['conversations']:>15,}{floor['text_pipeline_seconds']:>10.1f}"
        f"{floor['text_pipeline_conversations_per_s']:>10.1f}   (whole text pipeline, one process)"
    )
    if result["ray"] and "note" in result["ray"]:
        print(f"ray: {result['ray']['note']}")
    elif result["ray"]:
        print(f"ray: {result['ray']['error']}")
    print(
        f"scoring (1 worker) is {result['scoring_over_jieba_floor']}x slower than the jieba floor"
    )
    print(f"2 workers over 1: {result['speedup_2_over_1_workers']}x")
    print(f"peak memory growth from {result['conversations'] // 10:,} to {result['conversations']:,} "
          f"conversations, by workers: {result['memory_growth_small_to_full_mb']} MB")  # fmt: skip
    print(f"bundle: {result['bundle']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="conversations (default 100k)")
    parser.add_argument("--workers", default="1,2", help="local worker counts, comma-separated")
    parser.add_argument("--ray-n", type=int, default=20_000, help="conversations for Ray (0: skip)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/default"))
    parser.add_argument("--cache", type=Path, default=Path("data/bench"))
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench_score.json"))
    # Internal: one measured run, in a child process.
    parser.add_argument("--stage", choices=["all", "run"], default="all", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.stage == "run":
        if args.input is None or args.report is None:
            parser.error("--stage run needs --input and --report")
        args.workers = int(args.workers)
        _run_stage(args)
        return {}

    with tempfile.TemporaryDirectory(prefix="bench-score-") as scratch:
        result = _bench(args, Path(scratch))
    _print(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")
    return result


if __name__ == "__main__":
    main()
