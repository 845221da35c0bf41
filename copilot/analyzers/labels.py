"""Intent of every customer message and act of every guide message, from the model bundle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from copilot.pipeline import Analyzer, Doc

if TYPE_CHECKING:
    from models.bundle import Bundle, Prediction

__all__ = ["LabelAnalyzer"]


class LabelAnalyzer(Analyzer):
    """Assigns ``labels``: one ``Prediction`` per message (``None`` for system messages), and
    ``acts``: per guide message the set of acts it performs, the top one plus any other with
    probability at least ``also`` (「有的亲，您平时穿什么码？」 both answers and asks).

    All customer messages of a batch go to the intent model in one call, all guide messages to the
    act model in another, each with its context (the previous message of the other side); every
    distinct text is featurised once for both (``Bundle.shared_block``).

    Args:
        bundle: the model bundle.
        use_gold: take gold labels (confidence 1.0) where the conversation has them.
    """

    name = "labels"
    assigns = ("labels", "acts")

    def __init__(self, bundle: Bundle, use_gold: bool = False, also: float = 0.25) -> None:
        self.bundle = bundle
        self.use_gold = use_gold
        self.also = also

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        from models.bundle import Prediction, message_contexts

        out: list[list[Prediction | None]] = [[None] * len(d.conversation.messages) for d in docs]
        wanted: dict[str, list[tuple[int, int]]] = {"customer": [], "guide": []}
        texts: dict[str, list[str]] = {"customer": [], "guide": []}
        contexts: dict[str, list[str]] = {"customer": [], "guide": []}
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
            [frozenset([p.label]) if p else None for p in labels] for labels in out
        ]
        if wanted["guide"]:
            proba = self.bundle.act.predict_proba(texts["guide"], contexts["guide"], block)
            classes = self.bundle.act.classes_
            for (d, i), row in zip(wanted["guide"], proba, strict=True):
                best = int(row.argmax())
                out[d][i] = Prediction(classes[best], float(row[best]))
                acts[d][i] = frozenset(
                    classes[k] for k in range(len(classes)) if k == best or row[k] >= self.also
                )
        return [{"labels": labels, "acts": a} for labels, a in zip(out, acts, strict=True)]
