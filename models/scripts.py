"""Scripts: guide replies mined from conversations, clustered, ranked by their evidence.

Mining walks every guide turn that answers a customer (consecutive guide messages merged into one
reply) and records the context (the last few messages before it), the customer's intent, the
guide's action and the reply with personal data masked. Replies that break a compliance rule are
dropped. Near-duplicate replies of the same action form one script (a cluster) that counts its
uses. A script is then ranked on one of two bases, recorded in ``Script.basis``:

**lift** (the corpus has outcomes and some conversation won): the conversion rate of the
conversations that used the script is compared with the rate of all conversations at the same
intent, from a Beta posterior centred on that baseline, and ranked by its lower bound so that a
script seen twice does not win by luck (:func:`lift_bounds`). Scripts with at least ``min_wins``
winning uses are kept; the contexts of their winning uses are indexed. Conversations without an
outcome are left out.

**evidence** (no outcomes, the common case for a brand's export): what the logs do say. Each use
gets a *reception* from the customer's next turn (their messages after the reply, up to the
guide's next message; system messages skipped), by these rules, first match wins:

1. no next turn: **unknown**, the use is not judged;
2. a message has a negative intent (``complaint``) or sentiment <= -``sentiment_threshold``
   (:mod:`copilot.analyzers.sentiment`: 没用, 还是不行, 太差了): **negative** (complained);
3. every message is a bare acknowledgement (好的 / 收到 / 谢谢,
   :func:`copilot.analyzers.cues.is_acknowledgement`): **positive**;
4. a message is at least ``repeat_threshold`` similar (cosine of the ``embedder``) to a message
   of the customer turn the reply answered: **negative** (repeated the question);
5. a message has a positive intent (``thanks_closing``, ``purchase_intent``), sentiment >=
   ``sentiment_threshold``, or an onward intent (a new question) other than the one answered:
   **positive** (thanked or moved on);
6. otherwise **neutral**.

The evidence of a script at intent I, with reception s_u = 1 (positive), 1/2 (neutral: a tie,
as in a win rate) or 0 (negative) for each judged use u, and weight w_u = q_g / q_mean when
guide standings q (0..1) are given (the standing of the use's guide relative to the mean of the
guides mined; 1 without standings or for a guide without one)::

    n      = sum_u w_u                        judged uses (weighted)
    p      = sum_u w_u s_u / n                the script's reception score
    b      = the same score over every judged reply at I (1/2 when none is judged)
    m*     = sum_j m_j^2 / sum_j m_j          m_j: judged uses by guide j (by conversation j
                                              when the logs have no guide ids)
    DEFF   = 1 + (m* - 1) / (guide_prior + 1)
    n_eff  = n / DEFF
    posterior      Beta(p n_eff + prior b, (1 - p) n_eff + prior (1 - b))
    evidence       = posterior mean / b
    evidence_lower = posterior quantile(q) / b

``prior``, ``guide_prior`` and ``q`` (``quantile``) live in :class:`MiningConfig`. The posterior is
the lift's Beta posterior, centred on the intent's average, so "average" is 1 as for the lift.
``DEFF`` is Kish's design effect for clustered uses: if each guide's own reception rate varies
around the script's as a Beta with concentration ``guide_prior``, two uses by one guide are
correlated with rho = 1 / (guide_prior + 1), and the pooled rate has the variance of ``n_eff``
independent uses. One guide's uses thus count for at most ``guide_prior + 1`` independent ones,
and the same receptions spread over more guides give a tighter posterior: consensus of the team
raises the lower bound of a well-received script, and a single lucky use stays near average.
(``b`` enters as in :func:`lift_bounds`: kept within [0.001, 0.999]; both are 0 when ``b`` is 0.)
Scripts with at least ``min_uses`` uses, one of them not received negatively, are kept; the
contexts of their uses not received negatively are indexed. For the engine, which ranks by ``lift_lower`` and drops scripts
with ``lift < min_lift``, such a script has ``lift = evidence``, ``lift_lower = evidence_lower``,
``rate = p``, ``baseline = b`` and ``wins = 0``.

Reception and evidence are recorded on every script, whatever its basis; :func:`script_reason`
writes the Chinese line that says which evidence a script rests on.
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

# The lexicon scorer and the acknowledgement cue are plain text rules (no model), safe below models.
from copilot.analyzers.cues import is_acknowledgement
from copilot.analyzers.sentiment import sentiment_score
from copilot.catalog import Catalog
from copilot.compliance import ComplianceChecker
from copilot.errors import BundleError, ConfigError, InputError
from copilot.replies import in_shop_voice, moves
from copilot.schema import Conversation
from copilot.slots import has_words, product_kinds, template
from copilot.text import TextPipeline
from models.embedders import Embedder
from models.script_index import ScriptIndex

__all__ = [
    "Basis",
    "MiningConfig",
    "Reception",
    "Script",
    "ScriptLibrary",
    "context_text",
    "converted",
    "evidence_bounds",
    "index_tokens",
    "lift_bounds",
    "mine_scripts",
    "reply_key",
    "script_reason",
]

logger = logging.getLogger(__name__)

Labels = Sequence[str | None]
Basis = Literal["lift", "evidence"]
Reception = Literal["positive", "neutral", "negative", "unknown"]
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
# A reception as a score: neutral is a tie and counts half.
_RECEPTION_SCORE: dict[str, float] = {"positive": 1.0, "neutral": 0.5, "negative": 0.0}


def lift_bounds(
    wins: float, uses: float, baseline: float, prior: float = 10.0, q: float = 0.05
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


def evidence_bounds(
    score: float,
    judged: float,
    per_guide: Sequence[int],
    baseline: float,
    prior: float = 10.0,
    guide_prior: float = 10.0,
    q: float = 0.05,
) -> tuple[float, float]:
    """A script's reception evidence without outcomes: posterior mean and bound over the average.

    With ``p = score / judged``, ``m* = sum(m^2) / sum(m)`` over ``per_guide``,
    ``n_eff = judged / (1 + (m* - 1) / (guide_prior + 1))`` (Kish's design effect: uses by one
    guide are correlated), the posterior is ``Beta(p n_eff + prior b, (1 - p) n_eff + prior (1 - b))``
    and the result is its mean and ``q``-quantile divided by the baseline ``b`` (the module
    docstring derives it).

    Args:
        score: sum of the judged uses' receptions (1 positive, 1/2 neutral, 0 negative), weighted.
        judged: number of judged uses, weighted the same way.
        per_guide: judged uses (unweighted) by each guide, or each conversation without guide ids.
        baseline: the reception score of all judged replies at the script's intent, in (0, 1].
        prior: weight, in uses, of the baseline in the script's score.
        guide_prior: concentration of the guides' own rates around the script's.
        q: the quantile of the lower bound (0.05: a 95% one-sided bound).

    Returns:
        ``(evidence, evidence_lower)``: 1 is average; both 0 when the baseline is 0.

    Example:
        >>> evidence_bounds(6.0, 6.0, [1] * 6, 0.5)[1] > evidence_bounds(6.0, 6.0, [6], 0.5)[1]
        True
    """
    total = sum(per_guide)
    if judged <= 0 or total <= 0:
        return lift_bounds(0.0, 0.0, baseline, prior, q)
    clustered = sum(m * m for m in per_guide) / total
    n_eff = judged / (1.0 + (clustered - 1.0) / (guide_prior + 1.0))
    return lift_bounds(score / judged * n_eff, n_eff, baseline, prior, q)


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
        min_wins: fewest winning uses a script needs to be kept (lift basis only).
        min_uses: fewest uses a script needs to be kept (evidence basis only).
        max_reply_chars: longer merged replies are not scripts (they are essays).
        prior: weight, in conversations (lift) or uses (evidence), of the intent's baseline rate
            in each script's rate.
        guide_prior: concentration, in uses, of a guide's own reception rate around the script's
            (evidence basis): one guide's uses count for at most ``guide_prior + 1``.
        quantile: the lower bounds are this quantile of the posterior (0.05: 95% bound).
        sentiment_threshold: a customer message scoring at most minus this is negative, at least
            this positive (scores in [-1, 1]; 0.3 is where the lexicon's mild words land).
        repeat_threshold: a customer message at least this similar (cosine) to the one a reply
            answered repeats the question (with the offline embedder only near-verbatim
            repeats reach 0.8; its paraphrases score 0.6-0.7, as do unrelated short lines).
        positive_intents: customer intents that receive a reply well (thanks, buying).
        negative_intents: customer intents that receive a reply badly (complaints).
        onward_intents: customer intents that, other than the one answered, show the customer
            moved on to a new question.
    """

    context_turns: int = 3
    duplicate_threshold: float = 0.92
    min_wins: int = 1
    min_uses: int = 1
    max_reply_chars: int = 300
    prior: float = 10.0
    guide_prior: float = 10.0
    quantile: float = 0.05
    sentiment_threshold: float = 0.3
    repeat_threshold: float = 0.8
    positive_intents: tuple[str, ...] = ("thanks_closing", "purchase_intent")
    negative_intents: tuple[str, ...] = ("complaint",)
    onward_intents: tuple[str, ...] = (
        "product_inquiry",
        "price_inquiry",
        "size_fit",
        "stock",
        "logistics",
        "after_sales",
    )

    def __post_init__(self) -> None:
        # A saved library stores the tuples as JSON lists.
        self.positive_intents = tuple(self.positive_intents)
        self.negative_intents = tuple(self.negative_intents)
        self.onward_intents = tuple(self.onward_intents)
        checks = [
            ("min_uses", self.min_uses >= 1, "an integer of at least 1"),
            ("prior", self.prior > 0, "a positive number"),
            ("guide_prior", self.guide_prior > 0, "a positive number"),
            ("quantile", 0 < self.quantile < 1, "a number between 0 and 1"),
            ("sentiment_threshold", 0 < self.sentiment_threshold <= 1, "in (0, 1]"),
            ("repeat_threshold", 0 < self.repeat_threshold <= 1, "in (0, 1]"),
        ]
        for name, ok, valid in checks:
            if not ok:
                raise ConfigError(
                    f"MiningConfig.{name} is {getattr(self, name)!r}; it must be {valid}"
                )


