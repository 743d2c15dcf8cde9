"""Plain value types shared by every layer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

#: The permission that grants every administrative operation.
ADMIN = "admin"
#: Lets its holder read other users' email addresses.
USERS_READ = "users:read"


class Clock(Protocol):
    """Source of the current time; injected so tests never patch time."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()


def utc(timestamp: float) -> datetime:
    """An aware UTC datetime from epoch seconds."""
    return datetime.fromtimestamp(timestamp, tz=UTC)


@dataclass(frozen=True, slots=True)
class User:
    """A registered account as the rest of the program sees it (no hash).

    Attributes:
        id: Stable identifier, a decimal string in tokens (``sub``).
        username: As registered (case preserved).
        email: Address with its domain lower-cased.
        age: Whole years.
        permissions: Sorted permission names.
        created_at: Registration time, UTC.
        email_verified: Whether the address was confirmed from its mailbox.
    """

    id: int
    username: str
    email: str
    age: int
    permissions: tuple[str, ...]
    created_at: datetime
    email_verified: bool = False

    def has(self, permission: str) -> bool:
        """Whether the user holds ``permission`` (``admin`` holds every one)."""
        return ADMIN in self.permissions or permission in self.permissions


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified claims of an access token: who is calling, in which session.

    Attributes:
        user_id: From ``sub``.
        session_id: From ``sid``: the refresh-token family.
        token_id: From ``jti``.
        permissions: From ``permissions``.
        issued_at: From ``iat``, epoch seconds.
        expires_at: From ``exp``, epoch seconds.
        amr: From ``amr``: how the session was authenticated (RFC 8176).
    """

    user_id: int
    session_id: str
    token_id: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    issued_at: float = 0.0
    expires_at: float = 0.0
    amr: frozenset[str] = field(default_factory=frozenset)

    def has(self, permission: str) -> bool:
        """Whether the token grants ``permission`` (``admin`` grants every one)."""
        return ADMIN in self.permissions or permission in self.permissions


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a successful grant returns.

    Attributes:
        access_token: The signed JWT.
        refresh_token: The opaque refresh token (shown once, stored hashed).
        expires_in: Access token lifetime in seconds.
        user_id: Whom the pair belongs to.
        session_id: The refresh-token family.
        device_token: The known-device token of a password login (OWASP
            device cookies), or ``None`` for other grants.
    """

    access_token: str
    refresh_token: str
    expires_in: int
    user_id: int
    session_id: str
    device_token: str | None = None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking, for security events. Built by the API from the request.

    Attributes:
        ip: Client address as resolved (trusted proxies applied).
        user_agent: As sent, possibly hostile text.
        request_id: Correlates the event with the request's log line.
    """

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
