"""I/O and text-pipeline throughput beside the jieba floor.

Measures, on a generated corpus (50k conversations by default):
- ``pipeline``: load + validate the JSONL file, then normalise + mask PII + tokenise every message;
- ``jieba floor``: jieba tokenisation alone (same tokenizer, same dictionary) of the same texts,
  already in memory;
- the synthetic generator: seconds for 10k conversations (target under 30 s).
The ratio pipeline / floor is the figure of merit (target: at most 1.5).

Run: ``python -m eval.bench_io [--conversations 50000] [--out bench-results/bench_io.json]``
(``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from copilot.io import iter_conversations
from copilot.synth import generate
from copilot.text import TextPipeline
from eval._corpus import cached_corpus

__all__ = ["main"]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--cache", type=Path, default=Path("data/bench"))
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench_io.json"))
    args = parser.parse_args(argv)

    path = cached_corpus(args.conversations, args.seed, args.cache)
    pipeline = TextPipeline()
    pipeline.process("预热一下分词器，加载词典 M码 165/88A")  # dictionary load is not throughput

    # The pipeline: read + validate + normalise + mask + tokenise.
    t0 = time.perf_counter()
    texts: list[str] = []
    n_tokens = 0
    for conversation in iter_conversations(path):
        for message in conversation.messages:
            texts.append(message.text)
            n_tokens += len(pipeline.process(message.text).tokens)
    pipeline_s = time.perf_counter() - t0

    # The floor: jieba alone on the same texts, with the pipeline's own tokenizer and HMM setting.
    jieba_tok = pipeline.jieba
    hmm = pipeline.config.hmm
    t0 = time.perf_counter()
    for text in texts:
        jieba_tok.lcut(text, HMM=hmm)
    floor_s = time.perf_counter() - t0

    # Generator speed: 10k conversations, target under 30 s (iterated in memory, not written).
    t0 = time.perf_counter()
    for _conversation in generate(10_000, seed=args.seed + 1):
        pass
    generate_s = time.perf_counter() - t0

    n_messages = len(texts)
    n_chars = sum(map(len, texts))
    result = {
        "conversations": args.conversations,
        "messages": n_messages,
        "chars": n_chars,
        "tokens": n_tokens,
        "pipeline_seconds": round(pipeline_s, 3),
        "pipeline_messages_per_s": round(n_messages / pipeline_s),
        "pipeline_chars_per_s": round(n_chars / pipeline_s),
        "jieba_floor_seconds": round(floor_s, 3),
        "jieba_floor_messages_per_s": round(n_messages / floor_s),
        "ratio_pipeline_to_floor": round(pipeline_s / floor_s, 3),
        "target_ratio": 1.5,
        "generate_10k_conversations_seconds": round(generate_s, 2),
        "generate_target_seconds": 30,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print()
    print(f"{'measure':<34}{'value':>16}")
    print("-" * 50)
    for key, value in result.items():
        print(
            f"{key:<34}{value:>16,}" if isinstance(value, int | float) else f"{key:<34}{value:>16}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")
    return result


if __name__ == "__main__":
    main()
