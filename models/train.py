"""Training a bundle from a brand's own logs (labelled or not) on top of a labelled base.

Steps: check labels against the taxonomy -> hold out a validation share of conversations ->
fit the embedder on every message text (the brand's and the base's) -> intent and act
classifiers on the labelled messages (a brand's own labels weigh more than the base's), then
co-training on the brand's unlabelled messages (a message on whose label the two views agree,
its own text and its partner message, becomes training data, class-balanced, with the
thresholds reported) -> label the remaining messages with them ->
next-best-action model on the decision points of winning conversations, beside its intent
baseline -> outcome model -> scripts mined from the brand's conversations -> the reply-matching
model on the brand's (context, reply) pairs -> validation metrics -> ``manifest.json``.
Same data and seed, same bundle.

The **base** is a labelled corpus the brand's unlabelled logs are learned on top of: by
default the built-in synthetic corpus (:func:`default_base`), added only when the training data
have unlabelled messages (a real export); a fully labelled corpus trains alone.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import platform
import random
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from copilot import __version__
from copilot.catalog import Catalog
from copilot.errors import InputError
from copilot.schema import Conversation
from copilot.taxonomy import Taxonomy
from models.bundle import (
    FORMAT_VERSION,
    Backend,
    Bundle,
    TextModel,
    labelled_messages,
    message_contexts,
)
from models.embedders import Embedder, make_embedder
from models.evaluate import evaluate_bundle
from models.linear import LinearClassifier
from models.nba import IntentBaseline, NextBestActionModel, nba_examples
from models.outcome import OutcomeModel, outcome_examples

__all__ = [
    "TrainConfig",
    "default_base",
    "file_digest",
    "fit_classifier",
    "needs_base",
    "train_bundle",
]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class TrainConfig:
    """Everything that decides a bundle besides the data.

    Attributes:
        embedder: ``offline`` or ``st:<path-or-hub-name>``.
        classifier: ``linear`` (default) or ``finetune`` (needs ``base_model`` or an ``st:`` embedder).
        base_model: pretrained transformer directory for ``finetune``.
        seed: every random choice derives from it.
        min_examples: fewest labelled examples a label may have (labels with none are allowed
            and reported; the classifier cannot predict them).
        validation_share: share of conversations held out for the manifest's metrics.
        intent_threshold: intents below this confidence become the taxonomy's fallback intent.
        n_components: dimension of the offline embedder.
        C: inverse regularisation of the linear text classifiers.
        context_weight: weight of the previous message's features beside the message's own.
        dense_weight: weight of the offline embedder's dense SVD block beside its sparse TF-IDF
            (0 by default: on the synthetic corpus it added no accuracy and cost 5x training time;
            a pretrained ``st:`` embedder's dense vectors are always used).
        epochs: fine-tuning epochs.
        scripts: mine winning scripts and build their index.
        win_min_amount: a conversation wins (for scripts) when it converted with at least this
            order amount; ``None``: any conversion wins.
        index_kind: ``auto`` (exact below 20k contexts, HNSW above), ``flat``, ``hnsw`` or ``ivf``.
        brand_weight: weight of each of the brand's own labels (in its logs, ``--intent-csv``,
            ``--act-csv``) in the classifiers' loss, where a base label weighs 1.
        self_training: co-train on the brand's unlabelled messages: a message whose text and
            partner message (the reply to it, the question before it) give the same label
            becomes training data.
        pseudo_threshold: a pseudo-label needs at least this calibrated probability.
        pseudo_max_share: no label may take more than this share of the pseudo-labels.
        pseudo_weight: weight of a pseudo-label in the loss.
        self_training_rounds: label-and-retrain rounds.
        co_train_acts: co-train the act classifier too. Off by default: on real after-sales
            logs (JD, ``eval/real_dev.py``) the intent view was too weak a partner and the act
            macro-F1 fell (0.39 to 0.30-0.33), while the intents' stayed level.
        label_shift: re-estimate the intents' class priors on the brand's unlabelled messages
            (EM, Saerens et al. 2002) and adapt the intent probabilities to them. Off by
            default: on the JD logs it helped a model without co-training (macro-F1 0.331 to
            0.347) but lowered the co-trained one and the learning curve (k=200: 0.385 to 0.319).
        reply_model: learn the reply-matching model from (context, reply) pairs.
        reply_pairs_min: below this many brand pairs, the base's pairs are added.
        reply_pairs_max: a seeded sample of at most this many pairs is trained on.
    """

    embedder: str = "offline"
    classifier: Backend = "linear"
    base_model: str | None = None
    seed: int = 0
    min_examples: int = 5
    validation_share: float = 0.1
    intent_threshold: float = 0.3
    n_components: int = 256
    C: float = 4.0
    context_weight: float = 0.4
    dense_weight: float = 0.0
    epochs: int = 3
    scripts: bool = True
    win_min_amount: float | None = None
    index_kind: str = "auto"
    brand_weight: float = 3.0
    self_training: bool = True
    pseudo_threshold: float = 0.5
    pseudo_max_share: float = 0.3
    pseudo_weight: float = 0.5
    self_training_rounds: int = 1
    co_train_acts: bool = False
    label_shift: bool = False
    reply_model: bool = True
    reply_pairs_min: int = 1000
    reply_pairs_max: int = 20_000


def file_digest(paths: Iterable[str | Path]) -> str:
    """SHA-256 over the bytes of the training files, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _check_labels(
    conversations: Sequence[Conversation],
    extra_intents: Sequence[tuple[str, str]],
    extra_actions: Sequence[tuple[str, str]],
    taxonomy: Taxonomy,
    min_examples: int,
) -> tuple[Counter[str], Counter[str]]:
    intents: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    for conversation in conversations:
        if conversation.labels is None:
            continue
        for i, label in conversation.labels.intents.items():
            taxonomy.check(
                "intent", label, f"in conversation {conversation.conversation_id!r}, message {i}"
            )
            intents[label] += 1
        for i, label in conversation.labels.actions.items():
            taxonomy.check(
                "action", label, f"in conversation {conversation.conversation_id!r}, message {i}"
            )
            actions[label] += 1
    for kind, rows, counts, flag in (
        ("intent", extra_intents, intents, "--intent-csv"),
        ("action", extra_actions, actions, "--act-csv"),
    ):
        for row, (_text, label) in enumerate(rows, 1):
            taxonomy.check(kind, label, f"in {flag} row {row}")
            counts[label] += 1
    for kind, counts in (("intent", intents), ("action", actions)):
        if not counts:
            raise InputError(
                f"no {kind} labels in the training data; train needs a labelled base (the "
                f"default for unlabelled logs; see --base), conversations with 'labels', or "
                f"--intent-csv / --act-csv rows"
            )
        few = {label: n for label, n in counts.items() if n < min_examples}
        if few:
            listed = ", ".join(f"{label!r} has {n}" for label, n in sorted(few.items()))
            raise InputError(
                f"too few examples per {kind} label: {listed}; at least {min_examples} are needed "
                f"(add labelled examples, lower --min-examples, or drop the label from the taxonomy)"
            )
        if len(counts) < 2:
            raise InputError(
                f"only one {kind} label ({next(iter(counts))!r}) in the data; a classifier needs two or more"
            )
    return intents, actions


