"""Text embedders behind one interface: the offline TF-IDF + SVD default and sentence-transformers.

Every embedder follows the trainable-component contract: ``__init__`` stores hyperparameters
only, ``fit(texts)`` returns ``self`` (a no-op for pretrained encoders), ``encode(texts)`` returns
L2-normalised float32 rows, ``save(dir)`` writes a small ``config.json`` plus weights and the
classmethod ``load(dir)`` restores them exactly. ``spec`` is the short string recorded in bundle
manifests (``"offline"`` or ``"st:<path or hub name>"``); :func:`make_embedder` builds an embedder
from one and :func:`load_embedder` loads any saved embedder by the ``type`` in its config.

Example:
    >>> emb = make_embedder("offline", n_components=64).fit(train_texts)  # doctest: +SKIP
    >>> emb.encode(["这件有M码吗"]).shape  # doctest: +SKIP
    (1, 64)
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from copilot.errors import BundleError, CopilotError, InputError, NotFittedError
from models._lazy import (
    check_model_source,
    check_texts,
    import_optional,
    is_local_source,
    model_load_error,
    quiet_transformers,
    resolve_device,
)

__all__ = [
    "Embedder",
    "OfflineEmbedder",
    "SentenceTransformerEmbedder",
    "load_embedder",
    "make_embedder",
]

logger = logging.getLogger(__name__)

Tokenizer = Callable[[str], list[str]]

CONFIG_NAME = "config.json"
_FORMAT_VERSION = 1
_VALID_SPECS = "'offline' or 'st:<local path or hub name>' (e.g. 'st:BAAI/bge-small-zh-v1.5')"


# --------------------------------------------------------------------------- the interface


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    #: the ``type`` written to ``config.json``; :func:`load_embedder` dispatches on it.
    type_name: ClassVar[str]

    #: the most texts :meth:`fit` needs; a trainer samples larger corpora down to it
    #: (``None``: fit ignores the texts, or wants them all).
    max_fit_texts: ClassVar[int | None] = None

    def fit(self, texts: Sequence[str]) -> Self:
        """Learn what the embedder needs from ``texts``; pretrained embedders only check the model.

        Returns:
            ``self``.
        """
        return self

    @abstractmethod
    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed ``texts``.

        Args:
            texts: the texts (a list, not a single string).
            batch_size: how many texts to process at once; ``None`` uses the embedder's default.

        Returns:
            A float32 array of shape ``(len(texts), dim)``; each row has unit norm, or is all
            zeros for a text with no known feature (never NaN).

        Raises:
            NotFittedError: the embedder needs ``fit`` (or ``load``) first.
            InputError: ``texts`` is not a sequence of strings.
        """

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of the vectors :meth:`encode` returns."""

    def tokens(self, text: str) -> list[str]:
        """Words of ``text`` for lexical search (BM25): the text pipeline's tokens by default."""
        from copilot.text import default_pipeline

        return list(default_pipeline().process(text).tokens)

    def features(self, texts: Sequence[str], dense_weight: float = 0.0) -> Any:
        """The richest rows of ``texts`` for a model trained on top (classifiers, reply matching).

        The embedding itself by default; the offline embedder gives its sparse TF-IDF rows.

        Args:
            texts: the texts.
            dense_weight: for features that are not the embedding (sparse TF-IDF), append the
                embedding scaled by this; 0 appends nothing. Ignored when the features are
                the embedding itself.
        """
        return self.encode(texts)

    def limit_token_cache(self, size: int) -> None:
        """Keep at most ``size`` texts in the embedder's per-text memo, if it has one.

        Training wants a large memo (every text is read several times); scoring streams most
        texts once, so a small one keeps memory flat. A no-op for embedders without a memo.
        """
        return

    def feature_projection(self) -> np.ndarray:
        """A ``(n_features, dim)`` map from :meth:`features` rows to :meth:`encode` space.

        A starting point for projections learned on top; the identity by default.
        """
        return np.eye(self.dim, dtype=np.float32)

    @property
    @abstractmethod
    def spec(self) -> str:
        """Short description recorded in bundle manifests, e.g. ``"offline"``."""

    @abstractmethod
    def save(self, directory: str | Path) -> None:
        """Write ``config.json`` and the weights into ``directory`` (created if missing)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: str | Path) -> Self:
        """Restore an embedder written by :meth:`save`.

        Raises:
            BundleError: the directory is missing, incomplete or of another embedder type.
        """


def make_embedder(spec: str, **kwargs: Any) -> Embedder:
    """Build an (unfitted) embedder from a spec string.

    Args:
        spec: ``"offline"`` for :class:`OfflineEmbedder`, or ``"st:<path or hub name>"`` for
            :class:`SentenceTransformerEmbedder`.
        **kwargs: hyperparameters passed to the embedder's constructor.

    Returns:
        The embedder; call ``fit`` before ``encode``.

    Raises:
        InputError: the spec or a keyword is not valid.

    Example:
        >>> make_embedder("st:/models/bge-small-zh").spec  # doctest: +SKIP
        'st:/models/bge-small-zh'
    """
    if not isinstance(spec, str):
        raise InputError(
            f"embedder spec must be a string, got {type(spec).__name__}; valid forms are {_VALID_SPECS}"
        )
    cls: type[Embedder]
    args: tuple[str, ...]
    if spec.strip() == "offline":
        cls, args = OfflineEmbedder, ()
    elif spec.startswith("st:") and spec[3:].strip():
        cls, args = SentenceTransformerEmbedder, (spec[3:].strip(),)
    else:
        hint = " (the model name is missing after 'st:')" if spec.startswith("st:") else ""
        raise InputError(f"unknown embedder spec '{spec}'{hint}; valid forms are {_VALID_SPECS}")
    try:
        return cls(*args, **kwargs)
    except TypeError as exc:
        raise InputError(f"bad option for embedder '{spec}': {exc}") from exc


def load_embedder(directory: str | Path) -> Embedder:
    """Load any embedder saved with ``save``, dispatching on the ``type`` in its ``config.json``.

    Raises:
        BundleError: the directory has no readable config or an unknown type.
    """
    config = _read_config(directory)
    kind = config.get("type")
    classes: dict[str, type[Embedder]] = {
        c.type_name: c for c in (OfflineEmbedder, SentenceTransformerEmbedder)
    }
    if kind not in classes:
        raise BundleError(
            f"unknown embedder type {kind!r} in {Path(directory) / CONFIG_NAME}; "
            f"known types are {sorted(classes)}"
        )
    return classes[kind].load(directory)


# --------------------------------------------------------------------------- helpers


def _read_config(directory: str | Path, expected_type: str | None = None) -> dict[str, Any]:
    """The ``config.json`` of a saved component, or a BundleError saying why not."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise BundleError(
            f"no {CONFIG_NAME} in '{directory}'; is it a directory written by save()?"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise BundleError(f"{path} must hold a JSON object")
    if expected_type is not None and config.get("type") != expected_type:
        raise BundleError(
            f"{path} is of type {config.get('type')!r}, expected {expected_type!r}; "
            "use load_embedder() to load any embedder"
        )
    if config.get("format_version", _FORMAT_VERSION) > _FORMAT_VERSION:
        raise BundleError(
            f"{path} has format_version {config['format_version']}, newer than this version "
            f"understands ({_FORMAT_VERSION}); upgrade sales-copilot"
        )
    return config


