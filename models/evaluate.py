"""Evaluation of a bundle on labelled conversations.

``evaluate_bundle(bundle, conversations)`` returns one metrics dict: intent accuracy, macro-F1 and
per-label precision/recall/F1 with the confusion matrix; act macro-F1; next-best-action top-1 and
top-3 beside the "most frequent winning action for this intent" baseline; outcome AUC with a
calibration table. ``copilot train`` records it for its validation split, ``copilot eval`` renders
it as a report. As in sentence-transformers, an evaluator is a callable with a primary metric:
``IntentEvaluator(conversations)(bundle)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.schema import Conversation
from models.bundle import Bundle, labelled_messages
from models.nba import IntentBaseline, Turn, nba_examples
from models.outcome import outcome_features

if TYPE_CHECKING:
    import random

    from models.scripts import ScriptLibrary

__all__ = ["IntentEvaluator", "classification_metrics", "evaluate_bundle", "nba_turns"]


def classification_metrics(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 (over labels present in gold), per-label P/R/F1 and the confusion matrix."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    present = [label for label in labels if label in set(gold)]
    if not gold:
        return {"n": 0}
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=present, zero_division=0)
    return {
        "n": len(gold),
        "accuracy": round(float(accuracy_score(gold, pred)), 4),
        "macro_f1": round(float(np.mean(f)), 4) if len(f) else 0.0,
        "per_label": {
            label: {
                "precision": round(float(p[i]), 4),
                "recall": round(float(r[i]), 4),
                "f1": round(float(f[i]), 4),
                "support": int(s[i]),
            }
            for i, label in enumerate(present)
        },
        "labels": list(labels),
        "confusion": confusion_matrix(gold, pred, labels=list(labels)).tolist(),
    }


class IntentEvaluator:
    """Intent classification on the customer messages of labelled conversations (primary: macro-F1)."""

    primary_metric = "macro_f1"

    def __init__(self, conversations: Sequence[Conversation]) -> None:
        self.texts, self.contexts, self.gold = labelled_messages(conversations, "customer")

    def __call__(self, bundle: Bundle) -> dict[str, Any]:
        pred = [p.label for p in bundle.predict_intents(self.texts, self.contexts)]
        return classification_metrics(self.gold, pred, bundle.taxonomy.intent_ids)


def nba_turns(conversations: Sequence[Conversation], winning_only: bool = True) -> list[Turn]:
    """Decision points of (winning) conversations, with gold labels."""
    turns: list[Turn] = []
    for conversation in conversations:
        if winning_only and (conversation.outcome is None or not conversation.outcome.converted):
            continue
        if conversation.labels is None:
            continue
        labels = {**conversation.labels.intents, **conversation.labels.actions}
        turns += nba_examples(
            [m.role for m in conversation.messages],
            [labels.get(i) for i in range(len(conversation.messages))],
            [m.ts for m in conversation.messages],
        )
    return turns


def nba_metrics(bundle: Bundle, turns: Sequence[Turn], baseline: IntentBaseline) -> dict[str, Any]:
    """Top-1/top-3 of the model and of the baseline on the same decision points."""
    if not turns:
        return {"n": 0}
    proba = bundle.nba.predict_proba([t.features for t in turns])
    classes = bundle.nba.classes_
    order = np.argsort(-proba, axis=1)[:, :3]
    model_top = [[classes[j] for j in row] for row in order]
    base_top = [baseline.rank(t.intent, 3) for t in turns]
    gold = [t.action for t in turns]

    def hit(ranked: list[list[str]], k: int) -> float:
        return round(float(np.mean([g in r[:k] for g, r in zip(gold, ranked, strict=True)])), 4)

    return {
        "n": len(turns),
        "top1": hit(model_top, 1),
        "top3": hit(model_top, 3),
        "baseline_top1": hit(base_top, 1),
        "baseline_top3": hit(base_top, 3),
        "baseline": "most frequent winning action for the intent",
    }


def outcome_metrics(
    bundle: Bundle, conversations: Sequence[Conversation], use_gold: bool = True
) -> dict[str, Any]:
    """AUC, Brier score and a 10-bin calibration table of win probabilities."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    scored = [c for c in conversations if c.outcome is not None]
    if bundle.outcome is None or not scored:
        return {"n": 0}
    rows = []
    for conversation in scored:
        labels = bundle.labels_of(conversation, use_gold=use_gold)
        rows.append(
            outcome_features(
                [m.role for m in conversation.messages],
                labels,
                [m.ts for m in conversation.messages],
            )
        )
    p = bundle.outcome.win_probability(rows)
    y = np.asarray([c.outcome.converted for c in scored if c.outcome is not None], dtype=int)
    out: dict[str, Any] = {"n": len(y), "positive_rate": round(float(y.mean()), 4)}
    if 0 < y.sum() < len(y):
        out["auc"] = round(float(roc_auc_score(y, p)), 4)
    out["brier"] = round(float(brier_score_loss(y, p)), 4)
    bins = np.minimum((p * 10).astype(int), 9)
    out["calibration"] = [
        {
            "bin": b / 10,
            "n": int((bins == b).sum()),
            "predicted": round(float(p[bins == b].mean()), 4),
            "observed": round(float(y[bins == b].mean()), 4),
        }
        for b in range(10)
        if (bins == b).any()
    ]
    return out