@dataclass
class Script:
    """One script: a cluster of near-identical replies, with its evidence.

    Attributes:
        uses: conversations that used it (lift basis) or replies that are it (evidence basis).
        wins: winning conversations among them (0 on the evidence basis: no outcomes).
        rate, baseline: its conversion rate and its intent's (lift basis), or its reception
            score and its intent's (evidence basis).
        lift, lift_lower: what the engine ranks by: the lift and its lower bound (lift basis), or
            ``evidence`` and ``evidence_lower`` (evidence basis); 1 is average.
        variants: distinct reply texts in the cluster.
        source: the conversation and message the text comes from.
        basis: ``"lift"`` (outcomes) or ``"evidence"`` (the logs' own signals).
        guides: distinct guides who used it, or distinct conversations when the logs have no
            guide ids (``consensus_unit`` says which).
        judged: uses the customer answered (the others' reception is unknown).
        positive, negative: uses received well (thanked, acknowledged, moved on, bought) and badly
            (complained, angry, repeated the question); the rest of ``judged`` were neutral.
        evidence, evidence_lower: posterior mean and lower bound of its reception score over the
            intent's (see :func:`evidence_bounds`); 1 is average.
        guide_quality: mean standing (0..1) of its guides who have one, else ``None``.
        products: the kinds of product (categories, product words) its uses' product slots
            held; its ``[商品]`` is filled only in chats about one of them.
    """

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
    basis: Basis = "lift"
    guides: int = 0
    consensus_unit: Literal["guide", "conversation"] = "guide"
    judged: int = 0
    positive: int = 0
    negative: int = 0
    evidence: float = 1.0
    evidence_lower: float = 1.0
    guide_quality: float | None = None
    products: list[str] = field(default_factory=list)


