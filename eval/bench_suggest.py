"""Suggestion latency, index build cost and memory of the default engine at 10k, 100k and 1M scripts.

What it measures, for the default offline embedder and ``EngineConfig()``:

- ``pool``: one bundle trained on N generated conversations (20k by default, ``split="train"``),
  then winning scripts mined with that bundle's embedder (gold labels resolved as training
  does, the shipped compliance rules and text pipeline) from those conversations and M more of
  another seed. The contexts of their winning uses are the pool of real index entries. This runs
  in a child process; its own time and peak RSS are reported apart.
- for each size (``--sizes``), in a child process of its own so that its peak RSS is that size's
  alone and the 1M run's memory goes back when it ends:

  - ``build``: ``ScriptIndex(kind="auto").build(...)`` over that many entries (flat below the
    HNSW threshold, HNSW at or above it): wall time, the kind chosen, peak RSS before and after;
  - ``suggest``: ``engine.suggest(prefix, k=3)`` in-process, one at a time, after warm-up calls,
    over prefixes of held-out conversations (another seed, ``heldout`` phrases) that end in a
    customer message, cut at a random customer message; p50/p95/p99;
  - the retrieval alone with the same query vectors and tokens (as the engine builds them) and
    ``k = candidates``: the raw FAISS search (``index.index_.search``), ``search_dense``,
    ``search_sparse`` (BM25) and the fused ``search`` the engine calls; the ratio of the
    suggestion latency to the raw FAISS search;
  - at ``--profile-size`` (100k by default): ``cProfile`` over the same suggestions on a freshly
    loaded bundle, top functions by own and by cumulative time.

Sizes above the pool are reached by replication: every mined context once, then copies of
random ones with small gaussian noise on the vector (re-normalised) and the token list shuffled
and subsampled; the copies keep their source's script. Sizes at or below the pool are random
subsets of it. The output says which (``entries`` and ``note``).

Guards: a size whose HNSW build passes ``--max-build-seconds`` or whose RSS passes
``--max-rss-mb`` is stopped and measured again with ``hnsw_m=--fallback-hnsw-m``; the output
says so.

Target: suggestion p95 at most 15 ms at 100k scripts.

Run: ``python -m eval.bench_suggest [--sizes 10000,100000,1000000] [--queries 1000]
[--train-conversations 20000] [--mine-conversations 50000] [--out bench-results/bench_suggest.json]
[--pool-dir DIR]`` (``--pool-dir`` keeps the bundle and the mined pool, and reuses them when
they were made with the same settings).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self

import numpy as np

from eval._machine import machine_info
from models.script_index import ScriptIndex

__all__ = ["main"]

TARGET_P95_MS = 15.0
TARGET_SIZE = 100_000
_POOL_FILES = ("pool.json", "pool.npz")


# --------------------------------------------------------------------------- measuring


def _maxrss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 << 20 if sys.platform == "darwin" else 1 << 10
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _rss_mb(pid: int | str = "self") -> float | None:
    """The resident set size now (Linux ``/proc``), or ``None`` where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) so that the next peak is one step's alone.

    Returns:
        ``False`` where the kernel does not allow it (then ``ru_maxrss`` is the fallback).
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _peak_rss_mb() -> float:
    """The peak RSS since the last :func:`_reset_peak_rss` (``VmHWM``), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _maxrss_mb()


def _percentiles(ns: np.ndarray) -> dict[str, float]:
    ms = ns / 1e6
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def _target(value: float, limit: float) -> dict[str, Any]:
    return {"value": value, "target_max": limit, "pass": value <= limit}


# --------------------------------------------------------------------------- the pool (child)


class _CapturingIndex(ScriptIndex):
    """Keeps what ``mine_scripts`` would index instead of indexing it.

    The pool's library is never searched: every size builds its own index from these rows.
    """

    def __bool__(self) -> bool:
        # mine_scripts does ``index = index or ScriptIndex()``, and an unbuilt index has len 0,
        # so without this it would silently replace the index passed in.
        return True

    def build(
        self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray, tokens: Sequence[Sequence[str]]
    ) -> Self:
        self.captured = (np.asarray(ids), np.asarray(vectors, dtype=np.float32), list(tokens))
        return self


def _pool_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "train_conversations": args.train_conversations,
        "mine_conversations": args.mine_conversations,
        "seed": args.seed,
    }


def _pool_stage(args: argparse.Namespace, pool_dir: Path, report: Path) -> None:
    """Train, mine the pool of contexts, save the bundle (without scripts) and the pool."""
    from copilot.compliance import default_checker
    from copilot.synth import generate
    from copilot.taxonomy import default_taxonomy
    from copilot.text import default_pipeline
    from models.scripts import mine_scripts
    from models.train import TrainConfig, train_bundle

    def say(message: str) -> None:
        print(f"  [pool] {message}", flush=True)

    taxonomy = default_taxonomy()
    t0 = time.perf_counter()
    train = list(generate(args.train_conversations, seed=args.seed, split="train"))
    generate_train_s = time.perf_counter() - t0

    say(f"training on {len(train):,} conversations ...")
    t0 = time.perf_counter()
    bundle = train_bundle(train, taxonomy=taxonomy, config=TrainConfig(seed=args.seed))
    train_s = time.perf_counter() - t0
    train_rss = _maxrss_mb()
    trained_scripts = bundle.manifest["training"].get("scripts", {})
    say(
        f"trained in {train_s:.0f} s; its library: {trained_scripts.get('winning_uses_indexed')} winning uses"
    )

    t0 = time.perf_counter()
    extra = list(generate(args.mine_conversations, seed=args.seed + 1, split="train"))
    generate_extra_s = time.perf_counter() - t0

    conversations = train + extra
    pipeline = default_pipeline()
    say(f"mining {len(conversations):,} conversations with the bundle's embedder ...")
    capture = _CapturingIndex()
    t0 = time.perf_counter()
    library = mine_scripts(
        conversations,
        lambda c: bundle.labels_of(c, use_gold=True),
        bundle.embedder,
        lambda text: pipeline.process(text).tokens,
        checker=default_checker(),
        pipeline=pipeline,
        index=capture,
        progress=lambda name: say(f"  {name}"),
    )
    mine_s = time.perf_counter() - t0
    _ids, vectors, tokens = capture.captured
    say(f"mined {len(vectors):,} winning uses of {len(library):,} scripts in {mine_s:.0f} s")

    vocab: dict[str, int] = {}
    flat = [vocab.setdefault(t, len(vocab)) for doc in tokens for t in doc]
    offsets = np.zeros(len(tokens) + 1, dtype=np.int64)
    np.cumsum([len(doc) for doc in tokens], out=offsets[1:])

    bundle.scripts = None  # the sizes build their own libraries from the pool
    bundle.save(pool_dir / "bundle")
    np.savez(
        pool_dir / "pool.npz",
        vectors=vectors,
        tok_ids=np.asarray(flat, dtype=np.int32),
        offsets=offsets,
        use_script=library.use_script,
        centroids=library.centroids,
        reply_vectors=library.reply_vectors,
    )
    (pool_dir / "pool.json").write_text(
        json.dumps(
            {
                "settings": _pool_settings(args),
                "vocab": list(vocab),
                "scripts": [asdict(s) for s in library.scripts],
                "mining_config": asdict(library.config),
                "stats": library.stats,
            },
            ensure_ascii=False,
        ),
        "utf-8",
    )
    result = {
        "train_conversations": len(train),
        "mined_conversations": len(conversations),
        "generate_seconds": round(generate_train_s + generate_extra_s, 3),
        "train_seconds": round(train_s, 3),
        "train_peak_rss_mb": round(train_rss, 1),
        "trained_library": {
            "winning_uses": trained_scripts.get("winning_uses_indexed"),
            "scripts": trained_scripts.get("scripts"),
        },
        "mine_seconds": round(mine_s, 3),
        "mined_winning_uses": len(vectors),
        "mined_scripts": len(library),
        "mean_context_tokens": round(float(np.diff(offsets).mean()), 2) if len(tokens) else 0.0,
        "embedding_dim": int(vectors.shape[1]),
        "pool_peak_rss_mb": round(_maxrss_mb(), 1),
    }
    report.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _pool_in_child(args: argparse.Namespace, pool_dir: Path) -> dict[str, Any]:
    report = pool_dir / "pool-report.json"
    have = all((pool_dir / name).is_file() for name in (*_POOL_FILES, "pool-report.json"))
    if have:
        saved = json.loads((pool_dir / "pool.json").read_text("utf-8"))["settings"]
        if saved == _pool_settings(args):
            print(f"reusing the bundle and pool in {pool_dir}")
            cached: dict[str, Any] = json.loads(report.read_text("utf-8"))
            return {**cached, "reused_from": str(pool_dir)}
    pool_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "eval.bench_suggest", "--stage", "pool",
        "--train-conversations", str(args.train_conversations),
        "--mine-conversations", str(args.mine_conversations),
        "--seed", str(args.seed), "--pool-dir", str(pool_dir), "--report", str(report),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    result: dict[str, Any] = json.loads(report.read_text("utf-8"))
    return result


# --------------------------------------------------------------------------- one size (child)


def _entries(
    size: int, pool: np.lib.npyio.NpzFile, noise: float, drop: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """``size`` index entries from the pool: ``(source rows, vectors, token ids, offsets, info)``.

    Up to the pool size, a random subset; beyond it, the whole pool and then noisy copies of
    random pool rows (vector + gaussian noise, re-normalised; tokens shuffled and subsampled).
    """
    vectors, tok_ids, offsets = pool["vectors"], pool["tok_ids"], pool["offsets"]
    n_pool = len(vectors)
    if size <= n_pool:
        rows = np.sort(rng.choice(n_pool, size, replace=False))
        starts, lengths = offsets[rows], np.diff(offsets)[rows]
        idx = _ranges(starts, lengths)
        out_offsets = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(lengths, out=out_offsets[1:])
        return rows, vectors[rows], tok_ids[idx], out_offsets, {"mined": size, "replicated": 0}

    n_copy = size - n_pool
    src = rng.integers(0, n_pool, n_copy)
    out_vectors = np.empty((size, vectors.shape[1]), dtype=np.float32)
    out_vectors[:n_pool] = vectors
    cosines = []
    step = 100_000  # noise in chunks: a float32 chunk at a time, not a second copy of the index
    for start in range(0, n_copy, step):
        base = vectors[src[start : start + step]]
        noisy = base + rng.standard_normal(base.shape, dtype=np.float32) * np.float32(noise)
        norms = np.linalg.norm(noisy, axis=1, keepdims=True)
        zero = (np.linalg.norm(base, axis=1) == 0)[:, None]  # an all-zero context stays zero
        noisy = np.where(zero, 0.0, noisy / np.maximum(norms, 1e-12)).astype(np.float32)
        out_vectors[n_pool + start : n_pool + start + len(base)] = noisy
        cosines.append(np.einsum("ij,ij->i", base, noisy)[~zero[:, 0]])

    lengths = np.diff(offsets)[src]
    copied = tok_ids[_ranges(offsets[src], lengths)]
    doc = np.repeat(np.arange(n_copy), lengths)
    keep = rng.random(len(copied)) >= drop
    kept_per_doc = np.bincount(doc[keep], minlength=n_copy)
    first = np.cumsum(lengths) - lengths  # a copy of a non-empty context keeps a token at least
    lonely = np.flatnonzero((kept_per_doc == 0) & (lengths > 0))
    keep[first[lonely]] = True
    copied, doc = copied[keep], doc[keep]
    order = np.lexsort((rng.random(len(copied)), doc))  # shuffle within each copy
    copied = copied[order]
    copy_lengths = np.bincount(doc, minlength=n_copy)

    out_tok = np.concatenate([tok_ids, copied])
    out_offsets = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.concatenate([np.diff(offsets), copy_lengths]), out=out_offsets[1:])
    rows = np.concatenate([np.arange(n_pool), src])
    cos = np.concatenate(cosines) if cosines else np.zeros(0)
    info = {
        "mined": n_pool,
        "replicated": n_copy,
        "noise_sigma": noise,
        "token_drop": drop,
        "copy_source_cosine_mean": round(float(cos.mean()), 4) if len(cos) else None,
    }
    return rows, out_vectors, out_tok, out_offsets, info


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(s, s + n)`` for each start ``s`` and length ``n``."""
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    return np.repeat(starts - (ends - lengths), lengths) + np.arange(total)


