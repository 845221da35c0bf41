"""Embedders: the shared contract, the offline TF-IDF + SVD default, specs and loading errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from copilot.errors import BundleError, ConfigError, InputError, NotFittedError
from models.embedders import (
    Embedder,
    OfflineEmbedder,
    SentenceTransformerEmbedder,
    load_embedder,
    make_embedder,
)
from tests.models.conftest import jieba_tokenize

ODD_TEXTS = [
    "",
    "😀😀🙏",
    "   ",
    "好" * 10_000,
    "這件還有Ｍ碼嗎？",
    "https://x.cn/a?b=1 13800138000",
]

MakeEmbedder = Callable[[], Embedder]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(params=["offline", "sentence-transformers"])
def make(request: pytest.FixtureRequest) -> MakeEmbedder:
    """A factory of unfitted embedders, one per backend."""
    if request.param == "offline":
        return lambda: OfflineEmbedder(n_components=16, tokenizer=jieba_tokenize)
    st_dir = request.getfixturevalue("tiny_st_dir")
    return lambda: SentenceTransformerEmbedder(str(st_dir), device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def offline(sample_texts: list[str]) -> OfflineEmbedder:
    return OfflineEmbedder(n_components=16, tokenizer=jieba_tokenize).fit(sample_texts)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


# --------------------------------------------------------------------------- the contract


def test_embedder_fit_returns_self(make: MakeEmbedder, sample_texts: list[str]) -> None:
    embedder = make()
    assert embedder.fit(sample_texts) is embedder


def test_embedder_encode_shape_dtype_unit_norm(make: MakeEmbedder, sample_texts: list[str]) -> None:
    embedder = make().fit(sample_texts)
    vectors = embedder.encode(sample_texts[:7], batch_size=3)
    assert vectors.shape == (7, embedder.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, embedder.dim)


def test_embedder_identical_after_save_and_load(
    make: MakeEmbedder, sample_texts: list[str], tmp_path: Path
) -> None:
    embedder = make().fit(sample_texts)
    embedder.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert config["type"] == embedder.type_name
    for loaded in (type(embedder).load(tmp_path), load_embedder(tmp_path)):
        assert type(loaded) is type(embedder)
        assert loaded.dim == embedder.dim
        np.testing.assert_array_equal(loaded.encode(sample_texts), embedder.encode(sample_texts))


def test_embedder_odd_texts_ok(make: MakeEmbedder, sample_texts: list[str]) -> None:
    vectors = make().fit(sample_texts).encode(ODD_TEXTS)
    assert vectors.shape[0] == len(ODD_TEXTS)
    assert np.isfinite(vectors).all()
    norms = np.linalg.norm(vectors, axis=1)
    assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))


@pytest.mark.parametrize("bad", ["这件有M码吗", ["ok", None], [1, 2]])
def test_embedder_encode_rejects_non_text(
    make: MakeEmbedder, sample_texts: list[str], bad: object
) -> None:
    embedder = make().fit(sample_texts)
    with pytest.raises(InputError, match="texts"):
        embedder.encode(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- offline


def test_offline_encode_before_fit_raises() -> None:
    embedder = OfflineEmbedder()
    for call in (
        lambda: embedder.encode(["你好"]),
        lambda: embedder.transform_sparse(["你好"]),
        lambda: embedder.dim,
        lambda: embedder.save("unused"),
    ):
        with pytest.raises(NotFittedError, match="fit"):
            call()


def test_offline_paraphrase_closer_than_unrelated(offline: OfflineEmbedder) -> None:
    a, b, c = offline.encode(["这件有M码吗", "这件还有M码吗", "快递什么时候到"])
    assert _cos(a, b) > _cos(a, c) + 0.3


def test_offline_sparse_paraphrase_closer_than_unrelated(offline: OfflineEmbedder) -> None:
    matrix = offline.transform_sparse(["这件有M码吗", "这件还有M码吗", "快递什么时候到"])
    sims = (matrix @ matrix.T).toarray()
    assert sims[0, 1] > sims[0, 2]
    np.testing.assert_allclose(np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1, 1.0, rtol=1e-5)


def test_offline_same_seed_same_vectors(sample_texts: list[str]) -> None:
    first = OfflineEmbedder(n_components=8, tokenizer=jieba_tokenize).fit(sample_texts)
    second = OfflineEmbedder(n_components=8, tokenizer=jieba_tokenize).fit(sample_texts)
    np.testing.assert_array_equal(first.encode(sample_texts), second.encode(sample_texts))


def test_offline_tfidf_matches_sklearn(offline: OfflineEmbedder, sample_texts: list[str]) -> None:
    """The hand-rolled transform computes what TfidfVectorizer would, block by block."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from models.embedders import _char_terms_of_tokens, _word_terms

    docs = [jieba_tokenize(t) for t in sample_texts + ODD_TEXTS[:2]]
    n_word = len(offline.word_vocabulary_)
    ours = offline.transform_sparse(sample_texts + ODD_TEXTS[:2]).toarray()
    for analyzer, vocab, block in (
        (lambda d: _word_terms(d, (1, 2)), offline.word_vocabulary_, ours[:, :n_word]),
        (lambda d: _char_terms_of_tokens(d, (1, 3)), offline.char_vocabulary_, ours[:, n_word:]),
    ):
        shift = min(vocab.values())
        vectorizer = TfidfVectorizer(
            analyzer=analyzer,
            sublinear_tf=True,
            vocabulary={t: c - shift for t, c in vocab.items()},
        )
        vectorizer.fit(docs[: len(sample_texts)])
        expected = vectorizer.transform(docs).toarray() / np.sqrt(2)  # two unit blocks per row
        np.testing.assert_allclose(block, expected, atol=1e-6)


