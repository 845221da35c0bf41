"""Does the copilot learn from a brand's real logs? Held-out numbers on real JD chats.

    python -m eval.real_dev [--realdata ../shared/realdata] [--seed 0] [--folds 5]
                            [--skip-curve] [-o reports/real_dev]

Reads the public real data kept outside the project (``../shared/realdata``, see its README);
without it this prints why and exits 0. Nothing of it is written out but numbers.

1. ``jddc-logs.csv`` (unlabelled sessions) is split by conversation, 80/20 with a fixed seed.
   Two bundles are trained as ``copilot train`` does: **synthetic-only** (the built-in base
   alone) and **real logs** (the base plus the 80%, self-trained, with reply matching).
2. **Response selection** on the 20%: for every guide reply that follows a customer message, the
   actual reply against 9 replies of other held-out sessions (random negatives, other texts), and
   against 9 replies to customer messages of the same predicted intent (hard negatives):
   R10@1/2/5 of the engine's ranking of given replies (:class:`~models.rank.ReplyRanker`), the
   reply matcher alone, BM25 alone, dense alone and random. Ties count against the true reply.
3. **Intent and act macro-F1** on the hand-labelled dev CSVs, for both bundles: over all dev
   rows, and over the rows of held-out conversations only (the real-logs bundle read the other
   rows' text, never their labels).
4. **Learning curve** (item 7): intent macro-F1 as k = 0, 25, 50, 100, 200 of the brand's own
   labelled messages are added, k-fold over the labelled dev set grouped by conversation: the k
   labels come from the other folds, the score from the held-out fold. The dev labels are only
   ever scored on folds they were not trained on.
5. The quality-from-ratings numbers of :mod:`eval.real_quality` when ``stc3-dev.jsonl`` is there.

Prints one table and writes ``metrics.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from copilot.compliance import default_checker
from copilot.io import Quarantined, open_conversations
from copilot.io.labels import LabelRow, attach_labels
from copilot.prediction import message_contexts
from copilot.schema import Conversation
from copilot.taxonomy import default_taxonomy
from models.bundle import Bundle
from models.evaluate import classification_metrics
from models.rank import ReplyRanker
from models.reply_match import ReplyPair, reply_pairs
from models.scripts import index_tokens
from models.train import TrainConfig, default_base, fit_classifier, train_bundle

__all__ = ["DEFAULT_REALDATA", "main", "response_selection"]

DEFAULT_REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
CURVE_K = (0, 25, 50, 100, 200)
METHODS = ("engine", "matcher", "bm25", "dense", "random")


def _read_logs(path: Path) -> list[Conversation]:
    return [c for c in open_conversations(path) if not isinstance(c, Quarantined)]


def _read_dev(path: Path) -> list[LabelRow]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [
            LabelRow(r["text"], r["label"], r["conversation_id"], int(r["message_index"]))
            for r in csv.DictReader(handle)
        ]


def _split(
    logs: Sequence[Conversation], seed: int
) -> tuple[list[Conversation], list[Conversation]]:
    ids = sorted(c.conversation_id for c in logs)
    random.Random(seed).shuffle(ids)
    test = set(ids[: len(ids) // 5])
    return (
        [c for c in logs if c.conversation_id not in test],
        [c for c in logs if c.conversation_id in test],
    )


# --------------------------------------------------------------------------- classification


def _dev_inputs(rows: Sequence[LabelRow], logs: Sequence[Conversation]) -> list[tuple[str, str]]:
    """``(text, context)`` of each dev row, the context read from its session in the logs."""
    by_id = {c.conversation_id: c for c in logs}
    contexts: dict[str, list[str]] = {}
    out = []
    for row in rows:
        conversation = by_id.get(row.conversation_id)
        i = row.message_index
        if conversation is None or i is None or i >= len(conversation.messages):
            out.append((row.text, ""))
            continue
        if row.conversation_id not in contexts:
            contexts[row.conversation_id] = message_contexts(conversation)
        out.append((conversation.messages[i].text, contexts[row.conversation_id][i]))
    return out


def _f1(
    predict: Callable[[list[str], list[str]], list[str]],
    rows: Sequence[LabelRow],
    inputs: Sequence[tuple[str, str]],
    labels: Sequence[str],
) -> dict[str, Any]:
    pred = predict([t for t, _ in inputs], [c for _, c in inputs])
    metrics = classification_metrics([r.label for r in rows], pred, labels)
    return {
        "n": metrics["n"],
        "macro_f1": metrics.get("macro_f1"),
        "accuracy": metrics.get("accuracy"),
    }


def _classification(
    bundles: dict[str, Bundle],
    intents: Sequence[LabelRow],
    acts: Sequence[LabelRow],
    logs: Sequence[Conversation],
    held_out: set[str],
) -> dict[str, Any]:
    tax = default_taxonomy()
    out: dict[str, Any] = {}
    for name, bundle in bundles.items():
        row: dict[str, Any] = {}
        for kind, rows, predict, labels in (
            ("intent", intents, bundle.predict_intents, tax.intent_ids),
            ("act", acts, bundle.predict_acts, tax.action_ids),
        ):

            def labels_of(t: list[str], c: list[str], predict: Any = predict) -> list[str]:
                return [p.label for p in predict(t, c)]

            held = [r for r in rows if r.conversation_id in held_out]
            row[kind] = _f1(labels_of, rows, _dev_inputs(rows, logs), labels)
            row[f"{kind}_held_out"] = _f1(labels_of, held, _dev_inputs(held, logs), labels)
        out[name] = row
    return out


def learning_curve(
    bundle: Bundle,
    base: Sequence[Conversation],
    own: Sequence[Conversation],
    rows: Sequence[LabelRow],
    logs: Sequence[Conversation],
    *,
    folds: int = 5,
    ks: Sequence[int] = CURVE_K,
    seed: int = 0,
) -> dict[str, Any]:
    """Intent macro-F1 with k of the brand's labelled messages, k-fold over ``rows``.

    Folds group rows by conversation. For each fold and k, k rows of the other folds (a seeded
    sample) are attached to their messages in ``own`` (or kept as bare texts when their session
    is not there) and the intent classifier is fitted as ``copilot train`` fits it, with the
    bundle's embedder; it is scored on the held-out fold.
    """
    config = TrainConfig(**bundle.manifest["config"])
    ids = sorted({r.conversation_id for r in rows})
    random.Random(seed).shuffle(ids)
    fold_of = {cid: n % folds for n, cid in enumerate(ids)}
    labels = default_taxonomy().intent_ids
    scores: dict[int, list[float]] = defaultdict(list)
    for fold in range(folds):
        test = [r for r in rows if fold_of[r.conversation_id] == fold]
        pool = [r for r in rows if fold_of[r.conversation_id] != fold]
        inputs = _dev_inputs(test, logs)
        for k in ks:
            picked = random.Random(seed * 1000 + fold * 10 + k).sample(pool, min(k, len(pool)))
            conversations, loose, _ = attach_labels(own, picked, "customer")
            model, _ = fit_classifier(
                "customer",
                bundle.embedder,
                config,
                base,
                conversations,
                loose,
                partner=bundle.act,
                seed=config.seed,
            )
            probe = Bundle(
                manifest=bundle.manifest,
                taxonomy=bundle.taxonomy,
                embedder=bundle.embedder,
                intent=model,
                act=bundle.act,
                nba=bundle.nba,
                baseline=bundle.baseline,
                outcome=None,
            )

            def predict(t: list[str], c: list[str], probe: Bundle = probe) -> list[str]:
                return [p.label for p in probe.predict_intents(t, c)]

            scores[k].append(_f1(predict, test, inputs, labels)["macro_f1"] or 0.0)
    return {
        str(k): {"macro_f1": round(float(np.mean(v)), 4), "sd": round(float(np.std(v)), 4)}
        for k, v in scores.items()
    }


# --------------------------------------------------------------------------- response selection


def _pairs(test: Sequence[Conversation]) -> list[tuple[Conversation, int, ReplyPair]]:
    """``(conversation, index of the reply's first message, pair)`` of every held-out reply."""
    return [
        (c, pair.index, pair)
        for c in test
        for pair in reply_pairs([(m.role, m.text) for m in c.messages])
    ]


def response_selection(
    bundle: Bundle, test: Sequence[Conversation], *, seed: int = 0, max_items: int = 2000
) -> dict[str, Any]:
    """R10@1/2/5 of each method with random and same-intent hard negatives (see the module doc)."""
    import bm25s

    items = _pairs(test)
    rng = random.Random(seed)
    if len(items) > max_items:
        items = rng.sample(items, max_items)
    ranker = ReplyRanker(bundle, default_checker())
    replies = [p.reply for _, _, p in items]
    # The intent of the customer message each reply answers, predicted as the engine would.
    last = [(c.messages[i - 1].text, message_contexts(c)[i - 1]) for c, i, _ in items]
    intents = [p.label for p in bundle.predict_intents([t for t, _ in last], [x for _, x in last])]
    by_intent: dict[str, list[int]] = defaultdict(list)
    for n, intent in enumerate(intents):
        by_intent[intent].append(n)

    embedder = bundle.embedder
    dense_replies = embedder.encode(replies)
    retriever = bm25s.BM25()
    retriever.index(
        [index_tokens(embedder.tokens(r)) or ["∅"] for r in replies], show_progress=False
    )

    def negatives(n: int, pool: Sequence[int]) -> list[int] | None:
        cid, text = items[n][0].conversation_id, replies[n]
        options = [j for j in pool if items[j][0].conversation_id != cid and replies[j] != text]
        return rng.sample(options, 9) if len(options) >= 9 else None

    results: dict[str, dict[str, list[int]]] = {
        kind: {m: [] for m in METHODS} for kind in ("random", "hard")
    }
    everyone = list(range(len(items)))
    for n, (conversation, i, pair) in enumerate(items):
        prefix = conversation.model_copy(update={"messages": conversation.messages[:i]})
        context = list(pair.context)
        query = index_tokens(embedder.tokens(" | ".join(context)))
        bm25_all = retriever.get_scores(query) if query else np.zeros(len(items))
        dense_query = embedder.encode([" | ".join(context)])[0]
        actions = {
            a.label: a.confidence for a in bundle.next_actions(prefix, k=len(bundle.nba.classes_))
        }
        for kind, pool in (("random", everyone), ("hard", by_intent[intents[n]])):
            negs = negatives(n, pool)
            if negs is None:
                continue
            cands = [n, *negs]
            texts = [replies[j] for j in cands]
            ranked = ranker.rank(prefix, texts, actions=actions)
            scores = {
                "engine": _engine_scores(ranked, texts),
                "matcher": ranker.match(context, texts).tolist(),
                "bm25": [float(bm25_all[j]) for j in cands],
                "dense": [float(dense_replies[j] @ dense_query) for j in cands],
                "random": [rng.random() for _ in cands],
            }
            for method, s in scores.items():
                results[kind][method].append(1 + sum(x >= s[0] for x in s[1:]))
    out: dict[str, Any] = {"replies": len(items)}
    for kind, methods in results.items():
        out[kind] = {"n": len(methods["engine"])}
        for method, ranks in methods.items():
            out[kind][method] = {
                f"R10@{k}": round(float(np.mean([r <= k for r in ranks])), 4) if ranks else None
                for k in (1, 2, 5)
            }
    return out


def _engine_scores(ranked: Sequence[dict[str, Any]], texts: Sequence[str]) -> list[float]:
    """A score per candidate from the ranker's order (first: highest)."""
    positions: dict[str, list[int]] = defaultdict(list)
    for position, entry in enumerate(ranked):
        positions[entry["text"]].append(position)
    out = []
    for text in texts:
        out.append(-float(positions[text].pop(0)))
    return out


# --------------------------------------------------------------------------- the run


def evaluate(
    realdata: Path, *, seed: int = 0, folds: int = 5, curve: bool = True
) -> dict[str, Any]:
    """Every number of the module docstring, as one dict."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    logs = _read_logs(realdata / "jddc-logs.csv")
    train, test = _split(logs, seed)
    base = default_base(seed=seed)
    taxonomy = default_taxonomy()
    config = TrainConfig(seed=seed)
    synthetic = train_bundle(base, taxonomy=taxonomy, config=TrainConfig(seed=seed, scripts=False))
    timings["train_synthetic"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    real = train_bundle(train, taxonomy=taxonomy, config=config, base=base, name="real-80")
    timings["train_real"] = round(time.perf_counter() - t0, 1)

    intents = _read_dev(realdata / "jddc-intents-dev.csv")
    acts = _read_dev(realdata / "jddc-actions-dev.csv")
    held = {c.conversation_id for c in test}
    out: dict[str, Any] = {
        "split": {"train_conversations": len(train), "test_conversations": len(test), "seed": seed},
        "self_training": real.manifest["training"]["self_training"],
        "classification": _classification(
            {"synthetic-only": synthetic, "real logs": real}, intents, acts, logs, held
        ),
    }
    t0 = time.perf_counter()
    out["response_selection"] = {
        "real logs": response_selection(real, test, seed=seed),
        "synthetic-only": response_selection(synthetic, test, seed=seed),
    }
    timings["response_selection"] = round(time.perf_counter() - t0, 1)
    if curve:
        t0 = time.perf_counter()
        own = [c for c in train if not c.meta.get("synthetic")]
        out["learning_curve"] = learning_curve(
            real, base, own, intents, logs, folds=folds, seed=seed
        )
        timings["learning_curve"] = round(time.perf_counter() - t0, 1)
    if (realdata / "stc3-dev.jsonl").is_file():
        from eval.real_quality import evaluate as quality

        t0 = time.perf_counter()
        out["quality"] = quality(realdata / "stc3-dev.jsonl", folds, real, seed)
        timings["quality"] = round(time.perf_counter() - t0, 1)
    out["timings_s"] = timings
    return out


def _table(m: dict[str, Any]) -> str:
    lines = ["| measure | synthetic-only | real logs |", "|---|---|---|"]
    cls = m["classification"]
    for key, title in (
        ("intent", "intent macro-F1, all dev rows"),
        ("intent_held_out", "intent macro-F1, held-out sessions"),
        ("act", "act macro-F1, all dev rows"),
        ("act_held_out", "act macro-F1, held-out sessions"),
    ):
        a, b = cls["synthetic-only"][key], cls["real logs"][key]
        lines.append(f"| {title} (n={a['n']}) | {a['macro_f1']:.3f} | {b['macro_f1']:.3f} |")
    for kind in ("random", "hard"):
        for method in METHODS:
            cells = []
            for name in ("synthetic-only", "real logs"):
                r = m["response_selection"][name][kind]
                cells.append(" / ".join(f"{r[method][f'R10@{k}']:.3f}" for k in (1, 2, 5)))
            n = m["response_selection"]["real logs"][kind]["n"]
            lines.append(
                f"| R10@1/2/5, {kind} negatives, {method} (n={n}) | {cells[0]} | {cells[1]} |"
            )
    curve = m.get("learning_curve")
    if curve:
        for k, v in curve.items():
            lines.append(
                f"| intent macro-F1 with k={k} brand labels (k-fold) | | {v['macro_f1']:.3f} ±{v['sd']:.3f} |"
            )
    quality = m.get("quality")
    if quality:
        for method, row in quality["targets"]["rating_S"].items():
            lines.append(
                f"| quality: Spearman with rating_S, {method} (k-fold) | | "
                f"{row['spearman_mean']:.3f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip-curve", action="store_true", help="Skip the learning curve.")
    parser.add_argument("-o", "--output", type=Path, default=Path("reports/real_dev"))
    args = parser.parse_args(argv)
    if not (args.realdata / "jddc-logs.csv").is_file():
        print(
            f"skipped: no real logs at {args.realdata / 'jddc-logs.csv'} (the real data are kept "
            "outside the project, in ../shared/realdata; see its README)"
        )
        return None
    t0 = time.perf_counter()
    metrics = evaluate(args.realdata, seed=args.seed, folds=args.folds, curve=not args.skip_curve)
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    args.output.mkdir(parents=True, exist_ok=True)
    out = args.output / "metrics.json"
    out.write_text(json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(_table(metrics))
    print(f"wrote {out} ({metrics['seconds']}s)")
    return metrics


if __name__ == "__main__":
    main()
