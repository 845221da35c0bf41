"""ScriptIndex: exact and approximate dense search, BM25, rank fusion, adding, removing, excluding,
saving, errors and concurrent use, on real FAISS and bm25s with seeded data."""

from __future__ import annotations

import threading
from collections.abc import Callable, Set
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.errors import BundleError, InputError, NotFittedError
from models.script_index import Hit, IndexKind, ScriptIndex

DIM = 32

# Chinese chat contexts, tokenised as the caller would; "的/吗/亲" are common, product words rare.
CHAT_TOKENS = [
    ["这件", "有", "M码", "吗"],
    ["这件", "羽绒服", "还有", "黑色", "吗"],
    ["快递", "什么", "时候", "到", "呀"],
    ["可以", "便宜", "一点", "吗", "亲"],
    ["有没有", "优惠券", "的"],
    ["羽绒服", "充绒量", "多少", "的"],
    ["退换货", "怎么", "弄", "的", "亲"],
    ["身高", "165", "体重", "50", "穿", "什么", "码"],
    ["面料", "是", "纯棉", "的", "吗"],
    ["好的", "谢谢", "亲"],
]
COMMON = ["的", "吗", "亲", "呀", "好的"]


def unit_rows(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def random_tokens(rng: np.random.Generator, n: int, vocab_size: int = 300) -> list[list[str]]:
    vocab = [f"词{i}" for i in range(vocab_size)]
    # Zipf-like draws: a few tokens are everywhere, most are rare, as in chat.
    p = 1.0 / np.arange(1, vocab_size + 1)
    p /= p.sum()
    return [
        [vocab[j] for j in rng.choice(vocab_size, size=int(rng.integers(1, 9)), p=p)]
        for _ in range(n)
    ]


def brute_force(
    vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int, skip: Set[int] = frozenset()
) -> list[int]:
    scores = vectors @ query
    order = np.lexsort((ids, -scores))
    return [int(ids[i]) for i in order if int(ids[i]) not in skip][:k]


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """800 scripts with non-contiguous ids, random unit vectors and Zipf tokens."""
    rng = np.random.default_rng(0)
    n = 800
    ids = rng.choice(10**9, size=n, replace=False).astype(np.int64)
    return ids, unit_rows(rng, n), random_tokens(rng, n)


@pytest.fixture(scope="module")
def flat_index(corpus: tuple[np.ndarray, np.ndarray, list[list[str]]]) -> ScriptIndex:
    ids, vectors, tokens = corpus
    return ScriptIndex().build(ids, vectors, tokens)


# --------------------------------------------------------------------------- dense


def test_script_index_flat_matches_brute_force(
    flat_index: ScriptIndex, corpus: tuple[np.ndarray, np.ndarray, list[list[str]]]
) -> None:
    ids, vectors, _ = corpus
    assert flat_index.kind_ == "flat" and flat_index.dim == DIM and len(flat_index) == len(ids)
    rng = np.random.default_rng(1)
    for query in unit_rows(rng, 20):
        found = flat_index.search_dense(query, 10)
        assert [i for i, _ in found] == brute_force(vectors, ids, query, 10)
        expected = np.sort(vectors @ query)[::-1][:10]
        np.testing.assert_allclose([s for _, s in found], expected, rtol=1e-5, atol=1e-6)


def low_rank_unit_rows(rng: np.random.Generator, n: int, dim: int, intrinsic: int) -> np.ndarray:
    """Points near an ``intrinsic``-dimensional subspace: neighbours are meaningful there."""
    basis = rng.standard_normal((intrinsic, dim))
    x = rng.standard_normal((n, intrinsic)) @ basis + 0.05 * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_script_index_hnsw_recall_at_10_vs_exact() -> None:
    rng = np.random.default_rng(2)
    points = low_rank_unit_rows(rng, 5_100, 64, intrinsic=8)
    base, queries = points[:5_000], points[5_000:]
    ids = np.arange(5_000, dtype=np.int64) * 2 + 1
    tokens: list[list[str]] = [[] for _ in ids]
    index = ScriptIndex(hnsw_threshold=1_000).build(ids, base, tokens)
    assert index.kind_ == "hnsw"
    recalls = [
        len({i for i, _ in index.search_dense(q, 10)} & set(brute_force(base, ids, q, 10))) / 10
        for q in queries
    ]
    assert np.mean(recalls) >= 0.9


def test_script_index_ivf_finds_itself(
    corpus: tuple[np.ndarray, np.ndarray, list[list[str]]],
) -> None:
    ids, vectors, tokens = corpus
    index = ScriptIndex(kind="ivf", nprobe=4).build(ids, vectors, tokens)
    assert index.kind_ == "ivf"
    for row in (0, 17, 599):
        assert index.search_dense(vectors[row], 1)[0][0] == ids[row]


# --------------------------------------------------------------------------- sparse and fusion


def chat_index() -> ScriptIndex:
    rng = np.random.default_rng(3)
    ids = np.arange(100, 100 + len(CHAT_TOKENS))
    return ScriptIndex().build(ids, unit_rows(rng, len(CHAT_TOKENS)), CHAT_TOKENS)


def test_script_index_bm25_ranks_rare_tokens_first() -> None:
    index = chat_index()
    # "羽绒服" + "充绒量" are rare (doc 105 has both); "的", "吗" are everywhere.
    found = index.search_sparse(["羽绒服", "充绒量", "的", "吗", "吗"], 10)
    assert found[0][0] == 105
    assert found[1][0] == 101  # the other down-jacket context
    assert all(score > 0 for _, score in found)
    # Only documents sharing a token are returned, best first.
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


def test_script_index_rrf_second_in_both_beats_first_in_one() -> None:
    # Dense order: B, A, C; sparse order: C, A (B shares no token). With two candidates a list,
    # A (2nd + 2nd) must beat B (1st dense only) and C (1st sparse only).
    query = np.zeros(DIM, np.float32)
    query[0] = 1.0

    def towards(cosine: float, axis: int) -> np.ndarray:
        v = np.zeros(DIM, np.float32)
        v[0], v[axis] = cosine, np.sqrt(1 - cosine**2)
        return v

    a_id, b_id, c_id = 1, 2, 3
    ids = [b_id, a_id, c_id]
    vectors = np.stack([towards(0.9, 1), towards(0.8, 2), towards(0.1, 3)])
    tokens = [["别的"], ["羽绒服", "亲"], ["羽绒服", "充绒量"]]
    index = ScriptIndex().build(ids, vectors, tokens)
    hits = index.search(query, ["羽绒服", "充绒量"], k=2, candidates=2)
    assert [h.id for h in hits] == [a_id, b_id]  # B and C tie at 1/61: the lower id wins
    a, b = hits
    assert (a.dense_rank, a.sparse_rank) == (2, 2)
    assert a.score == pytest.approx(2 / 62)
    assert a.dense_score == pytest.approx(0.8) and a.sparse_score is not None
    assert (b.dense_rank, b.sparse_rank, b.sparse_score) == (1, None, None)
    assert b.score == pytest.approx(1 / 61) and isinstance(b, Hit)
    assert [i for i, _ in index.search_sparse(["羽绒服", "充绒量"], 2)] == [c_id, a_id]


def test_script_index_one_sided_queries(flat_index: ScriptIndex) -> None:
    rng = np.random.default_rng(4)
    query = unit_rows(rng, 1)[0]
    dense_only = flat_index.search(query, None, k=5)
    assert [h.id for h in dense_only] == [i for i, _ in flat_index.search_dense(query, 5)]
    assert all(h.sparse_rank is None for h in dense_only)
    assert [h.id for h in flat_index.search(query, [], k=5)] == [h.id for h in dense_only]
    sparse_only = flat_index.search(None, ["词3", "词250"], k=5)
    assert [h.id for h in sparse_only] == [
        i for i, _ in flat_index.search_sparse(["词3", "词250"], 5)
    ]
    assert all(h.dense_rank is None for h in sparse_only)
    # An all-zero vector (a text with no known feature) has no dense part either.
    zero = np.zeros(DIM, np.float32)
    assert flat_index.search(zero, ["词3", "词250"], k=5) == sparse_only


@pytest.mark.parametrize(
    ("vector", "tokens"),
    [
        (None, None),
        (None, []),
        (None, ["从没见过的词"]),
        (None, ["从没见过的词", "也没见过"]),
    ],
)
def test_script_index_query_with_nothing_known_returns_nothing(
    flat_index: ScriptIndex, vector: Any, tokens: Any
) -> None:
    assert flat_index.search(vector, tokens) == []
    assert flat_index.search_sparse(tokens or [], 5) == []


def test_script_index_empty_index_and_k_beyond_size() -> None:
    empty = ScriptIndex().build([], np.zeros((0, DIM), np.float32), [])
    assert len(empty) == 0
    assert empty.search(unit_rows(np.random.default_rng(5), 1)[0], ["吗"], k=3) == []
    small = chat_index()
    query = unit_rows(np.random.default_rng(6), 1)[0]
    hits = small.search(query, ["吗"], k=50)
    assert sorted(h.id for h in hits) == list(range(100, 110))
    assert len(small.search_dense(query, 50)) == 10


# --------------------------------------------------------------------------- add, remove, exclude


def test_script_index_add_without_rebuild() -> None:
    rng = np.random.default_rng(7)
    ids = np.arange(200)
    vectors, tokens = unit_rows(rng, 200), random_tokens(rng, 200)
    index = ScriptIndex().build(ids, vectors, tokens)
    faiss_index = index.index_
    new_vectors = unit_rows(rng, 3)
    # Row 0 of the additions copies script 0's tokens: it must score exactly as script 0.
    new_tokens = [list(tokens[0]), ["全新的词", "羽绒服"], []]
    index.add([1000, 1001, 1002], new_vectors, new_tokens)
    assert index.index_ is faiss_index and faiss_index.ntotal == 203 and len(index) == 203
    assert index.stats()["bm25_delta"] == 3
    assert index.search_dense(new_vectors[2], 1)[0][0] == 1002
    assert [i for i, _ in index.search_sparse(["全新的词"], 5)] == [1001]
    scores = dict(index.search_sparse(tokens[0], 300))
    assert scores[1000] == pytest.approx(scores[0], rel=1e-6)
    # Past 10 % of the main BM25 documents, the delta is merged (BM25 only; FAISS untouched).
    index.add(np.arange(2000, 2030), unit_rows(rng, 30), random_tokens(rng, 30))
    assert index.stats()["bm25_delta"] == 0 and index.index_ is faiss_index
    assert 1001 in index and index.search_sparse(["全新的词"], 5)[0][0] == 1001


def test_script_index_add_keeps_flat_past_threshold() -> None:
    rng = np.random.default_rng(8)
    index = ScriptIndex(hnsw_threshold=50).build(np.arange(40), unit_rows(rng, 40), [[]] * 40)
    index.add(np.arange(40, 60), unit_rows(rng, 20), [[]] * 20)
    assert index.kind_ == "flat" and len(index) == 60


def test_script_index_exclude_and_remove_still_return_k(
    corpus: tuple[np.ndarray, np.ndarray, list[list[str]]],
) -> None:
    ids, vectors, tokens = corpus
    index = ScriptIndex().build(ids, vectors, tokens)
    query = unit_rows(np.random.default_rng(9), 1)[0]
    banned = set(brute_force(vectors, ids, query, 30))
    found = index.search_dense(query, 10, exclude=banned)
    assert [i for i, _ in found] == brute_force(vectors, ids, query, 10, skip=banned)
    # A container that is not Sized works as well (filtered while walking the candidates).
    assert index.search_dense(query, 10, exclude=range(0)) == index.search_dense(query, 10)

    sparse_all = [i for i, _ in index.search_sparse(["词0", "词1"], 400)]
    sparse_banned = set(sparse_all[:60])
    sparse = index.search_sparse(["词0", "词1"], 10, exclude=sparse_banned)
    assert [i for i, _ in sparse] == sparse_all[60:70]

    hits = index.search(query, ["词0", "词1"], k=10, exclude=banned | sparse_banned)
    assert len(hits) == 10 and not {h.id for h in hits} & (banned | sparse_banned)

    index.remove(list(banned))
    assert len(index) == len(ids) - 30 and not set(banned) & {i for i in ids if i in index}
    assert [i for i, _ in index.search_dense(query, 10)] == [i for i, _ in found]
    # A removed id can come back (an edited script).
    first = sorted(banned)[0]
    index.add([first], query[None, :], [["回来了"]])
    assert index.search_dense(query, 1)[0][0] == first


# --------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_script_index_save_load_identical(
    kind: IndexKind, corpus: tuple[np.ndarray, np.ndarray, list[list[str]]], tmp_path: Path
) -> None:
    ids, vectors, tokens = corpus
    rng = np.random.default_rng(10)
    index = ScriptIndex(kind=kind, ivf_nlist=16, nprobe=4).build(
        ids[:700], vectors[:700], tokens[:700]
    )
    index.add(ids[700:], vectors[700:], [t + ["新词"] for t in tokens[700:]])  # a BM25 delta
    index.remove(ids[:5].tolist())
    index.save(tmp_path / "index")
    loaded = ScriptIndex.load(tmp_path / "index")
    assert loaded.kind_ == kind and len(loaded) == len(index) and loaded.stats() == index.stats()
    queries = unit_rows(rng, 10)
    for q, t in zip(queries, tokens[:10], strict=True):
        assert loaded.search(q, t + ["新词"], k=10) == index.search(q, t + ["新词"], k=10)
    assert loaded.search_many(queries, tokens[:10]) == index.search_many(queries, tokens[:10])
    # The loaded index keeps working: add and search.
    loaded.add([-1], queries[:1], [["刚加的"]])
    assert loaded.search(queries[0], ["刚加的"], k=1)[0].id == -1


