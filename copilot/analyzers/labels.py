"""Intent of every customer message and act of every guide message, from the model bundle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from copilot.pipeline import Analyzer, Doc
from copilot.prediction import Prediction, message_contexts

__all__ = ["Block", "LabelAnalyzer", "LabelModel"]

Block = Callable[[Sequence[str]], Any]
"""Precomputed feature rows of a batch's texts, looked up by text (opaque to the analyzer)."""


class LabelModel(Protocol):
    """What :class:`LabelAnalyzer` asks of a model (``models.bundle.Bundle`` is one).

    Each text comes with its context (:func:`copilot.prediction.message_contexts`); ``block``,
    from :meth:`shared_block`, lets both classifiers reuse one featurisation of the batch.
    """

    def shared_block(self, texts: Sequence[str]) -> Block | None:
        """Feature rows of ``texts`` computed once, or ``None`` when they cannot be shared."""
        ...

    def predict_intents(
        self,
        texts: Sequence[str],
        contexts: Sequence[str] | None = None,
        block: Block | None = None,
    ) -> list[Prediction]:
        """The intent of each customer message."""
        ...

    def act_probabilities(
        self,
        texts: Sequence[str],
        contexts: Sequence[str] | None = None,
        block: Block | None = None,
    ) -> tuple[list[str], np.ndarray]:
        """The act classes and one row of their probabilities per guide message."""
        ...


class LabelAnalyzer(Analyzer):
    """Assigns ``labels``: one ``Prediction`` per message (``None`` for system messages), and
    ``acts``: per guide message the set of acts it performs, the top one plus any other with
    probability at least ``also`` (「有的亲，您平时穿什么码？」 both answers and asks).

    All customer messages of a batch go to the intent model in one call, all guide messages to the
    act model in another, each with its context (the previous message of the other side); every
    distinct text is featurised once for both (``Bundle.shared_block``).

    Args:
        bundle: the model (a :class:`LabelModel`; the bundle in production).
        use_gold: take gold labels (confidence 1.0) where the conversation has them.
        also: an act other than the top one is assigned from this probability on.
        memo_size: remember this many messages' predictions by (role, text, context), cleared
            when full (the suggestion engine: a guide's tool sends the whole chat again with
            each new message, and a message's prediction depends only on those three).
    """

    name = "labels"
    assigns = ("labels", "acts")

    def __init__(
        self, bundle: LabelModel, use_gold: bool = False, also: float = 0.25, memo_size: int = 0
    ) -> None:
        self.bundle = bundle
        self.use_gold = use_gold
        self.also = also
        self.memo_size = memo_size
        self._memo: dict[tuple[str, str, str], tuple[Prediction, frozenset[str]]] = {}

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        out: list[list[Prediction | None]] = [[None] * len(d.conversation.messages) for d in docs]
        wanted: dict[str, list[tuple[int, int]]] = {"customer": [], "guide": []}
        texts: dict[str, list[str]] = {"customer": [], "guide": []}
        contexts: dict[str, list[str]] = {"customer": [], "guide": []}
        known: dict[tuple[int, int], frozenset[str]] = {}
        for d, doc in enumerate(docs):
            conv = doc.conversation
            gold: dict[int, str] = {}
            if self.use_gold and conv.labels:
                gold = {**conv.labels.intents, **conv.labels.actions}
            ctx = message_contexts(conv)
            for i, message in enumerate(conv.messages):
                if message.role == "system":
                    continue
                if i in gold:
                    out[d][i] = Prediction(gold[i], 1.0)
                    continue
                hit = self._memo.get((message.role, message.text, ctx[i]))
                if hit is not None:
                    out[d][i], known[(d, i)] = hit
                    continue
                wanted[message.role].append((d, i))
                texts[message.role].append(message.text)
                contexts[message.role].append(ctx[i])
        every = [*texts["customer"], *texts["guide"], *contexts["customer"], *contexts["guide"]]
        block = self.bundle.shared_block(every) if every else None
        if wanted["customer"]:
            preds = self.bundle.predict_intents(texts["customer"], contexts["customer"], block)
            for (d, i), pred in zip(wanted["customer"], preds, strict=True):
                out[d][i] = pred
        acts: list[list[frozenset[str] | None]] = [
            [
                known.get((d, i)) or (frozenset([p.label]) if p else None)
                for i, p in enumerate(labels)
            ]
            for d, labels in enumerate(out)
        ]
        if wanted["guide"]:
            classes, proba = self.bundle.act_probabilities(texts["guide"], contexts["guide"], block)
            for (d, i), row in zip(wanted["guide"], proba, strict=True):
                best = int(row.argmax())
                out[d][i] = Prediction(classes[best], float(row[best]))
                acts[d][i] = frozenset(
                    classes[k] for k in range(len(classes)) if k == best or row[k] >= self.also
                )
        if self.memo_size:
            self._remember(docs, wanted, out, acts, texts, contexts)
        return [{"labels": labels, "acts": a} for labels, a in zip(out, acts, strict=True)]

    def _remember(
        self,
        docs: Sequence[Doc],
        wanted: dict[str, list[tuple[int, int]]],
        out: list[list[Prediction | None]],
        acts: list[list[frozenset[str] | None]],
        texts: dict[str, list[str]],
        contexts: dict[str, list[str]],
    ) -> None:
        if len(self._memo) > self.memo_size:
            self._memo.clear()
        for role, places in wanted.items():
            for (d, i), text, ctx in zip(places, texts[role], contexts[role], strict=True):
                pred, act = out[d][i], acts[d][i]
                if pred is not None and act is not None:
                    self._memo[(role, text, ctx)] = (pred, act)