def _prefixes(n: int, seed: int) -> list[Any]:
    """``n`` held-out conversations, each cut after a random customer message (one per conversation)."""
    from copilot.synth import generate

    rng = random.Random(seed)
    out = []
    for conversation in generate(n * 2, seed=seed, split="heldout"):
        customer = [i for i, m in enumerate(conversation.messages) if m.role == "customer"]
        if not customer:
            continue
        end = rng.choice(customer)
        out.append(
            conversation.model_copy(
                update={
                    "messages": conversation.messages[: end + 1],
                    "outcome": None,
                    "labels": None,
                }
            )
        )
        if len(out) == n:
            break
    return out


def _queries(
    engine: Any, prefixes: Sequence[Any]
) -> tuple[list[np.ndarray | None], list[list[str]]]:
    """Query vectors ``(1, dim)`` and tokens as ``SuggestionEngine`` builds them from a prefix."""
    from models.scripts import context_text, index_tokens

    pipeline, library = engine.pipeline, engine.library
    vectors: list[np.ndarray | None] = []
    tokens: list[list[str]] = []
    for prefix in prefixes:
        texts = [pipeline.mask(m.text)[0] for m in prefix.messages if m.role != "system"]
        query = context_text(texts, library.config.context_turns)[-engine.config.max_query_chars :]
        if not query.strip():
            vectors.append(None)
            tokens.append([])
            continue
        vector = engine.bundle.embedder.encode([query])
        vectors.append(
            np.ascontiguousarray(vector, dtype=np.float32) if np.abs(vector).sum() > 0 else None
        )
        tokens.append(index_tokens(pipeline.process(query).tokens))
    return vectors, tokens


