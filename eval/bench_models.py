"""Training cost, bundle size and classification speed of the default backend (offline + linear).

Measures, on generated corpora:
- ``train``: ``train_bundle`` on N conversations (20k by default, ``split="train"`` phrases), run in
  a child process so its peak RSS belongs to training alone; generating the corpus is timed
  apart and not counted; the per-step timings of ``manifest["timings_s"]`` are reported too;
- ``bundle``: size on disk after ``bundle.save(dir)`` and the time of ``load_bundle(dir)``;
- ``latency``: one customer message at a time, from a held-out corpus (other seed, ``heldout``
  phrases), through ``predict_intents([text])`` (the intent path) and ``classify([text])``
  (intent + next-best actions, the CLI/HTTP shape), after a warm-up; p50/p95/p99;
- ``throughput``: ``predict_intents`` over many held-out messages in fixed-size batches.

Targets: training at most 180 s, single-message p95 at most 2 ms.

Run: ``python -m eval.bench_models [--train-conversations 20000] [--seed 0]
[--out bench-results/bench_models.json] [--keep-bundle DIR]``
(``--train-conversations 300`` is a quick smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval._machine import machine_info

__all__ = ["main"]

TARGET_TRAIN_SECONDS = 180.0
TARGET_P95_MS = 2.0
_WARMUP_CALLS = 100


def _maxrss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 << 20 if sys.platform == "darwin" else 1 << 10
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _train_stage(n: int, seed: int, bundle_dir: Path, report: Path) -> None:
    """The child process: generate, train, save; write the measures to ``report``."""
    from copilot.synth import generate
    from copilot.taxonomy import default_taxonomy
    from models.train import TrainConfig, train_bundle

    taxonomy = default_taxonomy()
    t0 = time.perf_counter()
    conversations = list(generate(n, seed=seed, split="train"))
    generate_s = time.perf_counter() - t0
    rss_before = _maxrss_mb()

    t0 = time.perf_counter()
    bundle = train_bundle(conversations, taxonomy=taxonomy, config=TrainConfig(seed=seed))
    train_s = time.perf_counter() - t0
    rss_after = _maxrss_mb()

    t0 = time.perf_counter()
    bundle.save(bundle_dir)
    save_s = time.perf_counter() - t0

    training = bundle.manifest["training"]
    result = {
        "generate_seconds": round(generate_s, 3),
        "train_seconds": round(train_s, 3),
        "save_seconds": round(save_s, 3),
        "rss_before_train_mb": round(rss_before, 1),
        "train_peak_rss_mb": round(rss_after, 1),
        "train_rss_growth_mb": round(rss_after - rss_before, 1),
        "messages": sum(len(c.messages) for c in conversations),
        "intent_examples": sum(training["intent_examples"].values()),
        "action_examples": sum(training["action_examples"].values()),
        "timings_s": bundle.manifest["timings_s"],
        "metrics": bundle.manifest.get("metrics", {}),
    }
    report.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _train_in_child(n: int, seed: int, bundle_dir: Path, scratch: Path) -> dict[str, Any]:
    report = scratch / "train-report.json"
    command = [
        sys.executable, "-m", "eval.bench_models", "--stage", "train",
        "--train-conversations", str(n), "--seed", str(seed),
        "--bundle-dir", str(bundle_dir), "--report", str(report),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    result: dict[str, Any] = json.loads(report.read_text("utf-8"))
    return result


def _heldout_texts(n: int, seed: int) -> list[str]:
    """``n`` customer messages from a corpus of another seed and phrases the training never saw."""
    from copilot.synth import generate

    texts: list[str] = []
    for conversation in generate(n, seed=seed, split="heldout"):
        texts += [m.text for m in conversation.messages if m.role == "customer"]
        if len(texts) >= n:
            break
    return texts[:n]


def _latency_ms(call: Callable[[list[str]], object], texts: Sequence[str]) -> dict[str, float]:
    """Percentiles of ``call`` on one text at a time."""
    ns = np.empty(len(texts), dtype=np.float64)
    for i, text in enumerate(texts):
        t0 = time.perf_counter_ns()
        call([text])
        ns[i] = time.perf_counter_ns() - t0
    ms = ns / 1e6
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def _dir_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / (1 << 20)


def _target(value: float, limit: float) -> dict[str, Any]:
    return {"value": value, "target_max": limit, "pass": value <= limit}


def _print_table(result: dict[str, Any], prefix: str = "") -> None:
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if set(value) == {"value", "target_max", "pass"}:
                verdict = "PASS" if value["pass"] else "FAIL"
                print(f"{name:<44}{value['value']:>10,} <= {value['target_max']:<6} {verdict}")
            else:
                _print_table(value, f"{name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            print(f"{name:<44}{value:>16,}")
        else:
            print(f"{name:<44}{value!s:>16}")


def _bench(args: argparse.Namespace, bundle_dir: Path, scratch: Path) -> dict[str, Any]:
    from models.bundle import Bundle, load_bundle

    load_before = os.getloadavg()[0]
    print(f"training on {args.train_conversations:,} conversations in a child process ...")
    train = _train_in_child(args.train_conversations, args.seed, bundle_dir, scratch)

    t0 = time.perf_counter()
    bundle = load_bundle(bundle_dir)
    load_s = time.perf_counter() - t0

    heldout_seed = args.seed + 1000
    n_texts = max(args.latency_messages + _WARMUP_CALLS, args.throughput_messages)
    texts = _heldout_texts(n_texts, heldout_seed)
    warmup = texts[:_WARMUP_CALLS]
    timed = texts[_WARMUP_CALLS : _WARMUP_CALLS + args.latency_messages]

    # The first call pays the lazy initialisation (tokeniser dictionary); report it apart.
    t0 = time.perf_counter_ns()
    bundle.predict_intents([warmup[0]])
    first_ms = (time.perf_counter_ns() - t0) / 1e6

    # The embedder memoises tokenisations, so each measure gets a freshly loaded bundle: a path
    # timed after another on the same texts would find them already tokenised.
    def fresh() -> Bundle:
        loaded = load_bundle(bundle_dir)
        for text in warmup:
            loaded.classify([text])
        return loaded

    intents = _latency_ms(fresh().predict_intents, timed)
    classify = _latency_ms(fresh().classify, timed)

    batch_texts = texts[: args.throughput_messages]
    bundle = fresh()
    t0 = time.perf_counter()
    for start in range(0, len(batch_texts), args.batch_size):
        bundle.predict_intents(batch_texts[start : start + args.batch_size])
    batch_s = time.perf_counter() - t0

    return {
        "train_conversations": args.train_conversations,
        "train_messages": train["messages"],
        "train_intent_examples": train["intent_examples"],
        "train_action_examples": train["action_examples"],
        "generate_seconds": train["generate_seconds"],
        "train_seconds": train["train_seconds"],
        "train_steps_s": train["timings_s"],
        "save_seconds": train["save_seconds"],
        "rss_before_train_mb": train["rss_before_train_mb"],
        "train_peak_rss_mb": train["train_peak_rss_mb"],
        "train_rss_growth_mb": train["train_rss_growth_mb"],
        "bundle_mb": round(_dir_mb(bundle_dir), 2),
        "bundle_files": sum(1 for p in bundle_dir.rglob("*") if p.is_file()),
        "load_seconds": round(load_s, 3),
        "first_predict_ms": round(first_ms, 1),
        "latency_messages": len(timed),
        "latency_distinct_texts": len(set(timed)),
        "heldout_seed": heldout_seed,
        "predict_intents": intents,
        "classify": classify,
        "batch_size": args.batch_size,
        "batch_messages": len(batch_texts),
        "batch_seconds": round(batch_s, 3),
        "batch_messages_per_s": round(len(batch_texts) / batch_s),
        "validation": train["metrics"],
        "targets": {
            "train_seconds": _target(train["train_seconds"], TARGET_TRAIN_SECONDS),
            "predict_intents_p95_ms": _target(intents["p95_ms"], TARGET_P95_MS),
            "classify_p95_ms": _target(classify["p95_ms"], TARGET_P95_MS),
        },
        "machine": machine_info(load_before),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-conversations", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-messages", type=int, default=2_000)
    parser.add_argument("--throughput-messages", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench_models.json"))
    parser.add_argument("--keep-bundle", type=Path, default=None, metavar="DIR",
                        help="write the bundle here and keep it (default: a temporary directory)")  # fmt: skip
    # Internal: the child process that trains (so its peak RSS is training's alone).
    parser.add_argument("--stage", choices=["all", "train"], default="all", help=argparse.SUPPRESS)
    parser.add_argument("--bundle-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.stage == "train":
        if args.bundle_dir is None or args.report is None:
            parser.error("--stage train needs --bundle-dir and --report")
        _train_stage(args.train_conversations, args.seed, args.bundle_dir, args.report)
        return {}

    with tempfile.TemporaryDirectory(prefix="bench-models-") as scratch:
        bundle_dir = args.keep_bundle or Path(scratch) / "bundle"
        result = _bench(args, bundle_dir, Path(scratch))

    print()
    print(f"{'measure':<44}{'value':>16}")
    print("-" * 60)
    _print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")
    if args.keep_bundle:
        print(f"bundle kept at {args.keep_bundle}")
    return result


if __name__ == "__main__":
    main()
