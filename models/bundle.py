"""The model bundle: one directory holding everything the pipeline needs.

::

    bundle/
      manifest.json     package and format version, taxonomy, embedder spec, data hash, seed, metrics
      taxonomy.yaml     the labels the bundle was trained with
      embedder/         the text embedder (offline TF-IDF+SVD, or a sentence-transformers model)
      intent/           customer-message intent classifier (linear or fine-tuned)
      act/              guide-message act classifier
      nba/              next-best-action model
      outcome/          win-probability model (absent when the data had no outcomes)
      scripts/          winning scripts, their lift, and the hybrid index over their contexts
      reply_match/      context -> reply matching model learned from the logs (optional)
      catalog.json      the brand's products, promotions and the product words of its logs

``load_bundle(dir)`` returns a :class:`Bundle`; the same data and seed give a bundle with
identical predictions. A bundle written in another format version is refused with a message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import yaml

from copilot import __version__
from copilot.catalog import Catalog
from copilot.errors import BundleError, InputError
from copilot.prediction import Prediction, message_contexts
from copilot.schema import Conversation
from copilot.taxonomy import Taxonomy
from models.embedders import Embedder, load_embedder
from models.linear import LinearClassifier
from models.nba import IntentBaseline, NextBestActionModel
from models.outcome import OutcomeModel, outcome_features
from models.reply_match import ReplyMatcher
from models.scripts import ScriptLibrary
from models.state import ConversationState

# Prediction and message_contexts live in copilot.prediction (the analyzers use them without
# importing models); they stay importable from here.
__all__ = [
    "FORMAT_VERSION",
    "Bundle",
    "Prediction",
    "TextModel",
    "labelled_messages",
    "load_bundle",
    "message_contexts",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bumped whenever a bundle written by this code cannot be read by older code, or vice versa."""

Backend = Literal["linear", "finetune"]


class TextModel:
    """Classifies message texts, each with its context (the previous message of the other side).

    The ``linear`` backend stacks the embedder's features of the text (sparse TF-IDF and dense
    SVD for the offline embedder; the dense embedding otherwise) with the context's, scaled by
    ``context_weight``, and applies a :class:`LinearClassifier`. The ``finetune`` backend feeds
    ``context [SEP] text`` to a fine-tuned transformer. ``prior_shift`` (label -> factor, from
    training on a brand's unlabelled messages) reweights the probabilities for the brand's own
    class priors.

    Args:
        embedder: a fitted embedder (shared by the bundle's models).
        classifier: a :class:`LinearClassifier` or a ``FinetuneClassifier``.
        backend: which of the two.
        context_weight: weight of the context block (linear backend).
        dense_weight: weight of the dense SVD block next to the sparse one (offline embedder).
            Off by default: it is a linear projection of the same TF-IDF, so a linear model
            gains little from it, and its 256 non-zeros per row make training ~5x slower.
    """

    def __init__(
        self,
        embedder: Embedder,
        classifier: Any,
        backend: Backend = "linear",
        context_weight: float = 0.4,
        dense_weight: float = 0.0,
    ) -> None:
        self.embedder = embedder
        self.classifier = classifier
        self.backend = backend
        self.context_weight = context_weight
        self.dense_weight = dense_weight
        self.prior_shift: dict[str, float] | None = None

    @property
    def classes_(self) -> list[str]:
        return list(self.classifier.classes_)

    def features(
        self,
        texts: Sequence[str],
        contexts: Sequence[str] | None = None,
        block: Callable[[Sequence[str]], Any] | None = None,
    ) -> Any:
        """The linear backend's feature matrix for ``texts`` and their ``contexts``.

        ``block`` (from :meth:`Bundle.shared_block`) gives precomputed rows of the texts, so a
        batch featurises every message once, not once as a text and again as a context.
        """
        contexts = list(contexts) if contexts is not None else [""] * len(texts)
        if len(contexts) != len(texts):
            raise InputError(f"{len(texts)} texts but {len(contexts)} contexts")
        block = block or self._block
        blocks = [block(texts), block(contexts) * self.context_weight]
        return sp.hstack(blocks, format="csr") if sp.issparse(blocks[0]) else np.hstack(blocks)

    def _block(self, texts: Sequence[str]) -> Any:
        return self.embedder.features(texts, dense_weight=self.dense_weight)

    def fit(
        self,
        texts: Sequence[str],
        contexts: Sequence[str],
        labels: Sequence[str],
        weights: Sequence[float] | None = None,
    ) -> TextModel:
        """Fit on labelled texts; ``weights`` (linear backend) scale each example's loss."""
        if self.backend == "linear":
            self.classifier.fit(self.features(texts, contexts), labels, sample_weight=weights)
        else:
            self.classifier.fit(_joined(texts, contexts), labels)
        return self

    def predict_proba(
        self,
        texts: Sequence[str],
        contexts: Sequence[str] | None = None,
        block: Callable[[Sequence[str]], Any] | None = None,
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        if self.backend == "linear":
            features = self.features(texts, contexts, block)
            proba = np.asarray(self.classifier.predict_proba(features))
        else:
            proba = np.asarray(
                self.classifier.predict_proba(_joined(texts, contexts or [""] * len(texts)))
            )
        if self.prior_shift:
            # Label shift: the brand's class priors differ from the training data's.
            proba = proba * np.asarray([self.prior_shift.get(c, 1.0) for c in self.classes_])
            proba /= np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)
        return proba

    def save(self, directory: Path) -> None:
        self.classifier.save(directory)
        config = {
            "backend": self.backend,
            "context_weight": self.context_weight,
            "dense_weight": self.dense_weight,
            "prior_shift": self.prior_shift,
        }
        (directory / "text_model.json").write_text(json.dumps(config), "utf-8")

    @classmethod
    def load(cls, directory: Path, embedder: Embedder) -> TextModel:
        config = json.loads((directory / "text_model.json").read_text("utf-8"))
        if config["backend"] == "linear":
            classifier: Any = LinearClassifier.load(directory)
        else:
            from models.finetune import FinetuneClassifier

            classifier = FinetuneClassifier.load(directory)
        model = cls(
            embedder,
            classifier,
            config["backend"],
            config["context_weight"],
            config["dense_weight"],
        )
        model.prior_shift = config.get("prior_shift")
        return model