def _is_validation(key: str, share: float) -> bool:
    return share > 0 and zlib.crc32(key.encode("utf-8")) % 1000 < share * 1000


def _text_model(config: TrainConfig, embedder: Embedder, seed: int) -> TextModel:
    if config.classifier == "linear":
        return TextModel(
            embedder,
            LinearClassifier(C=config.C, seed=seed),
            "linear",
            context_weight=config.context_weight,
            dense_weight=config.dense_weight,
        )
    from models.finetune import FinetuneClassifier

    base = config.base_model or (config.embedder[3:] if config.embedder.startswith("st:") else None)
    if not base:
        raise InputError(
            "--classifier finetune needs a pretrained model: pass --base-model PATH "
            "or --embedder st:PATH (e.g. a local copy of BAAI/bge-small-zh-v1.5)"
        )
    return TextModel(
        embedder, FinetuneClassifier(base, epochs=config.epochs, seed=seed), "finetune"
    )


@dataclass
class _Examples:
    """Labelled messages of one role for a classifier, with per-example weights."""

    texts: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def add(
        self, texts: Sequence[str], contexts: Sequence[str], labels: Sequence[str], w: float
    ) -> None:
        self.texts += texts
        self.contexts += contexts
        self.labels += labels
        self.weights += [w] * len(texts)


def default_base(n: int = 3000, seed: int = 0) -> list[Conversation]:
    """The built-in labelled base: ``n`` synthetic conversations of ``seed`` (deterministic)."""
    from copilot.synth import generate

    return list(generate(n, seed=seed))


def needs_base(conversations: Sequence[Conversation]) -> bool:
    """Whether training data need the labelled base: some customer or guide message lacks a label."""
    for conversation in conversations:
        labels = conversation.labels
        for i, message in enumerate(conversation.messages):
            table = (
                (labels.intents if message.role == "customer" else labels.actions) if labels else {}
            )
            if message.role in ("customer", "guide") and i not in table:
                return True
    return False