def test_offline_n_components_clipped_to_data(sample_texts: list[str]) -> None:
    embedder = OfflineEmbedder(tokenizer=jieba_tokenize).fit(sample_texts[:5])
    assert embedder.dim == 4
    assert embedder.encode(["这件有M码吗"]).shape == (1, 4)


@pytest.mark.parametrize(
    ("texts", "message"),
    [(["只有一句"], "at least 2 texts"), (["", " ", ""], "usable terms")],
)
def test_offline_fit_rejects_unusable_corpus(texts: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        OfflineEmbedder(tokenizer=jieba_tokenize).fit(texts)


def test_offline_unsaveable_tokenizer_is_an_input_error(
    sample_texts: list[str], tmp_path: Path
) -> None:
    embedder = OfflineEmbedder(n_components=4, tokenizer=lambda t: list(t)).fit(sample_texts)
    with pytest.raises(InputError, match="module-level"):
        embedder.save(tmp_path)


def test_offline_records_its_tokenizer(offline: OfflineEmbedder, tmp_path: Path) -> None:
    offline.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert config["tokenizer"] == "tests.models.conftest:jieba_tokenize"
    assert config["spec"] == "offline"
    assert OfflineEmbedder.load(tmp_path).tokenizer is jieba_tokenize


def test_offline_default_tokenizer_round_trip(sample_texts: list[str], tmp_path: Path) -> None:
    """The default runs copilot.text's pipeline: traditional and full-width forms fold together."""
    embedder = OfflineEmbedder(n_components=8).fit(sample_texts)
    simplified, traditional = embedder.encode(["这件还有M码吗?", "這件還有Ｍ碼嗎？"])
    np.testing.assert_array_equal(simplified, traditional)
    embedder.save(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))["tokenizer"] is None
    loaded = load_embedder(tmp_path)
    np.testing.assert_array_equal(loaded.encode(sample_texts), embedder.encode(sample_texts))


# --------------------------------------------------------------------------- specs and loading


@pytest.mark.parametrize(
    ("spec", "cls", "expected_spec"),
    [
        ("offline", OfflineEmbedder, "offline"),
        ("st:BAAI/bge-small-zh-v1.5", SentenceTransformerEmbedder, "st:BAAI/bge-small-zh-v1.5"),
        ("st:/models/bge", SentenceTransformerEmbedder, "st:/models/bge"),
    ],
)
def test_make_embedder_parses_spec(spec: str, cls: type[Embedder], expected_spec: str) -> None:
    embedder = make_embedder(spec)
    assert type(embedder) is cls
    assert embedder.spec == expected_spec