def evaluate_bundle(bundle: Bundle, conversations: Sequence[Conversation]) -> dict[str, Any]:
    """Every metric of a bundle on labelled conversations.

    Args:
        bundle: the bundle to evaluate; its next-best-action baseline was fitted on its own
            training data, like the model it is compared with.
        conversations: labelled conversations, ideally generated with another seed (or held-out
            phrasings) than the training data.
    """
    intents = IntentEvaluator(conversations)(bundle)
    texts, contexts, gold = labelled_messages(conversations, "guide")
    acts = classification_metrics(
        gold, [p.label for p in bundle.predict_acts(texts, contexts)], bundle.taxonomy.action_ids
    )
    turns = nba_turns(conversations)
    return {
        "conversations": len(conversations),
        "intent": intents,
        "act": acts,
        "next_best_action": nba_metrics(bundle, turns, bundle.baseline),
        "outcome": outcome_metrics(bundle, conversations),
    }


def retrieval_metrics(
    bundle: Bundle,
    conversations: Sequence[Conversation],
    engine: Any = None,
    *,
    max_turns: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """How well the suggestion engine finds the reply a winning guide actually sent.

    For guide turns of winning conversations: Recall@1/3/10 and MRR@10 of the script the actual
    reply belongs to, and response selection (the true reply against 9 replies of other
    conversations at the same intent: R10@1, R10@2, R10@5), for the engine, the reply matcher
    alone (when the bundle has one) and three baselines:
    BM25 only, dense only, and random scripts of the predicted intent. Turns whose reply matches
    no mined script are counted in ``coverage`` and left out of the ranks.
    """
    import random

    from models.suggest import SuggestionEngine

    library = bundle.scripts
    if library is None or not len(library):
        return {"n": 0, "note": "the bundle has no scripts"}
    if engine is None:
        from copilot.compliance import default_checker

        engine = SuggestionEngine(bundle, library, default_checker())
    rng = random.Random(seed)
    turns, total = _gold_turns(bundle, library, conversations, engine.pipeline)
    if not turns:
        return {"n": 0, "turns": total, "coverage": 0.0}
    coverage = len(turns) / total
    if len(turns) > max_turns:
        turns = rng.sample(turns, max_turns)
    methods: tuple[str, ...] = ("engine", "matcher", "bm25", "dense", "random")
    if bundle.reply_matcher is None:
        methods = ("engine", "bm25", "dense", "random")
    run = _RetrievalRun(engine, library, methods, turns, rng)
    for prefix, gold, intent in turns:
        run.turn(prefix, gold, intent)
    out: dict[str, Any] = {
        "turns": total,
        "evaluated": len(turns),
        "coverage": round(coverage, 4),
        "response_selection_n": len(run.selection["engine"]),
        "methods": {m: _method_row(run.ranks[m], run.selection[m]) for m in methods},
    }
    engine_row = out["methods"]["engine"]
    out["engine_beats_baselines"] = all(
        engine_row[m] > out["methods"][b][m]
        for b in ("bm25", "dense", "random")
        for m in ("recall@3", "mrr", "R10@1")
        if engine_row[m] is not None and out["methods"][b][m] is not None
    )
    return out


def _gold_turns(
    bundle: Bundle,
    library: ScriptLibrary,
    conversations: Sequence[Conversation],
    pipeline: Any,
) -> tuple[list[tuple[Conversation, int, str]], int]:
    """The guide turns of winning conversations whose reply belongs to a mined script.

    Returns:
        ``([(prefix before the reply, gold script id, customer intent)], guide turns seen)``.
    """
    turns: list[tuple[Conversation, int, str]] = []
    total = 0
    for conversation in conversations:
        if conversation.outcome is None or not conversation.outcome.converted:
            continue
        labels = bundle.labels_of(conversation, use_gold=True)
        messages = conversation.messages
        for i, message in enumerate(messages):
            if (
                message.role != "guide"
                or i == 0
                or messages[i - 1].role != "customer"
                or labels[i] is None
            ):
                continue
            end = i
            while end + 1 < len(messages) and messages[end + 1].role == "guide":
                end += 1
            reply = "\n".join(pipeline.mask(messages[j].text)[0] for j in range(i, end + 1))
            total += 1
            vector = bundle.embedder.encode([reply])[0]
            gold = library.assign(reply, labels[i], vector)
            if gold is not None:
                prefix = conversation.model_copy(update={"messages": messages[:i]})
                turns.append((prefix, gold, labels[i - 1] or ""))
    return turns, total


class _RetrievalRun:
    """Each method's rank of the gold script and response-selection rank, turn by turn."""

    def __init__(
        self,
        engine: Any,
        library: ScriptLibrary,
        methods: tuple[str, ...],
        turns: Sequence[tuple[Conversation, int, str]],
        rng: random.Random,
    ) -> None:
        self.engine = engine
        self.methods = methods
        self.rng = rng
        self.by_intent: dict[str, list[int]] = {}
        for script in library.scripts:
            self.by_intent.setdefault(script.intent, []).append(script.id)
        self.gold_by_intent: dict[str, list[int]] = {}
        for _prefix, gold, intent in turns:
            self.gold_by_intent.setdefault(intent, []).append(gold)
        self.ranks: dict[str, list[int | None]] = {m: [] for m in methods}
        self.selection: dict[str, list[int]] = {m: [] for m in methods}

    def turn(self, prefix: Conversation, gold: int, intent: str) -> None:
        """Rank the scripts for one turn, then pick the true reply among 10 when there are 9 others."""
        signals_intent, actions = self.engine.signals(prefix)
        probs = {a.label: a.confidence for a in actions}
        predicted = signals_intent["label"]
        self._rank(prefix, gold, probs, predicted)
        others = [g for g in set(self.gold_by_intent.get(intent, [])) if g != gold]
        if len(others) >= 9:
            candidates = [gold, *self.rng.sample(sorted(others), 9)]
            self._select(prefix, candidates, probs, predicted)

    def _rank(
        self, prefix: Conversation, gold: int, probs: dict[str, float], predicted: str | None
    ) -> None:
        for method in self.methods:
            if method == "random":
                pool = list(self.by_intent.get(predicted or "", []))
                self.rng.shuffle(pool)
                ranking = pool
            else:
                ranking = [
                    r.script.id
                    for r in self.engine.rank(
                        prefix, actions=probs, intent=predicted, method=method
                    )
                ]
            self.ranks[method].append(ranking.index(gold) + 1 if gold in ranking else None)

    def _select(
        self,
        prefix: Conversation,
        candidates: list[int],
        probs: dict[str, float],
        predicted: str | None,
    ) -> None:
        for method in self.methods:
            if method == "random":
                scores = [self.rng.random() for _ in candidates]
            else:
                scores = self.engine.score_scripts(
                    prefix, candidates, method, actions=probs, intent=predicted
                )
            # Ties rank the true reply last: a method earns its hits.
            better = sum(s > scores[0] for s in scores[1:]) + sum(
                s == scores[0] for s in scores[1:]
            )
            self.selection[method].append(better + 1)


def _method_row(r: list[int | None], sel: list[int]) -> dict[str, float | None]:
    """One method's Recall@k and MRR@10 of the gold script, and its R10@k."""
    return {
        "recall@1": _share(r, 1),
        "recall@3": _share(r, 3),
        "recall@10": _share(r, 10),
        "mrr": round(float(np.mean([1 / x if x and x <= 10 else 0.0 for x in r])), 4),
        "R10@1": round(float(np.mean([x <= 1 for x in sel])), 4) if sel else None,
        "R10@2": round(float(np.mean([x <= 2 for x in sel])), 4) if sel else None,
        "R10@5": round(float(np.mean([x <= 5 for x in sel])), 4) if sel else None,
    }


def _share(ranks: list[int | None], k: int) -> float:
    return round(float(np.mean([r is not None and r <= k for r in ranks])), 4) if ranks else 0.0