def train_bundle(
    conversations: Sequence[Conversation],
    *,
    taxonomy: Taxonomy,
    config: TrainConfig | None = None,
    base: Sequence[Conversation] = (),
    extra_intents: Sequence[tuple[str, str]] = (),
    extra_actions: Sequence[tuple[str, str]] = (),
    data_hash: str = "",
    name: str = "bundle",
    progress: Progress | None = None,
    catalog: Catalog | None = None,
) -> Bundle:
    """Train every model of a bundle. Save it with ``bundle.save(dir)``.

    Args:
        conversations: the brand's conversations; ``labels`` may be full, partial or absent,
            ``outcome`` too (scripts then rank by the evidence the logs hold).
        taxonomy: the labels; every label in the data must belong to it.
        config: hyperparameters and backends.
        base: a labelled corpus to learn on top of (e.g. :func:`default_base`); its labels weigh
            ``1``, the brand's own ``config.brand_weight``. Scripts and reply matching come from
            the brand's conversations when they have guide replies.
        extra_intents: additional ``(customer text, intent)`` rows, e.g. from ``--intent-csv``.
        extra_actions: additional ``(guide text, action)`` rows, e.g. from ``--act-csv``.
        data_hash: digest of the training files, recorded in the manifest.
        name: the bundle's name (its directory name).
        progress: called with the name of each step as it starts.
        catalog: the brand's products and promotions (``--catalog``, ``--promotions``); kept in
            the bundle with the product words learned from the brand's chats.

    Raises:
        InputError: unknown labels, too few examples, no labels, or a missing model path.
    """
    config = config or TrainConfig()
    step = progress or (lambda _name: None)
    started = time.perf_counter()
    step("checking labels")
    intent_counts, action_counts = _check_labels(
        [*base, *conversations], extra_intents, extra_actions, taxonomy, config.min_examples
    )
    data = _split_data(conversations, base, extra_intents, extra_actions, config.validation_share)
    timer = _Timer()
    step("fitting the embedder")
    embedder = _fit_embedder(
        config, data.train, [t for t, _ in [*data.extra_intents, *data.extra_actions]]
    )
    timer.mark("embedder")
    models, reports = _fit_classifiers(config, embedder, data, step, timer)

    manifest = _manifest(config, taxonomy, embedder, name, data_hash)
    manifest["training"] = _training_summary(data, taxonomy, intent_counts, action_counts, reports)
    bundle = Bundle(
        manifest=manifest,
        taxonomy=taxonomy,
        embedder=embedder,
        intent=models["intent"],
        act=models["act"],
        nba=NextBestActionModel(seed=config.seed),
        baseline=IntentBaseline(),
        outcome=None,
    )
    _fit_downstream(bundle, data, config, catalog, step, timer)
    if data.valid:
        step("validating")
        manifest["metrics"] = _validation_metrics(bundle, data, config)
        timer.mark("validation")
    _seal_manifest(manifest, timer.timings, started)
    return bundle


class _Timer:
    """Seconds each training step took, counted from the end of the step marked before it."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def mark(self, label: str) -> None:
        self.timings[label] = round(time.perf_counter() - self._t0, 2)
        self._t0 = time.perf_counter()


@dataclass
class _Split:
    """The training data once the validation share is held out."""

    own: list[Conversation]
    base: list[Conversation]
    valid: list[Conversation]
    extra_intents: list[tuple[str, str]]
    extra_actions: list[tuple[str, str]]

    @functools.cached_property
    def train(self) -> list[Conversation]:
        return [*self.base, *self.own]


def _split_data(
    conversations: Sequence[Conversation],
    base: Sequence[Conversation],
    extra_intents: Sequence[tuple[str, str]],
    extra_actions: Sequence[tuple[str, str]],
    validation_share: float,
) -> _Split:
    """Hold out the validation conversations and the extra rows that hash into the same share."""
    own, base_train, valid = _split(conversations, base, validation_share)
    share = validation_share if valid else 0.0
    return _Split(
        own=own,
        base=base_train,
        valid=valid,
        extra_intents=[r for r in extra_intents if not _is_validation(r[0], share)],
        extra_actions=[r for r in extra_actions if not _is_validation(r[0], share)],
    )


def _fit_classifiers(
    config: TrainConfig,
    embedder: Embedder,
    data: _Split,
    step: Progress,
    timer: _Timer,
) -> tuple[dict[str, TextModel], dict[str, Any]]:
    """The intent and act classifiers with their self-training reports.

    Each classifier is fitted on the labelled messages first; then each co-trains on the
    brand's unlabelled messages with the other as its second view.
    """
    plain = dataclasses.replace(config, self_training=False)
    roles = {
        "intent": ("customer", data.extra_intents, config.seed),
        "act": ("guide", data.extra_actions, config.seed + 1),
    }
    first: dict[str, TextModel] = {}
    reports: dict[str, Any] = {}
    for kind, (role, extra, seed) in roles.items():
        step(f"training the {kind} classifier")
        first[kind], reports[kind] = fit_classifier(
            role, embedder, plain, data.base, data.own, extra, seed=seed
        )
        timer.mark(kind)
    models = dict(first)
    unlabelled = needs_base(data.own)
    for report in reports.values():
        report["skipped"] = (
            "off"
            if not config.self_training
            else "no unlabelled messages"
            if not unlabelled
            else report["skipped"]
        )
    if config.self_training and config.classifier == "linear" and unlabelled:
        step("co-training on the unlabelled messages")
        for kind, (role, extra, seed) in roles.items():
            if kind == "act" and not config.co_train_acts:
                reports[kind]["skipped"] = "off for actions (--co-train-acts turns it on)"
                continue
            partner = first["act" if kind == "intent" else "intent"]
            models[kind], reports[kind] = fit_classifier(
                role, embedder, config, data.base, data.own, extra, partner=partner, seed=seed
            )
        timer.mark("co_training")
    return models, reports


def _training_summary(
    data: _Split,
    taxonomy: Taxonomy,
    intent_counts: Counter[str],
    action_counts: Counter[str],
    reports: dict[str, Any],
) -> dict[str, Any]:
    """The manifest's ``training`` section: what the bundle learned from."""
    own = data.own
    return {
        "conversations": len(own),
        "messages": sum(len(c.messages) for c in own),
        "base_conversations": len(data.base),
        "validation_conversations": len(data.valid),
        "extra_intent_rows": len(data.extra_intents),
        "extra_action_rows": len(data.extra_actions),
        "intent_examples": dict(sorted(intent_counts.items())),
        "action_examples": dict(sorted(action_counts.items())),
        "untrained_intents": [i for i in taxonomy.intent_ids if i not in intent_counts],
        "untrained_actions": [a for a in taxonomy.action_ids if a not in action_counts],
        "self_training": reports,
        "outcomes": {
            "with_outcome": sum(c.outcome is not None for c in own),
            "converted": sum(bool(c.outcome and c.outcome.converted) for c in own),
        },
    }


