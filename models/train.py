"""Training a bundle from conversations (full or partial labels) and optional intent rows.

Steps: check labels against the taxonomy -> hold out a validation share of conversations ->
fit the embedder on every message text -> intent and act classifiers on labelled messages ->
label the unlabelled messages with them -> next-best-action model on the decision points of
winning conversations, beside its intent baseline -> outcome model -> validation metrics ->
``manifest.json``. Same data and seed, same bundle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import random
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from copilot import __version__
from copilot.errors import InputError
from copilot.schema import Conversation
from copilot.taxonomy import Taxonomy
from models.bundle import FORMAT_VERSION, Backend, Bundle, TextModel, labelled_messages
from models.embedders import Embedder, OfflineEmbedder, make_embedder
from models.evaluate import evaluate_bundle
from models.linear import LinearClassifier
from models.nba import IntentBaseline, NextBestActionModel, nba_examples
from models.outcome import OutcomeModel, outcome_examples

__all__ = ["TrainConfig", "file_digest", "train_bundle"]

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
    extra: Sequence[tuple[str, str]],
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
    for row, (_text, label) in enumerate(extra, 1):
        taxonomy.check("intent", label, f"in --intent-csv row {row}")
        intents[label] += 1
    for kind, counts in (("intent", intents), ("action", actions)):
        if not counts:
            raise InputError(
                f"no {kind} labels in the training data; train needs conversations with "
                f"'labels' (or --intent-csv rows for intents)"
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


def train_bundle(
    conversations: Sequence[Conversation],
    *,
    taxonomy: Taxonomy,
    config: TrainConfig | None = None,
    extra_intents: Sequence[tuple[str, str]] = (),
    data_hash: str = "",
    name: str = "bundle",
    progress: Progress | None = None,
) -> Bundle:
    """Train every model of a bundle. Save it with ``bundle.save(dir)``.

    Args:
        conversations: training conversations; ``labels`` may be full, partial or absent
            (unlabelled messages are labelled by the trained classifiers for the next-best-action
            and outcome models).
        taxonomy: the labels; every label in the data must belong to it.
        config: hyperparameters and backends.
        extra_intents: additional ``(customer text, intent)`` rows, e.g. from ``--intent-csv``.
        data_hash: digest of the training files, recorded in the manifest.
        name: the bundle's name (its directory name).
        progress: called with the name of each step as it starts.

    Raises:
        InputError: unknown labels, too few examples, no labels, or a missing model path.
    """
    config = config or TrainConfig()
    step = progress or (lambda _name: None)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def mark(label: str, t0: float) -> float:
        timings[label] = round(time.perf_counter() - t0, 2)
        return time.perf_counter()

    step("checking labels")
    intent_counts, action_counts = _check_labels(
        conversations, extra_intents, taxonomy, config.min_examples
    )
    valid = [c for c in conversations if _is_validation(c.conversation_id, config.validation_share)]
    if len(valid) < 20:  # too few to measure anything: train on everything
        valid = []
    held = {c.conversation_id for c in valid}
    train = [c for c in conversations if c.conversation_id not in held]
    extra_train = (
        [r for r in extra_intents if not _is_validation(r[0], config.validation_share)]
        if valid
        else list(extra_intents)
    )

    t0 = time.perf_counter()
    step("fitting the embedder")
    all_texts = [m.text for c in train for m in c.messages if m.role != "system"] + [
        t for t, _ in extra_train
    ]
    embedder = make_embedder(
        config.embedder,
        **(
            {"n_components": config.n_components, "random_state": config.seed}
            if config.embedder == "offline"
            else {}
        ),
    )
    if isinstance(embedder, OfflineEmbedder) and len(all_texts) > 300_000:
        # The vocabulary and SVD settle long before this; a seeded sample keeps training fast.
        all_texts = random.Random(config.seed).sample(all_texts, 300_000)
    embedder.fit(all_texts)
    t0 = mark("embedder", t0)

    step("training the intent classifier")
    texts, contexts, labels = labelled_messages(train, "customer")
    texts += [t for t, _ in extra_train]
    contexts += [""] * len(extra_train)
    labels += [label for _, label in extra_train]
    intent = _text_model(config, embedder, config.seed).fit(texts, contexts, labels)
    t0 = mark("intent", t0)

    step("training the act classifier")
    texts, contexts, labels = labelled_messages(train, "guide")
    act = _text_model(config, embedder, config.seed + 1).fit(texts, contexts, labels)
    t0 = mark("act", t0)

    manifest: dict[str, Any] = {
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
        "training": {
            "conversations": len(train),
            "validation_conversations": len(valid),
            "extra_intent_rows": len(extra_train),
            "intent_examples": dict(sorted(intent_counts.items())),
            "action_examples": dict(sorted(action_counts.items())),
            "untrained_intents": [i for i in taxonomy.intent_ids if i not in intent_counts],
            "untrained_actions": [a for a in taxonomy.action_ids if a not in action_counts],
        },
    }
    bundle = Bundle(
        manifest=manifest,
        taxonomy=taxonomy,
        embedder=embedder,
        intent=intent,
        act=act,
        nba=NextBestActionModel(seed=config.seed),
        baseline=IntentBaseline(),
        outcome=None,
    )

    step("training the next-best-action model")
    rng = random.Random(config.seed)
    winning = [c for c in train if c.outcome is not None and c.outcome.converted]
    source = winning if len(winning) >= 20 else list(train)
    manifest["training"]["next_best_action_source"] = (
        "converted conversations"
        if source is winning
        else "all conversations (too few converted ones)"
    )
    turns, outcome_rows, outcome_y = [], [], []
    resolved = {c.conversation_id: bundle.labels_of(c, use_gold=True) for c in train}
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
    manifest["training"]["next_best_action_turns"] = len(turns)
    t0 = mark("next_best_action", t0)

    step("training the outcome model")
    for conversation in train:
        if conversation.outcome is None:
            continue
        roles = [m.role for m in conversation.messages]
        stamps = [m.ts for m in conversation.messages]
        rows = outcome_examples(roles, resolved[conversation.conversation_id], stamps, rng)
        outcome_rows += rows
        outcome_y += [conversation.outcome.converted] * len(rows)
    if len(set(outcome_y)) == 2:
        bundle.outcome = OutcomeModel(seed=config.seed).fit_outcomes(outcome_rows, outcome_y)
    else:
        logger.warning("no outcome model: the data needs conversations with outcomes of both kinds")
    t0 = mark("outcome", t0)

    if config.scripts:
        step("mining winning scripts")
        from copilot.compliance import default_checker
        from copilot.text import default_pipeline
        from models.script_index import ScriptIndex
        from models.scripts import mine_scripts

        pipeline = default_pipeline()
        # The offline embedder has already tokenised (and memoised) these contexts for their vectors.
        tokenize = (
            embedder.tokens
            if isinstance(embedder, OfflineEmbedder)
            else (lambda t: pipeline.process(t).tokens)
        )
        bundle.scripts = mine_scripts(
            train,
            lambda c: resolved[c.conversation_id],
            embedder,
            tokenize,
            checker=default_checker(),
            pipeline=pipeline,
            index=ScriptIndex(kind=config.index_kind, seed=config.seed),  # type: ignore[arg-type]
            is_win=_win_rule(config.win_min_amount),
        )
        manifest["training"]["scripts"] = bundle.scripts.stats
        t0 = mark("scripts", t0)

    if valid:
        step("validating")
        manifest["metrics"] = _summary(evaluate_bundle(bundle, valid))
        manifest["metrics"]["split"] = (
            f"{len(valid)} held-out conversations ({config.validation_share:.0%} by id hash)"
        )
        mark("validation", t0)
    manifest["timings_s"] = {**timings, "total": round(time.perf_counter() - started, 2)}
    manifest["python"] = platform.python_version()
    manifest["id"] = hashlib.sha256(
        json.dumps(
            {k: manifest[k] for k in ("package_version", "config", "data_hash", "taxonomy")},
            sort_keys=True,
        ).encode()
    ).hexdigest()
    return bundle


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