def _joined(texts: Sequence[str], contexts: Sequence[str]) -> list[str]:
    return [f"{c} [SEP] {t}" if c else t for t, c in zip(texts, contexts, strict=True)]


class Bundle:
    """Everything trained, ready to predict. Build with :func:`train_bundle`, load with :func:`load_bundle`.

    Attributes:
        manifest: the parsed ``manifest.json``.
        taxonomy: the labels.
        intent_threshold: below this confidence an intent becomes the taxonomy's fallback intent.
    """

    def __init__(
        self,
        *,
        manifest: dict[str, Any],
        taxonomy: Taxonomy,
        embedder: Embedder,
        intent: TextModel,
        act: TextModel,
        nba: NextBestActionModel,
        baseline: IntentBaseline,
        outcome: OutcomeModel | None,
        scripts: ScriptLibrary | None = None,
        reply_matcher: ReplyMatcher | None = None,
        catalog: Catalog | None = None,
        path: Path | None = None,
    ) -> None:
        self.manifest = manifest
        self.taxonomy = taxonomy
        self.embedder = embedder
        self.intent = intent
        self.act = act
        self.nba = nba
        self.baseline = baseline
        self.outcome = outcome
        self.scripts = scripts
        self.reply_matcher = reply_matcher
        self.catalog = catalog
        self.path = path
        self.intent_threshold = float(manifest.get("intent_threshold", 0.0))

    @property
    def name(self) -> str:
        """``<directory name>@<short hash>``: what outputs record as the bundle that made them."""
        return f"{self.manifest.get('name', 'bundle')}@{self.manifest.get('id', '')[:10]}"

    # ------------------------------------------------------------------ prediction

    def shared_block(self, texts: Sequence[str]) -> Callable[[Sequence[str]], Any] | None:
        """Feature rows of ``texts`` computed once, for both classifiers' ``block`` argument.

        ``None`` when the two classifiers do not featurise texts the same way (a fine-tuned
        backend, or different embedders); callers then let each model featurise on its own.
        """
        a, b = self.intent, self.act
        if not (
            a.backend == b.backend == "linear"
            and a.embedder is b.embedder
            and a.dense_weight == b.dense_weight
        ):
            return None
        unique = list(dict.fromkeys([*texts, ""]))
        rows = a._block(unique)
        position = {text: i for i, text in enumerate(unique)}

        def block(items: Sequence[str]) -> Any:
            return rows[[position[t] for t in items]]

        return block

    def predict_intents(
        self,
        texts: Sequence[str],
        contexts: Sequence[str] | None = None,
        block: Callable[[Sequence[str]], Any] | None = None,
    ) -> list[Prediction]:
        """Intent of each customer message; low-confidence ones become the fallback intent."""
        proba = self.intent.predict_proba(texts, contexts, block)
        classes = self.intent.classes_
        out = []
        for row in proba:
            best = int(row.argmax())
            label, conf = classes[best], float(row[best])
            if conf < self.intent_threshold:
                fallback = self.taxonomy.fallback_intent
                conf = float(row[classes.index(fallback)]) if fallback in classes else 1.0 - conf
                label = fallback
            out.append(Prediction(label, conf))
        return out

    def predict_acts(
        self,
        texts: Sequence[str],
        contexts: Sequence[str] | None = None,
        block: Callable[[Sequence[str]], Any] | None = None,
    ) -> list[Prediction]:
        """Action performed by each guide message."""
        classes, proba = self.act_probabilities(texts, contexts, block)
        return [Prediction(classes[int(r.argmax())], float(r.max())) for r in proba]

    def act_probabilities(
        self,
        texts: Sequence[str],
        contexts: Sequence[str] | None = None,
        block: Callable[[Sequence[str]], Any] | None = None,
    ) -> tuple[list[str], np.ndarray]:
        """The act classes and, per guide message, the probability of each (one row per text)."""
        return self.act.classes_, self.act.predict_proba(texts, contexts, block)

    def annotate(self, conversation: Conversation) -> list[Prediction | None]:
        """Predicted intent (customer) or act (guide) of every message; ``None`` for system ones.

        The scoring pipeline's labeller (:class:`copilot.analyzers.labels.LabelAnalyzer`) does it:
        one labeller for scoring, suggesting and training.
        """
        from copilot.analyzers.labels import LabelAnalyzer
        from copilot.pipeline import Doc

        labels: list[Prediction | None] = LabelAnalyzer(self).predict([Doc(conversation)])[0][
            "labels"
        ]
        return labels

    def labels_of(self, conversation: Conversation, use_gold: bool = False) -> list[str | None]:
        """One label per message: gold where ``use_gold`` and present, else predicted."""
        gold: dict[int, str] = {}
        if use_gold and conversation.labels:
            gold = {**conversation.labels.intents, **conversation.labels.actions}
        missing = [
            i for i, m in enumerate(conversation.messages) if i not in gold and m.role != "system"
        ]
        predicted = self.annotate(conversation) if missing else [None] * len(conversation.messages)
        return [gold.get(i) or (p.label if p else None) for i, p in enumerate(predicted)]

    def next_actions(
        self, conversation: Conversation, k: int = 3, labels: Sequence[str | None] | None = None
    ) -> list[Prediction]:
        """Ranked actions for the guide's next reply given the whole conversation so far."""
        labels = list(labels) if labels is not None else self.labels_of(conversation)
        state = ConversationState()
        for message, label in zip(conversation.messages, labels, strict=True):
            state.update(message.role, label, message.ts)
        return [Prediction(a, p) for a, p in self.nba.rank(state.nba_features(), k)]

    def win_probability(
        self, conversation: Conversation, labels: Sequence[str | None] | None = None
    ) -> float | None:
        """P(converted) of the conversation so far; ``None`` when the bundle has no outcome model."""
        if self.outcome is None:
            return None
        labels = list(labels) if labels is not None else self.labels_of(conversation)
        probabilities = self.win_probabilities([conversation], [labels])
        return None if probabilities is None else probabilities[0]

    def win_probabilities(
        self,
        conversations: Sequence[Conversation],
        labels: Sequence[Sequence[str | None]],
    ) -> list[float] | None:
        """P(converted) of each conversation given one label per message, in one model call.

        ``None`` when the bundle has no outcome model.
        """
        if self.outcome is None:
            return None
        if not conversations:
            return []
        rows = [
            outcome_features(
                [m.role for m in conversation.messages],
                list(message_labels),
                [m.ts for m in conversation.messages],
            )
            for conversation, message_labels in zip(conversations, labels, strict=True)
        ]
        return [float(p) for p in self.outcome.win_probability(rows)]

    def classify(self, texts: Sequence[str], k: int = 3) -> list[dict[str, Any]]:
        """The ``copilot classify`` / ``POST /v1/classify`` result for bare customer messages.

        Each text is read as a conversation's latest customer message; ``actions`` ranks the
        guide's next action for it.
        """
        intents = self.predict_intents(texts)
        out = []
        for text, intent in zip(texts, intents, strict=True):
            state = ConversationState()
            state.update("customer", intent.label)
            actions = self.nba.rank(state.nba_features(), k)
            out.append(
                {
                    "text": text,
                    "intent": intent.label,
                    "confidence": round(intent.confidence, 4),
                    "actions": [{"label": a, "probability": round(p, 4)} for a, p in actions],
                }
            )
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path) -> None:
        """Write the bundle; an existing bundle there is replaced only once the new one is complete."""
        import shutil
        import tempfile

        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            self.embedder.save(tmp / "embedder")
            for name, model in (("intent", self.intent), ("act", self.act)):
                (tmp / name).mkdir()
                model.save(tmp / name)
            self.nba.save(tmp / "nba")
            (tmp / "nba" / "baseline.json").write_text(
                json.dumps(self.baseline.to_dict(), ensure_ascii=False), "utf-8"
            )
            if self.outcome is not None:
                self.outcome.save(tmp / "outcome")
            if self.scripts is not None:
                self.scripts.save(tmp / "scripts")
            if self.reply_matcher is not None:
                self.reply_matcher.save(tmp / "reply_match")
            if self.catalog is not None:
                self.catalog.save(tmp / "catalog.json")
            (tmp / "taxonomy.yaml").write_text(
                yaml.safe_dump(
                    self.taxonomy.model_dump(mode="json"), allow_unicode=True, sort_keys=False
                ),
                "utf-8",
            )
            (tmp / "manifest.json").write_text(
                json.dumps(self.manifest, ensure_ascii=False, indent=2), "utf-8"
            )
            if directory.exists():
                old = directory.with_name(f".{directory.name}-old")
                shutil.rmtree(old, ignore_errors=True)
                directory.rename(old)
                tmp.rename(directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.path = directory


def labelled_messages(
    conversations: Sequence[Conversation], role: str
) -> tuple[list[str], list[str], list[str]]:
    """Texts, contexts and gold labels of the labelled ``role`` messages (customer: intents)."""
    texts, contexts, labels = [], [], []
    for conversation in conversations:
        if conversation.labels is None:
            continue
        table = conversation.labels.intents if role == "customer" else conversation.labels.actions
        ctx = message_contexts(conversation)
        for i, label in sorted(table.items()):
            texts.append(conversation.messages[i].text)
            contexts.append(ctx[i])
            labels.append(label)
    return texts, contexts, labels


def load_bundle(directory: str | Path) -> Bundle:
    """Load a bundle written by ``copilot train``.

    Raises:
        BundleError: the directory is missing, incomplete, or from an incompatible version.
    """
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        hint = " (train one with `copilot train DATA -o DIR`)" if not directory.exists() else ""
        raise BundleError(f"no model bundle at {str(directory)!r}: manifest.json not found{hint}")
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {manifest_path}: {exc}") from exc
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"the bundle at {str(directory)!r} has format version {version!r} (written by "
            f"sales-copilot {manifest.get('package_version', '?')}); this is sales-copilot "
            f"{__version__}, which reads format {FORMAT_VERSION}. Retrain it with `copilot train` "
            f"or use the matching sales-copilot version."
        )
    try:
        taxonomy = Taxonomy.model_validate(
            yaml.safe_load((directory / "taxonomy.yaml").read_text("utf-8"))
        )
        embedder = load_embedder(directory / "embedder")
        intent = TextModel.load(directory / "intent", embedder)
        act = TextModel.load(directory / "act", embedder)
        nba = NextBestActionModel.load(directory / "nba")
        baseline = IntentBaseline.from_dict(
            json.loads((directory / "nba" / "baseline.json").read_text("utf-8"))
        )
        outcome = (
            OutcomeModel.load(directory / "outcome") if (directory / "outcome").exists() else None
        )
        scripts = (
            ScriptLibrary.load(directory / "scripts") if (directory / "scripts").exists() else None
        )
        reply_matcher = (
            ReplyMatcher.load(directory / "reply_match", embedder)
            if (directory / "reply_match").exists()
            else None
        )
        catalog = (
            Catalog.load(directory / "catalog.json")
            if (directory / "catalog.json").exists()
            else None
        )
    except BundleError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise BundleError(
            f"the bundle at {str(directory)!r} is incomplete or corrupt: {exc}"
        ) from exc
    return Bundle(
        manifest=manifest,
        taxonomy=taxonomy,
        embedder=embedder,
        intent=intent,
        act=act,
        nba=nba,
        baseline=baseline,
        outcome=outcome,
        scripts=scripts,
        reply_matcher=reply_matcher,
        catalog=catalog,
        path=directory,
    )
