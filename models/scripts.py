"""Winning scripts: guide replies mined from conversations, clustered, with their lift.

Mining walks every guide turn that answers a customer (consecutive guide messages merged into one
reply) and records the context (the last few messages before it), the customer's intent, the
guide's action and the reply with personal data masked. Replies that break a compliance rule are
dropped. Near-duplicate replies of the same action form one script (a cluster) that counts its
uses. For each script, the conversion rate of the conversations that used it is compared with the
rate of all conversations at the same intent: the lift, from a Beta posterior centred on that
baseline, ranked by its lower bound so that a script seen twice does not win by luck. Scripts with at least one winning use are kept; the contexts of
their winning uses go into a :class:`~models.script_index.ScriptIndex`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from copilot.compliance import ComplianceChecker
from copilot.errors import BundleError, InputError
from copilot.schema import Conversation
from copilot.text import TextPipeline
from models.embedders import Embedder
from models.script_index import ScriptIndex

__all__ = [
    "MiningConfig",
    "Script",
    "ScriptLibrary",
    "context_text",
    "converted",
    "index_tokens",
    "mine_scripts",
    "lift_bounds",
    "reply_key",
]

Labels = Sequence[str | None]
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def lift_bounds(
    wins: int, uses: int, baseline: float, prior: float = 10.0, q: float = 0.05
) -> tuple[float, float]:
    """Posterior mean and ``q``-quantile of a script's conversion rate, divided by the baseline.

    The prior is a Beta centred on the intent's baseline rate with the weight of ``prior``
    conversations, so a script seen once or twice stays near "average" (lift 1) and only
    consistent evidence moves it: ranking by the lower bound keeps lucky scripts down.

    Returns:
        ``(lift, lift_lower)``; both 0 when the baseline is 0.
    """
    from scipy.stats import beta

    if baseline <= 0:
        return 0.0, 0.0
    b = min(max(baseline, 1e-3), 1 - 1e-3)
    a_post, b_post = wins + b * prior, uses - wins + (1 - b) * prior
    return float(a_post / (a_post + b_post) / b), float(beta.ppf(q, a_post, b_post) / b)


def converted(conversation: Conversation) -> bool:
    """The default definition of a winning conversation: its outcome says converted."""
    return conversation.outcome is not None and conversation.outcome.converted


def reply_key(text: str) -> str:
    """What makes two replies the same script: case, width, punctuation, spaces and emoji aside."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _PUNCT.sub("", "".join(ch for ch in text if unicodedata.category(ch) != "So"))


# Tokens that occur in most contexts: they carry no signal for BM25 and dominate its cost.
_STOP = frozenset(
    [
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "哦",
        "哈",
        "嘛",
        "啦",
        "的",
        "了",
        "是",
        "我",
        "你",
        "您",
        "亲",
        "在",
        "有",
        "这个",
        "就",
        "也",
        "都",
        "和",
        "|",
        "嗯",
        "哈哈",
        "好",
    ]
)


def index_tokens(tokens: Sequence[str]) -> list[str]:
    """BM25 tokens of a context: no punctuation, no particles or pronouns that every context has."""
    return [t for t in tokens if t not in _STOP and not _PUNCT.fullmatch(t)]


def context_text(texts: Sequence[str], turns: int) -> str:
    """The context of a reply: the last ``turns`` messages before it, oldest first."""
    return " | ".join(t for t in texts[-turns:] if t)


@dataclass
class MiningConfig:
    """How scripts are mined.

    Attributes:
        context_turns: messages before a reply that form its context.
        duplicate_threshold: replies of one action whose embeddings are at least this similar
            (cosine) are variants of one script.
        min_wins: fewest winning uses a script needs to be kept.
        max_reply_chars: longer merged replies are not scripts (they are essays).
        prior: weight, in conversations, of the intent's baseline rate in each script's rate.
        quantile: the lower bound of the lift is this quantile of the posterior (0.05: 95% bound).
    """

    context_turns: int = 3
    duplicate_threshold: float = 0.92
    min_wins: int = 1
    max_reply_chars: int = 300
    prior: float = 10.0
    quantile: float = 0.05


@dataclass
class Script:
    """One script: a cluster of near-identical winning replies, with its evidence."""

    id: int
    text: str
    action: str
    intent: str
    uses: int
    wins: int
    rate: float
    baseline: float
    lift: float
    lift_lower: float
    variants: int
    source: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Candidate:
    conversation_id: str
    message_index: int
    reply: str
    action: str
    intent: str
    context: str
    won: bool


