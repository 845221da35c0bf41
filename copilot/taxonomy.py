"""The label taxonomy: customer intents, guide actions and quality dimensions.

The default ships as ``copilot/data/taxonomy.yaml``; a brand may pass its own file.
Every component reads labels from a loaded :class:`Taxonomy`, never from constants.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from copilot.errors import ConfigError, InputError

__all__ = ["Label", "Taxonomy", "default_taxonomy", "load_taxonomy"]


class Label(BaseModel):
    """One label: a stable ASCII id, a Chinese display name and a one-line definition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    definition: str = ""


class Taxonomy(BaseModel):
    """Intents (customer messages), actions (guide messages) and quality dimensions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    intents: tuple[Label, ...]
    actions: tuple[Label, ...]
    dimensions: tuple[Label, ...] = ()
    fallback_intent: str = "other"

    @model_validator(mode="after")
    def _check(self) -> Taxonomy:
        for kind in ("intents", "actions", "dimensions"):
            ids = [label.id for label in getattr(self, kind)]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} ids: {', '.join(dupes)}")
        if len(self.intents) < 2 or len(self.actions) < 2:
            raise ValueError("a taxonomy needs at least two intents and two actions")
        if self.fallback_intent not in self.intent_ids:
            raise ValueError(
                f"fallback_intent {self.fallback_intent!r} is not one of the intents "
                f"({', '.join(self.intent_ids)})"
            )
        return self

    @property
    def intent_ids(self) -> tuple[str, ...]:
        return tuple(label.id for label in self.intents)

    @property
    def action_ids(self) -> tuple[str, ...]:
        return tuple(label.id for label in self.actions)

    @property
    def dimension_ids(self) -> tuple[str, ...]:
        return tuple(label.id for label in self.dimensions)

    def name_of(self, label_id: str) -> str:
        """The Chinese display name of any label id (the id itself when unknown)."""
        for label in (*self.intents, *self.actions, *self.dimensions):
            if label.id == label_id:
                return label.name
        return label_id

    def check(self, kind: str, label_id: str, where: str = "") -> str:
        """Return ``label_id`` if it is a valid ``kind`` ('intent' or 'action') label.

        Raises:
            InputError: naming the bad value, where it was found and the closest valid label.
        """
        valid = self.intent_ids if kind == "intent" else self.action_ids
        if label_id in valid:
            return label_id
        close = difflib.get_close_matches(str(label_id), valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        at = f" {where}" if where else ""
        raise InputError(
            f"unknown {kind} label {label_id!r}{at}; valid {kind} labels are: "
            f"{', '.join(valid)}{hint}"
        )


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Load and validate a taxonomy YAML file.

    Raises:
        ConfigError: the file is missing, not YAML, or not a valid taxonomy.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"taxonomy file {str(path)!r} does not exist") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read taxonomy file {str(path)!r}: {exc}") from exc
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid taxonomy file {str(path)!r}: {exc}") from exc


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    """The taxonomy that ships with the product."""
    text = resources.files("copilot").joinpath("data/taxonomy.yaml").read_text(encoding="utf-8")
    return Taxonomy.model_validate(yaml.safe_load(text))
