"""How precisely does the profile extractor read customer messages? Per fact type, on hand-written data.

    python -m eval.profile_extraction [--data FILE ...] [--errors]

Two sets of customer messages written by hand from the issue's fact types, blind to the
extractor, each message with the facts it states: ``eval/data/profile_messages.jsonl`` (the
rules were developed against it, so its numbers are optimistic) and
``eval/data/profile_holdout.jsonl`` (a second writer's, never used while writing the rules:
the honest number). See their ``.md`` files.
A predicted fact counts as right when its type, whose it is and its value match a labelled
fact of the same message: numbers exactly (weights to 0.1 kg), phrase types (product,
preference, come_back) when one phrase contains the other after traditional → simplified.
Prints precision, recall and F1 per type, for sizes and measurements together, and overall;
``--errors`` lists every wrong and every missed fact. Targets (issue 13): precision ≥ 0.95 for
sizes and measurements, ≥ 0.90 overall.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from copilot.profile import FACT_TYPES, Fact, extract
from copilot.text.normalize import to_simplified

__all__ = ["DEFAULT_DATA", "evaluate", "main"]

DEFAULT_DATA = (
    Path(__file__).parent / "data" / "profile_messages.jsonl",
    Path(__file__).parent / "data" / "profile_holdout.jsonl",
)
MEASURES = ("height_cm", "weight_kg", "size", "shoe_size")
PHRASES = ("product", "preference", "come_back")


def _same(kind: str, a: Any, b: Any) -> bool:
    if kind in PHRASES:
        x, y = (to_simplified(str(v)).replace("我", "") for v in (a, b))
        return bool(x and y) and (x in y or y in x)
    if kind == "weight_kg":
        return abs(float(a) - float(b)) < 0.051
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return str(a).upper() == str(b).upper()


def _gold(row: dict[str, Any]) -> list[Fact]:
    return [
        Fact(f["type"], f["value"], "self" if f["type"] == "buying_for" else f.get("for", "self"))
        for f in row["facts"]
    ]


def evaluate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and rates per fact type, plus the lists of wrong and missed facts."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    wrong, missed = [], []
    for row in rows:
        gold = _gold(row)
        found = extract(row["text"], row.get("context", ""))
        used = [False] * len(gold)
        for fact in found:
            hit = next(
                (
                    i
                    for i, g in enumerate(gold)
                    if not used[i]
                    and g.type == fact.type
                    and g.whom == fact.whom
                    and _same(fact.type, fact.value, g.value)
                ),
                None,
            )
            if hit is None:
                fp[fact.type] += 1
                wrong.append((row["id"], row["text"], fact))
            else:
                used[hit] = True
                tp[fact.type] += 1
        for g, u in zip(gold, used, strict=True):
            if not u:
                fn[g.type] += 1
                missed.append((row["id"], row["text"], g))

    def rates(kinds: tuple[str, ...]) -> dict[str, Any]:
        t, p, n = (sum(c[k] for k in kinds) for c in (tp, fp, fn))
        precision = t / (t + p) if t + p else None
        recall = t / (t + n) if t + n else None
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision and recall
            else (0.0 if precision is not None and recall is not None else None)
        )
        return {"tp": t, "fp": p, "fn": n, "precision": precision, "recall": recall, "f1": f1}

    return {
        "messages": len(rows),
        "by_type": {k: rates((k,)) for k in FACT_TYPES},
        "sizes_and_measurements": rates(MEASURES),
        "overall": rates(FACT_TYPES),
        "wrong": wrong,
        "missed": missed,
    }


def _fmt(x: float | None) -> str:
    return "  -  " if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=list(DEFAULT_DATA))
    parser.add_argument("--errors", action="store_true", help="List wrong and missed facts.")
    args = parser.parse_args(argv)
    results = {}
    for path in args.data:
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
        results[path.stem] = _report(path, evaluate(rows), args.errors)
    return results


def _report(path: Path, result: dict[str, Any], errors: bool) -> dict[str, Any]:
    print(f"\n{result['messages']} messages ({path})")
    print("| fact type | n (gold) | precision | recall | F1 |")
    print("|---|---|---|---|---|")
    table = [*result["by_type"].items()]
    table += [("sizes and measurements", result["sizes_and_measurements"])]
    table += [("overall", result["overall"])]
    for name, r in table:
        print(
            f"| {name} | {r['tp'] + r['fn']} | {_fmt(r['precision'])} | {_fmt(r['recall'])} "
            f"| {_fmt(r['f1'])} |"
        )
    if errors:
        for title, items in (("wrong", result["wrong"]), ("missed", result["missed"])):
            print(f"\n{title} ({len(items)}):")
            for rid, text, fact in items:
                print(f"  {rid}  {fact.type}={fact.value!r} ({fact.whom})  «{text}»")
    return result


if __name__ == "__main__":
    main()