def _write_config(directory: Path, config: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format_version": _FORMAT_VERSION, **config}, ensure_ascii=False, indent=2)
    (directory / CONFIG_NAME).write_text(text + "\n", encoding="utf-8")


def _normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm in place; all-zero rows stay zero."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    norms[norms == 0] = 1
    matrix /= norms[:, None]
    return matrix


# --------------------------------------------------------------------------- tokenisation


def _pipeline_tokens(text: str) -> list[str]:
    """Tokens of the whole text pipeline: normalised, simplified, PII-masked, lowercased."""
    from copilot.text import default_pipeline  # lazy: jieba and OpenCC load on first use

    return list(default_pipeline().process(text).tokens)


def _callable_ref(fn: Callable[..., Any]) -> str | None:
    """``module:qualname`` of an importable module-level callable, else None."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<" in qualname:
        return None
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{qualname}" if target is fn else None


def _resolve_ref(ref: str) -> Tokenizer:
    module, _, qualname = ref.partition(":")
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise BundleError(
            f"the saved embedder uses the tokenizer '{ref}', which cannot be imported ({exc}); "
            "pass tokenizer= to load()"
        ) from exc
    fn: Tokenizer = target
    return fn


def _word_terms(tokens: Sequence[str], ngram_range: tuple[int, int]) -> list[str]:
    """Word n-grams (space-joined), as the word vectorizer sees them."""
    lo, hi = ngram_range
    terms = list(tokens) if lo == 1 else []
    for n in range(max(lo, 2), hi + 1):
        terms.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return terms


def _char_terms(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """Character n-grams of ``text``."""
    lo, hi = ngram_range
    return [text[i : i + n] for n in range(lo, hi + 1) for i in range(len(text) - n + 1)]


def _char_terms_of_tokens(tokens: Sequence[str], ngram_range: tuple[int, int]) -> list[str]:
    return _char_terms("".join(tokens), ngram_range)


# --------------------------------------------------------------------------- offline


_TOKEN_CACHE_SIZE = 200_000  # ~80 MB at most; cleared when full
"""Default bound of the per-embedder token memo; set ``token_cache_size`` on an instance to
change it (scoring streams millions of messages once each, so it keeps a small one)."""
_SVD_SAMPLE = 40_000


_JOIN = " | "
"""How a context joins its turns (:func:`models.scripts.context_text`)."""


class OfflineEmbedder(Embedder):
    """TF-IDF over jieba words and character n-grams, reduced by truncated SVD; no downloads.

    Each text is truncated to ``max_chars`` and tokenised once; the word block holds word
    uni- and bigrams, the character block the character n-grams of the tokens joined without
    whitespace (the normalised, masked text). Both blocks use sublinear TF and smoothed IDF and
    are L2-normalised separately, then stacked and normalised again (:meth:`transform_sparse`).
    A truncated SVD reduces the stack to ``n_components`` dimensions (clipped to what the data
    allows), and rows are L2-normalised.

    The vectorizers are fitted with scikit-learn; transforming uses the learned vocabularies,
    IDF weights and a pre-transposed float32 projection directly, which keeps one short text
    well under a millisecond.

    Args:
        n_components: target dimension; clipped to ``min(n_components, n_features - 1, n_texts - 1)``.
        word_ngram_range: word n-gram sizes.
        char_ngram_range: character n-gram sizes.
        min_df: minimum number of texts a term must occur in; treated as 1 when fitting fewer
            than 100 texts, where nearly every term is rare.
        max_word_features: cap on the word vocabulary (most frequent terms kept).
        max_char_features: cap on the character vocabulary.
        max_chars: texts are cut to this many characters before tokenising.
        random_state: seed of the randomized SVD.
        tokenizer: ``text -> tokens``; ``None`` runs the whole text pipeline
            (``copilot.text.default_pipeline().process(text).tokens``: normalised, simplified,
            PII-masked, lowercased, retail dictionary). A custom one must be an importable
            module-level function for :meth:`save` to record it.

    Attributes:
        word_vocabulary_: word term -> column.
        char_vocabulary_: character term -> column (after the word columns).
        idf_: IDF weight of every column, float32.
        projection_: ``(n_features, dim)`` float32 SVD projection.
        explained_variance_ratio_: of the SVD components.
    """

    token_cache_size: int = _TOKEN_CACHE_SIZE
    """Bound of the token memo (a run-time knob, not saved with the model)."""

    type_name: ClassVar[str] = "offline"
    # The vocabulary and SVD settle long before this; a seeded sample keeps training fast.
    max_fit_texts: ClassVar[int | None] = 300_000

    def __init__(
        self,
        n_components: int = 256,
        *,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] = (1, 3),
        min_df: int = 2,
        max_word_features: int = 20_000,
        max_char_features: int = 40_000,
        max_chars: int = 2_000,
        random_state: int = 0,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.n_components = n_components
        self.word_ngram_range: tuple[int, int] = (word_ngram_range[0], word_ngram_range[1])
        self.char_ngram_range: tuple[int, int] = (char_ngram_range[0], char_ngram_range[1])
        self.min_df = min_df
        self.max_word_features = max_word_features
        self.max_char_features = max_char_features
        self.max_chars = max_chars
        self.random_state = random_state
        self.tokenizer = tokenizer

    # ----------------------------------------------------------------- contract

    @property
    def spec(self) -> str:
        return "offline"

    @property
    def dim(self) -> int:
        return int(self._fitted_projection().shape[1])

    def fit(self, texts: Sequence[str]) -> Self:
        """Learn the vocabularies, IDF weights and SVD projection from ``texts``.

        Raises:
            InputError: fewer than two texts, or no text with any usable term.
        """
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = check_texts(texts)
        if len(texts) < 2:
            raise InputError(f"OfflineEmbedder.fit needs at least 2 texts, got {len(texts)}")
        self._check_params()
        docs = [self._tokens(text) for text in texts]
        min_df = self.min_df if len(texts) >= 100 else 1
        blocks: list[tuple[dict[str, int], np.ndarray]] = []
        for analyzer, cap in (
            (
                functools.partial(_word_terms, ngram_range=self.word_ngram_range),
                self.max_word_features,
            ),
            (
                functools.partial(_char_terms_of_tokens, ngram_range=self.char_ngram_range),
                self.max_char_features,
            ),
        ):
            vectorizer = TfidfVectorizer(
                analyzer=analyzer,
                sublinear_tf=True,
                min_df=min_df,
                max_features=cap,
                dtype=np.float32,
            )
            try:
                vectorizer.fit(docs)
            except ValueError:  # empty vocabulary after pruning: the block contributes nothing
                blocks.append(({}, np.zeros(0, dtype=np.float32)))
                continue
            vocabulary = {term: int(col) for term, col in vectorizer.vocabulary_.items()}
            blocks.append((vocabulary, vectorizer.idf_.astype(np.float32)))
        (word_vocab, word_idf), (char_vocab, char_idf) = blocks
        n_features = len(word_vocab) + len(char_vocab)
        if n_features < 2:
            raise InputError(
                f"OfflineEmbedder.fit found {n_features} usable terms in {len(texts)} texts; "
                "fit on real message texts (are they all empty?)"
            )
        self.word_vocabulary_ = word_vocab
        self.char_vocabulary_ = {t: c + len(word_vocab) for t, c in char_vocab.items()}
        self.idf_ = np.concatenate([word_idf, char_idf])
        if len(docs) > _SVD_SAMPLE:
            # The projection settles on a sample; the full corpus only costs time.
            picks = np.random.default_rng(self.random_state).choice(
                len(docs), _SVD_SAMPLE, replace=False
            )
            docs = [docs[i] for i in sorted(picks)]
        matrix = self._sparse(docs)
        n_components = min(self.n_components, n_features - 1, len(docs) - 1)
        svd = TruncatedSVD(
            n_components=n_components, algorithm="randomized", random_state=self.random_state
        )
        svd.fit(matrix)
        # Stored as float16 (half the bundle size, cosine error ~1e-3); computed in float32.
        # Rounding here, not at save, keeps a fitted and a reloaded embedder identical.
        self.projection_ = np.ascontiguousarray(
            svd.components_.T.astype(np.float16), dtype=np.float32
        )
        self.explained_variance_ratio_ = svd.explained_variance_ratio_.astype(np.float32)
        if n_components < self.n_components:
            logger.info(
                "OfflineEmbedder: n_components clipped from %d to %d",
                self.n_components,
                n_components,
            )
        return self

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        projection = self._fitted_projection()
        texts = check_texts(texts)
        step = batch_size or 8192
        out = np.empty((len(texts), projection.shape[1]), dtype=np.float32)
        for start in range(0, len(texts), step):
            docs = [self._tokens(text) for text in texts[start : start + step]]
            out[start : start + len(docs)] = self._sparse(docs) @ projection
        return _normalize_rows(out)

    def transform_sparse(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The stacked, L2-normalised TF-IDF rows (word block, then character block).

        For linear classifiers that want sparse features next to (or instead of) :meth:`encode`.

        Returns:
            A float32 CSR matrix of shape ``(len(texts), n_features)``.
        """
        self._fitted_projection()
        return self._sparse([self._tokens(text) for text in check_texts(texts)])

    def features(self, texts: Sequence[str], dense_weight: float = 0.0) -> sp.csr_matrix:
        """The sparse TF-IDF rows (:meth:`transform_sparse`), with the embedding scaled by
        ``dense_weight`` appended when it is not 0."""
        if not dense_weight:
            return self.transform_sparse(texts)
        sparse, dense = self.transform(texts)
        return sp.hstack([sparse, sp.csr_matrix(dense * dense_weight)], format="csr")

    def limit_token_cache(self, size: int) -> None:
        """Set :attr:`token_cache_size` (the memo is cleared when it reaches it)."""
        self.token_cache_size = size

    def feature_projection(self) -> np.ndarray:
        """The SVD projection from TF-IDF rows to :meth:`encode` space."""
        return self._fitted_projection()

    def transform(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, np.ndarray]:
        """Sparse TF-IDF rows and dense embeddings from one tokenisation of ``texts``.

        Returns:
            ``(transform_sparse(texts), encode(texts))``, computed together.
        """
        projection = self._fitted_projection()
        sparse = self._sparse([self._tokens(text) for text in check_texts(texts)])
        return sparse, _normalize_rows(np.asarray(sparse @ projection, dtype=np.float32))

    def save(self, directory: str | Path) -> None:
        """Write ``config.json`` (hyperparameters, vocabularies) and ``weights.npz``.

        Raises:
            NotFittedError: before ``fit``.
            InputError: a custom tokenizer that cannot be recorded (a lambda or bound method).
        """
        projection = self._fitted_projection()
        tokenizer_ref = None
        if self.tokenizer is not None:
            tokenizer_ref = _callable_ref(self.tokenizer)
            if tokenizer_ref is None:
                raise InputError(
                    f"cannot save the custom tokenizer {self.tokenizer!r}: only importable "
                    "module-level functions can be recorded; use a def at module level or the default"
                )
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(
            directory / "weights.npz",
            projection=projection.astype(np.float16),
            idf=self.idf_,
            explained_variance_ratio=self.explained_variance_ratio_,
        )
        # Terms in column order: JSON, not pickle, so a bundle never runs code when loaded.
        word_terms = sorted(self.word_vocabulary_, key=self.word_vocabulary_.__getitem__)
        char_terms = sorted(self.char_vocabulary_, key=self.char_vocabulary_.__getitem__)
        (directory / "vocabulary.json").write_text(
            json.dumps({"word": word_terms, "char": char_terms}, ensure_ascii=False),
            encoding="utf-8",
        )
        _write_config(
            directory,
            {
                "type": self.type_name,
                "spec": self.spec,
                "dim": int(projection.shape[1]),
                "params": {
                    "n_components": self.n_components,
                    "word_ngram_range": list(self.word_ngram_range),
                    "char_ngram_range": list(self.char_ngram_range),
                    "min_df": self.min_df,
                    "max_word_features": self.max_word_features,
                    "max_char_features": self.max_char_features,
                    "max_chars": self.max_chars,
                    "random_state": self.random_state,
                },
                "tokenizer": tokenizer_ref,
            },
        )

    @classmethod
    def load(cls, directory: str | Path, *, tokenizer: Tokenizer | None = None) -> Self:
        """Restore an embedder written by :meth:`save`; ``encode`` output is identical.

        Args:
            directory: what :meth:`save` wrote.
            tokenizer: overrides the recorded tokenizer (needed only when it cannot be imported).

        Raises:
            BundleError: missing or inconsistent files.
        """
        directory = Path(directory)
        config = _read_config(directory, cls.type_name)
        try:
            params = dict(config["params"])
            params["word_ngram_range"] = tuple(params["word_ngram_range"])
            params["char_ngram_range"] = tuple(params["char_ngram_range"])
            if tokenizer is None and config.get("tokenizer"):
                tokenizer = _resolve_ref(config["tokenizer"])
            embedder = cls(**params, tokenizer=tokenizer)
            vocabulary = json.loads((directory / "vocabulary.json").read_text(encoding="utf-8"))
            with np.load(directory / "weights.npz") as weights:
                projection = weights["projection"]
                idf = weights["idf"]
                ratio = weights["explained_variance_ratio"]
        except BundleError:
            raise
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"cannot load the offline embedder in '{directory}': {exc!r}"
            ) from exc
        n_word = len(vocabulary["word"])
        embedder.word_vocabulary_ = {t: i for i, t in enumerate(vocabulary["word"])}
        embedder.char_vocabulary_ = {t: n_word + i for i, t in enumerate(vocabulary["char"])}
        if projection.shape[0] != idf.shape[0] or idf.shape[0] != n_word + len(vocabulary["char"]):
            raise BundleError(
                f"the offline embedder in '{directory}' is inconsistent: vocabulary, IDF and projection sizes differ"
            )
        embedder.idf_ = idf.astype(np.float32)
        embedder.projection_ = np.ascontiguousarray(projection, dtype=np.float32)
        embedder.explained_variance_ratio_ = ratio
        return embedder

    # ----------------------------------------------------------------- internals

    def _check_params(self) -> None:
        for name in ("word_ngram_range", "char_ngram_range"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise InputError(f"{name} must be (lo, hi) with 1 <= lo <= hi, got {(lo, hi)}")
        if self.n_components < 1:
            raise InputError(f"n_components must be >= 1, got {self.n_components}")

    def _fitted_projection(self) -> np.ndarray:
        projection: np.ndarray | None = getattr(self, "projection_", None)
        if projection is None:
            raise NotFittedError(
                "this OfflineEmbedder is not fitted yet; call fit(texts) on the training texts "
                "or OfflineEmbedder.load(dir) first"
            )
        return projection

    def tokens(self, text: str) -> list[str]:
        """The tokens this embedder sees for ``text`` (memoised; reuse them, e.g. for BM25)."""
        return self._tokens(text)

    def _tokens(self, text: str) -> list[str]:
        """Tokens of one text (cut to ``max_chars``), whitespace tokens dropped.

        Memoised per instance: training tokenises every text several times (fit, each
        classifier, and again as the next message's context), and chats repeat short messages.
        """
        cache: dict[str, list[str]] | None = self.__dict__.get("_token_cache")
        if cache is None:
            cache = self.__dict__["_token_cache"] = {}
        tokens = cache.get(text)
        if tokens is None and _JOIN in text and len(text) <= self.max_chars:
            # A context is its turns joined with " | ": jieba cuts at the separator anyway, so
            # its tokens are the turns' (most already memoised) around a "|".
            parts = [self._tokens(part) for part in text.split(_JOIN)]
            tokens = [*parts[0]]
            for part in parts[1:]:
                tokens += ["|", *part]
        if tokens is None:
            tokenize = self.tokenizer or _pipeline_tokens
            tokens = [t for t in tokenize(text[: self.max_chars]) if t and not t.isspace()]
            if len(cache) >= self.token_cache_size:
                cache.clear()
            cache[text] = tokens
        return tokens

    def _sparse(self, docs: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Stacked TF-IDF rows of tokenised docs, computed from the learned state."""
        words, chars = self.word_vocabulary_, self.char_vocabulary_
        word_range, char_range = self.word_ngram_range, self.char_ngram_range
        n_word = len(words)
        indptr = [0]
        indices: list[int] = []
        counts: list[int] = []
        for tokens in docs:
            row: dict[int, int] = {}
            for term in _word_terms(tokens, word_range):
                col = words.get(term)
                if col is not None:
                    row[col] = row.get(col, 0) + 1
            for term in _char_terms_of_tokens(tokens, char_range):
                col = chars.get(term)
                if col is not None:
                    row[col] = row.get(col, 0) + 1
            indices.extend(row)
            counts.extend(row.values())
            indptr.append(len(indices))
        n = len(docs)
        cols = np.asarray(indices, dtype=np.int32)
        data = (np.log(np.asarray(counts, dtype=np.float32)) + 1) * self.idf_[cols]
        rows = np.repeat(np.arange(n), np.diff(indptr))
        # Each block (word, char) of each row to unit norm, then the row itself.
        segment = 2 * rows + (cols >= n_word)
        sums = np.bincount(segment, weights=data * data, minlength=2 * n)
        data /= np.sqrt(sums)[segment].astype(np.float32)
        blocks = (sums.reshape(n, 2) > 0).sum(axis=1)
        data /= np.sqrt(np.maximum(blocks, 1))[rows].astype(np.float32)
        matrix = sp.csr_matrix(
            (data, cols, np.asarray(indptr, dtype=np.int32)), shape=(n, len(self.idf_))
        )
        matrix.sort_indices()
        return matrix


# --------------------------------------------------------------------------- sentence-transformers


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, from a local directory or a hub name.

    The model is loaded on first use (``fit``, ``encode`` or ``dim``); importing
    sentence-transformers takes seconds, so nothing is imported before. ``fit`` only loads the
    model, so errors surface early.

    Args:
        model: a local directory or a hub name (``BAAI/bge-small-zh-v1.5``; needs internet or
            the local Hugging Face cache).
        batch_size: default batch size of :meth:`encode`.
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when available.
        max_seq_length: truncate inputs to this many tokens; ``None`` keeps the model's own.
        copy_weights: whether :meth:`save` copies the model into the saved directory, so a
            bundle is self-contained; ``None`` copies when ``model`` is a local path.
        show_progress_bar: show sentence-transformers' progress bar while encoding.

    Attributes:
        model_: the loaded ``SentenceTransformer``.
    """

    type_name: ClassVar[str] = "sentence-transformers"

    def __init__(
        self,
        model: str,
        batch_size: int = 64,
        device: str | None = None,
        max_seq_length: int | None = None,
        *,
        copy_weights: bool | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.max_seq_length = max_seq_length
        self.copy_weights = copy_weights
        self.show_progress_bar = show_progress_bar

    @property
    def spec(self) -> str:
        return f"st:{self.model}"

    @property
    def dim(self) -> int:
        model = self._loaded()
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        size = getter()
        if size is None:
            size = int(model.encode([""], convert_to_numpy=True).shape[1])
        return int(size)

    def fit(self, texts: Sequence[str]) -> Self:
        """Load the model (nothing is trained) and return ``self``.

        Raises:
            InputError: the model path does not exist or the model cannot be loaded.
            MissingExtraError: sentence-transformers is not installed.
        """
        check_texts(texts)
        self._loaded()
        return self

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        texts = check_texts(texts)
        model = self._loaded()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = model.encode(
            texts,
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=self.show_progress_bar,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def save(self, directory: str | Path, *, copy_weights: bool | None = None) -> None:
        """Write ``config.json`` and, when copying, the model itself into ``directory/model``.

        Args:
            directory: target directory (created if missing).
            copy_weights: overrides the constructor's ``copy_weights``.
        """
        directory = Path(directory)
        copy = copy_weights if copy_weights is not None else self.copy_weights
        if copy is None:
            copy = is_local_source(self.model)
        config: dict[str, Any] = {
            "type": self.type_name,
            "spec": self.spec,
            "model": self.model,
            "bundled": bool(copy),
            "params": {
                "batch_size": self.batch_size,
                "max_seq_length": self.max_seq_length,
            },
        }
        if copy:
            model = self._loaded()
            directory.mkdir(parents=True, exist_ok=True)
            with quiet_transformers():
                model.save(str(directory / "model"))
            config["model"] = "model"
            config["source"] = self.model
        _write_config(directory, config)

    @classmethod
    def load(cls, directory: str | Path, *, device: str | None = None) -> Self:
        """Restore a saved embedder and load its model now (errors surface here).

        Args:
            directory: what :meth:`save` wrote.
            device: where to run it; ``None`` picks CUDA when available.

        Raises:
            BundleError: a missing or broken directory, or a model that cannot be loaded.
        """
        directory = Path(directory)
        config = _read_config(directory, cls.type_name)
        try:
            model = (
                str(directory / config["model"]) if config.get("bundled") else str(config["model"])
            )
            embedder = cls(model, device=device, **config.get("params", {}))
        except (KeyError, TypeError) as exc:
            raise BundleError(f"bad {CONFIG_NAME} in '{directory}': {exc!r}") from exc
        embedder._loaded(error=BundleError)
        return embedder

    def _loaded(self, error: type[CopilotError] = InputError) -> Any:
        """The SentenceTransformer, loaded on first call."""
        model = getattr(self, "model_", None)
        if model is not None:
            return model
        source = check_model_source(self.model, error=error)
        st = import_optional("sentence_transformers", purpose="the sentence-transformers embedder")
        device = resolve_device(self.device)
        try:
            with quiet_transformers():
                model = st.SentenceTransformer(source, device=device)
        except (OSError, ValueError, RuntimeError) as exc:
            raise model_load_error(self.model, exc, error=error) from exc
        if self.max_seq_length is not None:
            model.max_seq_length = self.max_seq_length
        self.model_ = model
        return model
