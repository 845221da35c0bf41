"""Fixtures for the model tests: a tiny BERT built locally (nothing downloads) and sample texts."""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import jieba
import pytest

# Retail chat lines: sizes, stock, price, delivery, greetings.
SAMPLE_TEXTS = [
    "在吗？这件有M码吗",
    "这件还有M码吗",
    "这件衣服有L码吗",
    "黑色的还有货吗",
    "白色还有库存吗",
    "亲，M码有货哦",
    "快递什么时候到",
    "我的快递到哪了",
    "今天下单明天能发货吗",
    "什么时候发货呀",
    "可以便宜一点吗",
    "能不能再优惠点",
    "这个价格太贵了",
    "有没有优惠券",
    "满减活动还有吗",
    "好的，谢谢",
    "谢谢亲，我再看看",
    "可以退换货吗",
    "不合适能退吗",
    "七天无理由退货吗",
    "身高165体重50穿什么码",
    "160cm 45kg 穿S码合适吗",
    "面料是纯棉的吗",
    "会起球吗",
    "洗了会缩水吗",
    "这款有别的颜色吗",
    "有优惠吗亲",
    "包邮吗",
    "给我推荐一件连衣裙",
    "这个外套保暖吗",
]


def jieba_tokenize(text: str) -> list[str]:
    """The tests' own tokenizer, so they do not depend on copilot.text: NFKC, lowercase, jieba."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return [t for t in jieba.lcut(folded) if not t.isspace()]


def _vocab(texts: list[str]) -> dict[str, int]:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens += [f"##{c}" for c in string.ascii_lowercase + string.digits]
    tokens += list("，。？！、：；（）～…“”")
    tokens += sorted({c for text in texts for c in text if "\u4e00" <= c <= "\u9fff"})
    tokens += [chr(code) for code in range(0x4E00, 0x4E00 + 2500)]
    vocab: dict[str, int] = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))
    return vocab


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: the tiny models gain nothing from more, and on a shared 2-core
    machine spinning intra-op threads make training many times slower under load."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sample_texts() -> list[str]:
    return list(SAMPLE_TEXTS)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with a local character vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-bert")
    vocab = _vocab(SAMPLE_TEXTS)
    # transformers 5 ignores vocab_file=; the vocabulary must be passed as a dict.
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=128)
    tokens = tokenizer.tokenize("在吗？这件还有M码吗，160cm穿什么码")
    assert tokens.count("[UNK]") <= 1, tokens
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_st_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT as a sentence-transformers model (mean pooling), saved."""
    from sentence_transformers import SentenceTransformer

    directory = tmp_path_factory.mktemp("tiny-st")
    SentenceTransformer(str(tiny_bert_dir), device="cpu").save(str(directory))
    return directory