def _fit_downstream(
    bundle: Bundle,
    data: _Split,
    config: TrainConfig,
    catalog: Catalog | None,
    step: Progress,
    timer: _Timer,
) -> None:
    """The models that read the classifiers' labels: next best action, outcome, scripts, replies."""
    train = data.train
    resolved = {c.conversation_id: bundle.labels_of(c, use_gold=True) for c in train}

    step("training the next-best-action model")
    _fit_next_best_action(bundle, train, resolved)
    timer.mark("next_best_action")

    step("training the outcome model")
    _fit_outcome(bundle, train, resolved, random.Random(config.seed))
    timer.mark("outcome")

    # Scripts and replies come from the brand's own conversations: the base's speak of the
    # synthetic catalogue, which a brand's guides would never send.
    own = data.own
    source = own if any(m.role == "guide" for c in own for m in c.messages) else train
    step("learning product words")
    bundle.catalog = _catalog(bundle, source, catalog)
    if config.scripts:
        step("mining scripts")
        _mine(bundle, source, resolved, config)
        timer.mark("scripts")

    if config.reply_model:
        step("training reply matching")
        _fit_reply_matcher(bundle, source, train, resolved, config)
        timer.mark("reply_matching")


def _validation_metrics(bundle: Bundle, data: _Split, config: TrainConfig) -> dict[str, Any]:
    """The bundle's metrics on the held-out conversations, with a note on what they measure."""
    metrics = _summary(evaluate_bundle(bundle, data.valid))
    metrics["split"] = (
        f"{len(data.valid)} held-out conversations ({config.validation_share:.0%} by id hash)"
        + (
            " of the labelled base, not the brand's chats (measure those with labelled "
            "brand data: copilot eval --intent-csv)"
            if data.base and not any(c.labels for c in data.own)
            else ""
        )
    )
    return metrics


def _seal_manifest(manifest: dict[str, Any], timings: dict[str, float], started: float) -> None:
    """Add the timings and Python version, and the id that names the bundle's inputs."""
    manifest["timings_s"] = {**timings, "total": round(time.perf_counter() - started, 2)}
    manifest["python"] = platform.python_version()
    manifest["id"] = hashlib.sha256(
        json.dumps(
            {k: manifest[k] for k in ("package_version", "config", "data_hash", "taxonomy")},
            sort_keys=True,
        ).encode()
    ).hexdigest()


def fit_classifier(
    role: str,
    embedder: Embedder,
    config: TrainConfig,
    base: Sequence[Conversation],
    own: Sequence[Conversation],
    extra: Sequence[tuple[str, str]] = (),
    *,
    partner: TextModel | None = None,
    seed: int = 0,
) -> tuple[TextModel, dict[str, Any]]:
    """One classifier as :func:`train_bundle` fits it (customer: intents; guide: actions).

    The base's labelled messages weigh 1, the brand's own (in ``own`` and ``extra``)
    ``config.brand_weight``; then it co-trains on ``own``'s unlabelled messages with
    ``partner``, the other role's classifier (no self-training without one).

    Returns:
        ``(model, self-training report)``.
    """
    examples = _examples(role, base, own, extra, config.brand_weight)
    make = functools.partial(_text_model, config, embedder, seed)
    labelled = [*base, *own]

    def cooccurrence(classes: Sequence[str], partner_classes: Sequence[str]) -> np.ndarray:
        return _cooccurrence(role, labelled, classes, partner_classes)

    unlabelled = _unlabelled(role, own) if config.self_training else _Unlabelled()
    model, report = _fit_self_trained(make, examples, unlabelled, config, partner, cooccurrence)
    if config.label_shift and role == "customer":
        report["label_shift"] = _fit_label_shift(model, own, report.pop("label_prior"))
    else:
        report.pop("label_prior")
    return model, report


