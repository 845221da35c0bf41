"""Lazy imports of heavy optional dependencies, and the input checks the model modules share.

torch, transformers and sentence-transformers cost seconds to import and are an optional
extra (``pip install 'sales-copilot[transformers]'``), so the model modules import them here,
where they are used, and turn a missing package or an unreachable model into a
:mod:`copilot.errors` error with a message a user can act on.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

from copilot.errors import ConfigError, CopilotError, InputError

__all__ = [
    "MissingExtraError",
    "check_model_source",
    "check_texts",
    "import_optional",
    "is_local_source",
    "model_load_error",
    "quiet_transformers",
    "resolve_device",
]

# import name -> (pip distribution, extra of sales-copilot that installs it)
_EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "transformers"),
    "transformers": ("transformers", "transformers"),
    "sentence_transformers": ("sentence-transformers", "transformers"),
}

# owner/name or a bare name, the forms the Hugging Face hub accepts.
_HUB_NAME = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")

_HUB_EXAMPLE = "BAAI/bge-small-zh-v1.5"


class MissingExtraError(ConfigError, ImportError):
    """An optional package needed by the requested backend is not installed."""


def import_optional(module: str, *, purpose: str) -> ModuleType:
    """Import ``module``, or raise an error naming the extra that installs it.

    Args:
        module: the import name, e.g. ``"sentence_transformers"``.
        purpose: what needs it, for the message, e.g. ``"the sentence-transformers embedder"``.

    Returns:
        The imported module.

    Raises:
        MissingExtraError: the package (or one it imports) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        dist, extra = _EXTRAS.get(module.split(".")[0], (module, "transformers"))
        raise MissingExtraError(
            f"{purpose} needs the package '{dist}', which could not be imported ({exc}); "
            f"install it with: pip install 'sales-copilot[{extra}]' "
            "(install torch==2.13.0 first, as the Makefile does)"
        ) from None


def is_local_source(source: str) -> bool:
    """Whether ``source`` names a local path rather than a hub model name."""
    if os.path.exists(source):
        return True
    return source.startswith(("/", "./", "../", "~", ".\\")) or not _HUB_NAME.match(source)


def check_model_source(source: str, *, error: type[CopilotError] = InputError) -> str:
    """Check a pretrained-model source before it is loaded; returns it (``~`` expanded).

    A source that exists locally or looks like a hub name passes; a path that does not
    exist raises ``error``.
    """
    if not source or not source.strip():
        raise error(
            "model path is empty; pass a local directory or a hub name such as " + _HUB_EXAMPLE
        )
    expanded = os.path.expanduser(source)
    if os.path.exists(expanded):
        if not os.path.isdir(expanded):
            raise error(
                f"model path '{source}' is a file; pass the directory that holds the model "
                "(config.json, weights and tokenizer files)"
            )
        return expanded
    if is_local_source(source):
        raise error(
            f"model path '{source}' does not exist; pass a local directory or a hub name "
            f"such as {_HUB_EXAMPLE} on a machine with internet"
        )
    return source


def model_load_error(
    source: str, exc: BaseException, *, error: type[CopilotError] = InputError
) -> CopilotError:
    """Turn a failure to load a pretrained model into a short, actionable error."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if Path(source).is_dir():
        return error(
            f"could not load the model in '{source}': {reason}; the directory must hold a "
            "model saved with save_pretrained (config.json, weights, tokenizer files)"
        )
    offline = (
        os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    )
    where = (
        "the hub is switched off (HF_HUB_OFFLINE=1) and it is not in the local cache"
        if offline
        else "it could not be found or downloaded"
    )
    return error(
        f"could not load model '{source}': {where} ({reason}); download it on a machine with "
        "internet and pass its local directory instead"
    )


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' info logs and progress bars for the duration (restored after).

    Loading a base checkpoint into a classification model logs a "missing weights" report
    for the new head, which is expected and only alarms users.
    """
    tlogging = importlib.import_module("transformers.utils.logging")
    level = tlogging.get_verbosity()
    bars = tlogging.is_progress_bar_enabled()
    tlogging.set_verbosity_error()
    tlogging.disable_progress_bar()
    try:
        yield
    finally:
        tlogging.set_verbosity(level)
        if bars:
            tlogging.enable_progress_bar()


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list, or an InputError naming what is wrong (a bare string, a non-str item)."""
    if isinstance(texts, str):
        raise InputError("texts must be a list of strings, got a single string; wrap it: [text]")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InputError(f"texts[{i}] is {type(text).__name__}, expected str")
    return out


def resolve_device(device: str | None) -> str:
    """``device``, or ``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    if device is not None:
        return device
    torch = import_optional("torch", purpose="running a transformer model")
    return "cuda" if torch.cuda.is_available() else "cpu"
