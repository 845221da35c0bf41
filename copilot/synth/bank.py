"""Phrase banks and the product catalogue of the synthetic corpus generator.

A phrase is parsed once into parts: literal text, ``{slot}`` references and ``(a|b|)``
alternations (see ``copilot/data/synth/FORMAT.md``). ``Phrase.render`` draws one surface form.
Phrases are split into a training part and a held-out part by a stable hash of their text, so
an evaluation corpus can use phrasings the models never saw.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml

from copilot.errors import ConfigError

__all__ = [
    "SLOTS",
    "Bank",
    "Phrase",
    "PhraseSplit",
    "Product",
    "load_bank",
    "split_of",
]

PhraseSplit = Literal["all", "train", "heldout"]

SLOTS = frozenset(
    [
        "product",
        "category",
        "attr",
        "concern",
        "size",
        "color",
        "body",
        "price",
        "price2",
        "diff",
        "competitor",
        "courier",
        "days",
        "order",
        "city",
        "person",
        "time",
        "festival",
        "qty",
        "gift",
        "call",
        "selling_point",
        "material",
        "coupon",
        "promo_price",
        "policy",
        "stock_n",
    ]
)

_TOKEN = re.compile(r"\{([a-z_0-9]+)\}|\(([^()]*)\)")
_HELDOUT_SHARE = 5  # one phrase in five is held out


def split_of(text: str) -> Literal["train", "heldout"]:
    """The stable split of a phrase: ``heldout`` for about one phrase in five."""
    return "heldout" if zlib.crc32(text.encode("utf-8")) % _HELDOUT_SHARE == 0 else "train"


class _Slot(str):
    """A ``{slot}`` reference inside a parsed phrase."""


@dataclass(frozen=True, slots=True)
class Phrase:
    """A parsed phrase: literal strings, :class:`_Slot` references and ``tuple`` alternations."""

    source: str
    parts: tuple[str | tuple[str, ...], ...]
    slots: frozenset[str]

    @classmethod
    def parse(cls, source: str, where: str) -> Phrase:
        if source.count("(") != source.count(")"):
            raise ConfigError(f"{where}: unbalanced round brackets in phrase {source!r}")
        parts: list[str | tuple[str, ...]] = []
        slots = set()
        pos = 0
        for match in _TOKEN.finditer(source):
            if match.start() > pos:
                parts.append(source[pos : match.start()])
            slot, alternatives = match.group(1), match.group(2)
            if slot is not None:
                if slot not in SLOTS:
                    raise ConfigError(
                        f"{where}: unknown slot {{{slot}}} in phrase {source!r}; "
                        f"valid slots: {', '.join(sorted(SLOTS))}"
                    )
                slots.add(slot)
                parts.append(_Slot(slot))
            else:
                if "{" in alternatives:
                    raise ConfigError(
                        f"{where}: slots inside alternations are not allowed: {source!r}"
                    )
                parts.append(tuple(alternatives.split("|")))
            pos = match.end()
        if pos < len(source):
            parts.append(source[pos:])
        rest = _TOKEN.sub("", source)
        if any(c in rest for c in "(){}"):
            raise ConfigError(f"{where}: stray bracket or nested alternation in phrase {source!r}")
        return cls(source, tuple(parts), frozenset(slots))

    def render(self, rng: random.Random, fill: Callable[[str], str]) -> str:
        out = []
        seen: set[str] = set()
        for part in self.parts:
            if isinstance(part, _Slot):
                # A slot used twice in one phrase ("M码还是L码") asks for a second value.
                out.append(fill(part + "#2" if part in seen else part))
                seen.add(part)
            elif isinstance(part, str):
                out.append(part)
            else:
                out.append(rng.choice(part))
        return "".join(out)


@dataclass
class Product:
    """One catalogue product."""

    name: str
    category: str
    price: int
    sizes: list[str] = field(default_factory=list)
    colors: list[str] = field(default_factory=list)
    material: str = ""
    attributes: list[str] = field(default_factory=list)
    selling_points: list[str] = field(default_factory=list)
    concerns: list[str] = field(default_factory=list)
    gifts: list[str] = field(default_factory=list)


@dataclass
class Domain:
    """A retail domain: products and the domain's value lists."""

    name: str
    products: list[Product]
    body: list[str]
    coupons: list[str]
    policies: list[str]
    promo_discount: float = 0.9