def _fit_label_shift(
    model: TextModel, own: Sequence[Conversation], train_prior: dict[str, float]
) -> dict[str, Any]:
    """Adapt the model to the brand's class priors, estimated from its unlabelled messages.

    The EM procedure of Saerens, Latinne and Decaestecker (2002): starting from the training
    priors, each step reweights the model's probabilities on the brand's unlabelled messages by
    the current prior ratio and takes their mean as the new brand prior. The final ratio
    (brand / training prior, clipped to [0.1, 10] so a label the logs rarely show can still be
    predicted) multiplies the model's probabilities from then on. A brand whose chats are mostly
    after-sales thus stops hearing product questions in them.
    """
    texts: list[str] = []
    contexts: list[str] = []
    for conversation in own:
        labels = conversation.labels.intents if conversation.labels else {}
        ctx = message_contexts(conversation)
        for i, message in enumerate(conversation.messages):
            if message.role == "customer" and i not in labels and message.text.strip():
                texts.append(message.text)
                contexts.append(ctx[i])
    if len(texts) < _MIN_SHIFT_MESSAGES:
        return {"skipped": f"fewer than {_MIN_SHIFT_MESSAGES} unlabelled customer messages"}
    classes = model.classes_
    proba = model.predict_proba(texts, contexts)
    start = np.asarray([max(train_prior.get(c, 0.0), 1e-6) for c in classes])
    start /= start.sum()
    prior = start.copy()
    for _ in range(100):
        weighted = proba * (prior / start)
        weighted /= weighted.sum(axis=1, keepdims=True)
        new = weighted.mean(axis=0)
        done = float(np.abs(new - prior).max()) < 1e-5
        prior = new
        if done:
            break
    ratio = np.clip(prior / start, 0.1, 10.0)
    model.prior_shift = {c: round(float(r), 4) for c, r in zip(classes, ratio, strict=True)}
    return {
        "messages": len(texts),
        "brand_prior": {c: round(float(p), 4) for c, p in zip(classes, prior, strict=True)},
        "factor": model.prior_shift,
    }


_MIN_SHIFT_MESSAGES = 50


def _split(
    conversations: Sequence[Conversation], base: Sequence[Conversation], share: float
) -> tuple[list[Conversation], list[Conversation], list[Conversation]]:
    """``(own, base, validation)``: a share of the labelled conversations is held out by id hash."""
    labelled = [c for c in [*base, *conversations] if c.labels is not None]
    valid = [c for c in labelled if _is_validation(c.conversation_id, share)]
    if len(valid) < 20:  # too few to measure anything: train on everything
        valid = []
    held = {id(c) for c in valid}
    return (
        [c for c in conversations if id(c) not in held],
        [c for c in base if id(c) not in held],
        valid,
    )


def _fit_embedder(config: TrainConfig, train: Sequence[Conversation], extra: list[str]) -> Embedder:
    texts = [m.text for c in train for m in c.messages if m.role != "system"] + extra
    embedder = make_embedder(
        config.embedder,
        **(
            {"n_components": config.n_components, "random_state": config.seed}
            if config.embedder == "offline"
            else {}
        ),
    )
    limit = embedder.max_fit_texts
    if limit is not None and len(texts) > limit:
        texts = random.Random(config.seed).sample(texts, limit)
    return embedder.fit(texts)


def _examples(
    role: str,
    base: Sequence[Conversation],
    own: Sequence[Conversation],
    extra: Sequence[tuple[str, str]],
    brand_weight: float,
) -> _Examples:
    """The labelled messages of ``role``: the base's weigh 1, the brand's ``brand_weight``."""
    examples = _Examples()
    examples.add(*labelled_messages(base, role), 1.0)
    examples.add(*labelled_messages(own, role), brand_weight)
    examples.add(
        [t for t, _ in extra], [""] * len(extra), [label for _, label in extra], brand_weight
    )
    return examples


@dataclass
class _Unlabelled:
    """The brand's unlabelled messages of one role that have a partner message.

    The partner is the message that answers or is answered by it: for a customer message the
    guide reply right after it, for a guide reply the customer message right before it. Each is
    given as (text, context) the way its own classifier reads it.
    """

    texts: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    partner_texts: list[str] = field(default_factory=list)
    partner_contexts: list[str] = field(default_factory=list)
    without_partner: int = 0


