"""The one error hierarchy of the product.

::

    CopilotError                 base; never raised itself
    ├── InputError               bad user input: a file, a record, an argument, a label
    │   ├── RecordError          one unreadable record (becomes a quarantine entry)
    │   ├── BrokenInputError     an input file that breaks off part-way (a cut .gz)
    │   └── NotFoundError        an id that names nothing stored (a suggestion, a conversation)
    ├── ConfigError              a bad setting, taxonomy or rubric file
    ├── NotFittedError           a trainable component used before ``fit``
    ├── BundleError              a model bundle that is missing, broken or incompatible
    ├── ForbiddenError           a valid API key used outside its role or scope
    └── LLMError                 the optional LLM layer (``copilot.llm``) failed
        ├── LLMBackendError      the model could not be reached, or kept failing after retries
        └── LLMOutputError       the model's reply was invalid, also after one retry

The CLI maps every ``CopilotError`` to exit code 2 (``InputError``, ``ConfigError``,
``BundleError``) or 1 (anything else) with the message; the server maps them to HTTP
status codes in one handler (``NotFoundError`` 404, ``ForbiddenError`` 403). A message
says what was wrong, the value received, what is valid, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BrokenInputError",
    "BusyError",
    "BundleError",
    "ConfigError",
    "CopilotError",
    "ForbiddenError",
    "InputError",
    "LLMBackendError",
    "LLMError",
    "LLMOutputError",
    "NotFittedError",
    "NotFoundError",
    "RecordError",
]


class CopilotError(Exception):
    """Base class of every error the product raises on purpose."""


class InputError(CopilotError):
    """Input that cannot be used: a file, a record, an argument or a label."""


class RecordError(InputError):
    """One record of an input file that cannot be read.

    Args:
        reason: what was wrong and what is expected.
        line: 1-based line (or row) number in the input, when known.
        raw: the raw record (text or parsed object), kept for the quarantine file.
    """

    def __init__(self, reason: str, *, line: int | None = None, raw: object = None) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.reason = reason
        self.line = line
        self.raw = raw


class BrokenInputError(InputError):
    """An input file that cannot be read past some point (a cut ``.gz``, an I/O error); the
    records before the break were read, so a batch can keep them and report the break."""


class NotFoundError(InputError):
    """An id that names nothing stored: an unknown suggestion, conversation or key."""


class ConfigError(CopilotError):
    """A setting, taxonomy, rubric or rule file that is invalid."""


class BusyError(CopilotError):
    """A shared resource is busy right now (the database with other writes): retry shortly.
    Nothing is wrong with the request or the configuration."""


class NotFittedError(CopilotError, ValueError):
    """A trainable component was used before ``fit`` (or ``load``)."""


class BundleError(CopilotError):
    """A model bundle that is missing, unreadable, or from an incompatible version."""


class ForbiddenError(CopilotError):
    """A valid API key used outside its role (a guide asking for the leaderboard) or its scope
    (a supervisor reading another store's conversation)."""


class LLMError(CopilotError):
    """The optional LLM layer failed; nothing else depends on it."""


class LLMBackendError(LLMError):
    """The model server (or local model) could not answer: unreachable, refused, or still
    failing after the bounded retries. The message names the backend and the last failure."""


class LLMOutputError(LLMError):
    """The model answered, but not with what the prompt's schema asks for, even after one retry
    with the validation error fed back. ``reply`` holds the last reply, ``problems`` why."""

    def __init__(self, message: str, *, reply: str = "", problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reply = reply
        self.problems = problems