def test_script_index_search_many_matches_search(flat_index: ScriptIndex) -> None:
    rng = np.random.default_rng(11)
    queries = unit_rows(rng, 5)
    queries[2] = 0.0
    tokens: list[list[str] | None] = [["词1"], None, ["词9", "词40"], [], ["没有的词"]]
    batch = flat_index.search_many(queries, tokens, k=7, exclude={1})
    assert batch == [
        flat_index.search(q, t, k=7, exclude={1}) for q, t in zip(queries, tokens, strict=True)
    ]


# --------------------------------------------------------------------------- errors


def _build_with(**changes: Any) -> Callable[[], Any]:
    rng = np.random.default_rng(12)
    args: dict[str, Any] = {"ids": [1, 2, 3], "vectors": unit_rows(rng, 3), "tokens": [["a"]] * 3}
    args.update(changes)
    return lambda: ScriptIndex().build(**args)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (_build_with(ids=[1, 2]), "3 rows"),
        (_build_with(tokens=[["a"]] * 2), "2 token lists"),
        (_build_with(ids=[1, 2, 1]), "more than once: 1"),
        (_build_with(ids=[1.5, 2, 3]), "must be integers"),
        (_build_with(vectors=np.ones((3, DIM), np.float32)), "L2-normalised"),
        (_build_with(vectors=np.full((3, DIM), np.nan, np.float32)), "NaN"),
        (_build_with(vectors=np.zeros(DIM, np.float32)), "2-D"),
        (_build_with(tokens=["这件有M码吗"] * 3), "never tokenises"),
        (_build_with(tokens=[[1]] * 3), "must be a string"),
    ],
)
def test_script_index_build_rejects_bad_input(build: Callable[[], Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build()


def test_script_index_rejects_bad_add_and_query() -> None:
    rng = np.random.default_rng(13)
    index = chat_index()
    with pytest.raises(InputError, match="already in the index: 100"):
        index.add([100], unit_rows(rng, 1), [["a"]])
    with pytest.raises(InputError, match="dimension 8 but the index holds 32"):
        index.add([1], unit_rows(rng, 1, dim=8), [["a"]])
    with pytest.raises(InputError, match="dimension 8"):
        index.search(unit_rows(rng, 1, dim=8)[0], None)
    with pytest.raises(InputError, match="L2-normalised"):
        index.search(np.ones(DIM, np.float32), None)
    with pytest.raises(InputError, match="list of token strings"):
        index.search(None, "这件有M码吗")
    with pytest.raises(InputError, match="k must be a positive integer"):
        index.search(None, ["吗"], k=0)
    with pytest.raises(InputError, match="not in the index"):
        index.remove([999])
    with pytest.raises(InputError, match="unknown index kind"):
        ScriptIndex(kind="annoy").build([1], unit_rows(rng, 1), [[]])  # type: ignore[arg-type]


def test_script_index_not_fitted() -> None:
    index = ScriptIndex()
    assert len(index) == 0
    for call in (
        lambda: index.search(None, ["吗"]),
        lambda: index.search_dense(np.ones(DIM), 1),
        lambda: index.add([1], np.ones((1, DIM)), [[]]),
        lambda: index.dim,
        lambda: index.kind_,
        lambda: index.save("unused"),
    ):
        with pytest.raises(NotFittedError, match="build"):
            call()


def test_script_index_load_missing_or_corrupt(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="cannot load"):
        ScriptIndex.load(tmp_path / "nothing-here")
    chat_index().save(tmp_path / "index")
    (tmp_path / "index" / "dense.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(BundleError, match="cannot load"):
        ScriptIndex.load(tmp_path / "index")
    chat_index().save(tmp_path / "index2")
    (tmp_path / "index2" / "ids.npy").unlink()
    with pytest.raises(BundleError):
        ScriptIndex.load(tmp_path / "index2")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"type": "linear"}')
    with pytest.raises(BundleError, match="not a 'script_index'"):
        ScriptIndex.load(tmp_path / "other")


# --------------------------------------------------------------------------- concurrency


def test_script_index_concurrent_search_while_adding() -> None:
    rng = np.random.default_rng(14)
    index = ScriptIndex().build(np.arange(500), unit_rows(rng, 500), random_tokens(rng, 500))
    queries = unit_rows(rng, 8)
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher(seed: int) -> None:
        local = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                q = queries[int(local.integers(len(queries)))]
                hits = index.search(q, ["词1", "词7", "新"], k=10, exclude={3})
                assert len(hits) == 10 and all(h.id != 3 for h in hits)
                index.search_sparse(["新"], 5)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    try:
        for batch in range(30):  # crosses the BM25 merge threshold more than once
            start = 1000 + batch * 10
            index.add(np.arange(start, start + 10), unit_rows(rng, 10), [["新", "词1"]] * 10)
            if batch % 5 == 0:
                index.remove([start])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert len(index) == 500 + 300 - 6
    assert len(index.search_dense(queries[0], 1_000)) == len(index)  # k beyond size: all