def _unlabelled(role: str, own: Sequence[Conversation]) -> _Unlabelled:
    """Distinct unlabelled messages of ``role`` in the brand's conversations, with partners."""
    out = _Unlabelled()
    seen: set[tuple[str, str, str]] = set()
    step = 1 if role == "customer" else -1
    partner_role = "guide" if role == "customer" else "customer"
    for conversation in own:
        labels = conversation.labels
        table = (labels.intents if role == "customer" else labels.actions) if labels else {}
        messages = conversation.messages
        contexts = message_contexts(conversation)
        for i, message in enumerate(messages):
            if message.role != role or i in table or not message.text.strip():
                continue
            j = i + step
            if not 0 <= j < len(messages) or messages[j].role != partner_role:
                out.without_partner += 1
                continue
            key = (message.text, contexts[i], messages[j].text)
            if key in seen:
                continue
            seen.add(key)
            out.texts.append(message.text)
            out.contexts.append(contexts[i])
            out.partner_texts.append(messages[j].text)
            out.partner_contexts.append(contexts[j])
    return out


def _cooccurrence(
    role: str, labelled: Sequence[Conversation], classes: Sequence[str], partner: Sequence[str]
) -> np.ndarray:
    """``P(label | partner's label)`` from labelled conversations, add-0.1 smoothed.

    Rows follow ``partner`` classes, columns ``classes``: for intents, how often each intent
    precedes a reply of each action; for actions, how often each action follows each intent.
    """
    counts = np.full((len(partner), len(classes)), 0.1)
    col = {c: n for n, c in enumerate(classes)}
    row = {c: n for n, c in enumerate(partner)}
    step = 1 if role == "customer" else -1
    for conversation in labelled:
        labels = conversation.labels
        if labels is None:
            continue
        own_table, partner_table = (
            (labels.intents, labels.actions)
            if role == "customer"
            else (labels.actions, labels.intents)
        )
        for i, label in own_table.items():
            other = partner_table.get(i + step)
            if other in row and label in col:
                counts[row[other], col[label]] += 1
    return counts / counts.sum(axis=1, keepdims=True)


def _fit_self_trained(
    make: Callable[[], TextModel],
    examples: _Examples,
    unlabelled: _Unlabelled,
    config: TrainConfig,
    partner: TextModel | None,
    cooccurrence: Callable[[Sequence[str], Sequence[str]], np.ndarray],
) -> tuple[TextModel, dict[str, Any]]:
    """Fit on the labelled examples, then co-train on the brand's unlabelled messages.

    Two views label each unlabelled message: the model itself reads its text (and context); the
    partner model reads the partner message (the reply to a customer message, the question
    before a guide reply), and the labelled data's co-occurrence table turns the partner's label
    into a distribution over this model's labels. A message becomes a pseudo-label when the
    text view is at least ``pseudo_threshold`` sure and both views agree on the label
    (co-training, Blum and Mitchell 1998: two views that err differently rarely agree on the
    same wrong label). No label may take more than ``pseudo_max_share`` of the pseudo-labels (the
    most confident are kept), so the brand's majority class does not swamp the rest. They join
    the labelled examples with weight ``pseudo_weight``, and the model is fitted again. The report
    says how many messages were seen, agreed, kept and capped, per label.
    """
    ex = examples
    model = make().fit(ex.texts, ex.contexts, ex.labels, ex.weights)
    u = unlabelled
    report = _self_training_report(ex, u, config)
    skipped = _self_training_skipped(config, u, model, partner)
    report["label_prior"] = _prior(ex.labels, ex.weights)
    if skipped or partner is None:
        report["skipped"] = skipped
        return model, report
    table = cooccurrence(model.classes_, partner.classes_)
    other_view = partner.predict_proba(u.partner_texts, u.partner_contexts) @ table
    for _round in range(config.self_training_rounds):
        proba = model.predict_proba(u.texts, u.contexts)
        agree = proba.argmax(axis=1) == other_view.argmax(axis=1)
        picked, by_label, capped = _confident(
            np.where(agree[:, None], proba, 0.0),
            model.classes_,
            config.pseudo_threshold,
            config.pseudo_max_share,
        )
        if not picked:
            break
        labels = [model.classes_[int(proba[i].argmax())] for i in picked]
        model = make().fit(
            ex.texts + [u.texts[i] for i in picked],
            ex.contexts + [u.contexts[i] for i in picked],
            ex.labels + labels,
            ex.weights + [config.pseudo_weight] * len(picked),
        )
        report.update(
            label_prior=_prior(
                ex.labels + labels, ex.weights + [config.pseudo_weight] * len(picked)
            ),
            rounds=_round + 1,
            agreed=int(agree.sum()),
            pseudo_labels=len(picked),
            capped=capped,
            by_label=by_label,
        )
    return model, report


def _self_training_report(
    examples: _Examples, unlabelled: _Unlabelled, config: TrainConfig
) -> dict[str, Any]:
    """The self-training report before any round has run."""
    u = unlabelled
    return {
        "method": "co-training (text view and partner-message view must agree)",
        "labelled": len(examples.texts),
        "unlabelled": len(u.texts) + u.without_partner,
        "without_partner": u.without_partner,
        "threshold": config.pseudo_threshold,
        "max_share": config.pseudo_max_share,
        "weight": config.pseudo_weight,
        "rounds": 0,
        "pseudo_labels": 0,
        "by_label": {},
    }


