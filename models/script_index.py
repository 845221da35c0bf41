"""Hybrid retrieval over winning reply scripts: dense (FAISS) + sparse (BM25), fused by RRF.

A :class:`ScriptIndex` stores, for every winning script, the *context* it answered: an
L2-normalised embedding (from an :class:`~models.embedders.Embedder`) and the context's tokens
(produced by the caller, e.g. jieba through ``copilot.text``; the index never tokenises). Given
the live conversation's vector and tokens it returns the scripts whose context is most similar:

* **dense**: inner product over unit vectors (= cosine) in FAISS. ``kind="auto"`` uses an exact
  ``IndexFlatIP`` below ``hnsw_threshold`` scripts and an ``IndexHNSWFlat`` at or above it;
  ``"ivf"`` (``IndexIVFFlat`` trained on the data) is available on request.
* **sparse**: Okapi BM25 (bm25s, Lucene variant) over the token lists.
* **fusion**: reciprocal rank fusion, ``sum 1 / (rrf_k + rank)`` over the two candidate lists;
  ties are broken by script id, so results are deterministic.

Rows and ids
    FAISS and BM25 both store *rows* (0, 1, 2, ... in insertion order); the index keeps its own
    ``row -> script id`` array, so script ids can be any distinct int64 values.

Adding without a rebuild
    :meth:`ScriptIndex.add` appends to the FAISS index in place (never re-embeds, never
    rebuilds it; a flat index that grows past ``hnsw_threshold`` stays flat until the next
    :meth:`~ScriptIndex.build`). New documents go to a small *delta* BM25 that is scored with the
    main index's statistics (its idf and average document length, frozen at the last BM25 build),
    so a document scores exactly as it would in the main index and the two score lists are
    comparable. Tokens the main index has never seen get the idf they would have over all
    documents. When the delta grows past 10 % of the main BM25 documents, ``add`` rebuilds the
    BM25 part alone from the stored token ids (~3 s for 100k contexts of ~28 tokens on a
    2-core machine; searches go on meanwhile), which restores exact statistics;
    :meth:`~ScriptIndex.compact` does so on demand. Other adds cost milliseconds (the first
    one after a build ~80 ms at 100k, while FAISS grows its storage).

Removing
    :meth:`ScriptIndex.remove` marks scripts as deleted (e.g. banned scripts); searches skip them
    and search deeper to still return ``k`` results. Their rows stay in FAISS and BM25 (and count
    in the BM25 statistics) until the next :meth:`~ScriptIndex.build`. A removed id may be added
    again (an edited script).

Vectors
    Rows must be unit-norm (within 1e-3) or all zeros, as ``Embedder.encode`` returns them;
    anything else is rejected with :class:`~copilot.errors.InputError` rather than silently
    normalised, since a non-unit row usually means the wrong array was passed. An all-zero query
    vector (a text with no known feature) has no dense part.

Thread safety
    ``search*`` may run concurrently from many threads (FAISS searches are read-only, the
    sparse state is an immutable snapshot). ``add``, ``remove`` and ``compact`` are serialised
    by one lock; they prepare the new state (copy-on-write of the id arrays, the token arrays
    and the BM25 delta, and any BM25 rebuild) while searches go on, and then take a write lock
    only for the FAISS ``add`` (~1 ms per script for HNSW at 100k, far less for flat) and the
    swap of the state reference. ``build`` prepares a whole new index the same way and swaps it
    in under both locks. Searches share a read lock, so they never block each other; they wait
    only during that short write section.

Example:
    >>> index = ScriptIndex().build(ids, embedder.encode(contexts), context_tokens)  # doctest: +SKIP
    >>> index.search(embedder.encode([live])[0], live_tokens, k=5)  # doctest: +SKIP
    [Hit(id=1042, score=0.0325, dense_score=0.81, dense_rank=1, sparse_score=7.2, sparse_rank=2), ...]
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import Container, Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, Self

import numpy as np

from copilot.errors import BundleError, InputError, NotFittedError
from models._lazy import MissingExtraError

__all__ = ["Hit", "IndexKind", "ScriptIndex"]

logger = logging.getLogger(__name__)

IndexKind = Literal["auto", "flat", "hnsw", "ivf"]
_KINDS = ("auto", "flat", "hnsw", "ivf")

CONFIG_NAME = "config.json"
_TYPE = "script_index"
_FORMAT_VERSION = 1
_DENSE_NAME = "dense.faiss"
_BM25_DIR = "bm25"

#: a row counts as unit-norm when its norm is within this of 1.
_NORM_TOLERANCE = 1e-3
#: the BM25 delta is merged into the main BM25 once it holds more than this share of its docs.
_DELTA_MAX_SHARE = 0.1


class Hit(NamedTuple):
    """One search result.

    Attributes:
        id: the script id.
        score: the fused reciprocal-rank score (higher is better).
        dense_score: cosine similarity of the contexts, or ``None`` when the script was not
            among the dense candidates (or the query had no vector).
        dense_rank: 1-based rank in the dense candidate list, or ``None``.
        sparse_score: BM25 score, or ``None`` when the script was not among the sparse
            candidates (or shares no token with the query).
        sparse_rank: 1-based rank in the sparse candidate list, or ``None``.
    """

    id: int
    score: float
    dense_score: float | None = None
    dense_rank: int | None = None
    sparse_score: float | None = None
    sparse_rank: int | None = None


# --------------------------------------------------------------------------- lazy imports


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise MissingExtraError(
            f"the script index needs the package 'faiss-cpu', which could not be imported ({exc}); "
            "it is a core dependency of sales-copilot: reinstall it, or pip install faiss-cpu"
        ) from None
    return faiss


def _import_bm25s() -> Any:
    try:
        import bm25s
    except ImportError as exc:
        raise MissingExtraError(
            f"the script index needs the package 'bm25s', which could not be imported ({exc}); "
            "it is a core dependency of sales-copilot: reinstall it, or pip install bm25s"
        ) from None
    # bm25s sets its own logger to DEBUG on import, which prints progress lines to our users'
    # consoles; leave it at the application's level unless someone changed it on purpose.
    bm25s_logger = logging.getLogger("bm25s")
    if bm25s_logger.level == logging.DEBUG:
        bm25s_logger.setLevel(logging.NOTSET)
    return bm25s


# --------------------------------------------------------------------------- locking


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer keeps new readers out (no starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


# --------------------------------------------------------------------------- sparse part


@dataclass(frozen=True, slots=True)
class _Sparse:
    """An immutable snapshot of the BM25 side.

    Documents are rows ``0 .. n_rows - 1``; their tokens are stored as ids into ``vocab`` (flat
    ``tok_ids`` cut by ``offsets``). Rows below ``n_main`` are scored by the bm25s index
    ``bm25`` (``None`` when those rows hold no token at all); rows from ``n_main`` on form the
    delta, a CSC matrix of BM25 weights (column = token id, row = delta document) computed with
    the main index's idf and average length.
    """

    vocab: dict[str, int]
    tok_ids: np.ndarray  # int32, all documents' token ids, concatenated
    offsets: np.ndarray  # int64, (n_rows + 1,)
    bm25: Any  # bm25s.BM25 over rows [0, n_main), or None
    n_main: int
    v_main: int  # tokens known to ``bm25`` (ids below it)
    idf_main: np.ndarray  # float32 (v_main,), the idf bm25s used
    avgdl: float  # the main documents' mean length, as bm25s computed it
    delta_data: np.ndarray  # float32 weights
    delta_rows: np.ndarray  # int32 delta-document index of each weight
    delta_indptr: np.ndarray  # int64 (len(vocab) + 1,), column starts

    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_delta(self) -> int:
        return self.n_rows - self.n_main

    def query_ids(self, tokens: Sequence[str]) -> list[int]:
        """The ids of the query's known tokens (repeats kept: BM25 sums over query terms)."""
        vocab = self.vocab
        return [vocab[t] for t in tokens if t in vocab]

    def scores(self, qids: list[int]) -> np.ndarray:
        """BM25 scores of every row for the token ids ``qids`` (float32, ``(n_rows,)``)."""
        scores = np.zeros(self.n_rows, dtype=np.float32)
        main_ids = [q for q in qids if q < self.v_main]
        if self.bm25 is not None and main_ids:
            scores[: self.n_main] = self.bm25.get_scores_from_ids(main_ids)
        if self.n_delta:
            delta = scores[self.n_main :]
            indptr = self.delta_indptr
            for q in qids:
                start, end = indptr[q], indptr[q + 1]
                if end > start:
                    np.add.at(delta, self.delta_rows[start:end], self.delta_data[start:end])
        return scores


