"""The reply-suggestion engine.

conversation so far -> intent and ranked next-best actions -> candidate scripts from the hybrid
index (contexts like this one) -> rerank by relevance, the predicted action, lift and intent match,
pins boosted and bans never served -> MMR so the k suggestions differ -> a final compliance and
personal-data check. Every suggestion carries its evidence: lift with sample size, the source
conversation and message, and a one-line reason in Chinese.

Guides' feedback on served suggestions (accepted, edited, rejected) feeds the rerank beside lift:
:meth:`SuggestionEngine.set_acceptance` takes each script's feedback counts, and a Beta-smoothed
acceptance rate moves the script up or down (a script nobody has judged is not moved).

Customer text is untrusted: empty, emoji-only, very long or adversarial conversations give fewer
suggestions or none, never an error.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from copilot.analyzers.compliance import compliance_flags
from copilot.analyzers.labels import LabelAnalyzer
from copilot.catalog import Catalog
from copilot.compliance import ComplianceChecker
from copilot.errors import InputError
from copilot.pipeline import Doc
from copilot.prediction import Prediction
from copilot.schema import Conversation
from copilot.slots import SlotValues, fill
from copilot.text import TextPipeline, default_pipeline
from models.bundle import Bundle
from models.grounding import Ranked as _Ranked
from models.grounding import diversify, ground
from models.reply_match import library_key
from models.scripts import (
    Script,
    ScriptLibrary,
    context_text,
    index_tokens,
    script_reason,
)

__all__ = ["EngineConfig", "ScriptStates", "SuggestionEngine", "engine_for"]

_MEMO_SIZE = 100_000
"""Messages whose labels a suggestion engine remembers (cleared when full, ~30 MB)."""


@dataclass
class EngineConfig:
    """Weights and sizes of the suggestion engine.

    Attributes:
        candidates: index entries retrieved per query (each of dense and sparse).
        w_match: weight of the bundle's reply-matching score of the script for this context
            (learned from the brand's (context, reply) pairs; 0 when the bundle has none).
        w_relevance, w_action, w_reply, w_lift, w_intent: rerank weights (they sum to 1):
            similarity of the script's contexts to this one, probability of the script's action
            as the next best, similarity of the reply itself to this context (it speaks of what
            the customer speaks of: the product, the size), lift lower bound, intent match.
        pin_boost: added to the score of a pinned script.
        w_acceptance: weight of guides' feedback: a script's score moves by up to this much,
            up when guides accept it more often than ``acceptance_prior_rate``, down when less.
        acceptance_prior: weight, in judgements, of ``acceptance_prior_rate`` in a script's
            smoothed acceptance rate, so two rejections do not bury a script.
        acceptance_prior_rate: the acceptance rate assumed before any feedback (no effect).
        mmr_lambda: relevance against diversity in the final pick (1: no diversity).
        min_score: suggestions below this score are not served.
        min_lift: a script whose conversion rate is below ``min_lift`` x the intent's average on
            at least ``min_lift_uses`` conversations is not served (it is not a winning script).
        max_query_chars: the query context is cut to this many characters.
    """

    candidates: int = 50
    w_match: float = 0.35
    w_relevance: float = 0.35
    w_action: float = 0.30
    w_reply: float = 0.15
    w_lift: float = 0.10
    w_intent: float = 0.10
    pin_boost: float = 0.25
    w_acceptance: float = 0.15
    acceptance_prior: float = 10.0
    acceptance_prior_rate: float = 0.5
    mmr_lambda: float = 0.7
    min_score: float = 0.05
    min_lift: float = 1.0
    min_lift_uses: int = 5
    max_query_chars: int = 600


@dataclass(frozen=True)
class ScriptStates:
    """The pins and bans that hold for one store's conversations.

    Attributes:
        pinned: script ids boosted (``EngineConfig.pin_boost``) and vouched for.
        banned: script ids never served.
    """

    pinned: frozenset[int] = frozenset()
    banned: frozenset[int] = frozenset()


class SuggestionEngine:
    """Suggests the next guide reply from a bundle's script library.

    Args:
        bundle: the models (intent, act, next-best action, embedder).
        library: the mined scripts and their index.
        checker: compliance rules applied to every suggestion before it is served.
        config: weights and sizes.
        pipeline: masks personal data and tokenises queries.
    """

    def __init__(
        self,
        bundle: Bundle,
        library: ScriptLibrary,
        checker: ComplianceChecker,
        config: EngineConfig | None = None,
        pipeline: TextPipeline | None = None,
    ) -> None:
        self.bundle = bundle
        self.library = library
        self.checker = checker
        self.config = config or EngineConfig()
        self.pipeline = pipeline or default_pipeline()
        self._acceptance: dict[int, tuple[int, int, float]] = {}
        self._store_states: dict[str, ScriptStates] = {}
        # The scoring pipeline's labeller, remembering messages: a guide's tool asks again on
        # every new message with the whole conversation so far.
        self._labeller = LabelAnalyzer(bundle, memo_size=_MEMO_SIZE)
        # Compliance verdicts by text: scripts are served again and again, and each request
        # re-sends the guide messages of the earlier turns. The checker is fixed per engine.
        self._safe_memo: dict[str, bool] = {}
        self._hits_memo: dict[tuple[str, str | None], list[Any]] = {}
        # Reply-matching vectors of scripts, computed the first time a script is a candidate.
        self._match_memo: dict[int, tuple[np.ndarray, Any]] = {}
        self._stored: tuple[tuple[np.ndarray, Any] | None] | None = None
        self.catalog: Catalog = bundle.catalog or Catalog()

    # ------------------------------------------------------------------ public

    def set_acceptance(self, counts: Mapping[int, tuple[int, int]]) -> None:
        """Take guides' feedback into the ranking: ``{script_id: (judged, accepted)}``.

        ``judged`` counts served suggestions of the script that got feedback, ``accepted`` those
        accepted or edited (an edited suggestion was still worth starting from). Each script's
        rate is smoothed towards ``acceptance_prior_rate`` with the weight of
        ``acceptance_prior`` judgements (a Beta prior), and its score moves by
        ``w_acceptance x (smoothed - prior rate) / max(prior rate, 1 - prior rate)``: many
        rejections sink a script, many acceptances raise it, no feedback leaves it where it was.
        The mapping replaces the previous one in one assignment, so it is safe to call while
        other threads suggest.

        Args:
            counts: feedback counts per script id; ids unknown to the library are ignored.

        Raises:
            InputError: a negative count, or more accepted than judged.
        """
        cfg = self.config
        prior, rate = cfg.acceptance_prior, cfg.acceptance_prior_rate
        span = max(rate, 1.0 - rate) or 1.0
        table: dict[int, tuple[int, int, float]] = {}
        for sid, (judged, accepted) in counts.items():
            if judged < 0 or not 0 <= accepted <= judged:
                raise InputError(
                    f"acceptance of script {sid}: {accepted} accepted of {judged} judged; "
                    "counts must satisfy 0 <= accepted <= judged"
                )
            if judged == 0 or not 0 <= sid < len(self.library.scripts):
                continue
            smoothed = (accepted + prior * rate) / (judged + prior)
            table[int(sid)] = (int(judged), int(accepted), (smoothed - rate) / span)
        self._acceptance = table

    def set_store_states(self, states: Mapping[str, ScriptStates]) -> None:
        """Pins and bans of single stores, ``{store_id: ScriptStates}``.

        A conversation of one of these stores is served with its store's pins and bans in place
        of the library's (``library.pinned``, ``library.banned``, which hold for every other
        conversation), so each entry is the store's whole set: the caller merges in what holds
        for every store. The mapping replaces the previous one in one assignment, so it is safe
        to call while other threads suggest.
        """
        self._store_states = dict(states)

    def script_states(self, store_id: str | None) -> ScriptStates:
        """The pins and bans that hold for a conversation of ``store_id``."""
        found = self._store_states.get(store_id) if store_id is not None else None
        if found is not None:
            return found
        return ScriptStates(frozenset(self.library.pinned), frozenset(self.library.banned))

    def set_catalog(self, catalog: Catalog | None) -> None:
        """Use ``catalog`` (products, promotions) to fill slots and check facts from now on.

        ``None`` goes back to the bundle's own catalogue. One assignment: safe while other
        threads suggest. The product words learned from the logs are kept.
        """
        own = self.bundle.catalog or Catalog()
        if catalog is None:
            self.catalog = own
        else:
            self.catalog = Catalog(
                list(catalog.products.values()), catalog.promotions, terms=own.terms
            )

    def acceptance(self, script_id: int) -> tuple[int, int] | None:
        """``(judged, accepted)`` feedback counts of a script, ``None`` without feedback."""
        hit = self._acceptance.get(script_id)
        return None if hit is None else (hit[0], hit[1])

    def suggest(
        self, conversation: Conversation, k: int = 3, known: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The ``POST /v1/suggest`` object for the next guide reply in ``conversation``.

        ``known``: what the customer's profile says (:meth:`copilot.profile.Profile.slot_values`:
        their size, the product they asked about before), for slots the chat leaves open.

        The steps: the chat's state (intent, next actions) -> candidate scripts ranked for it
        -> each filled from the chat and checked against it (:meth:`_ground`) -> the k most
        useful and different (:meth:`_diverse`) -> the safety check. The pins and bans are
        those of the conversation's store (:meth:`script_states`).
        """
        states = self.script_states(conversation.store_id)
        intent, actions = self.signals(conversation)
        ranked = self.rank(
            conversation,
            actions={a.label: a.confidence for a in actions},
            intent=intent["label"],
            states=states,
        )
        pool = self._ground(conversation, ranked, _pool_size(k), states, known)
        chosen = self._diverse(pool, k)
        suggestions = [self._public(r, states) for r in chosen]
        return {
            "intent": intent,
            "actions": [
                {"label": a.label, "probability": round(a.confidence, 4)} for a in actions[:3]
            ],
            "suggestions": suggestions,
            "flags": self._flags(conversation),
            "bundle": self.bundle.name,
        }

    def _ground(
        self,
        conversation: Conversation,
        ranked: list[_Ranked],
        enough: int | None = None,
        states: ScriptStates | None = None,
        known: Mapping[str, str] | None = None,
    ) -> list[_Ranked]:
        """Fill each candidate from the chat and drop those it does not support (a step); the
        scripts ``states`` pins (by default the conversation's store's) are vouched for."""
        pinned = (states or self.script_states(conversation.store_id)).pinned
        messages = [
            (m.role, self.pipeline.mask(m.text)[0])
            for m in conversation.messages
            if m.role != "system"
        ]
        day = next((m.ts.date() for m in reversed(conversation.messages) if m.ts), None)
        return ground(
            ranked[: self.config.candidates],
            messages,
            self.catalog,
            day=day,
            keep=lambda r: self._servable(r),
            vouched=lambda script: self._vouched(script, pinned),
            enough=enough,
            known=known,
        )

    def _servable(self, r: _Ranked) -> bool:
        """Scored high enough, and not a script that loses (lift below ``min_lift``)."""
        cfg = self.config
        return r.score >= cfg.min_score and not (
            r.script.uses >= cfg.min_lift_uses and r.script.lift < cfg.min_lift
        )

    def coaching(
        self, conversation: Conversation, report: Mapping[str, Any], limit: int = 5
    ) -> list[dict[str, Any]]:
        """What the engine would have suggested in place of the conversation's weakest replies.

        A weak reply is a guide message that the score report's evidence cites with negative
        points; the worst ``limit`` of them (most points lost first) each get the top suggestion
        for the conversation as it stood just before that reply.

        Args:
            conversation: the scored conversation.
            report: its score report (:mod:`copilot.scoring.report` shape).
            limit: at most this many weak replies.

        Returns:
            ``[{"message_index", "reason", "points", "suggestion"}]`` in message order, where
            ``suggestion`` is ``{text, action, script_id, lift, n, reason}`` or ``None`` when no
            script fits.

        Example:
            >>> engine.coaching(conversation, scorer.score(conversation))[0]["suggestion"]["text"]
        """
        messages = conversation.messages
        weak: dict[int, tuple[float, str]] = {}
        for dimension in (report.get("dimensions") or {}).values():
            for evidence in dimension.get("evidence") or []:
                i, points = evidence.get("message_index"), evidence.get("points") or 0.0
                if not isinstance(i, int) or not 0 < i < len(messages) or points >= 0:
                    continue
                if messages[i].role == "guide" and points < weak.get(i, (0.0, ""))[0]:
                    weak[i] = (float(points), str(evidence.get("reason", "")))
        worst = sorted(weak.items(), key=lambda item: (item[1][0], item[0]))[: max(limit, 0)]
        out = []
        for i, (points, reason) in sorted(worst):
            before = conversation.model_copy(
                update={"messages": messages[:i], "labels": None, "outcome": None}
            )
            top = self.suggest(before, k=1)["suggestions"]
            suggestion = (
                {
                    "text": top[0]["text"],
                    "action": top[0]["action"],
                    "script_id": top[0]["id"],
                    "lift": top[0]["lift"],
                    "n": top[0]["n"],
                    "reason": top[0]["reason"],
                }
                if top
                else None
            )
            out.append(
                {"message_index": i, "reason": reason, "points": points, "suggestion": suggestion}
            )
        return out

    def _annotate(self, conversation: Conversation) -> list[Prediction | None]:
        """The intent or act of every message, by the scoring pipeline's labeller (memoised)."""
        labels: list[Prediction | None] = self._labeller.predict([Doc(conversation)])[0]["labels"]
        return labels

    def signals(self, conversation: Conversation) -> tuple[dict[str, Any], list[Any]]:
        """The current customer intent and every next action ranked by probability."""
        # One pass of the classifiers labels every message; the current intent is the last
        # customer message's prediction (same text, same context), not a second prediction.
        predictions = self._annotate(conversation)
        labels = [p.label if p else None for p in predictions]
        intent: dict[str, Any] = {"label": None, "confidence": 0.0}
        for message, pred in zip(
            reversed(conversation.messages), reversed(predictions), strict=True
        ):
            if message.role == "customer" and pred is not None:
                intent = {"label": pred.label, "confidence": round(pred.confidence, 4)}
                break
        actions = self.bundle.next_actions(
            conversation, k=len(self.bundle.nba.classes_), labels=labels
        )
        return intent, actions

    def rank(
        self,
        conversation: Conversation,
        *,
        actions: dict[str, float] | None = None,
        intent: str | None = None,
        method: str = "engine",
        states: ScriptStates | None = None,
    ) -> list[_Ranked]:
        """Scripts for the next reply, best first, before diversity and safety filtering.

        ``method`` selects the ranking: ``engine`` (everything), ``dense`` or ``bm25`` (one
        retriever alone, for evaluation baselines), ``matcher`` (the retrieved scripts by reply
        matching alone). ``states`` are the pins and bans to apply (by default those of the
        conversation's store).
        """
        vector, tokens = self._query(conversation)
        if vector is None and not tokens:
            return []
        states = states or self.script_states(conversation.store_id)
        index, cfg = self.library.index, self.config
        exclude = self.library.banned_uses(states.banned)
        if method == "dense":
            hits = (
                [(i, s) for i, s in index.search_dense(vector, cfg.candidates, exclude=exclude)]
                if vector is not None
                else []
            )
            return self._by_script(hits)
        if method == "bm25":
            hits = (
                [(i, s) for i, s in index.search_sparse(tokens, cfg.candidates, exclude=exclude)]
                if tokens
                else []
            )
            return self._by_script(hits)
        fused = index.search(
            vector, tokens or None, k=cfg.candidates, candidates=cfg.candidates, exclude=exclude
        )
        best = self._best_fused(fused)
        if not best:
            return []
        sids = list(best)
        if method == "matcher":
            match = self._match(conversation, sids)
            return self._by_script(
                list(zip(sids, match.tolist(), strict=True)) if match is not None else [],
                by_use=False,
            )
        scores = self._engine_scores(
            sids,
            best,
            vector,
            actions or {},
            intent,
            states.pinned,
            self._match(conversation, sids),
        )
        out = [
            _Ranked(self.library.scripts[sid], score, rel)
            for sid, (score, rel) in zip(sids, scores, strict=True)
        ]
        out.sort(key=lambda r: (-r.score, r.script.id))
        return out

    def score_scripts(
        self,
        conversation: Conversation,
        script_ids: Sequence[int],
        method: str = "engine",
        *,
        actions: dict[str, float] | None = None,
        intent: str | None = None,
    ) -> list[float]:
        """Scores of given scripts as the next reply (for response-selection evaluation).

        ``engine`` uses the full formula (retrieval relevance is 0 for scripts the index did not
        return); ``dense`` the cosine between the query and the script's context centroid;
        ``bm25`` the best BM25 score of the script's contexts; ``matcher`` the reply-matching
        score of the script's text.
        """
        if method == "matcher":
            match = self._match(conversation, script_ids)
            return [0.0] * len(script_ids) if match is None else match.tolist()
        vector, tokens = self._query(conversation)
        index, lib = self.library.index, self.library
        if method == "dense":
            if vector is None:
                return [0.0] * len(script_ids)
            return [float(x) for x in lib.centroids[list(script_ids)] @ vector]
        if method == "bm25":
            best: dict[int, float] = {}
            for use, score in index.search_sparse(tokens, len(index)) if tokens else []:
                sid = int(lib.use_script[use])
                best[sid] = max(best.get(sid, 0.0), float(score))
            return [best.get(sid, 0.0) for sid in script_ids]
        fused = index.search(
            vector, tokens or None, k=self.config.candidates, candidates=self.config.candidates
        )
        return [
            score
            for score, _rel in self._engine_scores(
                list(script_ids),
                self._best_fused(fused),
                vector,
                actions or {},
                intent,
                self.script_states(conversation.store_id).pinned,
                self._match(conversation, script_ids),
            )
        ]

    def _best_fused(self, fused: Sequence[Any]) -> dict[int, float]:
        best: dict[int, float] = {}
        for hit in fused:
            sid = int(self.library.use_script[hit.id])
            best[sid] = max(best.get(sid, 0.0), hit.score)
        return best

    def _engine_scores(
        self,
        sids: Sequence[int],
        best: dict[int, float],
        vector: np.ndarray | None,
        actions: dict[str, float],
        intent: str | None,
        pinned: Collection[int],
        match: np.ndarray | None = None,
    ) -> list[tuple[float, float]]:
        """``(score, relevance)`` of each script: match, relevance, action, lift, intent, pin, feedback."""
        cfg, lib = self.config, self.library
        acceptance = self._acceptance  # one reference: set_acceptance may swap it meanwhile
        top = max(best.values(), default=0.0) or 1.0
        rows = list(sids)
        zeros = np.zeros(len(rows))
        cos = lib.centroids[rows] @ vector if vector is not None else zeros
        reply = lib.reply_vectors[rows] @ vector if vector is not None else zeros
        matched = match.tolist() if match is not None else [0.0] * len(rows)
        out = []
        for sid, c, r, m in zip(sids, cos.tolist(), reply.tolist(), matched, strict=True):
            script = lib.scripts[sid]
            relevance = 0.5 * best.get(sid, 0.0) / top + 0.5 * max(c, 0.0)
            score = (
                cfg.w_match * m
                + cfg.w_relevance * relevance
                + cfg.w_action * actions.get(script.action, 0.0)
                + cfg.w_reply * max(r, 0.0)
                + cfg.w_lift * min(max(script.lift_lower, 0.0), 3.0) / 3.0
                + cfg.w_intent * (script.intent == intent)
                + (cfg.pin_boost if sid in pinned else 0.0)
            )
            if sid in acceptance:
                score += cfg.w_acceptance * acceptance[sid][2]
            out.append((score, relevance))
        return out

    # ------------------------------------------------------------------ steps

    def _match(self, conversation: Conversation, sids: Sequence[int]) -> np.ndarray | None:
        """Reply-matching score of each script for the conversation; ``None`` without a matcher."""
        matcher = self.bundle.reply_matcher
        if matcher is None or not len(sids):
            return None
        context = [
            self.pipeline.mask(m.text)[0]
            for m in conversation.messages
            if m.role != "system" and m.text
        ][-matcher.context_turns :]
        if not context:
            return np.zeros(len(sids), dtype=np.float32)
        missing = [sid for sid in dict.fromkeys(sids) if sid not in self._match_memo]
        if missing:
            if len(self._match_memo) > _MEMO_SIZE:
                self._match_memo.clear()
            # Scripts the bundle was trained with come encoded; others are encoded when met.
            known = self._stored_replies(matcher)
            stored = len(known[0]) if known is not None else 0
            for sid in [s for s in missing if s < stored]:
                assert known is not None
                self._match_memo[sid] = (known[0][sid].astype(np.float32), known[1][sid])
            new = [s for s in missing if s >= stored]
            if new:
                vectors, raw = matcher.encode_replies([self.library.scripts[s].text for s in new])
                for n, sid in enumerate(new):
                    self._match_memo[sid] = (vectors[n], raw[n])
        ctx, ctx_raw = matcher.encode_contexts([context])
        parts = [self._match_memo[sid] for sid in sids]
        return matcher.combine_rows(
            ctx[0], ctx_raw[0], np.vstack([p[0] for p in parts]), [p[1] for p in parts]
        )

    def _stored_replies(self, matcher: Any) -> tuple[np.ndarray, Any] | None:
        """The matcher's encoding of this library's scripts, if it encodes these scripts."""
        if self._stored is None:
            known = getattr(matcher, "library_", None)
            texts = [s.text for s in self.library.scripts[: len(known[0])]] if known else []
            fits = known is not None and getattr(matcher, "library_key_", None) == library_key(
                texts
            )
            self._stored = (known if fits else None,)
        return self._stored[0]

    def _query(self, conversation: Conversation) -> tuple[np.ndarray | None, list[str]]:
        """The query of the conversation so far: its last few messages."""
        texts = [self.pipeline.mask(m.text)[0] for m in conversation.messages if m.role != "system"]
        return self._encode(context_text(texts, self.library.config.context_turns))

    def _encode(self, query: str) -> tuple[np.ndarray | None, list[str]]:
        query = query[-self.config.max_query_chars :]
        if not query.strip():
            return None, []
        embedder = self.bundle.embedder
        vector = embedder.encode([query])[0]
        # The offline embedder memoises the tokens its vector was made of.
        tokens = index_tokens(embedder.tokens(query))
        return (vector if float(np.abs(vector).sum()) > 0 else None), tokens

    def _by_script(self, hits: Sequence[tuple[int, float]], by_use: bool = True) -> list[_Ranked]:
        """Scripts of the hits (index entries, or script ids when not ``by_use``), best first."""
        best: dict[int, float] = {}
        for use, score in hits:
            sid = int(self.library.use_script[use]) if by_use else int(use)
            best[sid] = max(best.get(sid, float("-inf")), float(score))
        ranked = [_Ranked(self.library.scripts[s], v, v) for s, v in best.items()]
        ranked.sort(key=lambda r: (-r.score, r.script.id))
        return ranked

    def _vouched(self, script: Script, pinned: Collection[int]) -> bool:
        """A script the brand vouches for: written by headquarters or pinned by a supervisor."""
        return script.id in pinned or script.source.get("kind") == "written"

    def _diverse(self, ranked: list[_Ranked], k: int) -> list[_Ranked]:
        """The k most useful and different candidates that pass the safety check (a step)."""
        pool = [r for r in ranked if self._servable(r)][: _pool_size(k)]
        return diversify(
            pool, k, self.library.reply_vectors, self.config.mmr_lambda, safe=self._safe
        )

    def _safe(self, text: str) -> bool:
        """Never serve a compliance violation or unmasked personal data."""
        safe = self._safe_memo.get(text)
        if safe is None:
            safe = self.checker.is_clean(text) and not self.pipeline.mask(text)[1]
            if len(self._safe_memo) > _MEMO_SIZE:
                self._safe_memo.clear()
            self._safe_memo[text] = safe
        return safe

    def _hits(self, text: str, domain: str | None = None) -> list[Any]:
        """The checker's hits in one message (memoised by text and domain)."""
        hits = self._hits_memo.get((text, domain))
        if hits is None:
            hits = self.checker.check(text, domain=domain)
            if len(self._hits_memo) > _MEMO_SIZE:
                self._hits_memo.clear()
            self._hits_memo[(text, domain)] = hits
        return hits

    def _public(self, ranked: _Ranked, states: ScriptStates) -> dict[str, Any]:
        s = ranked.script
        filled = ranked.filled or fill(s.text, SlotValues())
        return {
            "id": s.id,
            "text": filled.text,
            "template": s.text,
            "needs_edit": filled.needs_edit,
            "slots": filled.missing,
            "action": s.action,
            "score": round(ranked.score, 4),
            "lift": round(s.lift, 3),
            "n": s.uses,
            "source": dict(s.source),
            "reason": self._evidence(s, states) + self._feedback_note(s.id),
        }

    def _evidence(self, s: Script, states: ScriptStates) -> str:
        name = self.bundle.taxonomy.name_of
        reason = script_reason(s, name)
        return f"主管置顶话术；{reason}" if s.id in states.pinned else reason

    def _feedback_note(self, script_id: int) -> str:
        """Guides' acceptance, once enough of them judged the script for it to mean something."""
        counts = self.acceptance(script_id)
        if counts is None or counts[0] < 5:
            return ""
        judged, accepted = counts
        return f"；导购采纳率 {accepted / judged:.0%}（n={judged}）"

    def _flags(self, conversation: Conversation) -> list[dict[str, Any]]:
        """Compliance flags of the conversation's guide messages so far (as scoring gives them)."""
        return [f.as_dict() for f in compliance_flags(conversation, self._hits)]


def _pool_size(k: int) -> int:
    """Candidates the diversity step chooses k from."""
    return max(4 * k, 12)


def engine_for(bundle: Bundle, config: EngineConfig | None = None) -> SuggestionEngine:
    """The suggestion engine of a bundle, with the shipped compliance rules.

    Raises:
        BundleError: the bundle was trained without scripts.
    """
    from copilot.compliance import default_checker
    from copilot.errors import BundleError

    if bundle.scripts is None:
        raise BundleError(
            f"the bundle {bundle.name} has no winning scripts; train it again with `copilot train` "
            "(scripts are mined by default) on conversations that have outcomes"
        )
    return SuggestionEngine(bundle, bundle.scripts, default_checker(), config)
