"""Are the suggestions grounded? Failure rates on real and hand-written moments, and a judging sheet.

    python -m eval.real_suggest [--realdata ../shared/realdata] [--bundle DIR] [--seed 0]
                                [--sheet reports/judge-sheet.md]

A *moment* is a conversation cut right after a customer message where the real next message is
the guide's, with at least two earlier messages (``../shared/realdata/JUDGE.md``). Two sets:

- **JDDC 20%**: 50 moments (seeded) from the sessions the 80% bundle of :mod:`eval.real_dev` was
  not trained on (trained here unless ``--bundle`` points at it); skipped cleanly when
  ``../shared/realdata`` is absent.
- **hand-written**: every moment of ``eval/data/moments.jsonl`` (apparel, beauty,
  mother-and-baby, after-sales; written blind to the product), suggested by the demo bundle
  (``--demo-bundle``, default ``bundles/default`` then ``bundles/default``) with the moments'
  catalogue and promotions.

For each suggestion served as ready to send (``needs_edit`` false) the checks below count a
failure. They are deliberately broader than the engine's own fact check (their word lists are
wider and they know nothing of slots), so they can disagree with it:

- **wrong product**: names a product word (the generic retail list, the catalogue, the
  bundle's learned words) that the chat does not contain;
- **unsupported fact**: states a logistics state, a delivery time, a number with a unit of
  money, time or discount, a coupon/gift/free-shipping word or stock, and the chat (with the
  catalogue and promotions on the hand-written set) contains no word of that kind;
- **placeholder**: a bracketed placeholder that is not a WeChat sticker;
- **stitched**: two or more lines whose parts share no topic (no two-character word in common)
  and the second does not continue the first (a connective or pointer).

``--sheet`` writes the JDDC moments with their top-3 suggestions, shuffled with the real reply,
for a blind reader with JUDGE.md (the key is written beside it).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from copilot.catalog import Catalog, _product_words
from copilot.io import open_conversations
from copilot.schema import Conversation
from copilot.text import STICKER_NAMES

__all__ = ["check_suggestion", "main", "moments"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REALDATA = ROOT.parent / "shared" / "realdata"
MOMENTS = ROOT / "eval" / "data" / "moments.jsonl"
FAILURES = ("wrong_product", "unsupported_fact", "placeholder", "stitched")

_FACT_WORDS = {
    "logistics": r"已经?发|发货了|发出了|派送|配送中|签收|驿站|揽收|运输|出库|在路上|快递柜|打包",
    "time": (
        r"(?:今天|明天|后天|当天|次日|隔日|周末|\d+\s*(?:个)?(?:工作日|小时|天|周)"
        r"|[一二两三四五六七]天)[^，。！？,.!?]{0,6}(?:发|到|送|签收|派)"
    ),
    "money": r"\d+(?:\.\d+)?\s*(?:元|块)|[¥￥]\s*\d+|\d(?:\.\d)?折",
    "promotion": r"券|红包|赠|包邮|免运费|满减|立减|直降|活动价|特价|会员价|优惠活动|双十一|双11|618|七夕",
    "stock": r"有货|现货|库存|没货|缺货|断货|售罄|补货",
}
_BRACKET = re.compile(r"\[([^\[\]]{1,12})\]")
_CONNECT = re.compile(
    r"^(?:所以|因为|而且|并且|然后|但|不过|如果|就|也|还|这|那|它|[，,、：:；;…])"
)


def _bigrams(text: str) -> set[str]:
    chars = "".join(re.findall(r"[\u4e00-\u9fff]+", text))
    return {chars[i : i + 2] for i in range(len(chars) - 1)}


def check_suggestion(
    text: str, chat: str, product_words: Sequence[str], support: str = ""
) -> list[str]:
    """The failures of one ready-to-send suggestion in a chat (see the module docstring)."""
    out = []
    if any(w in text and w not in chat for w in product_words):
        out.append("wrong_product")
    known = chat + "\n" + support
    for pattern in _FACT_WORDS.values():
        if re.search(pattern, text) and not re.search(pattern, known):
            out.append("unsupported_fact")
            break
    if any(m.group(1) not in STICKER_NAMES for m in _BRACKET.finditer(text)):
        out.append("placeholder")
    parts = [p.strip() for p in text.split("\n") if p.strip()]
    if any(
        not (_bigrams(a) & _bigrams(b)) and not _CONNECT.match(b) and len(b) > 4
        for a, b in zip(parts, parts[1:], strict=False)
    ):
        out.append("stitched")
    return out


def moments(conversations: Sequence[Conversation], n: int, seed: int) -> list[Conversation]:
    """``n`` moments (JUDGE.md): cut after a customer message the guide answers next."""
    rng = random.Random(seed)
    out = []
    pool = sorted(conversations, key=lambda c: c.conversation_id)
    rng.shuffle(pool)
    for c in pool:
        cuts = [
            i
            for i in range(2, len(c.messages) - 1)
            if c.messages[i].role == "customer" and c.messages[i + 1].role == "guide"
        ]
        if cuts:
            i = rng.choice(cuts)
            out.append(c.model_copy(update={"messages": c.messages[: i + 2]}))
        if len(out) == n:
            break
    return out


def _run(engine: Any, cut: Sequence[Conversation], words: Sequence[str], support: str) -> dict:
    counts: Counter[str] = Counter()
    rows = []
    served = edit = 0
    for c in cut:
        before = c.model_copy(update={"messages": c.messages[:-1], "labels": None, "outcome": None})
        result = engine.suggest(before, k=3)
        chat = "\n".join(m.text for m in before.messages)
        checked = []
        for s in result["suggestions"]:
            fails = [] if s["needs_edit"] else check_suggestion(s["text"], chat, words, support)
            served += not s["needs_edit"]
            edit += s["needs_edit"]
            counts.update(fails)
            checked.append(
                {**{k: s[k] for k in ("text", "action", "needs_edit", "slots")}, "fails": fails}
            )
        rows.append(
            {
                "id": c.conversation_id,
                "chat": [(m.role, m.text) for m in before.messages],
                "real": c.messages[-1].text,
                "intent": result["intent"]["label"],
                "suggestions": checked,
            }
        )
    return {
        "moments": len(cut),
        "ready": served,
        "needs_edit": edit,
        "none": sum(not r["suggestions"] for r in rows),
        "rates": {f: round(counts[f] / max(served, 1), 4) for f in FAILURES},
        "rows": rows,
    }


def _demo_bundle(given: Path | None) -> Path | None:
    for p in [given] if given else [ROOT / "bundles" / "default", ROOT / "models" / "default"]:
        if p is not None and (p / "manifest.json").exists():
            return p
    return None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from models.bundle import load_bundle
    from models.suggest import engine_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA)
    parser.add_argument("--bundle", type=Path, help="the JDDC-80% bundle (trained when absent)")
    parser.add_argument("--demo-bundle", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--sheet", type=Path)
    parser.add_argument("--json", type=Path, help="write every moment and check here")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}

    demo = _demo_bundle(args.demo_bundle)
    if demo is None:
        print(
            "no demo bundle (run `make demo` or pass --demo-bundle): hand-written moments skipped"
        )
    else:
        from copilot.io.catalog import read_catalog, read_promotions

        bundle = load_bundle(demo)
        engine = engine_for(bundle)
        products, _ = read_catalog(MOMENTS.with_name("moments_catalog.csv"))
        promotions, _ = read_promotions(MOMENTS.with_name("moments_promotions.csv"))
        engine.set_catalog(Catalog(products, promotions))
        cat = engine.catalog
        words = sorted(_product_words() | set(cat.products) | set(cat.categories) | set(cat.terms))
        support = "\n".join(
            [f"{p.name} {p.price}元 " + " ".join(p.attributes.values()) for p in products]
            + [f"{p.title} {p.detail} {p.kind}" for p in promotions]
        )
        hand = [c for c in open_conversations(MOMENTS) if isinstance(c, Conversation)]
        # A hand-written moment ends with the customer: add a stand-in guide reply to cut before.
        cut = [
            c.model_copy(
                update={
                    "messages": [*c.messages, c.messages[-1].model_copy(update={"role": "guide"})]
                }
            )
            for c in hand
        ]
        out["hand-written"] = _run(engine, cut, words, support)

    logs_path = args.realdata / "jddc-logs.csv"
    if not logs_path.exists():
        print(f"{args.realdata} not found: the JDDC moments are skipped")
    else:
        from eval.real_dev import _read_logs, _split

        logs = _read_logs(logs_path)
        train, test = _split(logs, args.seed)
        if args.bundle and (args.bundle / "manifest.json").exists():
            bundle = load_bundle(args.bundle)
        else:
            from copilot.taxonomy import default_taxonomy
            from models.train import TrainConfig, default_base, train_bundle

            bundle = train_bundle(
                train,
                taxonomy=default_taxonomy(),
                config=TrainConfig(seed=args.seed),
                base=default_base(seed=args.seed),
                name="real-80",
            )
            if args.bundle:
                bundle.save(args.bundle)
        engine = engine_for(bundle)
        words = sorted(_product_words() | set(engine.catalog.terms))
        out["jddc-20%"] = _run(engine, moments(test, args.n, args.seed), words, "")
        if args.sheet:
            _sheet(out["jddc-20%"]["rows"], args.sheet, args.seed)

    for name, m in out.items():
        print(
            f"{name}: {m['moments']} moments, {m['ready']} ready / {m['needs_edit']} needs_edit "
            f"suggestions, {m['none']} with none; failure rates of ready ones: "
            + ", ".join(f"{k} {v:.1%}" for k, v in m["rates"].items())
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=1), "utf-8")
    return out


def _sheet(rows: Sequence[dict[str, Any]], path: Path, seed: int) -> None:
    """A blind judging sheet: each moment's candidates shuffled with the real reply, and a key."""
    rng = random.Random(seed)
    lines, key = [], {}
    for n, row in enumerate(rows, 1):
        cands = [("real", row["real"])] + [
            (
                f"s{k + 1}",
                s["text"]
                + ("  〔需编辑: " + "、".join(s["slots"]) + "〕" if s["needs_edit"] else ""),
            )
            for k, s in enumerate(row["suggestions"])
        ]
        rng.shuffle(cands)
        lines.append(f"## Moment {n}\n")
        lines += [f"- {'顾客' if r == 'customer' else '客服'}: {t}" for r, t in row["chat"]]
        lines.append(f"\nThe product's intent for the last customer message: {row['intent']}")
        lines.append("\nCandidate replies:\n")
        letters = "ABCD"
        key[n] = {letters[i]: who for i, (who, _t) in enumerate(cands)}
        lines += [f"{letters[i]}. {t}" for i, (_w, t) in enumerate(cands)]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), "utf-8")
    path.with_suffix(".key.json").write_text(json.dumps(key, indent=1), "utf-8")


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