@dataclass
class Bank:
    """Every part the generator composes messages from."""

    intents: dict[str, dict[str, Any]]  # id -> {cores, leads, tails, domains, come_back}
    actions: dict[str, dict[str, Any]]  # id -> {cores, terse, reopen, domains}
    customer_noise: dict[str, Any]
    guide_noise: dict[str, Any]
    slips: dict[str, list[Phrase]]
    domains: dict[str, Domain]
    rules: dict[str, Any]

    def cores(
        self, side: str, label: str, domain: str, split: PhraseSplit, kind: str = "cores"
    ) -> list[Phrase]:
        """Phrases for ``label`` usable in ``domain``, restricted to ``split``."""
        return _select(self, side, label, domain, split, kind)

    def come_back(self, when: str, split: PhraseSplit) -> list[Phrase]:
        """A customer's promises to come back ``when`` (``hesitation.come_back``), in ``split``."""
        phrases: list[Phrase] = self.intents["hesitation"]["come_back"].get(when, [])
        chosen = phrases if split == "all" else [p for p in phrases if split_of(p.source) == split]
        return chosen or phrases  # never empty while the group has phrases


def _phrases(items: Any, where: str) -> list[Phrase]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"{where}: expected a list of phrases, got {type(items).__name__}")
    return [Phrase.parse(str(item), where) for item in items]


def _section(raw: Mapping[str, Any], where: str, kinds: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {kind: _phrases(raw.get(kind), f"{where}.{kind}") for kind in kinds}
    out["domains"] = {
        d: _phrases(items, f"{where}.domains.{d}")
        for d, items in (raw.get("domains") or {}).items()
    }
    # Promises to come back, grouped by when (customer journeys): {when: [phrases]}.
    out["come_back"] = {
        when: _phrases(items, f"{where}.come_back.{when}")
        for when, items in (raw.get("come_back") or {}).items()
    }
    return out


_selection_cache: dict[tuple[int, str, str, str, str, str], list[Phrase]] = {}


def _select(
    bank: Bank, side: str, label: str, domain: str, split: PhraseSplit, kind: str
) -> list[Phrase]:
    key = (id(bank), side, label, domain, split, kind)
    hit = _selection_cache.get(key)
    if hit is not None:
        return hit
    section = (bank.intents if side == "customer" else bank.actions)[label]
    phrases = list(section.get(kind, []))
    if kind == "cores":
        phrases += section["domains"].get(domain, [])
    chosen = phrases if split == "all" else [p for p in phrases if split_of(p.source) == split]
    _selection_cache[key] = chosen or phrases  # never empty: fall back to every phrase
    return _selection_cache[key]


def _read_yaml(name: str) -> Any:
    path = resources.files("copilot").joinpath(f"data/synth/{name}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read generator data file {name}: {exc}") from exc


def _strings(items: Any) -> list[str]:
    """YAML reads ``38`` or ``2.5`` as numbers; every value the generator writes is text."""
    return [str(item) for item in items or []]


def _noise(raw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        if isinstance(value, dict):
            out[key] = {str(k): _strings(v) for k, v in value.items()}
        else:
            out[key] = _strings(value)
    return out


def _product(raw: dict[str, Any], where: str) -> Product:
    try:
        fields = {k: v for k, v in raw.items() if k in Product.__dataclass_fields__}
        for key in ("sizes", "colors", "attributes", "selling_points", "concerns", "gifts"):
            fields[key] = _strings(fields.get(key))
        for key in ("name", "category", "material"):
            fields[key] = str(fields.get(key) or "")
        fields["price"] = int(fields["price"])
        return Product(**fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: invalid product {raw!r}: {exc}") from exc


@lru_cache(maxsize=1)
def load_bank() -> Bank:
    """Load and check the shipped phrase banks, catalogue and generator rules (cached)."""
    customer = _read_yaml("customer.yaml")
    guide = _read_yaml("guide.yaml")
    catalog = _read_yaml("catalog.yaml")
    rules = _read_yaml("rules.yaml")
    rules["values"] = {key: _strings(items) for key, items in (rules.get("values") or {}).items()}
    intents = {
        label: _section(raw, f"customer.yaml intents.{label}", ("cores", "leads", "tails"))
        for label, raw in customer["intents"].items()
    }
    actions = {
        label: _section(raw, f"guide.yaml actions.{label}", ("cores", "terse", "reopen"))
        for label, raw in guide["actions"].items()
    }
    slips = {
        kind: _phrases(items, f"guide.yaml slips.{kind}") for kind, items in guide["slips"].items()
    }
    domains = {}
    for name, raw in catalog["domains"].items():
        products = [_product(p, f"catalog.yaml domains.{name}") for p in raw["products"]]
        if not products:
            raise ConfigError(f"catalog.yaml: domain {name!r} has no products")
        domains[name] = Domain(
            name=name,
            products=products,
            body=_strings(raw.get("body")),
            coupons=_strings(raw.get("coupons")),
            policies=_strings(raw.get("policies")),
            promo_discount=float(raw.get("promo_discount", 0.9)),
        )
    return Bank(
        intents=intents,
        actions=actions,
        customer_noise=_noise(customer.get("noise")),
        guide_noise=_noise(guide.get("noise")),
        slips=slips,
        domains=domains,
        rules=rules,
    )
