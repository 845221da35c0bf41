"""API keys and the principal they stand for: who is calling, in which role and scope.

A key is ``cpk_`` plus 43 URL-safe random characters (:func:`generate_key`, 256 bits from
:mod:`secrets`). The database stores only its SHA-256 hash (:func:`hash_key`); the plaintext is
shown once, when the key is created. Roles and scopes::

    guide        sees its own conversations (guide_id == the key's guide)
    supervisor   sees the conversations of its stores (store_id in the key's stores)
    admin        sees everything and may reload the bundle

Example:
    >>> principal = Principal(key_id=1, role="supervisor", guide_id=None, stores=frozenset({"s-3"}))
    >>> principal.can_see("g-1", "s-3"), principal.can_see("g-2", "s-4")
    (True, False)
    >>> principal.require("admin")
    Traceback (most recent call last):
    copilot.errors.ForbiddenError: this API key has role 'supervisor'; this action needs role 'admin'
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from copilot.errors import ForbiddenError

__all__ = [
    "KEY_PREFIX",
    "ROLES",
    "KeyCache",
    "Principal",
    "Role",
    "generate_key",
    "hash_key",
    "require",
]

Role = Literal["guide", "supervisor", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
KEY_PREFIX = "cpk_"
"""Every key starts with this, so a leaked key is easy to recognise (and to scan for)."""


def generate_key() -> str:
    """A new random API key: ``cpk_`` and 43 URL-safe characters (256 bits of entropy)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(plaintext: str) -> str:
    """The SHA-256 hex digest stored in place of a key.

    A fast hash is enough here: keys are long random strings, not passwords, so there is
    nothing to brute-force and every request can afford the lookup.
    """
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The caller behind a valid API key.

    Args:
        key_id: id of the API key (``copilot keys list`` shows it).
        role: ``guide``, ``supervisor`` or ``admin``.
        guide_id: the guide a guide key speaks for; ``None`` for other roles.
        stores: the stores a supervisor key covers; empty for other roles.
    """

    key_id: int
    role: str
    guide_id: str | None = None
    stores: frozenset[str] = frozenset()

    def can_see(self, guide_id: str | None, store_id: str | None) -> bool:
        """Whether this caller may read (or write) a conversation of this guide and store.

        Args:
            guide_id: the conversation's guide (``None`` when it has none).
            store_id: the conversation's store (``None`` when it has none).

        Returns:
            ``True`` for an admin; for a supervisor when ``store_id`` is one of its stores; for
            a guide when ``guide_id`` is its own. A record without the id never matches.
        """
        if self.role == "admin":
            return True
        if self.role == "supervisor":
            return store_id is not None and store_id in self.stores
        if self.role == "guide":
            return guide_id is not None and guide_id == self.guide_id
        return False

    def check_scope(self, guide_id: str | None, store_id: str | None, what: str = "this") -> None:
        """Raise unless :meth:`can_see` allows it.

        Args:
            guide_id: the record's guide.
            store_id: the record's store.
            what: names the record in the message, e.g. ``"conversation 'c-1'"``.

        Raises:
            ForbiddenError: the record is outside this key's scope (the message says why).
        """
        if self.can_see(guide_id, store_id):
            return
        if self.role == "supervisor":
            raise ForbiddenError(
                f"{what} belongs to store {store_id!r}; this API key covers stores "
                f"{', '.join(sorted(self.stores))} only"
            )
        raise ForbiddenError(
            f"{what} belongs to guide {guide_id!r}; this API key may only see guide "
            f"{self.guide_id!r}"
        )

    def require(self, role_or_roles: str | Iterable[str]) -> Principal:
        """Raise unless this caller has one of the roles; returns itself, for chaining.

        Args:
            role_or_roles: a role (``"admin"``) or several (``("supervisor", "admin")``).

        Returns:
            This principal.

        Raises:
            ForbiddenError: the key's role is not among them.
        """
        wanted = [role_or_roles] if isinstance(role_or_roles, str) else list(role_or_roles)
        if self.role not in wanted:
            needs = " or ".join(repr(r) for r in wanted)
            raise ForbiddenError(
                f"this API key has role {self.role!r}; this action needs role {needs}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """``{"role", "guide_id", "stores", "key_id"}`` (stores sorted), as ``GET /v1/me`` shows."""
        return {
            "role": self.role,
            "guide_id": self.guide_id,
            "stores": sorted(self.stores),
            "key_id": self.key_id,
        }


def require(principal: Principal, role_or_roles: str | Iterable[str]) -> Principal:
    """Raise unless ``principal`` has one of the roles (see :meth:`Principal.require`).

    Args:
        principal: the caller.
        role_or_roles: a role or several.

    Returns:
        The principal.

    Raises:
        ForbiddenError: its role is not among them.
    """
    return principal.require(role_or_roles)


class KeyCache:
    """The principals of recently checked API keys, trusted for ``ttl`` seconds.

    Looking a key up costs a database query; a guide's tool sends the same key on every
    message. Entries are keyed by the key's hash and only valid keys are kept, so a key created
    a moment ago works at once, and a revoked key keeps working for at most ``ttl`` seconds.

    Args:
        ttl: seconds an entry is trusted (0 disables the cache).
        max_size: entries kept; the cache is emptied when it would grow past this.

    Example:
        >>> cache = KeyCache(ttl=10)
        >>> cache.put("cpk_abc", Principal(key_id=1, role="admin"))
        >>> cache.get("cpk_abc").role
        'admin'
    """

    def __init__(self, ttl: float, max_size: int = 10_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, plaintext: str) -> Principal | None:
        """The principal of a key checked less than ``ttl`` seconds ago, else ``None``."""
        if self.ttl <= 0:
            return None
        entry = self._entries.get(hash_key(plaintext))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, plaintext: str, principal: Principal) -> None:
        """Trust ``principal`` for this key for the next ``ttl`` seconds."""
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_size:
                self._entries.clear()
            self._entries[hash_key(plaintext)] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        """Forget every entry (after revoking keys in this process)."""
        with self._lock:
            self._entries.clear()