def _self_training_skipped(
    config: TrainConfig, unlabelled: _Unlabelled, model: TextModel, partner: TextModel | None
) -> str | None:
    """Why the classifier cannot co-train, or ``None`` when it can."""
    return (
        "off"
        if not config.self_training
        else "no unlabelled messages with a partner message"
        if not unlabelled.texts
        else "fine-tuned classifiers are not self-trained"
        if model.backend != "linear"
        else "no partner model"
        if partner is None
        else None
    )


def _prior(labels: Sequence[str], weights: Sequence[float]) -> dict[str, float]:
    """Weighted share of each label."""
    totals: dict[str, float] = defaultdict(float)
    for label, weight in zip(labels, weights, strict=True):
        totals[label] += weight
    whole = sum(totals.values()) or 1.0
    return {label: total / whole for label, total in totals.items()}


def _confident(
    proba: np.ndarray, classes: Sequence[str], threshold: float, max_share: float
) -> tuple[list[int], dict[str, int], int]:
    """Rows confident enough to be pseudo-labelled, class-capped; ``(rows, per label, capped)``."""
    best = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    above = np.flatnonzero(confidence >= threshold)
    cap = max(1, int(max_share * len(above)))
    picked: list[int] = []
    by_label: dict[str, int] = {}
    capped = 0
    for c, label in enumerate(classes):
        rows = above[best[above] == c]
        rows = rows[np.argsort(-confidence[rows], kind="stable")]
        capped += max(0, len(rows) - cap)
        rows = rows[:cap]
        if len(rows):
            by_label[label] = len(rows)
            picked += rows.tolist()
    return sorted(picked), dict(sorted(by_label.items())), capped


def _manifest(
    config: TrainConfig, taxonomy: Taxonomy, embedder: Embedder, name: str, data_hash: str
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "package": "sales-copilot",
        "package_version": __version__,
        "name": name,
        "taxonomy": {
            "version": taxonomy.version,
            "intents": list(taxonomy.intent_ids),
            "actions": list(taxonomy.action_ids),
        },
        "embedder": embedder.spec,
        "classifier": config.classifier,
        "config": asdict(config),
        "seed": config.seed,
        "data_hash": data_hash,
        "intent_threshold": config.intent_threshold,
    }


Resolved = dict[str, list[str | None]]


def _fit_next_best_action(
    bundle: Bundle, train: Sequence[Conversation], resolved: Resolved
) -> None:
    winning = [c for c in train if c.outcome is not None and c.outcome.converted]
    source = winning if len(winning) >= 20 else list(train)
    training = bundle.manifest["training"]
    training["next_best_action_source"] = (
        "converted conversations"
        if source is winning
        else "all conversations (too few converted ones)"
    )
    turns = []
    for conversation in source:
        roles = [m.role for m in conversation.messages]
        stamps = [m.ts for m in conversation.messages]
        turns += nba_examples(roles, resolved[conversation.conversation_id], stamps)
    if len({t.action for t in turns}) < 2:
        raise InputError(
            "the data has too few guide replies to learn next-best actions (need replies of two or more actions)"
        )
    bundle.nba.fit([t.features for t in turns], [t.action for t in turns])
    bundle.baseline.fit(turns)
    training["next_best_action_turns"] = len(turns)


def _fit_outcome(
    bundle: Bundle, train: Sequence[Conversation], resolved: Resolved, rng: random.Random
) -> None:
    rows, y = [], []
    for conversation in train:
        if conversation.outcome is None:
            continue
        roles = [m.role for m in conversation.messages]
        stamps = [m.ts for m in conversation.messages]
        found = outcome_examples(roles, resolved[conversation.conversation_id], stamps, rng)
        rows += found
        y += [conversation.outcome.converted] * len(found)
    if len(set(y)) == 2:
        bundle.outcome = OutcomeModel(seed=bundle.manifest["seed"]).fit_outcomes(rows, y)
    else:
        logger.warning("no outcome model: the data needs conversations with outcomes of both kinds")


def _catalog(bundle: Bundle, source: Sequence[Conversation], given: Catalog | None) -> Catalog:
    """The brand's catalogue with the product words its customers use in ``source``."""
    from copilot.catalog import learn_terms

    given = given or Catalog()
    terms = learn_terms(
        ([m.text for m in c.messages if m.role == "customer"] for c in source),
        bundle.embedder.tokens,
        pointers=not given.products,
    )
    catalog = Catalog(list(given.products.values()), given.promotions, terms=terms)
    bundle.manifest["training"]["catalog"] = {
        "products": len(catalog.products),
        "promotions": len(catalog.promotions),
        "product_words": len(terms),
    }
    return catalog