class ScriptLibrary:
    """The mined scripts, their search index, and supervisors' pins and bans.

    Attributes:
        scripts: by id (the id is the position).
        use_script: for each index entry (a winning use), its script id.
        centroids: per script, the mean context embedding of its winning uses (unit norm).
        reply_vectors: per script, the embedding of its text (for diversity and assignment).
        index: the hybrid index over the contexts of winning uses.
        pinned, banned: script ids a supervisor boosted or removed.
        stats: counts from mining (candidates, dropped for compliance, ...).
    """

    def __init__(
        self,
        scripts: list[Script],
        use_script: np.ndarray,
        centroids: np.ndarray,
        reply_vectors: np.ndarray,
        index: ScriptIndex,
        config: MiningConfig,
        stats: dict[str, Any],
    ) -> None:
        self.scripts = scripts
        self.use_script = use_script
        self.centroids = centroids
        self.reply_vectors = reply_vectors
        self.index = index
        self.config = config
        self.stats = stats
        self.pinned: set[int] = set()
        self.banned: set[int] = set()
        self._by_key = {reply_key(s.text): s.id for s in scripts}

    def __len__(self) -> int:
        return len(self.scripts)

    def banned_uses(self) -> set[int]:
        """Index entries of banned scripts (excluded from every search)."""
        if not self.banned:
            return set()
        return {int(i) for i in np.flatnonzero(np.isin(self.use_script, list(self.banned)))}

    def assign(
        self, reply: str, action: str | None, vector: np.ndarray | None = None
    ) -> int | None:
        """The script a reply belongs to: same text, else the nearest of the same action above the threshold."""
        hit = self._by_key.get(reply_key(reply))
        if hit is not None or vector is None or not len(self.scripts):
            return hit
        sims = self.reply_vectors.astype(np.float32) @ vector.astype(np.float32)
        if action is not None:
            same = np.asarray([s.action == action for s in self.scripts])
            sims = np.where(same, sims, -1.0)
        best = int(sims.argmax())
        return best if sims[best] >= self.config.duplicate_threshold else None

    def add_script(
        self,
        text: str,
        action: str,
        intent: str,
        contexts: Sequence[str],
        embedder: Embedder,
        tokenize: Callable[[str], Sequence[str]],
        source: dict[str, Any] | None = None,
    ) -> Script:
        """Add a script (e.g. written by a supervisor) without rebuilding the index.

        Its ``contexts`` (customer messages it answers) are embedded and appended to the index;
        with no usage yet, its lift is neutral (1) until evidence accumulates.

        Raises:
            InputError: empty text or no context.
        """
        if not text.strip() or not [c for c in contexts if c.strip()]:
            raise InputError("a script needs a reply text and at least one context it answers")
        contexts = [c for c in contexts if c.strip()]
        sid = len(self.scripts)
        script = Script(sid, text, action, intent, 0, 0, 0.0, 0.0, 1.0, 1.0, 1, dict(source or {}))
        vectors = embedder.encode(contexts)
        # Index entries are numbered 0..n-1 in the order they were added.
        ids = np.arange(len(self.use_script), len(self.use_script) + len(contexts), dtype=np.int64)
        self.index.add(ids, vectors, [index_tokens(tokenize(c)) for c in contexts])
        use_script = np.concatenate([self.use_script, np.full(len(contexts), sid, dtype=np.int32)])
        centroid = vectors.mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        rounded = (
            centroid.astype(np.float16).astype(np.float32),
            embedder.encode([text])[0].astype(np.float16).astype(np.float32),
        )
        self.centroids = np.vstack([self.centroids, rounded[0]])
        self.reply_vectors = np.vstack([self.reply_vectors, rounded[1]])
        self.use_script = use_script
        self.scripts.append(script)
        self._by_key[reply_key(text)] = sid
        return script

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "scripts.json").write_text(
            json.dumps(
                {
                    "config": asdict(self.config),
                    "stats": self.stats,
                    "pinned": sorted(self.pinned),
                    "banned": sorted(self.banned),
                    "scripts": [asdict(s) for s in self.scripts],
                },
                ensure_ascii=False,
            ),
            "utf-8",
        )
        np.savez(
            directory / "arrays.npz",
            use_script=self.use_script,
            centroids=self.centroids.astype(np.float16),
            reply_vectors=self.reply_vectors.astype(np.float16),
        )
        self.index.save(directory / "index")

    @classmethod
    def load(cls, directory: str | Path) -> ScriptLibrary:
        directory = Path(directory)
        try:
            data = json.loads((directory / "scripts.json").read_text("utf-8"))
            arrays = np.load(directory / "arrays.npz")
            index = ScriptIndex.load(directory / "index")
        except (OSError, ValueError, KeyError) as exc:
            raise BundleError(f"cannot load the script library from {directory}: {exc}") from exc
        library = cls(
            [Script(**s) for s in data["scripts"]],
            arrays["use_script"],
            arrays["centroids"].astype(np.float32),
            arrays["reply_vectors"].astype(np.float32),
            index,
            MiningConfig(**data["config"]),
            data["stats"],
        )
        library.pinned = set(data.get("pinned", []))
        library.banned = set(data.get("banned", []))
        return library


