"""Does the copilot see whether a guide carried out a headquarters task? Precision and recall.

    python -m eval.task_execution [--data eval/data/task_execution.jsonl] [--bundle bundles/default]

``eval/data/task_execution.jsonl`` holds tasks written by hand, blind to the detector, each with
guide messages that send the script as is, edited or paraphrased (executed) or that do not
(same product or topic with another point, or ordinary replies); see its ``.md``.
:func:`copilot.tasks.execution`'s similarity (the best cosine with a variant) is computed for
every message, with the character n-gram default and, when a bundle is given, with its
embedder. The threshold is chosen on the odd-numbered tasks (best F1) and scored on the even
ones, so the numbers are held out; recall is also given per kind of message.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from copilot.tasks import similarity

__all__ = ["main"]

DEFAULT_DATA = Path(__file__).parent / "data" / "task_execution.jsonl"
THRESHOLDS = np.round(np.arange(0.30, 0.96, 0.025), 3)


def _scores(tasks: list[dict[str, Any]], encode: Any) -> list[tuple[int, str, bool, float]]:
    out = []
    for n, task in enumerate(tasks):
        texts = [m["text"] for m in task["messages"]]
        sims = similarity(task["variants"], texts, encode)
        out += [
            (n, m["kind"], bool(m["executed"]), float(s))
            for m, s in zip(task["messages"], sims, strict=True)
        ]
    return out


def _prf(rows: list[tuple[int, str, bool, float]], threshold: float) -> dict[str, float]:
    tp = sum(1 for *_, gold, s in rows if gold and s >= threshold)
    fp = sum(1 for *_, gold, s in rows if not gold and s >= threshold)
    fn = sum(1 for *_, gold, s in rows if gold and s < threshold)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def evaluate(tasks: list[dict[str, Any]], encode: Any) -> dict[str, Any]:
    rows = _scores(tasks, encode)
    dev = [r for r in rows if r[0] % 2 == 1]
    test = [r for r in rows if r[0] % 2 == 0]
    best = max(THRESHOLDS, key=lambda t: (_prf(dev, float(t))["f1"], t))
    by_kind = {}
    for kind in ("exact", "edited", "paraphrase", "related", "unrelated"):
        items = [r for r in test if r[1] == kind]
        flagged = sum(1 for *_, s in items if s >= best)
        by_kind[kind] = {
            "n": len(items),
            "detected": round(flagged / len(items), 3) if items else None,
        }
    return {
        "threshold": float(best),
        "held_out": _prf(test, float(best)),
        "by_kind": by_kind,
        "n": len(test),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--bundle", type=Path, default=Path("bundles/default"))
    args = parser.parse_args(argv)
    tasks = [json.loads(line) for line in args.data.read_text("utf-8").splitlines() if line]
    encoders: dict[str, Any] = {"character n-grams": None}
    if (args.bundle / "manifest.json").is_file():
        from models.bundle import load_bundle

        encoders[f"bundle embedder ({args.bundle})"] = load_bundle(args.bundle).embedder.encode
    results = {}
    print(f"{len(tasks)} tasks ({args.data}); threshold chosen on odd tasks, scored on even ones")
    print(
        "| similarity | threshold | precision | recall | F1 | exact | edited | paraphrase | related (false) | unrelated (false) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, encode in encoders.items():
        r = evaluate(tasks, encode)
        results[name] = r
        h, k = r["held_out"], r["by_kind"]
        print(
            f"| {name} | {r['threshold']:.3f} | {h['precision']:.3f} | {h['recall']:.3f} | {h['f1']:.3f} | "
            + " | ".join(
                f"{k[x]['detected']:.2f}"
                for x in ("exact", "edited", "paraphrase", "related", "unrelated")
            )
            + " |"
        )
    return results


if __name__ == "__main__":
    main()