def _mine(
    bundle: Bundle, source: Sequence[Conversation], resolved: Resolved, config: TrainConfig
) -> None:
    from copilot.compliance import default_checker
    from copilot.text import default_pipeline
    from models.script_index import ScriptIndex
    from models.scripts import mine_scripts

    pipeline = default_pipeline()
    embedder = bundle.embedder
    # The embedder's own tokens: the offline one has already tokenised (and memoised) these
    # contexts for their vectors.
    tokenize = embedder.tokens
    try:
        bundle.scripts = mine_scripts(
            source,
            lambda c: resolved[c.conversation_id],
            embedder,
            tokenize,
            checker=default_checker(),
            pipeline=pipeline,
            index=ScriptIndex(kind=config.index_kind, seed=config.seed),  # type: ignore[arg-type]
            is_win=_win_rule(config.win_min_amount),
            catalog=bundle.catalog,
        )
    except InputError as exc:  # nothing to mine: the bundle still classifies and scores
        logger.warning("no scripts: %s", exc)
        bundle.manifest["training"]["scripts"] = {"scripts": 0, "skipped": str(exc)}
        return
    bundle.manifest["training"]["scripts"] = bundle.scripts.stats


def _fit_reply_matcher(
    bundle: Bundle,
    source: Sequence[Conversation],
    train: Sequence[Conversation],
    resolved: Resolved,
    config: TrainConfig,
) -> None:
    """Learn reply matching on the brand's pairs (topped up with the base's when there are few)."""
    from copilot.text import default_pipeline
    from models._lazy import MissingExtraError
    from models.rank import fit_action_weight
    from models.reply_match import ReplyMatcher, ReplyPair, reply_pairs

    mask = default_pipeline().mask

    def pairs_of(conversations: Sequence[Conversation]) -> list[tuple[Conversation, ReplyPair]]:
        return [
            (c, pair)
            for c in conversations
            for pair in reply_pairs(
                [(m.role, mask(m.text)[0]) for m in c.messages], resolved[c.conversation_id]
            )
        ]

    pairs = pairs_of(source)
    origin = "brand" if source is not train else "all"
    if len(pairs) < config.reply_pairs_min and source is not train:
        pairs = pairs_of(train)
        origin = "brand and base (too few brand replies)"
    # A tenth of the conversations is held out to fit how much the predicted next action
    # counts beside the match when given replies are ranked.
    held = [p for p in pairs if _is_validation(p[0].conversation_id + "/reply", 0.1)]
    fit = [p for p in pairs if not _is_validation(p[0].conversation_id + "/reply", 0.1)]
    if len(held) < 100:
        fit, held = pairs, []
    if len(fit) > config.reply_pairs_max:
        fit = random.Random(config.seed).sample(fit, config.reply_pairs_max)
    training = bundle.manifest["training"]
    try:
        matcher = ReplyMatcher(seed=config.seed).fit([p for _, p in fit], bundle.embedder)
    except (InputError, MissingExtraError) as exc:
        logger.warning("no reply-matching model: %s", exc)
        training["reply_matching"] = {"pairs": len(fit), "skipped": str(exc)}
        return
    bundle.reply_matcher = matcher
    report: dict[str, Any] = {
        "pairs": len(fit),
        "source": origin,
        "loss_by_epoch": matcher.history_,
    }
    if held:
        held = random.Random(config.seed).sample(held, min(len(held), 500))
        prefixes = [
            (c.model_copy(update={"messages": c.messages[: p.index], "labels": None}), p.reply)
            for c, p in held
        ]
        matcher.action_weight_, table = fit_action_weight(bundle, prefixes, seed=config.seed)
        report["action_weight"] = {
            "held_out_pairs": len(held),
            "chosen": matcher.action_weight_,
            "R10@1_by_weight": table,
        }
    if bundle.scripts is not None:
        matcher.remember_replies([script.text for script in bundle.scripts.scripts])
    training["reply_matching"] = report


def _win_rule(min_amount: float | None) -> Callable[[Conversation], bool]:
    """What counts as a winning conversation when mining scripts."""

    def wins(conversation: Conversation) -> bool:
        outcome = conversation.outcome
        if outcome is None or not outcome.converted:
            return False
        return min_amount is None or (outcome.order_amount or 0.0) >= min_amount

    return wins


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of :func:`evaluate_bundle` for the manifest."""
    nba = metrics["next_best_action"]
    return {
        "intent_accuracy": metrics["intent"].get("accuracy"),
        "intent_macro_f1": metrics["intent"].get("macro_f1"),
        "act_macro_f1": metrics["act"].get("macro_f1"),
        "nba_top1": nba.get("top1"),
        "nba_top3": nba.get("top3"),
        "nba_baseline_top1": nba.get("baseline_top1"),
        "nba_baseline_top3": nba.get("baseline_top3"),
        "outcome_auc": metrics["outcome"].get("auc"),
    }
