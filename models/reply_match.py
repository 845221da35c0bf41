"""Reply matching: which reply answers this context, learned from the brand's own chats.

Every guide reply in a log is a free training example: the context it followed and the reply
the guide actually sent. No labels and no outcomes are needed. :class:`ReplyMatcher` learns two
linear "towers" from the embedder's features (sparse TF-IDF of words and character n-grams for
the offline embedder, the embedding for a pretrained one) into one space of ``dim`` dimensions:
the context tower reads the last message before the reply (usually the customer's question) and
the last ``context_turns`` messages together; the reply tower reads the reply. Both start from
the embedder's own projection (the offline embedder's SVD), so before training the score is the
plain cosine of the two texts.

Training minimises the InfoNCE loss (a softmax over candidate replies, temperature
``temperature``): each context's own reply against every other reply of its batch (in-batch
negatives) and against one reply that another guide sent to a message of the same intent (a hard
negative: the same topic, another answer), with an L2 pull towards the starting projection so
that the words the brand's logs never use keep their general meaning.

The score of a reply for a context is the cosine of the two towers' vectors plus
``lexical_weight`` times the cosine of their raw features (shared words and characters).

Training needs torch (installed by ``make install``); scoring is numpy only.

Example:
    >>> matcher = ReplyMatcher().fit(pairs, embedder)                  # doctest: +SKIP
    >>> matcher.score(["在吗", "发票怎么开"], ["您好，发票在订单详情里申请哦", "好的"])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from copilot.errors import BundleError, InputError, NotFittedError
from models._lazy import import_optional
from models.embedders import Embedder

__all__ = ["ReplyMatcher", "ReplyPair", "reply_pairs"]

_MIN_PAIRS = 20


@dataclass(frozen=True)
class ReplyPair:
    """One guide reply and what came before it.

    Attributes:
        context: the messages before the reply, oldest first (both sides).
        reply: the reply as sent (consecutive guide messages joined by a line break).
        intent: the intent of the customer message it answers, for hard negatives.
        index: position of the reply's first message in its conversation.
    """

    context: tuple[str, ...]
    reply: str
    intent: str | None = None
    index: int = 0


def reply_pairs(
    messages: Sequence[tuple[str, str]], labels: Sequence[str | None] | None = None, turns: int = 5
) -> list[ReplyPair]:
    """The (context, reply) pairs of one conversation: every guide turn that follows a customer.

    Args:
        messages: ``(role, text)`` of each message in order.
        labels: one label per message (the customer's intent is read from the message before
            each reply); ``None`` when unknown.
        turns: messages of context kept before each reply.
    """
    out = []
    i = 0
    while i < len(messages):
        if messages[i][0] != "guide" or i == 0 or messages[i - 1][0] != "customer":
            i += 1
            continue
        end = i
        while end + 1 < len(messages) and messages[end + 1][0] == "guide":
            end += 1
        context = tuple(t for r, t in messages[max(0, i - turns) : i] if r != "system" and t)
        reply = "\n".join(messages[j][1] for j in range(i, end + 1))
        intent = labels[i - 1] if labels is not None else None
        if context and reply.strip():
            out.append(ReplyPair(context, reply, intent, i))
        i = end + 1
    return out


class ReplyMatcher:
    """Scores candidate replies for a context (see the module docstring).

    Args:
        dim: dimension of the learned space (at most the embedder's projection's).
        epochs: passes over the pairs.
        learning_rate: Adam's step size.
        temperature: of the InfoNCE softmax.
        l2: weight of the pull towards the starting projection.
        batch_size: contexts per step (each also sees the batch's replies as negatives).
        hard_negatives: add one same-intent reply per context as a negative.
        lexical_weight: weight of the raw feature cosine in :meth:`score`.
        context_turns: messages of context the context tower reads.
        seed: seeds batching, negatives and torch.

    Attributes:
        towers_: ``{"last", "context", "reply"}`` float32 projections, ``(n_features, dim)``.
        history_: mean training loss per epoch.
        action_weight_: weight of the next-action probability beside this matcher's score when
            given replies are ranked (:mod:`models.rank`), fitted on held-out pairs by
            :func:`models.rank.fit_action_weight`; ``None`` until fitted.
    """

    def __init__(
        self,
        dim: int = 128,
        *,
        epochs: int = 3,
        learning_rate: float = 1e-3,
        temperature: float = 0.05,
        l2: float = 1e-4,
        batch_size: int = 128,
        hard_negatives: bool = True,
        lexical_weight: float = 0.3,
        context_turns: int = 5,
        seed: int = 0,
    ) -> None:
        self.dim = dim
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.temperature = temperature
        self.l2 = l2
        self.batch_size = batch_size
        self.hard_negatives = hard_negatives
        self.lexical_weight = lexical_weight
        self.context_turns = context_turns
        self.seed = seed

    # ------------------------------------------------------------------ training

    def fit(self, pairs: Sequence[ReplyPair], embedder: Embedder) -> Self:
        """Learn the towers from ``pairs`` with ``embedder``'s features (fitted already).

        Raises:
            InputError: fewer than 20 pairs, or fewer than two different replies.
            MissingExtraError: torch is not installed.
        """
        torch = import_optional("torch", purpose="training the reply-matching model")
        if len(pairs) < _MIN_PAIRS or len({p.reply for p in pairs}) < 2:
            raise InputError(
                f"reply matching needs at least {_MIN_PAIRS} (context, reply) pairs with "
                f"different replies; got {len(pairs)}"
            )
        start = np.asarray(embedder.feature_projection(), dtype=np.float32)
        dim = min(self.dim, start.shape[1])
        start = start[:, :dim]
        last, context = self._context_features(embedder, [p.context for p in pairs])
        reply = embedder.features([p.reply for p in pairs])
        hard = self._hard_partners(pairs)
        text_ids = np.unique([p.reply for p in pairs], return_inverse=True)[1]

        torch.manual_seed(self.seed)
        origin = torch.from_numpy(np.ascontiguousarray(start))
        towers = {n: torch.nn.Parameter(origin.clone()) for n in ("last", "context", "reply")}
        optimizer = torch.optim.Adam(list(towers.values()), lr=self.learning_rate)
        rng = np.random.default_rng(self.seed)
        self.history_: list[float] = []
        for _epoch in range(self.epochs):
            order = rng.permutation(len(pairs))
            total, steps = 0.0, 0
            for s in range(0, len(order), self.batch_size):
                rows = order[s : s + self.batch_size]
                if len(rows) < 2:
                    continue
                ctx = _unit(
                    _mm(torch, last[rows], towers["last"])
                    + _mm(torch, context[rows], towers["context"])
                )
                candidates = rows
                if self.hard_negatives:
                    extra = hard[rows]
                    candidates = np.concatenate([rows, extra[extra >= 0]])
                rep = _unit(_mm(torch, reply[candidates], towers["reply"]))
                logits = ctx @ rep.T / self.temperature
                # A candidate with the same text as a context's own reply is not a negative.
                same = text_ids[rows][:, None] == text_ids[candidates][None, :]
                np.fill_diagonal(same, False)
                logits = logits.masked_fill(torch.from_numpy(same), float("-inf"))
                loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(rows)))
                pull = sum(((t - origin) ** 2).sum() for t in towers.values())
                optimizer.zero_grad()
                (loss + self.l2 * pull).backward()
                optimizer.step()
                total, steps = total + loss.item(), steps + 1
            self.history_.append(round(total / max(steps, 1), 4))
        # Stored as float16; rounding now keeps a fitted and a reloaded matcher identical.
        self.towers_ = {
            n: t.detach().numpy().astype(np.float16).astype(np.float32) for n, t in towers.items()
        }
        self.action_weight_: float | None = None
        self.library_: tuple[np.ndarray, Any] | None = None
        self._embedder = embedder
        return self

    def remember_replies(self, replies: Sequence[str]) -> None:
        """Encode a script library's replies now, in order, so serving reads them (``library_``).

        Training has every reply's tokens at hand; a server would otherwise tokenise each
        script the first time it is a candidate. Scripts added later are encoded when first met.
        """
        vectors, rows = self.encode_replies(list(replies)) if replies else (None, None)
        self.library_ = None if vectors is None else (vectors.astype(np.float16), rows)
        self.library_key_ = library_key(replies)

    def _hard_partners(self, pairs: Sequence[ReplyPair]) -> np.ndarray:
        """For each pair, another pair of the same intent with another reply (-1 when none)."""
        partners = np.full(len(pairs), -1, dtype=np.int64)
        if not self.hard_negatives:
            return partners
        by_intent: dict[str, list[int]] = defaultdict(list)
        for i, pair in enumerate(pairs):
            if pair.intent:
                by_intent[pair.intent].append(i)
        rng = random.Random(self.seed)
        for i, pair in enumerate(pairs):
            pool = by_intent.get(pair.intent or "", [])
            for _try in range(5):
                if len(pool) < 2:
                    break
                j = pool[rng.randrange(len(pool))]
                if pairs[j].reply != pair.reply:
                    partners[i] = j
                    break
        return partners

    # ------------------------------------------------------------------ scoring

    def bind(self, embedder: Embedder) -> Self:
        """Use ``embedder`` (the bundle's) for features; needed after :meth:`load`."""
        self._embedder = embedder
        return self

    def encode_contexts(self, contexts: Sequence[Sequence[str]]) -> tuple[np.ndarray, Any]:
        """Context vectors (unit rows) and raw feature rows of the joined contexts."""
        towers, embedder = self._fitted()
        last, context = self._context_features(embedder, contexts)
        vectors = last @ towers["last"] + context @ towers["context"]
        return _unit_np(np.asarray(vectors)), context

    def encode_replies(self, replies: Sequence[str]) -> tuple[np.ndarray, Any]:
        """Reply vectors (unit rows) and raw feature rows."""
        towers, embedder = self._fitted()
        features = embedder.features(list(replies))
        return _unit_np(np.asarray(features @ towers["reply"])), features

    def score(self, context: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        """Score of each candidate reply as the answer to ``context`` (higher: better)."""
        if not replies:
            return np.zeros(0, dtype=np.float32)
        ctx, ctx_raw = self.encode_contexts([context])
        rep, rep_raw = self.encode_replies(replies)
        return self.combine(ctx[0], ctx_raw[0], rep, rep_raw)

    def combine(self, ctx: np.ndarray, ctx_raw: Any, rep: np.ndarray, rep_raw: Any) -> np.ndarray:
        """Scores from encoded parts: tower cosine plus ``lexical_weight`` x feature cosine."""
        lexical = rep_raw @ ctx_raw.T
        lexical = lexical.toarray().ravel() if sp.issparse(lexical) else np.ravel(lexical)
        return (rep @ ctx + self.lexical_weight * lexical).astype(np.float32)

    def combine_rows(
        self, ctx: np.ndarray, ctx_raw: Any, rep: np.ndarray, rep_rows: Sequence[Any]
    ) -> np.ndarray:
        """:meth:`combine` for replies whose raw rows are kept one by one (e.g. a memo of them).

        Stacking sparse rows per request costs more than the scoring itself, so the feature
        cosine is taken row by row against the context's dense row.
        """
        if sp.issparse(ctx_raw):
            dense = np.asarray(ctx_raw.toarray()).ravel()
            lexical = np.asarray([float(dense[r.indices] @ r.data) for r in rep_rows])
        else:
            lexical = np.vstack(rep_rows) @ np.ravel(ctx_raw)
        return (rep @ ctx + self.lexical_weight * lexical).astype(np.float32)

    def _context_features(
        self, embedder: Embedder, contexts: Sequence[Sequence[str]]
    ) -> tuple[Any, Any]:
        turns = [list(c)[-self.context_turns :] for c in contexts]
        last = embedder.features([t[-1] if t else "" for t in turns])
        joined = embedder.features([" | ".join(t) for t in turns])
        return last, joined

    def _fitted(self) -> tuple[dict[str, np.ndarray], Embedder]:
        towers = getattr(self, "towers_", None)
        embedder = getattr(self, "_embedder", None)
        if towers is None:
            raise NotFittedError(
                "this ReplyMatcher is not fitted yet; call fit(pairs, embedder) or load(dir)"
            )
        if embedder is None:
            raise NotFittedError("a loaded ReplyMatcher needs bind(embedder) before scoring")
        return towers, embedder

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path) -> None:
        """Write ``config.json`` and the towers (float16) into ``directory``."""
        towers, _ = self._fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        halves: dict[str, Any] = {n: t.astype(np.float16) for n, t in towers.items()}
        np.savez(directory / "towers.npz", **halves)
        library = getattr(self, "library_", None)
        if library is not None:
            np.save(directory / "library_vectors.npy", library[0])
            if sp.issparse(library[1]):
                sp.save_npz(directory / "library_rows.npz", sp.csr_matrix(library[1]))
            else:
                np.save(directory / "library_rows.npy", np.asarray(library[1]))
        config = {
            "type": "reply_matcher",
            "params": {
                "dim": self.dim,
                "epochs": self.epochs,
                "learning_rate": self.learning_rate,
                "temperature": self.temperature,
                "l2": self.l2,
                "batch_size": self.batch_size,
                "hard_negatives": self.hard_negatives,
                "lexical_weight": self.lexical_weight,
                "context_turns": self.context_turns,
                "seed": self.seed,
            },
            "history": self.history_,
            "action_weight": self.action_weight_,
            "library_key": getattr(self, "library_key_", None),
        }
        (directory / "config.json").write_text(json.dumps(config), "utf-8")

    @classmethod
    def load(cls, directory: str | Path, embedder: Embedder | None = None) -> Self:
        """Restore a matcher written by :meth:`save` (bound to ``embedder`` when given).

        Raises:
            BundleError: missing or unreadable files.
        """
        directory = Path(directory)
        try:
            config = json.loads((directory / "config.json").read_text("utf-8"))
            matcher = cls(**config["params"])
            with np.load(directory / "towers.npz") as weights:
                matcher.towers_ = {n: weights[n].astype(np.float32) for n in weights.files}
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"cannot load the reply matcher in '{directory}': {exc!r}") from exc
        matcher.history_ = list(config.get("history", []))
        matcher.action_weight_ = config.get("action_weight")
        matcher.library_ = None
        matcher.library_key_ = config.get("library_key")
        try:
            if (directory / "library_vectors.npy").exists():
                rows_npz, rows_npy = directory / "library_rows.npz", directory / "library_rows.npy"
                rows = sp.load_npz(rows_npz).tocsr() if rows_npz.exists() else np.load(rows_npy)
                matcher.library_ = (np.load(directory / "library_vectors.npy"), rows)
        except (OSError, ValueError) as exc:
            raise BundleError(f"cannot load the reply matcher in '{directory}': {exc!r}") from exc
        if embedder is not None:
            matcher.bind(embedder)
        return matcher


def library_key(replies: Sequence[str]) -> str:
    """A digest of a script library's replies, in order: which library ``library_`` encodes."""
    return hashlib.sha256("\n".join(replies).encode("utf-8")).hexdigest()[:16]


def _mm(torch: Any, rows: Any, weight: Any) -> Any:
    """``rows @ weight`` for a scipy sparse or numpy ``rows`` and a torch ``weight``."""
    if sp.issparse(rows):
        coo = rows.tocoo()
        index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        values = torch.from_numpy(coo.data.astype(np.float32))
        tensor = torch.sparse_coo_tensor(index, values, coo.shape, check_invariants=False)
        return torch.sparse.mm(tensor, weight)
    return torch.from_numpy(np.asarray(rows, dtype=np.float32)) @ weight


def _unit(x: Any) -> Any:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)


def _unit_np(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-8)).astype(np.float32)