def script_reason(script: Script, name_of: Callable[[str], str]) -> str:
    """The Chinese line that says which evidence a script rests on.

    Args:
        script: a mined (or added) script.
        name_of: the Chinese name of an intent or action id (``taxonomy.name_of``).

    Returns:
        On the lift basis, its conversion rate against the intent's average, e.g.
        「同类价格异议中，该话术成交率 42%（n=57），高于平均 18%」; on the evidence basis, the team's
        use and the customers' reception, e.g.
        「5 位导购共用 23 次；顾客随后致谢或继续 78%（n=18），追问或不满 6%」; for a script added
        without uses, that it has none yet.
    """
    s = script
    if s.uses == 0:  # added by a supervisor or imported from a script library, not mined
        if s.source.get("kind") == "written":
            product = f"，商品 {s.source['product']}" if s.source.get("product") else ""
            return f"总部话术库的{name_of(s.action)}话术（书面话术{product}），尚无使用记录"
        return f"新增的{name_of(s.action)}话术，尚无使用记录"
    if s.basis == "lift":
        if s.uses >= 3:
            compare = "高于" if s.rate > s.baseline else "低于" if s.rate < s.baseline else "持平于"
            return (
                f"同类{name_of(s.intent)}中，该话术成交率 {s.rate:.0%}（n={s.uses}），"
                f"{compare}平均 {s.baseline:.0%}"
            )
        return (
            f"与当前对话情境相似的成交对话中使用过的{name_of(s.action)}话术（n={s.uses}，样本较少）"
        )
    who = f"{s.guides} 位导购共用" if s.consensus_unit == "guide" else f"{s.guides} 个对话中用过"
    parts = [f"{who} {s.uses} 次"]
    if s.judged:
        few = "，样本较少" if s.judged < 3 else ""
        parts.append(
            f"顾客随后致谢或继续 {s.positive / s.judged:.0%}（n={s.judged}{few}），"
            f"追问或不满 {s.negative / s.judged:.0%}"
        )
    else:
        parts.append("顾客随后未再回复，反应未知")
    if s.guide_quality is not None:
        parts.append(f"使用导购平均质量分 {s.guide_quality * 100:.0f}")
    return "；".join(parts)


