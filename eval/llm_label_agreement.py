"""How well does the configured LLM label real chats? Agreement with hand labels.

    COPILOT_LLM_BACKEND=openai COPILOT_LLM_BASE_URL=... COPILOT_LLM_MODEL=... \\
    python -m eval.llm_label_agreement [--realdata ../shared/realdata] [--task intents|actions]
                                       [--limit N] [-o reports/llm_label]

Labels exactly the hand-labelled messages of ``jddc-<task>-dev.csv`` (with their conversations
from ``jddc-logs.csv`` as context) through ``copilot.llm.batch``, into
``<output>/<task>.csv`` (a second run resumes), then prints and writes the agreement: accuracy,
macro-F1 over the hand labels, Cohen's kappa and the most frequent confusions, with the tokens
and seconds per item. Skips with a message, exit 0, when the real data or an LLM is missing.
Only ever run here with a scripted test server; the numbers of a real model are for users to get.
"""

from __future__ import annotations

import argparse
import json
from contextlib import closing
from pathlib import Path
from typing import Any

from copilot.io import Quarantined, open_conversations
from copilot.llm import LLMSettings, build_backend
from copilot.llm.batch import agreement, label_to_csv, read_labels

DEFAULT_REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def evaluate(
    realdata: Path, task: str, output: Path, settings: LLMSettings, limit: int | None = None
) -> dict[str, Any]:
    """Label the hand-labelled messages with the LLM and compare; see the module docstring."""
    gold = read_labels(realdata / f"jddc-{task}-dev.csv")
    wanted = {cid for cid, _ in gold}
    conversations = [
        c
        for c in open_conversations(realdata / "jddc-logs.csv", format="rows")
        if not isinstance(c, Quarantined) and c.conversation_id in wanted
    ][:limit]
    output.mkdir(parents=True, exist_ok=True)
    labels = output / f"{task}.csv"
    with closing(build_backend(settings)) as backend:
        report = label_to_csv(
            backend,
            conversations,
            labels,
            "intents" if task == "intents" else "actions",
            concurrency=settings.max_concurrency,
            only=set(gold),
        )
    return {"task": task, **report.summary(), "agreement": agreement(read_labels(labels), gold)}


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA)
    parser.add_argument("--task", choices=("intents", "actions"), default="intents")
    parser.add_argument("--limit", type=int, default=None, help="First N conversations only.")
    parser.add_argument("-o", "--output", type=Path, default=Path("reports/llm_label"))
    args = parser.parse_args(argv)
    gold = args.realdata / f"jddc-{args.task}-dev.csv"
    if not gold.is_file() or not (args.realdata / "jddc-logs.csv").is_file():
        print(f"skipped: no hand labels at {gold} or no jddc-logs.csv beside them")
        return None
    settings = LLMSettings()
    if not settings.enabled:
        print("skipped: no LLM configured (set COPILOT_LLM_BACKEND and its settings)")
        return None
    metrics = evaluate(args.realdata, args.task, args.output, settings, args.limit)
    (args.output / f"{args.task}-metrics.json").write_text(
        json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    a = metrics["agreement"]
    print(
        f"{args.task}: {a['n']} messages compared, accuracy {a['accuracy']}, "
        f"macro-F1 {a['macro_f1']}, kappa {a['kappa']}"
    )
    print(
        f"per item: {metrics['prompt_tokens_per_item']:.0f} prompt + "
        f"{metrics['completion_tokens_per_item']:.0f} completion tokens, "
        f"{metrics['seconds_per_item']:.2f} s; failed items {metrics['failed']}"
    )
    return metrics


if __name__ == "__main__":
    main()