def _time_each(call: Any, items: Sequence[Any]) -> np.ndarray:
    ns = np.empty(len(items), dtype=np.float64)
    for i, item in enumerate(items):
        t0 = time.perf_counter_ns()
        call(item)
        ns[i] = time.perf_counter_ns() - t0
    return ns


def _profile(engine: Any, warmup: Sequence[Any], timed: Sequence[Any], top: int) -> dict[str, Any]:
    """cProfile of ``engine.suggest`` over ``timed``: top functions per suggestion, in ms."""
    for prefix in warmup:
        engine.suggest(prefix, k=3)
    profiler = cProfile.Profile()
    profiler.enable()
    for prefix in timed:
        engine.suggest(prefix, k=3)
    profiler.disable()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    root = str(Path.cwd())
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.items():
        where = filename.replace(root + os.sep, "")
        if "site-packages" in where:
            where = where.split("site-packages" + os.sep, 1)[1]
        rows.append(
            {
                "function": f"{where}:{line}({func})",
                "calls_per_suggest": round(ncalls / len(timed), 2),
                "own_ms": round(1000 * tottime / len(timed), 3),
                "cumulative_ms": round(1000 * cumtime / len(timed), 3),
            }
        )
    return {
        "suggestions": len(timed),
        "note": "per suggestion, under cProfile (which adds overhead to every Python call)",
        "top_own": sorted(rows, key=lambda r: -r["own_ms"])[:top],
        "top_cumulative": sorted(rows, key=lambda r: -r["cumulative_ms"])[:top],
    }


