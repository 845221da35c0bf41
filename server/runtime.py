"""The live models of the server, and how a new bundle replaces them without dropping a request.

A :class:`Runtime` is everything one bundle gives: the bundle, its :class:`~copilot.scoring.Scorer`,
its :class:`~models.suggest.SuggestionEngine` and its :class:`~models.rank.ReplyRanker`. It is
immutable; the :class:`RuntimeHolder` keeps a reference to the current one. A request takes that
reference once (``RuntimeDep``) and uses it to the end, so a reload never changes the models
under a request in flight::

    reload:  build the new runtime completely (load, score-check, engine)   <- requests go on
             apply pins, bans, feedback counts and the catalogue to it        <- under the lock
             replace the reference                                           <- one assignment
             the old runtime is freed when its last request finishes

What outlives a bundle is kept by the holder and applied to every new runtime: the pins and bans
(stored in the database, by script id: an admin's for every store, a supervisor's for its own
stores), guides' feedback counts per script, and
the brand's catalogue posted to ``/v1/catalog`` (which replaces the bundle's products and
promotions; a part left empty, or no catalogue stored, keeps the bundle's own).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from copilot.catalog import Catalog
from copilot.errors import BundleError
from copilot.io.catalog import combine
from copilot.schema import Conversation, Message
from copilot.scoring import Scorer
from models.bundle import Bundle
from models.rank import ReplyRanker
from models.runtime import load_runtime
from models.suggest import ScriptStates, SuggestionEngine

__all__ = ["Runtime", "RuntimeHolder", "build_runtime"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """One loaded bundle with its scorer, suggestion engine and ranker (never changed once built).

    Attributes:
        bundle: the loaded model bundle.
        scorer: scores conversations with the bundle and the rubric.
        engine: suggests replies from the bundle's scripts.
        ranker: ranks given replies (``POST /v1/rank``) with the same bundle.
        bundle_dir: where the bundle was loaded from.
        loaded_at: when it was loaded (UTC).
        bundle_pins, bundle_bans: pins and bans saved in the bundle itself; stored states
            (the API's) are applied on top of them.
    """

    bundle: Bundle
    scorer: Scorer
    engine: SuggestionEngine
    ranker: ReplyRanker
    bundle_dir: Path
    bundle_pins: frozenset[int] = frozenset()
    bundle_bans: frozenset[int] = frozenset()
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def name(self) -> str:
        """The bundle's ``<name>@<hash>``, as responses and reports record it."""
        return self.bundle.name

    def describe(self) -> dict[str, Any]:
        """``{"bundle", "bundle_dir", "loaded_at", "scripts"}`` for admin responses and logs."""
        return {
            "bundle": self.name,
            "bundle_dir": str(self.bundle_dir),
            "loaded_at": self.loaded_at.isoformat(),
            "scripts": len(self.engine.library.scripts),
        }


def build_runtime(bundle_dir: str | Path, rubric: str | Path | None = None) -> Runtime:
    """Load a bundle and build its scorer, suggestion engine and ranker
    (:func:`models.runtime.load_runtime`), then check they serve a test conversation.

    Args:
        bundle_dir: the bundle directory (from ``copilot train``).
        rubric: a rubric YAML file; the default rubric when ``None``.

    Returns:
        A ready :class:`Runtime`.

    Raises:
        BundleError: no usable bundle in ``bundle_dir``, one without scripts, or one that
            fails to score and suggest on a test conversation.
        ConfigError: the rubric file is invalid.
    """
    path = Path(bundle_dir)
    models = load_runtime(path, rubric)
    _warm_up(path, models.scorer, models.engine, models.ranker)
    return Runtime(
        bundle=models.bundle,
        scorer=models.scorer,
        engine=models.engine,
        ranker=models.ranker,
        bundle_dir=path,
        bundle_pins=frozenset(models.engine.library.pinned),
        bundle_bans=frozenset(models.engine.library.banned),
    )


_PROBE = Conversation(
    conversation_id="warm-up",
    messages=[
        Message(role="customer", text="在吗？这件有M码吗，能便宜点吗"),
        Message(role="guide", text="亲，在的～M码有货哦"),
        Message(role="customer", text="好的，什么时候发货"),
    ],
)


def _warm_up(path: Path, scorer: Scorer, engine: SuggestionEngine, ranker: ReplyRanker) -> None:
    """Score, suggest and rank once, so the first request is not the one that loads jieba and
    faiss, and a bundle that loads but cannot serve is refused before it is swapped in."""
    try:
        scorer.score(_PROBE)
        first = _PROBE.model_copy(update={"messages": _PROBE.messages[:1]})
        engine.suggest(first, k=1)
        ranker.rank(first, [_PROBE.messages[1].text])
    except Exception as exc:  # any failure here means the bundle cannot serve
        raise BundleError(
            f"the bundle at {str(path)!r} loads but fails on a test conversation: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


class RuntimeHolder:
    """Holds the current :class:`Runtime`; swaps it atomically and keeps pins, bans and feedback.

    Args:
        runtime: the first runtime.
        rubric: the rubric file every reload uses (the one the server was started with).
        generation: the reload generation ``runtime`` stands for (the server processes share
            one counter in the database; a process that sees a newer one reloads).

    Example:
        >>> holder = RuntimeHolder(build_runtime("bundles/default"))
        >>> runtime = holder.current          # take it once per request
        >>> old, new = holder.reload("models/v2")
    """

    def __init__(
        self, runtime: Runtime, rubric: str | Path | None = None, generation: int = 0
    ) -> None:
        self._current = runtime
        self._rubric = rubric
        self.generation = generation
        self._states: dict[int, str] = {}
        self._store_states: dict[str, dict[int, str]] = {}
        self._counts: dict[int, tuple[int, int]] = {}
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()  # guards _current, _states, _counts and _catalog together
        self._reload_lock = threading.Lock()  # one reload at a time

    @property
    def current(self) -> Runtime:
        """The runtime to use for one request (read it once and keep it)."""
        return self._current

    @property
    def script_states(self) -> dict[int, str]:
        """Script id -> ``"pinned"`` or ``"banned"`` for every store, as last applied."""
        return dict(self._states)

    @property
    def store_script_states(self) -> dict[str, dict[int, str]]:
        """Store id -> {script id -> ``"pinned"`` or ``"banned"``} set for that store alone."""
        return {store: dict(states) for store, states in self._store_states.items()}

    def reload(
        self, bundle_dir: str | Path | None = None, generation: int | None = None
    ) -> tuple[Runtime, Runtime]:
        """Load a bundle and make it current; requests in flight finish on the old one.

        Args:
            bundle_dir: the new bundle; the current runtime's directory when ``None`` (to pick
                up a bundle retrained in place).
            generation: the reload generation it stands for, set with the swap.

        Returns:
            ``(old, new)`` runtimes.

        Raises:
            BundleError, ConfigError: the new bundle cannot be used; the current one stays.
        """
        with self._reload_lock:
            path = Path(bundle_dir) if bundle_dir is not None else self._current.bundle_dir
            new = build_runtime(path, self._rubric)  # slow part, outside the swap lock
            with self._lock:
                self._apply(new)
                self._apply_catalog(new)
                old, self._current = self._current, new
                if generation is not None:
                    self.generation = generation
        logger.info("bundle reloaded", extra={"old": old.name, "new": new.name})
        return old, new

    def set_script_states(
        self,
        states: Mapping[int, str],
        by_store: Mapping[str, Mapping[int, str]] | None = None,
    ) -> None:
        """Apply every stored pin and ban to the live engine.

        Args:
            states: ``{script_id: "pinned" | "banned"}`` for every store (an admin's); they
                override the bundle's own.
            by_store: ``{store_id: {script_id: state}}`` for single stores (a supervisor's).
                In its store a ban wins over a pin for every store, and a ban for every store
                wins over a store's pin.
        """
        with self._lock:
            self._states = dict(states)
            self._store_states = {s: dict(v) for s, v in (by_store or {}).items()}
            self._apply(self._current)

    def set_acceptance(self, counts: Mapping[int, tuple[int, int]]) -> None:
        """Apply feedback counts per script (``{script_id: (judged, accepted)}``) to the ranking."""
        with self._lock:
            self._counts = dict(counts)
            self._current.engine.set_acceptance(self._counts)

    def add_judgement(self, script_id: int, *, accepted: bool) -> None:
        """Count one new feedback on a script (cheaper than reloading every count)."""
        with self._lock:
            judged, yes = self._counts.get(script_id, (0, 0))
            self._counts = {**self._counts, script_id: (judged + 1, yes + int(accepted))}
            self._current.engine.set_acceptance(self._counts)

    @property
    def catalog(self) -> Catalog | None:
        """The stored catalogue last applied (``None``: none stored, the bundle's is used)."""
        return self._catalog

    def set_catalog(self, catalog: Catalog | None) -> None:
        """Use the stored catalogue (``None`` or empty: the bundle's own) in every runtime.

        Its products replace the bundle's, and so do its promotions; a part it leaves empty
        keeps the bundle's (a brand that posts only promotions keeps the products it trained
        with). Kept for the runtimes of later reloads too.
        """
        with self._lock:
            self._catalog = catalog if catalog else None
            self._apply_catalog(self._current)

    def _apply_catalog(self, runtime: Runtime) -> None:
        stored = self._catalog
        if stored is None:
            runtime.engine.set_catalog(None)
            return
        runtime.engine.set_catalog(
            combine(
                runtime.bundle.catalog,
                list(stored.products.values()) or None,
                stored.promotions or None,
            )
        )

    def _apply(self, runtime: Runtime) -> None:
        library = runtime.engine.library
        n = len(library.scripts)
        pinned = {s for s, v in self._states.items() if v == "pinned" and 0 <= s < n}
        banned = {s for s, v in self._states.items() if v == "banned" and 0 <= s < n}
        # New sets, assigned whole: a request iterating the old set is never disturbed.
        library.pinned = (set(runtime.bundle_pins) - banned) | pinned
        library.banned = (set(runtime.bundle_bans) - pinned) | banned
        by_store = {}
        for store, states in self._store_states.items():
            store_banned = library.banned | {s for s, v in states.items() if v == "banned"}
            store_pinned = library.pinned | {s for s, v in states.items() if v == "pinned"}
            by_store[store] = ScriptStates(
                pinned=frozenset(s for s in store_pinned - store_banned if 0 <= s < n),
                banned=frozenset(s for s in store_banned if 0 <= s < n),
            )
        runtime.engine.set_store_states(by_store)
        runtime.engine.set_acceptance(self._counts)