@dataclass
class _Candidate:
    conversation_id: str
    message_index: int
    reply: str
    action: str
    intent: str
    context: str
    won: bool | None  # None: the conversation has no outcome
    guide: str | None = None
    reception: Reception = "unknown"
    products: tuple[str, ...] = ()


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

    def banned_uses(self, banned: Collection[int] | None = None) -> set[int]:
        """Index entries of banned scripts (excluded from every search): of ``banned`` (one
        store's bans), or of the library's own when ``None``."""
        banned = self.banned if banned is None else banned
        if not banned:
            return set()
        return {int(i) for i in np.flatnonzero(np.isin(self.use_script, list(banned)))}

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
        basis = self.stats.get("basis", "lift")
        script = Script(
            sid, text, action, intent, 0, 0, 0.0, 0.0, 1.0, 1.0, 1, dict(source or {}), basis
        )
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


@dataclass
class _Reading:
    """The customer's next turn after a use, read without similarity (rules 1-3 and 5).

    ``verdict`` holds unless the turn repeats the question (rule 4), which can only be the case
    when ``following`` and ``answered`` (the texts to compare) are not empty.
    """

    verdict: Reception
    answered: tuple[str, ...] = ()
    following: tuple[str, ...] = ()


def _customer_turn(conversation: Conversation, start: int, step: int) -> list[int]:
    """Customer messages from ``start``, walking by ``step`` until a guide message, in order."""
    messages = conversation.messages
    out = []
    k = start
    while 0 <= k < len(messages) and messages[k].role != "guide":
        if messages[k].role == "customer" and messages[k].text.strip():
            out.append(k)
        k += step
    return sorted(out)


def _read_turn(
    conversation: Conversation,
    labels: Labels,
    answered: list[int],
    following: list[int],
    config: MiningConfig,
    sentiment: Callable[[str], float],
) -> _Reading:
    """The reception of a reply from the customer turns before and after it, but for repeats."""
    if not following:
        return _Reading("unknown")
    messages = conversation.messages
    texts = [messages[k].text for k in following]
    intents = [labels[k] for k in following]
    scores = [sentiment(t) for t in texts]
    limit = config.sentiment_threshold
    if min(scores) <= -limit or any(i in config.negative_intents for i in intents):
        return _Reading("negative")
    acks = [is_acknowledgement(t) for t in texts]
    if all(acks):
        return _Reading("positive")
    answered_intent = labels[answered[-1]] if answered else None
    moved_on = max(scores) >= limit or any(
        i in config.positive_intents or (i in config.onward_intents and i != answered_intent)
        for i in intents
    )
    asked = tuple(messages[k].text for k in answered if not is_acknowledgement(messages[k].text))
    return _Reading(
        "positive" if moved_on else "neutral",
        asked,
        tuple(t for t, ack in zip(texts, acks, strict=True) if not ack),
    )