def _size_stage(args: argparse.Namespace, report: Path) -> None:
    """Build one size's index and library, time suggestions and retrieval, write ``report``."""
    from copilot.compliance import default_checker
    from models.bundle import load_bundle
    from models.scripts import MiningConfig, Script, ScriptLibrary
    from models.suggest import EngineConfig, SuggestionEngine

    size, pool_dir = args.size, args.pool_dir
    bundle = load_bundle(pool_dir / "bundle")
    meta = json.loads((pool_dir / "pool.json").read_text("utf-8"))
    scripts = [Script(**s) for s in meta["scripts"]]
    rng = np.random.default_rng(args.seed + size)
    rss_base = _rss_mb() or 0.0  # the bundle, before the entries exist
    with np.load(pool_dir / "pool.npz") as pool:
        rows, vectors, tok_ids, offsets, info = _entries(
            size, pool, args.noise, args.token_drop, rng
        )
        use_script = pool["use_script"][rows]
        centroids, reply_vectors = pool["centroids"], pool["reply_vectors"]
    words = np.asarray(meta["vocab"], dtype=object)
    flat = words[tok_ids].tolist()
    bounds = offsets.tolist()
    tokens = [flat[bounds[i] : bounds[i + 1]] for i in range(size)]
    del flat, tok_ids, words
    gc.collect()

    defaults = ScriptIndex()
    threshold = args.hnsw_threshold or defaults.hnsw_threshold
    hnsw_m = args.hnsw_m or defaults.hnsw_m
    index = ScriptIndex(kind="auto", hnsw_threshold=threshold, hnsw_m=hnsw_m, seed=args.seed)
    rss_before = _rss_mb() or 0.0
    peak_before = _maxrss_mb()
    peak_reset = _reset_peak_rss()
    t0 = time.perf_counter()
    index.build(np.arange(size, dtype=np.int64), vectors, tokens)
    build_s = time.perf_counter() - t0
    build_peak = _peak_rss_mb()
    if args.built_marker is not None:
        args.built_marker.write_text(f"{build_s:.3f}\n", encoding="ascii")
    del vectors, tokens
    gc.collect()
    rss_after = _rss_mb() or 0.0

    mining = MiningConfig(**meta["mining_config"])
    library = ScriptLibrary(
        scripts, use_script, centroids, reply_vectors, index, mining, meta["stats"]
    )
    config = EngineConfig()
    if bundle.reply_matcher is not None:
        # As training does: the library's replies come encoded for reply matching (not timed).
        bundle.reply_matcher.remember_replies([s.text for s in scripts])
    engine = SuggestionEngine(bundle, library, default_checker(), config)
    prefixes = _prefixes(args.warmup + args.queries, args.seed + 1000)
    warmup, timed = prefixes[: args.warmup], prefixes[args.warmup :]

    # Suggestions first: the embedder memoises tokenisations, and the retrieval timings below
    # tokenise the same queries again.
    for prefix in warmup:
        engine.suggest(prefix, k=3)
    served: list[int] = []

    def serve(prefix: Any) -> None:
        served.append(len(engine.suggest(prefix, k=3)["suggestions"]))

    suggest_ns = _time_each(serve, timed)

    vectors_q, tokens_q = _queries(engine, timed)
    dense_q = [v for v in vectors_q if v is not None]
    sparse_q = [t for t in tokens_q if t]
    hybrid_q = [(v, t) for v, t in zip(vectors_q, tokens_q, strict=True) if v is not None or t]
    cand = config.candidates
    for v in dense_q[: args.warmup]:  # the retrieval paths get their own warm-up
        index.index_.search(v, cand)
    faiss_ns = _time_each(lambda v: index.index_.search(v, cand), dense_q)
    dense_ns = _time_each(lambda v: index.search_dense(v[0], cand), dense_q)
    sparse_ns = _time_each(lambda t: index.search_sparse(t, cand), sparse_q)
    hybrid_ns = _time_each(
        lambda q: index.search(
            None if q[0] is None else q[0][0], q[1] or None, k=cand, candidates=cand
        ),
        hybrid_q,
    )

    suggest = _percentiles(suggest_ns)
    faiss = _percentiles(faiss_ns) if len(faiss_ns) else {}
    result: dict[str, Any] = {
        "size": size,
        "entries": info,
        "note": (
            f"scaled by replication from {info['mined']:,} mined contexts"
            if info["replicated"]
            else f"a random subset of the mined contexts ({size:,})"
        ),
        "index_kind": index.kind_,
        "hnsw_m": hnsw_m if index.kind_ == "hnsw" else None,
        "ef_search": index.ef_search if index.kind_ == "hnsw" else None,
        "vocabulary": index.stats()["vocabulary"],
        "build_seconds": round(build_s, 3),
        "rss_bundle_loaded_mb": round(rss_base, 1),
        "rss_before_build_mb": round(rss_before, 1),
        "peak_rss_before_build_mb": round(peak_before, 1),
        "build_peak_rss_mb": round(build_peak, 1),
        "build_peak_is_build_alone": peak_reset,
        "build_rss_growth_mb": round(build_peak - rss_before, 1),
        "rss_after_build_mb": round(rss_after, 1),
        # approximate: freed Python objects do not always go back to the system
        "index_resident_mb": round(rss_after - rss_base, 1),
        "queries": len(timed),
        "warmup_calls": len(warmup),
        "mean_suggestions_served": round(float(np.mean(served)), 3),
        "suggest": suggest,
        "faiss_raw": faiss,
        "search_dense": _percentiles(dense_ns) if len(dense_ns) else {},
        "search_sparse": _percentiles(sparse_ns) if len(sparse_ns) else {},
        "search_hybrid": _percentiles(hybrid_ns) if len(hybrid_ns) else {},
        "dense_queries": len(dense_q),
        "sparse_queries": len(sparse_q),
        "suggest_over_faiss": {
            "p50": round(suggest["p50_ms"] / faiss["p50_ms"], 1) if faiss else None,
            "p95": round(suggest["p95_ms"] / faiss["p95_ms"], 1) if faiss else None,
            "mean": round(suggest["mean_ms"] / faiss["mean_ms"], 1) if faiss else None,
        },
        "child_peak_rss_mb": round(_maxrss_mb(), 1),
    }
    if args.profile:
        # A fresh bundle: the first one has tokenised these prefixes already.
        fresh = SuggestionEngine(
            load_bundle(pool_dir / "bundle"), library, default_checker(), config
        )
        result["profile"] = _profile(fresh, warmup, timed, args.profile_top)
    report.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _size_in_child(
    args: argparse.Namespace, size: int, pool_dir: Path, scratch: Path, hnsw_m: int | None
) -> tuple[dict[str, Any] | None, str | None]:
    """Run one size in a child; stop it when its build or its memory passes the limits.

    Returns:
        ``(report, None)``, or ``(None, why it was stopped)``.
    """
    report = scratch / f"size-{size}-{hnsw_m or 'default'}.json"
    marker = scratch / f"size-{size}-{hnsw_m or 'default'}.built"
    marker.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "eval.bench_suggest", "--stage", "size", "--size", str(size),
        "--pool-dir", str(pool_dir), "--report", str(report), "--built-marker", str(marker),
        "--queries", str(args.queries), "--warmup", str(args.warmup), "--seed", str(args.seed),
        "--noise", str(args.noise), "--token-drop", str(args.token_drop),
        "--profile-top", str(args.profile_top),
    ]  # fmt: skip
    if hnsw_m:
        command += ["--hnsw-m", str(hnsw_m)]
    if args.hnsw_threshold:
        command += ["--hnsw-threshold", str(args.hnsw_threshold)]
    if size == args.profile_size:
        command += ["--profile"]
    start = time.monotonic()
    peak_seen = 0.0
    with subprocess.Popen(command) as child:
        while True:
            try:
                child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            rss = _rss_mb(child.pid) or 0.0
            peak_seen = max(peak_seen, rss)
            elapsed = time.monotonic() - start
            why = None
            if rss > args.max_rss_mb:
                why = f"RSS reached {rss:,.0f} MB (limit {args.max_rss_mb:,} MB)"
            elif not marker.exists() and elapsed > args.max_build_seconds:
                why = f"the build ran past {args.max_build_seconds} s"
            if why:
                child.kill()
                child.wait()
                return None, why
    if child.returncode != 0:
        raise RuntimeError(f"the size-{size} child failed with exit code {child.returncode}")
    result: dict[str, Any] = json.loads(report.read_text("utf-8"))
    result["child_peak_rss_seen_mb"] = round(peak_seen, 1)
    return result, None