@pytest.mark.parametrize("spec", ["", "tfidf", "st:", "ST:foo", "offline:128", "bge-small"])
def test_make_embedder_rejects_unknown_spec(spec: str) -> None:
    with pytest.raises(
        InputError, match=r"valid forms are 'offline' or 'st:<local path or hub name>'"
    ):
        make_embedder(spec)


def test_make_embedder_rejects_unknown_option() -> None:
    with pytest.raises(InputError, match="bad option for embedder 'offline'.*n_dims"):
        make_embedder("offline", n_dims=3)


def test_make_embedder_passes_options() -> None:
    embedder = make_embedder("offline", n_components=32)
    assert isinstance(embedder, OfflineEmbedder)
    assert embedder.n_components == 32


def test_st_missing_model_path_is_an_input_error(sample_texts: list[str]) -> None:
    embedder = make_embedder("st:/no/such/model")
    with pytest.raises(InputError) as info:
        embedder.fit(sample_texts)
    assert str(info.value) == (
        "model path '/no/such/model' does not exist; pass a local directory or a hub name "
        "such as BAAI/bge-small-zh-v1.5 on a machine with internet"
    )


def test_st_uncached_hub_model_offline_is_an_input_error(sample_texts: list[str]) -> None:
    embedder = SentenceTransformerEmbedder("copilot-tests/no-such-model", device="cpu")
    with pytest.raises(
        InputError, match=r"could not load model 'copilot-tests/no-such-model'.*HF_HUB_OFFLINE"
    ):
        embedder.encode(sample_texts)


def test_st_missing_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tiny_st_dir: Path
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'sales-copilot\[transformers\]'"):
        SentenceTransformerEmbedder(str(tiny_st_dir)).fit(["你好"])


@pytest.mark.parametrize("copy", [None, False])
def test_st_save_copies_local_weights_by_default(
    tiny_st_dir: Path, tmp_path: Path, copy: bool | None
) -> None:
    embedder = SentenceTransformerEmbedder(str(tiny_st_dir), device="cpu", copy_weights=copy)
    embedder.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert config["bundled"] is (copy is None)
    assert (tmp_path / "model").is_dir() is (copy is None)
    loaded = SentenceTransformerEmbedder.load(tmp_path)
    expected = tmp_path / "model" if copy is None else tiny_st_dir
    assert loaded.model == str(expected)
    np.testing.assert_array_equal(loaded.encode(["这件有M码吗"]), embedder.encode(["这件有M码吗"]))


def test_st_hub_name_is_not_copied(tmp_path: Path) -> None:
    SentenceTransformerEmbedder("BAAI/bge-small-zh-v1.5").save(tmp_path)  # loads nothing
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert config["model"] == "BAAI/bge-small-zh-v1.5"
    assert config["bundled"] is False


def test_st_max_seq_length_applies(tiny_st_dir: Path) -> None:
    embedder = SentenceTransformerEmbedder(str(tiny_st_dir), device="cpu", max_seq_length=8).fit([])
    assert embedder.model_.max_seq_length == 8
    # [CLS] 这 件 有 m 码 吗 [SEP] fills the 8 tokens: the tail is cut off.
    short, long = embedder.encode(["这件有M码吗", "这件有M码吗" + "好" * 50])
    np.testing.assert_allclose(short, long, atol=1e-6)


def test_load_embedder_missing_dir_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no config.json"):
        load_embedder(tmp_path / "nothing")


def test_load_embedder_unknown_type_is_a_bundle_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"type": "word2vec"}', encoding="utf-8")
    with pytest.raises(BundleError, match="unknown embedder type 'word2vec'"):
        load_embedder(tmp_path)


def test_load_wrong_class_is_a_bundle_error(offline: OfflineEmbedder, tmp_path: Path) -> None:
    offline.save(tmp_path)
    with pytest.raises(BundleError, match="expected 'sentence-transformers'"):
        SentenceTransformerEmbedder.load(tmp_path)


def test_st_bundle_with_missing_model_is_a_bundle_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"type": "sentence-transformers", "model": "model", "bundled": True}),
        encoding="utf-8",
    )
    with pytest.raises(BundleError, match="does not exist"):
        load_embedder(tmp_path)