def _repeats(
    readings: Sequence[_Reading], embedder: Embedder, threshold: float, chunk: int = 4096
) -> list[bool]:
    """Per reading: whether a following message is ``threshold`` similar to an answered one."""
    out: list[bool] = []
    for start in range(0, len(readings), chunk):
        part = readings[start : start + chunk]
        texts = sorted({t for r in part for t in (*r.answered, *r.following)})
        row = {t: k for k, t in enumerate(texts)}
        vectors = embedder.encode(texts) if texts else np.zeros((0, 1), np.float32)
        for r in part:
            if not r.answered or not r.following:
                out.append(False)
                continue
            after = vectors[[row[t] for t in r.following]]
            before = vectors[[row[t] for t in r.answered]]
            out.append(bool((after @ before.T).max() >= threshold))
    return out


def _candidates(
    conversation: Conversation,
    labels: Labels,
    pipeline: TextPipeline,
    config: MiningConfig,
    sentiment: Callable[[str], float],
    catalog: Catalog | None = None,
) -> list[tuple[_Candidate, _Reading]]:
    """The guide replies that answer a customer, one per move, each with its first reading.

    Consecutive guide messages (and the utterances an export joins in one message) are one
    reply only when they belong together (:func:`copilot.replies.moves`); each reply is put in the shop's voice and made a
    template (:func:`copilot.slots.template`), so it names no other chat's product or price.
    """
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
        intent = labels[i - 1]
        texts = [pipeline.mask(messages[j].text)[0] for j in range(i, end + 1)]
        before = [
            pipeline.mask(m.text)[0]
            for m in messages[max(0, i - config.context_turns) : i]
            if m.role != "system"
        ]
        reading = _read_turn(
            conversation,
            labels,
            _customer_turn(conversation, i - 1, -1),
            _customer_turn(conversation, end + 1, 1),
            config,
            sentiment,
        )
        for first, text in moves(texts):
            action = labels[i + first]
            if action is None or intent is None:
                continue
            voiced = in_shop_voice(text)
            reply = template(voiced, catalog)
            if not has_words(reply):
                continue  # only slots and symbols ([订单号], [数字]): nothing of a script
            candidate = _Candidate(
                conversation.conversation_id,
                i + first,
                reply,
                action,
                intent,
                context_text(before, config.context_turns),
                None,
                conversation.guide_id,
                products=tuple(product_kinds(voiced, catalog)),
            )
            out.append((candidate, reading))
        i = end + 1
    return out


