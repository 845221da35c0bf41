"""A transformer fine-tuned for text classification: the backend used when a pretrained model is given.

Context: the classifier sees one string per example. To give it the previous turn, the caller
joins it in, e.g. ``f"{previous_guide_message} [SEP] {customer_message}"``; a BERT tokenizer
treats the literal ``[SEP]`` as its separator token, and the same joining must be used at
training and prediction time.

Example:
    >>> clf = FinetuneClassifier("/models/bert-base-chinese", epochs=3).fit(texts, labels)  # doctest: +SKIP
    >>> clf.predict(["这件有M码吗"])  # doctest: +SKIP
    array(['size_inquiry'], dtype='<U12')
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from copilot.errors import BundleError, CopilotError, InputError, NotFittedError
from models._lazy import (
    check_model_source,
    check_texts,
    import_optional,
    model_load_error,
    quiet_transformers,
    resolve_device,
)

__all__ = ["FinetuneClassifier"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
_TYPE = "finetune"
_FORMAT_VERSION = 1
_PURPOSE = "the fine-tuned transformer classifier"


def _checked_classes(texts: Sequence[str], labels: list[Any]) -> list[str]:
    """The sorted classes of ``labels``, which must be strings, one per text, of two classes at least."""
    if len(labels) != len(texts):
        raise InputError(f"got {len(texts)} texts but {len(labels)} labels; they must pair up")
    for i, label in enumerate(labels):
        if not isinstance(label, str):
            raise InputError(f"labels[{i}] is {type(label).__name__} {label!r}, expected str")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise InputError(f"need at least 2 classes to train a classifier, got {classes}")
    return classes


class FinetuneClassifier:
    """Fine-tunes ``AutoModelForSequenceClassification`` on labelled texts; sklearn-like.

    Training is a plain loop: AdamW, linear warm-up then decay, gradient clipping at 1.0,
    shuffled mini-batches. Everything random (the new head, dropout, the shuffling) is seeded
    from ``seed`` inside a forked RNG, so fitting twice on CPU gives the same model and the
    global torch RNG is left alone.

    Args:
        model: local directory of a pretrained model with its tokenizer (``save_pretrained``
            layout); a hub name works only when it is in the local Hugging Face cache.
        epochs: passes over the training texts.
        lr: peak learning rate.
        batch_size: training and prediction batch size.
        max_length: inputs are truncated to this many tokens.
        seed: seeds head initialisation, dropout and shuffling.
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when available.
        weight_decay: AdamW weight decay.
        warmup_ratio: share of steps with a linearly rising learning rate.

    Attributes:
        classes_: sorted class labels; the columns of :meth:`predict_proba`.
        model_: the fine-tuned model (in eval mode).
        tokenizer_: its tokenizer.
        loss_curve_: mean training loss of each epoch.
    """

    def __init__(
        self,
        model: str,
        epochs: int = 3,
        lr: float = 5e-5,
        batch_size: int = 16,
        max_length: int = 64,
        seed: int = 0,
        device: str | None = None,
        *,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
    ) -> None:
        self.model = model
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.max_length = max_length
        self.seed = seed
        self.device = device
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio

    # --------------------------------------------------------------------- fit / predict

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Self:
        """Fine-tune the pretrained model on ``texts`` and their string ``labels``.

        Returns:
            ``self``.

        Raises:
            InputError: mismatched lengths, non-string labels, fewer than two classes, bad
                hyperparameters, or a model path that does not exist or cannot be loaded.
            MissingExtraError: torch or transformers is not installed.
        """
        texts = check_texts(texts)
        labels = list(labels)
        classes = _checked_classes(texts, labels)
        self._check_params()
        torch = import_optional("torch", purpose=_PURPOSE)
        device = resolve_device(self.device)
        index = {label: i for i, label in enumerate(classes)}

        fork_devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(self.seed)
            model, tokenizer = _load_pretrained(
                self.model,
                InputError,
                num_labels=len(classes),
                id2label=dict(enumerate(classes)),
                label2id=index,
            )
            model.to(device)
            encoded = tokenizer(list(texts), truncation=True, max_length=self.max_length)[
                "input_ids"
            ]
            targets = torch.tensor([index[label] for label in labels], dtype=torch.long)
            pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            losses = self._train(model, encoded, targets, pad_id, torch, device)
        model.eval()
        self.classes_ = np.array(classes)
        self.model_ = model
        self.tokenizer_ = tokenizer
        self.loss_curve_ = losses
        return self

    def _optimizer(self, model: Any, torch: Any, n_texts: int) -> tuple[Any, Any]:
        """AdamW (no decay on biases and norms) with linear warm-up, then linear decay."""
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
        groups = [
            {
                "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
                "weight_decay": self.weight_decay,
            },
            {
                "params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
                "weight_decay": 0.0,
            },
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.lr)
        steps_per_epoch = math.ceil(n_texts / self.batch_size)
        total = max(1, steps_per_epoch * self.epochs)
        warmup = int(total * self.warmup_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: (
                (step + 1) / (warmup + 1)
                if step < warmup
                else max(0.0, (total - step) / max(1, total - warmup))
            ),
        )
        return optimizer, scheduler

    def _train(
        self,
        model: Any,
        encoded: list[list[int]],
        targets: Any,
        pad_id: int,
        torch: Any,
        device: str,
    ) -> list[float]:
        """Run the epochs in a seeded shuffled order; the mean loss of each epoch."""
        optimizer, scheduler = self._optimizer(model, torch, len(encoded))
        generator = torch.Generator().manual_seed(self.seed)
        losses: list[float] = []
        model.train()
        for epoch in range(self.epochs):
            order = torch.randperm(len(encoded), generator=generator).tolist()
            epoch_loss = 0.0
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                inputs = _collate([encoded[i] for i in batch], pad_id, torch, device)
                output = model(**inputs, labels=targets[batch].to(device))
                output.loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                epoch_loss += float(output.loss.detach()) * len(batch)
            losses.append(epoch_loss / len(encoded))
            logger.info("fine-tune epoch %d/%d: loss %.4f", epoch + 1, self.epochs, losses[-1])
        return losses

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (softmax), columns ordered as ``classes_``.

        Returns:
            A float64 array of shape ``(len(texts), len(classes_))``; rows sum to 1.

        Raises:
            NotFittedError: before ``fit`` or ``load``.
        """
        model, tokenizer = self._fitted()
        texts = check_texts(texts)
        torch = import_optional("torch", purpose=_PURPOSE)
        device = next(model.parameters()).device
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        out = np.zeros((len(texts), len(self.classes_)), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                encoded = tokenizer(chunk, truncation=True, max_length=self.max_length)["input_ids"]
                logits = model(**_collate(encoded, pad_id, torch, device)).logits
                out[start : start + len(chunk)] = (
                    torch.softmax(logits.double(), dim=-1).cpu().numpy()
                )
        return out

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """The most probable class of each text (an array of labels from ``classes_``)."""
        proba = self.predict_proba(texts)
        if len(proba) == 0:
            return self.classes_[:0]
        return self.classes_[proba.argmax(axis=1)]

    # --------------------------------------------------------------------- persistence

    def save(self, directory: str | Path) -> None:
        """Write ``config.json`` (classes, hyperparameters) and the model + tokenizer in ``model/``.

        Raises:
            NotFittedError: before ``fit``.
        """
        model, tokenizer = self._fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            model.save_pretrained(directory / "model")
            tokenizer.save_pretrained(directory / "model")
        config = {
            "format_version": _FORMAT_VERSION,
            "type": _TYPE,
            "base_model": self.model,
            "classes": [str(c) for c in self.classes_],
            "loss_curve": self.loss_curve_,
            "params": {
                "epochs": self.epochs,
                "lr": self.lr,
                "batch_size": self.batch_size,
                "max_length": self.max_length,
                "seed": self.seed,
                "weight_decay": self.weight_decay,
                "warmup_ratio": self.warmup_ratio,
            },
        }
        text = json.dumps(config, ensure_ascii=False, indent=2)
        (directory / CONFIG_NAME).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, *, device: str | None = None) -> Self:
        """Restore a classifier written by :meth:`save`; predictions are identical.

        Args:
            directory: what :meth:`save` wrote.
            device: where to run it; ``None`` picks CUDA when available.

        Raises:
            BundleError: a missing or broken directory.
        """
        directory = Path(directory)
        path = directory / CONFIG_NAME
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(
                f"cannot read {path}: {exc}; is it a directory written by FinetuneClassifier.save()?"
            ) from exc
        if not isinstance(config, dict) or config.get("type") != _TYPE:
            found = config.get("type") if isinstance(config, dict) else None
            raise BundleError(f"{path} is of type {found!r}, expected {_TYPE!r}")
        if config.get("format_version", _FORMAT_VERSION) > _FORMAT_VERSION:
            raise BundleError(
                f"{path} has format_version {config['format_version']}; upgrade sales-copilot"
            )
        try:
            clf = cls(str(directory / "model"), device=device, **config["params"])
            classes = [str(c) for c in config["classes"]]
        except (KeyError, TypeError) as exc:
            raise BundleError(f"bad {path}: {exc!r}") from exc
        model, tokenizer = _load_pretrained(clf.model, BundleError)
        if model.config.num_labels != len(classes):
            raise BundleError(
                f"the model in '{clf.model}' has {model.config.num_labels} labels but "
                f"{path} lists {len(classes)} classes"
            )
        model.to(resolve_device(device))
        model.eval()
        clf.classes_ = np.array(classes)
        clf.model_ = model
        clf.tokenizer_ = tokenizer
        clf.loss_curve_ = list(config.get("loss_curve", []))
        return clf

    # --------------------------------------------------------------------- internals

    def _check_params(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "lr": self.lr > 0,
            "batch_size": self.batch_size >= 1,
            "max_length": self.max_length >= 2,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise InputError(f"FinetuneClassifier: invalid {name}={getattr(self, name)!r}")

    def _fitted(self) -> tuple[Any, Any]:
        model = getattr(self, "model_", None)
        if model is None:
            raise NotFittedError(
                "this FinetuneClassifier is not fitted yet; call fit(texts, labels) or "
                "FinetuneClassifier.load(dir) first"
            )
        return model, self.tokenizer_


def _load_pretrained(
    source: str, error: type[CopilotError], **model_kwargs: Any
) -> tuple[Any, Any]:
    """A sequence-classification model and its tokenizer, or ``error`` saying why not."""
    path = check_model_source(source, error=error)
    transformers = import_optional("transformers", purpose=_PURPOSE)
    try:
        with quiet_transformers():
            tokenizer = transformers.AutoTokenizer.from_pretrained(path)
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                path, **model_kwargs
            )
    except (OSError, ValueError, KeyError) as exc:
        raise model_load_error(source, exc, error=error) from exc
    return model, tokenizer


def _collate(ids: Sequence[Sequence[int]], pad_id: int, torch: Any, device: Any) -> dict[str, Any]:
    """Right-padded ``input_ids`` and ``attention_mask`` tensors for one batch."""
    width = max((len(row) for row in ids), default=1)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
