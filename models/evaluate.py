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
from typing import Any

import numpy as np

from copilot.schema import Conversation
from models.bundle import Bundle, message_contexts
from models.nba import IntentBaseline, Turn, nba_examples
from models.outcome import outcome_features

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


def _gold_messages(
    conversations: Sequence[Conversation], role: str
) -> tuple[list[str], list[str], list[str]]:
    texts, contexts, gold = [], [], []
    for conversation in conversations:
        if conversation.labels is None:
            continue
        table = conversation.labels.intents if role == "customer" else conversation.labels.actions
        ctx = message_contexts(conversation)
        for i, label in sorted(table.items()):
            texts.append(conversation.messages[i].text)
            contexts.append(ctx[i])
            gold.append(label)
    return texts, contexts, gold


class IntentEvaluator:
    """Intent classification on the customer messages of labelled conversations (primary: macro-F1)."""

    primary_metric = "macro_f1"

    def __init__(self, conversations: Sequence[Conversation]) -> None:
        self.texts, self.contexts, self.gold = _gold_messages(conversations, "customer")

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
    texts, contexts, gold = _gold_messages(conversations, "guide")
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