def _guide_weights(
    guide_quality: Mapping[str, float] | None, guides: set[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Each known guide's standing and its weight (standing over the mean of the guides mined).

    Raises:
        InputError: a standing that is not a number from 0 to 1.
    """
    if not guide_quality:
        return {}, {}
    for guide, value in guide_quality.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0.0 <= value <= 1.0
        ):
            raise InputError(
                f"guide_quality[{guide!r}] is {value!r}; standings are numbers from 0 to 1 "
                "(divide a 0-100 quality score by 100)"
            )
    known = {g: float(guide_quality[g]) for g in sorted(guides) if g in guide_quality}
    mean = sum(known.values()) / len(known) if known else 0.0
    weights = {g: q / mean for g, q in known.items()} if mean > 0 else {}
    return known, weights


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
    guide_quality: Mapping[str, float] | None = None,
    sentiment: Callable[[str], float] | None = None,
    catalog: Catalog | None = None,
) -> ScriptLibrary:
    """Mine, cluster and rank scripts; index the contexts of their good uses.

    With outcomes (some conversation won), scripts are ranked by lift and the contexts of their
    winning uses indexed; conversations without an outcome are left out. Without, they are
    ranked by the evidence of the logs (the customers' reception, the team's consensus, the
    guides' standing) and the contexts of their uses not received negatively are indexed. The
    module docstring gives the rules and the formula.

    Args:
        conversations: conversations, with outcomes (won and lost: lift needs both) or without.
        labels_of: one intent/action label per message (gold, else predicted by the bundle).
        embedder: embeds contexts (for search), replies (for clustering) and customer messages
            (to tell a repeated question).
        tokenize: tokens of a context, for BM25.
        checker: compliance rules; a reply with any hit is never a script.
        pipeline: masks personal data in replies and contexts.
        config: mining settings.
        is_win: what counts as a winning conversation (default: converted; pass e.g.
            ``lambda c: (c.outcome.order_amount or 0) >= 500`` or a quality-score test).
        index: an unbuilt :class:`ScriptIndex` with the wanted settings (default settings if None).
        progress: called with the name of each step.
        guide_quality: standing of each guide from 0 to 1 (e.g. mean quality score / 100); uses
            by better guides weigh more in the evidence. ``None``: all weigh the same.
        sentiment: scores a customer message in [-1, 1] (default: the shipped lexicon,
            :func:`copilot.analyzers.sentiment.sentiment_score`).
        catalog: the brand's products and the product words of its logs: each becomes a slot
            of the script (``这款[商品]``), filled from the conversation it is suggested in.

    Returns:
        The library; ``stats["basis"]`` says whether it ranks by ``"lift"`` or ``"evidence"``.

    Raises:
        InputError: no guide reply to mine, or a ``guide_quality`` value outside 0..1.

    Example:
        >>> library = mine_scripts(conversations, labels_of, embedder, tokenize,
        ...                        checker=default_checker(), pipeline=default_pipeline())
        >>> script_reason(library.scripts[0], taxonomy.name_of)
        '5 位导购共用 23 次；顾客随后致谢或继续 78%（n=18），追问或不满 6%'
    """
    config = config or MiningConfig()
    step = progress or (lambda _name: None)
    score_of = sentiment or sentiment_score
    step("collecting replies")
    pairs, dropped = _collect(
        conversations, labels_of, is_win, checker, pipeline, config, score_of, catalog
    )
    basis, pairs = _choose_basis(pairs, dropped)
    candidates = [c for c, _r in pairs]

    step("reading the customers' replies")
    _set_receptions(pairs, embedder, config)

    step("clustering near-duplicate replies")
    clusters = _clusters(candidates, embedder, config.duplicate_threshold)

    step(f"scoring {basis}")
    scripts, indexed = _score(candidates, clusters, basis, guide_quality, config)

    step("indexing contexts")
    stats = _mining_stats(candidates, dropped, basis, len(indexed), len(scripts), len(clusters))
    contexts = [candidates[m].context for _sid, m in indexed]
    use_script = np.asarray([sid for sid, _m in indexed], dtype=np.int32)
    return _library(scripts, contexts, use_script, embedder, tokenize, index, config, stats)


def _collect(
    conversations: Sequence[Conversation],
    labels_of: Callable[[Conversation], Labels],
    is_win: Callable[[Conversation], bool],
    checker: ComplianceChecker,
    pipeline: TextPipeline,
    config: MiningConfig,
    sentiment: Callable[[str], float],
    catalog: Catalog | None,
) -> tuple[list[tuple[_Candidate, _Reading]], Counter[str]]:
    """Every candidate reply with its reading, and the count of those dropped, by reason."""
    pairs: list[tuple[_Candidate, _Reading]] = []
    dropped = Counter[str]()
    for conversation in conversations:
        won = None if conversation.outcome is None else is_win(conversation)
        labels = labels_of(conversation)
        for cand, reading in _candidates(
            conversation, labels, pipeline, config, sentiment, catalog
        ):
            if len(cand.reply) > config.max_reply_chars:
                dropped["too_long"] += 1
                continue
            hits = checker.check(cand.reply)
            if hits:
                dropped[f"compliance:{hits[0].kind}"] += 1
                continue
            cand.won = won
            pairs.append((cand, reading))
    return pairs, dropped


def _choose_basis(
    pairs: list[tuple[_Candidate, _Reading]], dropped: Counter[str]
) -> tuple[Basis, list[tuple[_Candidate, _Reading]]]:
    """Lift when some conversation won (keeping only uses with an outcome), else evidence.

    Raises:
        InputError: no candidate left to mine.
    """
    basis: Basis = "lift" if any(c.won for c, _r in pairs) else "evidence"
    if basis == "lift":
        without = sum(1 for c, _r in pairs if c.won is None)
        if without:
            dropped["without_outcome"] = without
        pairs = [(c, r) for c, r in pairs if c.won is not None]
    elif any(c.won is not None for c, _r in pairs):
        logger.warning(
            "no conversation counts as won: scripts are ranked by the logs' evidence, not lift"
        )
    if not pairs:
        raise InputError(
            "no guide reply to mine scripts from; scripts need conversations where a guide "
            "answers a customer, with intent and action labels"
        )
    return basis, pairs


def _set_receptions(
    pairs: Sequence[tuple[_Candidate, _Reading]], embedder: Embedder, config: MiningConfig
) -> None:
    """Each candidate's reception: its reading's verdict, negative when the customer asks again."""
    readings = [r for _c, r in pairs]
    repeated = _repeats(readings, embedder, config.repeat_threshold)
    for (cand, reading), again in zip(pairs, repeated, strict=True):
        cand.reception = "negative" if again else reading.verdict


def _mining_stats(
    candidates: Sequence[_Candidate],
    dropped: Counter[str],
    basis: Basis,
    indexed: int,
    scripts: int,
    clusters: int,
) -> dict[str, Any]:
    """The library's ``stats``: candidates kept and dropped, receptions, what was indexed."""
    receptions = Counter(c.reception for c in candidates)
    return {
        "candidates": len(candidates) + sum(dropped.values()),
        "kept_candidates": len(candidates),
        "dropped": dict(dropped),  # too long, a compliance hit, or no outcome (lift basis)
        "basis": basis,
        "receptions": {r: receptions[r] for r in ("positive", "neutral", "negative", "unknown")},
        "winning_uses_indexed": indexed,
        "scripts": scripts,
        "clusters_before_min_wins": clusters,
    }


def _library(
    scripts: list[Script],
    contexts: list[str],
    use_script: np.ndarray,
    embedder: Embedder,
    tokenize: Callable[[str], Sequence[str]],
    index: ScriptIndex | None,
    config: MiningConfig,
    stats: dict[str, Any],
) -> ScriptLibrary:
    """The library of ``scripts``, its index built over ``contexts`` (use ``k`` of script
    ``use_script[k]``)."""
    context_vectors = embedder.encode(contexts)  # first, so a memoising tokenizer is warm for BM25
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
    return ScriptLibrary(scripts, use_script, centroids, reply_vectors, index, config, stats)


def _clusters(
    candidates: Sequence[_Candidate], embedder: Embedder, threshold: float
) -> list[list[int]]:
    """Candidates grouped into scripts: same action and text, or replies ``threshold`` similar.

    Returns:
        The members (candidate positions) of each cluster, clusters in order of first use.
    """
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
        for a, b in _near_pairs(vectors[members], threshold):
            ra, rb = find(members[a]), find(members[b])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    clusters: dict[int, list[int]] = defaultdict(list)
    for g in range(len(keys)):
        clusters[find(g)].append(g)
    ordered = sorted(clusters, key=lambda r: min(groups[keys[g]][0] for g in clusters[r]))
    return [[m for g in clusters[root] for m in groups[keys[g]]] for root in ordered]


class _Receptions:
    """The reception evidence of scripts: consensus units, use weights and intent averages."""

    def __init__(
        self, candidates: Sequence[_Candidate], guide_quality: Mapping[str, float] | None
    ) -> None:
        self.by_guide = all(c.guide for c in candidates)
        guides = {c.guide for c in candidates if c.guide}
        self.standing, self.weights = _guide_weights(guide_quality, guides)
        received: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for cand in candidates:
            if cand.reception != "unknown":
                received[cand.intent][0] += self.weight(cand) * _RECEPTION_SCORE[cand.reception]
                received[cand.intent][1] += self.weight(cand)
        # Each intent's average: the weighted reception score of its judged replies.
        self.baselines = {i: s / n if n > 0 else 0.5 for i, (s, n) in received.items()}

    def unit(self, cand: _Candidate) -> str:
        """Who a use counts for in the consensus: its guide, else its conversation."""
        return cand.guide if self.by_guide and cand.guide else cand.conversation_id

    def weight(self, cand: _Candidate) -> float:
        """A use's weight: its guide's standing over the mean standing (1 without one)."""
        return self.weights.get(cand.guide, 1.0) if cand.guide else 1.0

    def of(self, uses: Sequence[_Candidate], intent: str, config: MiningConfig) -> dict[str, Any]:
        """A script's reception fields, with its score ``rate`` and its intent's ``baseline``."""
        judged = [c for c in uses if c.reception != "unknown"]
        counts = Counter(c.reception for c in judged)
        weighted = sum(self.weight(c) for c in judged)
        score = sum(self.weight(c) * _RECEPTION_SCORE[c.reception] for c in judged)
        baseline = self.baselines.get(intent, 0.5)
        evidence, evidence_lower = evidence_bounds(
            score,
            weighted,
            list(Counter(self.unit(c) for c in judged).values()),
            baseline,
            config.prior,
            config.guide_prior,
            config.quantile,
        )
        guides = sorted({c.guide for c in uses if c.guide in self.standing})
        qualities = [self.standing[g] for g in guides if g is not None]
        return {
            "rate": score / weighted if weighted > 0 else 0.0,
            "baseline": baseline,
            "guides": len({self.unit(c) for c in uses}),
            "consensus_unit": "guide" if self.by_guide else "conversation",
            "judged": len(judged),
            "positive": counts["positive"],
            "negative": counts["negative"],
            "evidence": round(evidence, 4),
            "evidence_lower": round(evidence_lower, 4),
            "guide_quality": round(sum(qualities) / len(qualities), 4) if qualities else None,
        }


def _score(
    candidates: Sequence[_Candidate],
    clusters: Sequence[list[int]],
    basis: Basis,
    guide_quality: Mapping[str, float] | None,
    config: MiningConfig,
) -> tuple[list[Script], list[tuple[int, int]]]:
    """The scripts kept on ``basis``, and the uses to index as ``(script id, candidate)``."""
    receptions = _Receptions(candidates, guide_quality)
    # The baseline of an intent: the conversion rate of the conversations that met it.
    intent_convs: dict[str, dict[str, bool]] = defaultdict(dict)
    for cand in candidates:
        intent_convs[cand.intent][cand.conversation_id] = bool(cand.won)
    intent_rate = {i: sum(c.values()) / len(c) for i, c in intent_convs.items()}

    scripts: list[Script] = []
    indexed: list[tuple[int, int]] = []
    for members in clusters:
        convs: dict[str, bool] = {}
        for m in members:
            convs[candidates[m].conversation_id] = bool(candidates[m].won)
        if basis == "lift":
            uses, wins = len(convs), sum(convs.values())
            if wins < config.min_wins:
                continue
            good = [m for m in members if candidates[m].won]
        else:
            uses, wins = len(members), 0
            good = [m for m in members if candidates[m].reception != "negative"]
            if uses < config.min_uses or not good:
                continue
        intent = Counter(candidates[m].intent for m in members).most_common(1)[0][0]
        text = Counter(candidates[m].reply for m in good).most_common(1)[0][0]
        source = next(m for m in good if candidates[m].reply == text)
        fields = receptions.of([candidates[m] for m in members], intent, config)
        rate, baseline = fields.pop("rate"), fields.pop("baseline")
        if basis == "lift":
            rate, baseline = wins / uses, intent_rate[intent]
            lift, lift_lower = lift_bounds(wins, uses, baseline, config.prior, config.quantile)
        else:
            lift, lift_lower = fields["evidence"], fields["evidence_lower"]
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
                basis=basis,
                products=sorted({p for m in members for p in candidates[m].products}),
                **fields,
            )
        )
        indexed += [(sid, m) for m in good]
    return scripts, indexed


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
