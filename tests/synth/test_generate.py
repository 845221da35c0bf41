"""The synthetic corpus: reproducible, labelled, varied, and driven by guide behaviour."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from statistics import median

import pytest

from copilot.schema import Conversation
from copilot.synth import generate, load_bank, split_of
from copilot.taxonomy import default_taxonomy

N = 3000


@pytest.fixture(scope="module")
def corpus() -> list[Conversation]:
    return list(generate(N, seed=5))


def _labelled(corpus: list[Conversation]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    intents: dict[str, set[str]] = defaultdict(set)
    actions: dict[str, set[str]] = defaultdict(set)
    for conversation in corpus:
        assert conversation.labels is not None
        for i, label in conversation.labels.intents.items():
            intents[label].add(conversation.messages[i].text)
        for i, label in conversation.labels.actions.items():
            actions[label].add(conversation.messages[i].text)
    return intents, actions


def test_generate_same_seed_same_bytes() -> None:
    first = b"\n".join(c.to_json() for c in generate(200, seed=9))
    second = b"\n".join(c.to_json() for c in generate(200, seed=9))
    other = b"\n".join(c.to_json() for c in generate(200, seed=10))
    assert first == second
    assert first != other


def _fingerprint(conversations: Iterable[Conversation]) -> str:
    """A hash of what the generator decides (not of how the schema serialises it)."""
    digest = hashlib.sha256()
    for c in conversations:
        assert c.outcome is not None and c.labels is not None
        record = {
            "ids": [c.conversation_id, c.guide_id, c.customer_id, c.store_id, c.channel],
            "messages": [[m.role, m.text, m.ts.isoformat() if m.ts else None] for m in c.messages],
            "outcome": [c.outcome.converted, c.outcome.order_amount],
            "intents": sorted(c.labels.intents.items()),
            "actions": sorted(c.labels.actions.items()),
            "meta": c.meta,
        }
        digest.update(json.dumps(record, ensure_ascii=False, sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


@pytest.mark.parametrize(
    ("n", "seed", "split", "expected"),
    [
        (300, 9, "all", "1cc1e87c47f7505d02ad2406accf751ad82596e498b6128209e2ec96e1bb9f67"),
        (100, 4, "heldout", "e49d91f3c08c329624fabd5ccb6678f8aae015590e90e78f5738a68d5e09a748"),
    ],
)
def test_generate_output_is_unchanged(n: int, seed: int, split: str, expected: str) -> None:
    # Corpora and trained bundles must stay reproducible: these are the bytes generate() made
    # before customer journeys were added. A deliberate change to the phrase banks' existing
    # parts or to the simulation changes them; then update the hashes in the same commit.
    assert _fingerprint(generate(n, seed=seed, split=split)) == expected  # type: ignore[arg-type]


def test_generate_labels_every_message_with_a_taxonomy_label(corpus: list[Conversation]) -> None:
    taxonomy = default_taxonomy()
    for conversation in corpus:
        assert conversation.labels is not None
        for i, message in enumerate(conversation.messages):
            table = (
                conversation.labels.intents
                if message.role == "customer"
                else conversation.labels.actions
            )
            assert i in table, f"{conversation.conversation_id} message {i} has no label"
        assert set(conversation.labels.intents.values()) <= set(taxonomy.intent_ids)
        assert set(conversation.labels.actions.values()) <= set(taxonomy.action_ids)


def test_generate_covers_every_label_with_forty_surface_forms(corpus: list[Conversation]) -> None:
    intents, actions = _labelled(corpus)
    taxonomy = default_taxonomy()
    for label in taxonomy.intent_ids:
        assert len(intents[label]) >= 40, f"intent {label}: {len(intents[label])} forms"
    for label in taxonomy.action_ids:
        assert len(actions[label]) >= 40, f"action {label}: {len(actions[label])} forms"


def test_bank_has_many_distinct_core_phrasings_per_label() -> None:
    # Surface variety must come from many phrasings, not one template with noise on top.
    bank = load_bank()
    for label, section in bank.intents.items():
        assert len(section["cores"]) >= 40, label
    for label, section in bank.actions.items():
        assert len(section["cores"]) >= 40, label


def test_generate_conversations_have_2_to_40_messages(corpus: list[Conversation]) -> None:
    lengths = [len(c.messages) for c in corpus]
    assert min(lengths) >= 2
    assert max(lengths) <= 40
    assert max(lengths) >= 15, "some conversations should be long"
    assert Counter(lengths)[2] > 0, "some conversations should be a single exchange"


def test_generate_meta_marks_synthetic_domain_and_skill(corpus: list[Conversation]) -> None:
    assert all(c.meta["synthetic"] is True for c in corpus)
    assert {c.meta["domain"] for c in corpus} >= {"apparel", "beauty", "baby"}
    assert {c.meta["guide_skill"] for c in corpus} == {"poor", "average", "good", "star"}
    # A guide keeps one skill and one store across the corpus.
    seen: dict[str, tuple[str, str | None]] = {}
    for c in corpus:
        assert c.guide_id is not None
        assert seen.setdefault(c.guide_id, (c.meta["guide_skill"], c.store_id)) == (
            c.meta["guide_skill"],
            c.store_id,
        )


def test_generate_conversion_rises_with_guide_skill(corpus: list[Conversation]) -> None:
    won: dict[str, list[bool]] = defaultdict(list)
    for c in corpus:
        assert c.outcome is not None
        won[c.meta["guide_skill"]].append(c.outcome.converted)
        if c.outcome.converted:
            assert c.outcome.order_amount and c.outcome.order_amount > 0
    rate = {skill: sum(v) / len(v) for skill, v in won.items()}
    assert rate["poor"] < rate["average"] < rate["good"]
    assert rate["star"] > rate["poor"] + 0.2


def test_generate_timestamps_increase_with_realistic_guide_latency(
    corpus: list[Conversation],
) -> None:
    latency: dict[str, list[float]] = defaultdict(list)
    for c in corpus:
        stamps = [m.ts for m in c.messages]
        assert all(t is not None for t in stamps)
        assert all(a <= b for a, b in zip(stamps, stamps[1:], strict=False))  # type: ignore[operator]
        for prev, cur in zip(c.messages, c.messages[1:], strict=False):
            if prev.role == "customer" and cur.role == "guide":
                latency[c.meta["guide_skill"]].append((cur.ts - prev.ts).total_seconds())  # type: ignore[operator]
    assert median(latency["star"]) < median(latency["average"]) < median(latency["poor"])
    assert median(latency["star"]) < 120


def test_generate_has_mixed_intents_noise_and_compliance_slips(corpus: list[Conversation]) -> None:
    texts = [m.text for c in corpus for m in c.messages if m.role == "customer"]
    assert sum(len(c.meta["mixed_intents"]) for c in corpus) > 50
    assert sum(len(c.meta["compliance_slips"]) for c in corpus) > 20
    assert any(re.search(r"\[[\u4e00-\u9fff]{1,4}\]", t) for t in texts), "stickers like [微笑]"
    assert any(re.search("[\U0001f300-\U0001faff]", t) for t in texts), "emoji"
    assert any(re.search("[Ａ-Ｚａ-ｚ０-９]", t) for t in texts), "full-width characters"
    assert any(re.search("[們這個嗎還麼]", t) for t in texts), "traditional characters"
    assert any(re.search(r"\d{15,}", t) for t in texts), "raw order numbers for the masker"


def test_generate_skilled_guides_slip_less(corpus: list[Conversation]) -> None:
    slips: dict[str, list[int]] = defaultdict(list)
    for c in corpus:
        slips[c.meta["guide_skill"]].append(len(c.meta["compliance_slips"]))
    assert sum(slips["poor"]) / len(slips["poor"]) > 3 * sum(slips["good"]) / len(slips["good"])


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_generate_phrase_split_draws_only_its_own_phrases(split: str) -> None:
    bank = load_bank()
    for label in bank.intents:
        phrases = bank.cores("customer", label, "apparel", split)  # type: ignore[arg-type]
        assert phrases and all(split_of(p.source) == split for p in phrases), label
    conversations = list(generate(50, seed=1, split=split))  # type: ignore[arg-type]
    assert all(c.meta["phrase_split"] == split for c in conversations)


def test_split_of_holds_out_about_a_fifth() -> None:
    bank = load_bank()
    sources = [p.source for s in bank.intents.values() for p in s["cores"]]
    share = sum(split_of(s) == "heldout" for s in sources) / len(sources)
    assert 0.12 < share < 0.28


def test_generated_guides_call_the_shops_items_ours(corpus: list[Conversation]) -> None:
    guide = [m.text for c in corpus for m in c.messages if m.role == "guide"]
    customer = [m.text for c in corpus for m in c.messages if m.role == "customer"]
    assert not [t for t in guide if re.search("你们家|你家这款|你们这个", t)]
    assert any("我们家" in t or "咱家这款" in t for t in guide)
    assert any("你们家" in t for t in customer)  # customers still speak of 你们家