def _lucene_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """bm25s' Lucene idf, rounded to float32 as bm25s stores it."""
    df = df.astype(np.float64)
    return np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)


def _doc_token_counts(
    tok_ids: np.ndarray, offsets: np.ndarray, n_vocab: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (document, token) pairs of a slice of documents, with their term counts."""
    lengths = np.diff(offsets)
    doc = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    keys = doc * n_vocab + tok_ids[offsets[0] : offsets[-1]].astype(np.int64)
    unique, tf = np.unique(keys, return_counts=True)
    return unique // n_vocab, unique % n_vocab, tf


def _build_sparse(
    vocab: dict[str, int], tok_ids: np.ndarray, offsets: np.ndarray, k1: float, b: float
) -> _Sparse:
    """A snapshot whose main bm25s index covers every document (no delta)."""
    n_rows = len(offsets) - 1
    n_vocab = len(vocab)
    bm25 = None
    idf_main = np.zeros(0, dtype=np.float32)
    avgdl = 0.0
    if tok_ids.size:
        bm25s = _import_bm25s()
        flat = tok_ids.tolist()
        bounds = offsets.tolist()
        corpus = [flat[bounds[i] : bounds[i + 1]] for i in range(n_rows)]
        bm25 = bm25s.BM25(k1=k1, b=b, method="lucene", backend="numpy")
        # The (token ids, vocabulary) form keeps our token ids; no "" token is added, so a
        # query with no known token simply has no ids (bm25s would otherwise score "" docs).
        bm25.index((corpus, dict(vocab)), create_empty_token=False, show_progress=False)
        _, tok, _ = _doc_token_counts(tok_ids, offsets, n_vocab)
        idf_main = _lucene_idf(np.bincount(tok, minlength=n_vocab), n_rows)
        avgdl = float(np.diff(offsets).mean())
    return _Sparse(
        vocab=vocab,
        tok_ids=tok_ids,
        offsets=offsets,
        bm25=bm25,
        n_main=n_rows,
        v_main=n_vocab,
        idf_main=idf_main,
        avgdl=avgdl,
        delta_data=np.zeros(0, dtype=np.float32),
        delta_rows=np.zeros(0, dtype=np.int32),
        delta_indptr=np.zeros(n_vocab + 1, dtype=np.int64),
    )


def _with_delta(
    main: _Sparse,
    vocab: dict[str, int],
    tok_ids: np.ndarray,
    offsets: np.ndarray,
    k1: float,
    b: float,
) -> _Sparse:
    """``main`` extended to all documents of ``tok_ids``: the rows past ``main.n_main`` become
    the delta, or everything is rebuilt when the delta has grown too large (or ``main`` has no
    BM25 index yet)."""
    n_rows = len(offsets) - 1
    n_delta = n_rows - main.n_main
    if main.bm25 is None or n_delta > _DELTA_MAX_SHARE * main.n_main:
        logger.info("rebuilding the BM25 part over %d scripts (delta of %d)", n_rows, n_delta)
        return _build_sparse(vocab, tok_ids, offsets, k1, b)
    n_vocab = len(vocab)
    delta_offsets = offsets[main.n_main :]
    doc, tok, tf = _doc_token_counts(tok_ids, delta_offsets, n_vocab)
    idf = np.zeros(n_vocab, dtype=np.float32)
    idf[: main.v_main] = main.idf_main
    if n_vocab > main.v_main:  # tokens the main index never saw: idf over all documents
        df = np.bincount(tok, minlength=n_vocab)[main.v_main :]
        idf[main.v_main :] = _lucene_idf(df, n_rows)
    # bm25s' Lucene term weight, with the main index's average length (see the module doc).
    lengths = np.diff(delta_offsets).astype(np.float64)
    tf = tf.astype(np.float64)
    norm = k1 * ((1 - b) + b * lengths[doc] / main.avgdl)
    weights = (idf[tok].astype(np.float64) * (tf / (norm + tf))).astype(np.float32)
    order = np.argsort(tok, kind="stable")
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(np.bincount(tok, minlength=n_vocab), out=indptr[1:])
    return _Sparse(
        vocab=vocab,
        tok_ids=tok_ids,
        offsets=offsets,
        bm25=main.bm25,
        n_main=main.n_main,
        v_main=main.v_main,
        idf_main=main.idf_main,
        avgdl=main.avgdl,
        delta_data=weights[order],
        delta_rows=doc[order].astype(np.int32),
        delta_indptr=indptr,
    )


def _encode_tokens(
    tokens: Sequence[Sequence[str]], vocab: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (flat) and per-document lengths; new tokens are added to ``vocab`` in place."""
    flat: list[int] = []
    lengths: list[int] = []
    for i, doc in enumerate(tokens):
        if isinstance(doc, str) or not isinstance(doc, Sequence):
            raise InputError(
                f"tokens[{i}] must be a list of token strings, got {type(doc).__name__} "
                f"{str(doc)[:30]!r}; tokenise the text first (the index never tokenises), e.g. "
                "with copilot.text.default_pipeline().process(text).tokens"
            )
        for token in doc:
            try:
                token_id = vocab.get(token)
            except TypeError:
                token_id = None
            if token_id is None:
                if not isinstance(token, str):
                    raise InputError(
                        f"tokens[{i}] holds a {type(token).__name__} ({token!r}); every token "
                        "must be a string"
                    )
                # str(): numpy strings hash like str, but do not serialise as JSON keys
                token_id = vocab[str(token)] = len(vocab)
            flat.append(token_id)
        lengths.append(len(doc))
    return np.asarray(flat, dtype=np.int32), np.asarray(lengths, dtype=np.int64)


# --------------------------------------------------------------------------- the index


@dataclass(frozen=True, slots=True)
class _State:
    """What a search reads: replaced as a whole by every mutation, never changed in place."""

    row_ids: np.ndarray  # int64 (n_rows,), the script id of each row
    deleted: np.ndarray  # bool (n_rows,), removed rows
    n_deleted: int
    sparse: _Sparse


class ScriptIndex:
    """Dense (FAISS inner product over normalised vectors) + sparse (BM25 over tokens), fused by
    reciprocal rank fusion.

    Args:
        kind: ``"auto"`` (exact flat below ``hnsw_threshold`` scripts, HNSW at or above),
            ``"flat"``, ``"hnsw"`` or ``"ivf"``.
        hnsw_threshold: the number of scripts from which ``"auto"`` builds HNSW.
        hnsw_m: HNSW graph degree (``M``).
        ef_construction: HNSW ``efConstruction``.
        ef_search: HNSW ``efSearch`` (raised to the number of candidates asked for when larger).
        ivf_nlist: IVF lists; ``None`` picks ``round(4 * sqrt(n))``.
        nprobe: IVF lists searched per query.
        rrf_k: the reciprocal rank fusion constant.
        bm25_k1: BM25 term-frequency saturation.
        bm25_b: BM25 length normalisation.
        seed: seeds IVF k-means.

    Attributes:
        index_: the FAISS index (rows as labels); :meth:`add` grows this same object.
        kind_: the index type chosen by :meth:`build` (``"flat"``, ``"hnsw"`` or ``"ivf"``).

    See the module docstring for ``add``/``remove`` semantics and thread safety.
    """

    def __init__(
        self,
        kind: IndexKind = "auto",
        hnsw_threshold: int = 20_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        ivf_nlist: int | None = None,
        nprobe: int = 16,
        rrf_k: int = 60,
        bm25_k1: float = 1.5,
        bm25_b: float = 0.75,
        seed: int = 0,
    ) -> None:
        self.kind = kind
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.ivf_nlist = ivf_nlist
        self.nprobe = nprobe
        self.rrf_k = rrf_k
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.seed = seed
        self._mutate_lock = threading.Lock()
        self._rw = _ReadWriteLock()

    def _params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hnsw_threshold": self.hnsw_threshold,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "ivf_nlist": self.ivf_nlist,
            "nprobe": self.nprobe,
            "rrf_k": self.rrf_k,
            "bm25_k1": self.bm25_k1,
            "bm25_b": self.bm25_b,
            "seed": self.seed,
        }

    # ----------------------------------------------------------------------- building

    def build(
        self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray, tokens: Sequence[Sequence[str]]
    ) -> Self:
        """Index scripts from scratch, replacing anything indexed before.

        Args:
            ids: distinct int64 script ids (not necessarily contiguous).
            vectors: ``(n, dim)`` unit-norm (or all-zero) context embeddings.
            tokens: ``n`` token lists (the contexts tokenised by the caller; may be empty).

        Returns:
            ``self``.

        Raises:
            InputError: bad hyperparameters, lengths that differ, duplicate ids, vectors that
                are not 2-D, finite and unit-norm, or tokens that are not lists of strings.
        """
        self._check_params()
        row_ids = self._check_ids(ids, existing=None)
        n = len(row_ids)
        matrix = _check_vectors(vectors, n, None)
        dim = matrix.shape[1]
        vocab: dict[str, int] = {}
        tok_ids, lengths = _encode_tokens(_check_token_lists(tokens, n), vocab)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])

        kind: str = self.kind
        if kind == "auto":
            kind = "hnsw" if n >= self.hnsw_threshold else "flat"
        start = time.perf_counter()
        sparse = _build_sparse(vocab, tok_ids, offsets, self.bm25_k1, self.bm25_b)
        index = self._new_dense(kind, dim, matrix)
        index.add(matrix)
        state = _State(row_ids=row_ids, deleted=np.zeros(n, dtype=bool), n_deleted=0, sparse=sparse)
        with self._mutate_lock, self._rw.write():
            self.index_ = index
            self._kind = kind
            self._dim = dim
            self._state = state
            self._row_of = {int(i): row for row, i in enumerate(row_ids.tolist())}
        logger.info(
            "built a %s script index over %d scripts (dim %d, %d tokens) in %.1f s",
            kind,
            n,
            dim,
            len(vocab),
            time.perf_counter() - start,
        )
        return self

    def add(
        self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray, tokens: Sequence[Sequence[str]]
    ) -> None:
        """Add scripts without rebuilding: FAISS ``add`` in place, BM25 through the delta.

        Args:
            ids: new script ids (distinct, not already live in the index; a removed id may
                come back).
            vectors: ``(n, dim)`` unit-norm (or all-zero) embeddings.
            tokens: ``n`` token lists.

        Raises:
            NotFittedError: :meth:`build` (or :meth:`load`) has not run.
            InputError: as for :meth:`build`, or an id is already in the index.
        """
        self._check_fitted()
        with self._mutate_lock:
            state = self._state
            row_ids = self._check_ids(ids, existing=self._row_of)
            n = len(row_ids)
            matrix = _check_vectors(vectors, n, self._dim)
            if n == 0:
                return
            old = state.sparse
            vocab = dict(old.vocab)
            new_tok, lengths = _encode_tokens(_check_token_lists(tokens, n), vocab)
            offsets = np.concatenate([old.offsets, old.offsets[-1] + np.cumsum(lengths)])
            tok_ids = np.concatenate([old.tok_ids, new_tok])
            sparse = _with_delta(old, vocab, tok_ids, offsets, self.bm25_k1, self.bm25_b)
            first_row = len(state.row_ids)
            new_state = _State(
                row_ids=np.concatenate([state.row_ids, row_ids]),
                deleted=np.concatenate([state.deleted, np.zeros(n, dtype=bool)]),
                n_deleted=state.n_deleted,
                sparse=sparse,
            )
            with self._rw.write():
                self.index_.add(matrix)
                self._state = new_state
            for offset, script_id in enumerate(row_ids.tolist()):
                self._row_of[script_id] = first_row + offset
            if self._kind == "flat" and first_row < self.hnsw_threshold <= first_row + n:
                # Switching to HNSW would mean rebuilding FAISS: left to the next build().
                logger.info(
                    "the flat script index now holds %d scripts (hnsw_threshold %d); it stays "
                    "exact until the next build()",
                    first_row + n,
                    self.hnsw_threshold,
                )

    def remove(self, ids: Sequence[int] | np.ndarray) -> None:
        """Mark scripts as deleted: searches skip them from now on.

        Raises:
            NotFittedError: the index is not built.
            InputError: an id is not in the index (nothing is removed then).
        """
        self._check_fitted()
        with self._mutate_lock:
            wanted = _as_id_array(ids)
            missing = [i for i in wanted.tolist() if i not in self._row_of]
            if missing:
                raise InputError(
                    f"cannot remove {len(missing)} script id(s) that are not in the index "
                    f"(or already removed): {_preview(missing)}; nothing was removed"
                )
            rows = [self._row_of[i] for i in set(wanted.tolist())]
            state = self._state
            deleted = state.deleted.copy()
            deleted[rows] = True
            self._state = _State(
                row_ids=state.row_ids,
                deleted=deleted,
                n_deleted=state.n_deleted + len(rows),
                sparse=state.sparse,
            )
            for i in set(wanted.tolist()):
                del self._row_of[i]

    def compact(self) -> None:
        """Merge the BM25 delta into the main BM25 index (exact statistics again).

        FAISS is untouched, and removed scripts stay as tombstones.
        """
        self._check_fitted()
        with self._mutate_lock:
            state = self._state
            if state.sparse.n_delta == 0 and state.sparse.bm25 is not None:
                return
            sparse = state.sparse
            rebuilt = _build_sparse(
                sparse.vocab, sparse.tok_ids, sparse.offsets, self.bm25_k1, self.bm25_b
            )
            self._state = _State(
                row_ids=state.row_ids,
                deleted=state.deleted,
                n_deleted=state.n_deleted,
                sparse=rebuilt,
            )

    # ----------------------------------------------------------------------- introspection

    def __len__(self) -> int:
        """The number of live (not removed) scripts; 0 before :meth:`build`."""
        state = getattr(self, "_state", None)
        return 0 if state is None else len(state.row_ids) - state.n_deleted

    def __contains__(self, script_id: object) -> bool:
        row_of = getattr(self, "_row_of", {})
        return isinstance(script_id, int | np.integer) and int(script_id) in row_of

    @property
    def dim(self) -> int:
        """The vector dimension."""
        self._check_fitted()
        return self._dim

    @property
    def kind_(self) -> str:
        """The FAISS index type :meth:`build` chose: ``"flat"``, ``"hnsw"`` or ``"ivf"``."""
        self._check_fitted()
        return self._kind

    def stats(self) -> dict[str, Any]:
        """Sizes for monitoring: live scripts, removed ones, rows in FAISS, the BM25 delta."""
        self._check_fitted()
        state = self._state
        return {
            "kind": self.kind_,
            "dim": self._dim,
            "live": len(state.row_ids) - state.n_deleted,
            "removed": state.n_deleted,
            "rows": len(state.row_ids),
            "vocabulary": len(state.sparse.vocab),
            "bm25_delta": state.sparse.n_delta,
        }

    # ----------------------------------------------------------------------- searching

    def search(
        self,
        vector: np.ndarray | None,
        tokens: Sequence[str] | None,
        k: int = 10,
        *,
        candidates: int = 50,
        exclude: Container[int] = (),
    ) -> list[Hit]:
        """The ``k`` scripts whose context best matches the query, by fused rank.

        Args:
            vector: the live context's unit-norm embedding ``(dim,)`` (or ``(1, dim)``);
                ``None`` (or all zeros) searches by tokens only.
            tokens: the live context's tokens; ``None`` or empty searches by vector only.
            k: how many hits to return (fewer when fewer scripts match).
            candidates: how deep each list (dense, sparse) goes before fusion; raised to ``k``.
            exclude: script ids to leave out (e.g. banned scripts), applied before the cut.

        Returns:
            Hits ordered by fused score, ties by id.

        Raises:
            NotFittedError: the index is not built.
            InputError: a bad vector, token list, ``k`` or ``candidates``.
        """
        self._check_fitted()
        _check_k(k, "k")
        _check_k(candidates, "candidates")
        depth = max(k, candidates)
        query = self._check_query_vector(vector)
        query_tokens = _check_query_tokens(tokens)
        with self._rw.read():
            state = self._state
            dense = [] if query is None else self._dense(state, query, depth, exclude)
        sparse = [] if not query_tokens else self._sparse(state, query_tokens, depth, exclude)
        return self._fuse(dense, sparse, k)

    def search_dense(
        self, vector: np.ndarray, k: int, exclude: Container[int] = ()
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest scripts by cosine: ``[(id, cosine), ...]``, best first.

        An all-zero ``vector`` has no neighbours (returns ``[]``).
        """
        self._check_fitted()
        _check_k(k, "k")
        query = self._check_query_vector(vector)
        if query is None:
            if vector is None:
                raise InputError("search_dense needs a vector; got None")
            return []
        with self._rw.read():
            return self._dense(self._state, query, k, exclude)

    def search_sparse(
        self, tokens: Sequence[str], k: int, exclude: Container[int] = ()
    ) -> list[tuple[int, float]]:
        """The ``k`` best scripts by BM25: ``[(id, score), ...]``, best first.

        Only scripts sharing at least one token with the query are returned; a query with no
        known token returns ``[]``.
        """
        self._check_fitted()
        _check_k(k, "k")
        query_tokens = _check_query_tokens(tokens)
        if not query_tokens:
            return []
        return self._sparse(self._state, query_tokens, k, exclude)

    def search_many(
        self,
        vectors: np.ndarray | None,
        tokens: Sequence[Sequence[str] | None] | None,
        k: int = 10,
        *,
        candidates: int = 50,
        exclude: Container[int] = (),
    ) -> list[list[Hit]]:
        """:meth:`search` for a batch of queries; the dense part runs as one FAISS call.

        Args:
            vectors: ``(n_queries, dim)`` or ``None`` (sparse only); zero rows have no dense part.
            tokens: ``n_queries`` token lists (an entry may be ``None``), or ``None``.
            k, candidates, exclude: as for :meth:`search` (``exclude`` applies to every query).

        Returns:
            One hit list per query.
        """
        self._check_fitted()
        _check_k(k, "k")
        _check_k(candidates, "candidates")
        if vectors is None and tokens is None:
            raise InputError("search_many needs vectors, tokens or both; got neither")
        matrix = None
        if vectors is not None:
            matrix = _check_vectors(vectors, None, self._dim, what="query vectors")
        n = len(matrix) if matrix is not None else len(tokens or ())
        if tokens is not None and len(tokens) != n:
            raise InputError(f"got {n} query vectors but {len(tokens)} token lists")
        token_lists = [_check_query_tokens(t) for t in tokens] if tokens is not None else [[]] * n
        depth = max(k, candidates)
        dense: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        with self._rw.read():
            state = self._state
            if matrix is not None and n:
                dense = self._dense_batch(state, matrix, depth, exclude)
        results = []
        for i in range(n):
            query_tokens = token_lists[i]
            sparse = [] if not query_tokens else self._sparse(state, query_tokens, depth, exclude)
            results.append(self._fuse(dense[i], sparse, k))
        return results

    # ----------------------------------------------------------------------- persistence

    def save(self, directory: str | Path) -> None:
        """Write ``config.json``, ``dense.faiss``, ``ids.npy``, ``deleted.npy``, ``tokens.npz``,
        ``vocab.json`` and (when there is one) the bm25s index in ``bm25/``.

        The BM25 delta is stored as token ids and recomputed on load, so a loaded index returns
        exactly the same results.
        """
        self._check_fitted()
        faiss = _import_faiss()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with self._mutate_lock:  # no add in between: FAISS and the state must match
            state = self._state
            sparse = state.sparse
            faiss.write_index(self.index_, str(directory / _DENSE_NAME))
            np.save(directory / "ids.npy", state.row_ids)
            np.save(directory / "deleted.npy", state.deleted)
            np.savez(directory / "tokens.npz", tok_ids=sparse.tok_ids, offsets=sparse.offsets)
            (directory / "vocab.json").write_text(
                json.dumps(list(sparse.vocab), ensure_ascii=False), "utf-8"
            )
            if sparse.bm25 is not None:
                sparse.bm25.save(directory / _BM25_DIR, show_progress=False)
            config = {
                "type": _TYPE,
                "format_version": _FORMAT_VERSION,
                "params": self._params(),
                "kind": self.kind_,
                "dim": self._dim,
                "rows": len(state.row_ids),
                "bm25_main_rows": sparse.n_main,
                "bm25_main_vocabulary": sparse.v_main,
                "has_bm25": sparse.bm25 is not None,
            }
            # config.json last: a directory without it is an incomplete save.
            (directory / CONFIG_NAME).write_text(
                json.dumps(config, ensure_ascii=False, indent=1), "utf-8"
            )

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Restore an index written by :meth:`save`.

        Raises:
            BundleError: the directory is missing, incomplete, corrupt or not a script index.
        """
        directory = Path(directory)
        try:
            config = json.loads((directory / CONFIG_NAME).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"cannot load a script index from {directory}: {exc}") from exc
        if not isinstance(config, dict) or config.get("type") != _TYPE:
            found = config.get("type") if isinstance(config, dict) else type(config).__name__
            raise BundleError(f"{directory} holds a {found!r} model, not a {_TYPE!r}")
        if config.get("format_version") != _FORMAT_VERSION:
            raise BundleError(
                f"{directory} holds a script index of format {config.get('format_version')!r}; "
                f"this version reads format {_FORMAT_VERSION}: rebuild the index"
            )
        faiss = _import_faiss()
        try:
            index = cls(**config["params"])
            dense = faiss.read_index(str(directory / _DENSE_NAME))
            row_ids = np.load(directory / "ids.npy", allow_pickle=False).astype(np.int64)
            deleted = np.load(directory / "deleted.npy", allow_pickle=False).astype(bool)
            with np.load(directory / "tokens.npz", allow_pickle=False) as arrays:
                tok_ids = arrays["tok_ids"].astype(np.int32)
                offsets = arrays["offsets"].astype(np.int64)
            tokens = json.loads((directory / "vocab.json").read_text("utf-8"))
            vocab = {str(t): i for i, t in enumerate(tokens)}
            n_rows, n_main, v_main = (
                int(config["rows"]),
                int(config["bm25_main_rows"]),
                int(config["bm25_main_vocabulary"]),
            )
            problems = _load_problems(config, dense, row_ids, deleted, tok_ids, offsets, vocab)
            if problems:
                raise BundleError(f"{directory} is inconsistent: {'; '.join(problems)}")
            if config["has_bm25"]:
                main = _load_main_sparse(
                    directory / _BM25_DIR, vocab, v_main, tok_ids, offsets, n_main
                )
            else:  # no token in the main rows: rebuilding is free and restores the same state
                main = _build_sparse(vocab, tok_ids, offsets, index.bm25_k1, index.bm25_b)
                n_main = n_rows
            sparse = (
                main
                if n_main == n_rows
                else _with_delta(main, vocab, tok_ids, offsets, index.bm25_k1, index.bm25_b)
            )
        except BundleError:
            raise
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise BundleError(f"cannot load a script index from {directory}: {exc}") from exc
        index.index_ = dense
        index._kind = str(config["kind"])
        index._dim = int(config["dim"])
        index._state = _State(
            row_ids=row_ids, deleted=deleted, n_deleted=int(deleted.sum()), sparse=sparse
        )
        index._row_of = {int(i): row for row, i in enumerate(row_ids.tolist()) if not deleted[row]}
        return index

    # ----------------------------------------------------------------------- internals

    def _check_fitted(self) -> None:
        if not hasattr(self, "_state"):
            raise NotFittedError(
                "this ScriptIndex is not built yet; call build(ids, vectors, tokens) or "
                "ScriptIndex.load(dir)"
            )

    def _check_params(self) -> None:
        if self.kind not in _KINDS:
            raise InputError(f"unknown index kind {self.kind!r}; valid kinds are {_KINDS}")
        for name in ("hnsw_threshold", "hnsw_m", "ef_construction", "ef_search", "nprobe"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.ivf_nlist is not None and (
            not isinstance(self.ivf_nlist, int) or self.ivf_nlist < 1
        ):
            raise InputError(
                f"ivf_nlist must be None or a positive integer, got {self.ivf_nlist!r}"
            )
        if not (isinstance(self.rrf_k, int | float) and self.rrf_k >= 0):
            raise InputError(f"rrf_k must be a number >= 0, got {self.rrf_k!r}")
        if not self.bm25_k1 >= 0 or not 0 <= self.bm25_b <= 1:
            raise InputError(
                f"bm25_k1 must be >= 0 and bm25_b in [0, 1]; got {self.bm25_k1!r}, {self.bm25_b!r}"
            )

    def _check_ids(
        self, ids: Sequence[int] | np.ndarray, existing: dict[int, int] | None
    ) -> np.ndarray:
        arr = _as_id_array(ids)
        unique, counts = np.unique(arr, return_counts=True)
        if (counts > 1).any():
            raise InputError(
                f"script ids must be distinct; these appear more than once: "
                f"{_preview(unique[counts > 1].tolist())}"
            )
        if existing:
            clash = [i for i in arr.tolist() if i in existing]
            if clash:
                raise InputError(
                    f"{len(clash)} script id(s) are already in the index: {_preview(clash)}; "
                    "remove() them first to replace them"
                )
        return arr

    def _check_query_vector(self, vector: np.ndarray | None) -> np.ndarray | None:
        """The query as a ``(1, dim)`` float32 row, or ``None`` for no dense part."""
        if vector is None:
            return None
        try:
            arr = np.asarray(vector, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"the query vector must be a float array: {exc}") from exc
        if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[0] != 1):
            raise InputError(
                f"the query vector must have shape ({self._dim},) or (1, {self._dim}); "
                f"got {arr.shape}"
            )
        matrix = _check_vectors(arr.reshape(1, -1), 1, self._dim, what="the query vector")
        return None if not matrix.any() else matrix

    def _new_dense(self, kind: str, dim: int, matrix: np.ndarray) -> Any:
        faiss = _import_faiss()
        if kind == "flat":
            return faiss.IndexFlatIP(dim)
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
            return index
        n = len(matrix)
        if n == 0:
            raise InputError("kind='ivf' trains on the vectors and needs at least one; got none")
        nlist = min(n, self.ivf_nlist or max(1, round(4 * math.sqrt(n))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = self.seed
        index.nprobe = self.nprobe
        index.train(matrix)
        return index

    def _search_params(self, kk: int, round_: int) -> Any:
        """Per-call FAISS parameters (thread-safe, unlike setting them on the index)."""
        faiss = _import_faiss()
        if self._kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(self.ef_search, kk)
            return params
        if self._kind == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = min(self.index_.nlist, self.nprobe * 4**round_)
            return params
        return None

    def _exhausted(self, kk: int, ntotal: int, round_: int) -> bool:
        if kk < ntotal:
            return False
        return self._kind != "ivf" or self.nprobe * 4**round_ >= self.index_.nlist

    def _dense(
        self, state: _State, query: np.ndarray, depth: int, exclude: Container[int]
    ) -> list[tuple[int, float]]:
        """Filtered dense top ``depth``; the caller holds the read lock."""
        ntotal = len(state.row_ids)
        if ntotal == 0:
            return []
        kk = min(ntotal, depth + _margin(state, exclude, depth))
        round_ = 0
        while True:
            scores, rows = self.index_.search(query, kk, params=self._search_params(kk, round_))
            found = _filter(state, rows[0], scores[0], exclude)
            if len(found) >= depth or self._exhausted(kk, ntotal, round_):
                return found[:depth]
            kk, round_ = min(ntotal, kk * 4), round_ + 1

    def _dense_batch(
        self, state: _State, matrix: np.ndarray, depth: int, exclude: Container[int]
    ) -> list[list[tuple[int, float]]]:
        ntotal = len(state.row_ids)
        out: list[list[tuple[int, float]]] = [[] for _ in range(len(matrix))]
        if ntotal == 0:
            return out
        kk = min(ntotal, depth + _margin(state, exclude, depth))
        scores, rows = self.index_.search(matrix, kk, params=self._search_params(kk, 0))
        for i in range(len(matrix)):
            if not matrix[i].any():
                continue
            found = _filter(state, rows[i], scores[i], exclude)
            if len(found) < depth and not self._exhausted(kk, ntotal, 0):
                found = self._dense(state, matrix[i : i + 1], depth, exclude)
            out[i] = found[:depth]
        return out

    def _sparse(
        self, state: _State, tokens: Sequence[str], depth: int, exclude: Container[int]
    ) -> list[tuple[int, float]]:
        """Filtered BM25 top ``depth`` (only scripts sharing a token with the query)."""
        sparse = state.sparse
        qids = sparse.query_ids(tokens)
        if not qids:
            return []
        scores = sparse.scores(qids)
        rows = np.flatnonzero(scores)
        if state.n_deleted:
            rows = rows[~state.deleted[rows]]
        values = scores[rows]
        kk = min(len(rows), depth + _margin(state, exclude, depth))
        while True:
            if kk < len(rows):
                top = np.argpartition(-values, kk - 1)[:kk]
                # keep every row tied with the k-th score so that ties break by id, not by chance
                top = np.flatnonzero(values >= values[top].min())
            else:
                top = np.arange(len(rows))
            found = _filter(state, rows[top], values[top], exclude)
            if len(found) >= depth or kk >= len(rows):
                return found[:depth]
            kk = min(len(rows), kk * 4)

    def _fuse(
        self,
        dense: list[tuple[int, float]],
        sparse: list[tuple[int, float]],
        k: int,
    ) -> list[Hit]:
        fused: dict[int, list[Any]] = {}
        for rank, (script_id, score) in enumerate(dense, start=1):
            fused[script_id] = [1.0 / (self.rrf_k + rank), score, rank, None, None]
        for rank, (script_id, score) in enumerate(sparse, start=1):
            entry = fused.setdefault(script_id, [0.0, None, None, None, None])
            entry[0] += 1.0 / (self.rrf_k + rank)
            entry[3], entry[4] = score, rank
        order = sorted(fused.items(), key=lambda item: (-item[1][0], item[0]))[:k]
        return [Hit(script_id, *entry) for script_id, entry in order]


# --------------------------------------------------------------------------- helpers


def _margin(state: _State, exclude: Container[int], depth: int) -> int:
    """How many extra candidates to fetch first, to make up for removed and excluded ids."""
    n_exclude = len(exclude) if isinstance(exclude, Sized) else depth
    return min(state.n_deleted + n_exclude, 3 * depth)


def _filter(
    state: _State, rows: np.ndarray, scores: np.ndarray, exclude: Container[int]
) -> list[tuple[int, float]]:
    """``(id, score)`` of the live, not excluded rows, sorted by score then id."""
    keep = rows >= 0  # FAISS pads with -1 when it finds fewer than asked
    rows, scores = rows[keep], scores[keep]
    if state.n_deleted:
        live = ~state.deleted[rows]
        rows, scores = rows[live], scores[live]
    ids = state.row_ids[rows]
    order = np.lexsort((ids, -scores))
    pairs = zip(ids[order].tolist(), scores[order].tolist(), strict=True)
    if isinstance(exclude, Sized) and not len(exclude):
        return list(pairs)
    return [(i, s) for i, s in pairs if i not in exclude]


def _as_id_array(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    if isinstance(ids, str | bytes):
        raise InputError(f"script ids must be a sequence of integers, got the string {ids!r}")
    try:
        arr = np.asarray(ids)
    except (TypeError, ValueError) as exc:
        raise InputError(f"script ids must be a sequence of integers: {exc}") from exc
    if arr.ndim != 1:
        raise InputError(f"script ids must be a 1-D sequence of integers, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise InputError(
            f"script ids must be integers, got dtype {arr.dtype} (e.g. {arr[0]!r}); "
            "convert them with np.asarray(ids, dtype=np.int64)"
        )
    if arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
        raise InputError(f"script ids must fit in int64; got {arr.max()}")
    return arr.astype(np.int64)


def _check_vectors(
    vectors: Any, n: int | None, dim: int | None, *, what: str = "vectors"
) -> np.ndarray:
    """A C-contiguous float32 ``(n, dim)`` copy whose rows are unit-norm or all zeros."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be a float array: {exc}") from exc
    if arr.ndim != 2 or (arr.shape[1] == 0 and arr.shape[0] > 0):
        raise InputError(f"{what} must be a 2-D array (n_scripts, dim); got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise InputError(f"got {n} script ids but {arr.shape[0]} rows of {what}")
    if dim is not None and arr.shape[1] != dim:
        raise InputError(
            f"{what} have dimension {arr.shape[1]} but the index holds {dim}-d vectors; "
            "encode with the embedder the index was built with"
        )
    if n is None and dim is None and arr.shape[1] == 0:
        raise InputError(f"{what} must have at least one column; got shape {arr.shape}")
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InputError(f"{what} hold NaN or infinite values in rows {_preview(bad.tolist())}")
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))
    ok = (np.abs(norms - 1) <= _NORM_TOLERANCE) | (norms == 0)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        raise InputError(
            f"{what} must be L2-normalised (unit norm, as Embedder.encode returns them) or all "
            f"zeros; {len(bad)} row(s) are not, e.g. row {bad[0]} has norm {norms[bad[0]]:.4g}; "
            "normalise with v / np.linalg.norm(v, axis=1, keepdims=True)"
        )
    return np.ascontiguousarray(arr)


def _check_token_lists(tokens: Any, n: int) -> Sequence[Sequence[str]]:
    if tokens is None or isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise InputError(
            f"tokens must be a list of token lists (one per script), got {type(tokens).__name__}"
        )
    if len(tokens) != n:
        raise InputError(f"got {n} script ids but {len(tokens)} token lists")
    return tokens


def _check_query_tokens(tokens: Any) -> list[str]:
    if tokens is None:
        return []
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise InputError(
            f"query tokens must be a list of token strings, got {type(tokens).__name__} "
            f"{str(tokens)[:30]!r}; tokenise the text first (the index never tokenises)"
        )
    bad = [t for t in tokens if not isinstance(t, str)]
    if bad:
        raise InputError(f"query tokens must be strings; got {_preview(bad)}")
    return list(tokens)


def _check_k(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


def _preview(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _load_main_sparse(
    bm25_dir: Path,
    vocab: dict[str, int],
    v_main: int,
    tok_ids: np.ndarray,
    offsets: np.ndarray,
    n_main: int,
) -> _Sparse:
    """The main BM25 snapshot from a saved bm25s index (no delta yet)."""
    bm25s = _import_bm25s()
    bm25 = bm25s.BM25.load(bm25_dir)
    if bm25.scores.get("num_docs") != n_main or len(bm25.vocab_dict) != v_main:
        raise BundleError(
            f"{bm25_dir} holds a BM25 index of {bm25.scores.get('num_docs')} documents and "
            f"{len(bm25.vocab_dict)} tokens, but config.json says {n_main} and {v_main}"
        )
    main_offsets = offsets[: n_main + 1]
    main_tok = tok_ids[: main_offsets[-1]]
    _, tok, _ = _doc_token_counts(main_tok, main_offsets, v_main)
    return _Sparse(
        vocab=dict(list(vocab.items())[:v_main]),
        tok_ids=main_tok,
        offsets=main_offsets,
        bm25=bm25,
        n_main=n_main,
        v_main=v_main,
        idf_main=_lucene_idf(np.bincount(tok, minlength=v_main), n_main),
        avgdl=float(np.diff(main_offsets).mean()),
        delta_data=np.zeros(0, dtype=np.float32),
        delta_rows=np.zeros(0, dtype=np.int32),
        delta_indptr=np.zeros(v_main + 1, dtype=np.int64),
    )


def _load_problems(
    config: dict[str, Any],
    dense: Any,
    row_ids: np.ndarray,
    deleted: np.ndarray,
    tok_ids: np.ndarray,
    offsets: np.ndarray,
    vocab: dict[str, int],
) -> list[str]:
    """What does not fit together in a saved index (empty when it is consistent)."""
    n_rows = int(config["rows"])
    problems = []
    if dense.ntotal != n_rows or dense.d != int(config["dim"]):
        problems.append(
            f"{_DENSE_NAME} holds {dense.ntotal} vectors of dimension {dense.d}, "
            f"expected {n_rows} of dimension {config['dim']}"
        )
    if len(row_ids) != n_rows or len(deleted) != n_rows or len(offsets) != n_rows + 1:
        problems.append(
            f"ids.npy, deleted.npy and tokens.npz describe {len(row_ids)}, {len(deleted)} and "
            f"{len(offsets) - 1} rows, expected {n_rows}"
        )
    elif offsets[0] != 0 or offsets[-1] != len(tok_ids) or (np.diff(offsets) < 0).any():
        problems.append("tokens.npz has broken offsets")
    if tok_ids.size and (tok_ids.min() < 0 or tok_ids.max() >= len(vocab)):
        problems.append("tokens.npz refers to tokens missing from vocab.json")
    if not 0 <= int(config["bm25_main_rows"]) <= n_rows:
        problems.append(f"bm25_main_rows {config['bm25_main_rows']} is not in [0, {n_rows}]")
    if not 0 <= int(config["bm25_main_vocabulary"]) <= len(vocab):
        problems.append("bm25_main_vocabulary exceeds vocab.json")
    live = row_ids[~deleted] if len(deleted) == len(row_ids) else row_ids
    if len(np.unique(live)) != len(live):
        problems.append("ids.npy holds duplicate live ids")
    return problems