# --------------------------------------------------------------------------- the parent


def _bench(args: argparse.Namespace, pool_dir: Path, scratch: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    print(
        f"pool: training on {args.train_conversations:,} conversations and mining "
        f"{args.train_conversations + args.mine_conversations:,}, in a child process ..."
    )
    t0 = time.perf_counter()
    pool = _pool_in_child(args, pool_dir)
    pool_s = time.perf_counter() - t0

    sizes: list[dict[str, Any]] = []
    for size in args.sizes:
        print(f"size {size:,}: building and timing in a child process ...", flush=True)
        result, why = _size_in_child(args, size, pool_dir, scratch, args.hnsw_m)
        if result is None:
            print(f"size {size:,}: stopped ({why}); measuring with hnsw_m={args.fallback_hnsw_m}")
            result, why_again = _size_in_child(args, size, pool_dir, scratch, args.fallback_hnsw_m)
            if result is None:
                sizes.append(
                    {
                        "size": size,
                        "failed": f"{why}; with hnsw_m={args.fallback_hnsw_m}: {why_again}",
                    }
                )
                continue
            result["fallback"] = (
                f"the default configuration was stopped ({why}); measured with "
                f"hnsw_m={args.fallback_hnsw_m}"
            )
        sizes.append(result)

    targets: dict[str, Any] = {}
    at_target = next((s for s in sizes if s.get("size") == TARGET_SIZE and "suggest" in s), None)
    if at_target is not None:
        targets[f"suggest_p95_ms_at_{TARGET_SIZE}"] = _target(
            at_target["suggest"]["p95_ms"], TARGET_P95_MS
        )

    from models.suggest import EngineConfig

    return {
        "pool": pool if "reused_from" in pool else {**pool, "stage_seconds": round(pool_s, 1)},
        "engine_config": asdict(EngineConfig()),
        "index_defaults": {
            "kind": "auto",
            "hnsw_threshold": args.hnsw_threshold or ScriptIndex().hnsw_threshold,
            "hnsw_m": ScriptIndex().hnsw_m,
            "ef_construction": ScriptIndex().ef_construction,
            "ef_search": ScriptIndex().ef_search,
        },
        "sizes": sizes,
        "targets": targets,
        "machine": machine_info(load_before),
    }


def _print_table(result: dict[str, Any]) -> None:
    pool = result["pool"]
    print()
    print(
        f"bundle trained on {pool['train_conversations']:,} conversations in {pool['train_seconds']:.0f} s: "
        f"{pool['trained_library']['winning_uses']:,} winning uses, "
        f"{pool['trained_library']['scripts']:,} scripts"
    )
    print(
        f"pool mined from {pool['mined_conversations']:,} conversations in {pool['mine_seconds']:.0f} s: "
        f"{pool['mined_winning_uses']:,} winning uses, {pool['mined_scripts']:,} scripts"
    )
    columns = (
        ("size", 9), ("kind", 5), ("M", 3), ("build s", 8), ("peak MB", 8), ("+MB", 7),
        ("p50", 7), ("p95", 7), ("p99", 7), ("faiss50", 8), ("faiss95", 8), ("x50", 6),
        ("x95", 6), ("dense50", 8), ("bm25_50", 8), ("hyb50", 7), ("hyb95", 7),
    )  # fmt: skip
    print()
    print("latencies in ms; x50/x95: suggest over raw FAISS search at that percentile")
    print(" ".join(f"{name:>{width}}" for name, width in columns))
    for s in result["sizes"]:
        if "failed" in s:
            print(f"{s['size']:>9,} failed: {s['failed']}")
            continue
        ratio = s["suggest_over_faiss"]
        cells = (
            f"{s['size']:,}", s["index_kind"], s["hnsw_m"] or "-", f"{s['build_seconds']:.1f}",
            f"{s['build_peak_rss_mb']:,.0f}", f"{s['build_rss_growth_mb']:,.0f}",
            f"{s['suggest']['p50_ms']:.2f}", f"{s['suggest']['p95_ms']:.2f}",
            f"{s['suggest']['p99_ms']:.2f}", f"{s['faiss_raw'].get('p50_ms', 0):.3f}",
            f"{s['faiss_raw'].get('p95_ms', 0):.3f}", ratio["p50"], ratio["p95"],
            f"{s['search_dense'].get('p50_ms', 0):.3f}", f"{s['search_sparse'].get('p50_ms', 0):.2f}",
            f"{s['search_hybrid'].get('p50_ms', 0):.2f}", f"{s['search_hybrid'].get('p95_ms', 0):.2f}",
        )  # fmt: skip
        print(
            " ".join(f"{cell!s:>{width}}" for cell, (_n, width) in zip(cells, columns, strict=True))
        )
    for s in result["sizes"]:
        if "failed" not in s:
            print(
                f"  {s['size']:>9,}: {s['note']}"
                + (f"; {s['fallback']}" if "fallback" in s else "")
            )
    for s in result["sizes"]:
        profile = s.get("profile")
        if profile:
            print(f"\nprofile at {s['size']:,} ({profile['note']}), top by own time:")
            for row in profile["top_own"]:
                print(
                    f"  {row['own_ms']:>8.3f} ms own {row['cumulative_ms']:>8.3f} ms cum  {row['function']}"
                )
            print("top by cumulative time:")
            for row in profile["top_cumulative"]:
                print(f"  {row['cumulative_ms']:>8.3f} ms cum  {row['function']}")
    for name, target in result["targets"].items():
        verdict = "PASS" if target["pass"] else "FAIL"
        print(f"\n{name}: {target['value']} <= {target['target_max']}  {verdict}")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes must be comma-separated integers, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--sizes must be positive integers, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000, 1_000_000],
                        help="index sizes (winning-use contexts), comma-separated")  # fmt: skip
    parser.add_argument("--queries", type=int, default=1_000, help="timed suggestions per size")
    parser.add_argument("--warmup", type=int, default=50, help="untimed suggestions first")
    parser.add_argument("--train-conversations", type=int, default=20_000)
    parser.add_argument("--mine-conversations", type=int, default=50_000,
                        help="conversations mined besides the training ones (another seed)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.015,
                        help="gaussian sigma per coordinate on replicated vectors")  # fmt: skip
    parser.add_argument("--token-drop", type=float, default=0.15,
                        help="share of tokens dropped from replicated contexts")  # fmt: skip
    parser.add_argument("--hnsw-threshold", type=int, default=None,
                        help="size from which kind='auto' builds HNSW (default: the index's)")  # fmt: skip
    parser.add_argument("--hnsw-m", type=int, default=None, help="HNSW M (default: the index's)")
    parser.add_argument("--fallback-hnsw-m", type=int, default=16,
                        help="HNSW M for a size stopped by --max-build-seconds or --max-rss-mb")  # fmt: skip
    parser.add_argument("--max-build-seconds", type=int, default=600)
    parser.add_argument("--max-rss-mb", type=int, default=8_192)
    parser.add_argument("--profile-size", type=int, default=TARGET_SIZE,
                        help="profile engine.suggest at this size (0: never)")  # fmt: skip
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench_suggest.json"))
    parser.add_argument("--pool-dir", type=Path, default=None, metavar="DIR",
                        help="keep the bundle and mined pool here; reuse them when made with "
                        "the same settings (default: a temporary directory)")  # fmt: skip
    # Internal: the child processes (so that peak RSS is one stage's alone).
    parser.add_argument(
        "--stage", choices=["all", "pool", "size"], default="all", help=argparse.SUPPRESS
    )
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--built-marker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.stage != "all":
        if args.pool_dir is None or args.report is None:
            parser.error(f"--stage {args.stage} needs --pool-dir and --report")
        if args.stage == "pool":
            _pool_stage(args, args.pool_dir, args.report)
        else:
            if args.size is None:
                parser.error("--stage size needs --size")
            _size_stage(args, args.report)
        return {}

    with tempfile.TemporaryDirectory(prefix="bench-suggest-") as scratch:
        pool_dir = args.pool_dir or Path(scratch) / "pool"
        result = _bench(args, pool_dir, Path(scratch))

    _print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")
    if args.pool_dir:
        print(f"bundle and pool kept at {args.pool_dir}")
    return result


if __name__ == "__main__":
    main()