def _candidates(
    conversation: Conversation, labels: Labels, pipeline: TextPipeline, config: MiningConfig
) -> list[_Candidate]:
    messages = conversation.messages
    out = []
    i = 0
    while i < len(messages):
        if messages[i].role != "guide" or i == 0 or messages[i - 1].role != "customer":
            i += 1
            continue
        end = i
        while end + 1 < len(messages) and messages[end + 1].role == "guide":
            end += 1
        action, intent = labels[i], labels[i - 1]
        if action is not None and intent is not None:
            reply = "\n".join(pipeline.mask(messages[j].text)[0] for j in range(i, end + 1))
            before = [
                pipeline.mask(m.text)[0]
                for m in messages[max(0, i - config.context_turns) : i]
                if m.role != "system"
            ]
            out.append(
                _Candidate(
                    conversation.conversation_id,
                    i,
                    reply,
                    action,
                    intent,
                    context_text(before, config.context_turns),
                    False,
                )
            )
        i = end + 1
    return out


def mine_scripts(
    conversations: Sequence[Conversation],
    labels_of: Callable[[Conversation], Labels],
    embedder: Embedder,
    tokenize: Callable[[str], Sequence[str]],
    *,
    checker: ComplianceChecker,
    pipeline: TextPipeline,
    config: MiningConfig | None = None,
    is_win: Callable[[Conversation], bool] = converted,
    index: ScriptIndex | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScriptLibrary:
    """Mine, cluster and score scripts; index the contexts of their winning uses.

    Args:
        conversations: conversations with outcomes (won and lost: lift needs both).
        labels_of: one intent/action label per message (gold, else predicted by the bundle).
        embedder: embeds contexts (for search) and replies (for clustering).
        tokenize: tokens of a context, for BM25.
        checker: compliance rules; a reply with any hit is never a script.
        pipeline: masks personal data in replies and contexts.
        config: mining settings.
        is_win: what counts as a winning conversation (default: converted; pass e.g.
            ``lambda c: (c.outcome.order_amount or 0) >= 500`` or a quality-score test).
        index: an unbuilt :class:`ScriptIndex` with the wanted settings (default settings if None).
        progress: called with the name of each step.

    Raises:
        InputError: no winning conversation with a guide reply to mine.
    """
    config = config or MiningConfig()
    step = progress or (lambda _name: None)
    step("collecting replies")
    candidates: list[_Candidate] = []
    dropped = Counter[str]()
    for conversation in conversations:
        if conversation.outcome is None:
            continue
        won = is_win(conversation)
        for cand in _candidates(conversation, labels_of(conversation), pipeline, config):
            if len(cand.reply) > config.max_reply_chars:
                dropped["too_long"] += 1
                continue
            hits = checker.check(cand.reply)
            if hits:
                dropped[f"compliance:{hits[0].kind}"] += 1
                continue
            cand.won = won
            candidates.append(cand)
    if not any(c.won for c in candidates):
        raise InputError(
            "no winning conversation with a guide reply to mine scripts from; scripts need "
            "conversations with outcomes (some converted) and guide replies"
        )

    step("clustering near-duplicate replies")
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for n, cand in enumerate(candidates):
        groups[(cand.action, reply_key(cand.reply))].append(n)
    keys = list(groups)
    texts = [Counter(candidates[m].reply for m in groups[k]).most_common(1)[0][0] for k in keys]
    vectors = embedder.encode(texts) if texts else np.zeros((0, 1), np.float32)
    parent = list(range(len(keys)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    by_action: dict[str, list[int]] = defaultdict(list)
    for g, (action, _key) in enumerate(keys):
        by_action[action].append(g)
    for members in by_action.values():
        for a, b in _near_pairs(vectors[members], config.duplicate_threshold):
            ra, rb = find(members[a]), find(members[b])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    clusters: dict[int, list[int]] = defaultdict(list)
    for g in range(len(keys)):
        clusters[find(g)].append(g)

    step("scoring lift")
    # The baseline of an intent: the conversion rate of the conversations that met it.
    intent_convs: dict[str, dict[str, bool]] = defaultdict(dict)
    for cand in candidates:
        intent_convs[cand.intent][cand.conversation_id] = cand.won
    intent_rate = {i: sum(c.values()) / len(c) for i, c in intent_convs.items()}
    scripts: list[Script] = []
    winning_uses: list[tuple[int, int]] = []  # (script id, candidate index)
    for root in sorted(clusters, key=lambda r: min(groups[keys[g]][0] for g in clusters[r])):
        members = [m for g in clusters[root] for m in groups[keys[g]]]
        convs: dict[str, bool] = {}
        for m in members:
            convs[candidates[m].conversation_id] = candidates[m].won
        uses, wins = len(convs), sum(convs.values())
        if wins < config.min_wins:
            continue
        intent = Counter(candidates[m].intent for m in members).most_common(1)[0][0]
        winners = [m for m in members if candidates[m].won]
        text = Counter(candidates[m].reply for m in winners).most_common(1)[0][0]
        source = next(m for m in winners if candidates[m].reply == text)
        baseline = intent_rate[intent]
        rate = wins / uses
        lift, lift_lower = lift_bounds(wins, uses, baseline, config.prior, config.quantile)
        sid = len(scripts)
        scripts.append(
            Script(
                id=sid,
                text=text,
                action=candidates[members[0]].action,
                intent=intent,
                uses=uses,
                wins=wins,
                rate=round(rate, 4),
                baseline=round(baseline, 4),
                lift=round(lift, 4),
                lift_lower=round(lift_lower, 4),
                variants=len({candidates[m].reply for m in members}),
                source={
                    "conversation_id": candidates[source].conversation_id,
                    "message_index": candidates[source].message_index,
                },
            )
        )
        winning_uses += [(sid, m) for m in winners]

    step("indexing contexts")
    contexts = [candidates[m].context for _sid, m in winning_uses]
    context_vectors = embedder.encode(contexts)  # first, so a memoising tokenizer is warm for BM25
    use_script = np.asarray([sid for sid, _m in winning_uses], dtype=np.int32)
    index = ScriptIndex() if index is None else index  # an unbuilt index has len 0: falsy
    index.build(
        np.arange(len(contexts), dtype=np.int64),
        context_vectors,
        [index_tokens(tokenize(c)) for c in contexts],
    )
    centroids = np.zeros((len(scripts), context_vectors.shape[1]), dtype=np.float32)
    np.add.at(centroids, use_script, context_vectors)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    reply_vectors = embedder.encode([s.text for s in scripts])
    # Stored as float16; rounding now keeps a saved and reloaded library identical.
    centroids = centroids.astype(np.float16).astype(np.float32)
    reply_vectors = reply_vectors.astype(np.float16).astype(np.float32)
    stats = {
        "candidates": len(candidates) + sum(dropped.values()),
        "kept_candidates": len(candidates),
        "dropped": dict(dropped),
        "winning_uses_indexed": len(contexts),
        "scripts": len(scripts),
        "clusters_before_min_wins": len(clusters),
    }
    return ScriptLibrary(scripts, use_script, centroids, reply_vectors, index, config, stats)


def _near_pairs(vectors: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs of rows whose cosine is at least ``threshold`` (rows are unit vectors)."""
    n = len(vectors)
    if n < 2:
        return []
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    k = min(10, n)
    index: Any
    if n <= 20_000:
        index = faiss.IndexFlatIP(x.shape[1])
    else:  # approximate neighbours are enough to merge near-duplicates
        index = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.add(x)
    sims, nbrs = index.search(x, k)
    return [
        (i, int(j))
        for i in range(n)
        for s, j in zip(sims[i], nbrs[i], strict=True)
        if j > i and s >= threshold
    ]
