"""The seams between services and storage: small protocols and plain records.

Services depend on these alone; ``bastion.bootstrap`` picks the implementations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bastion.security.ratelimit import RateDecision
from bastion.storage.mailport import NewMail
from bastion.types import User


@dataclass(frozen=True, slots=True)
class StoredUser:
    """A user with the secrets the services need and the API never shows.

    Attributes:
        user: The public part.
        password_hash: Self-describing hash string.
        token_version: Bumped to revoke every access token issued before
            (the ``ver`` claim; permission changes).
        credential_version: Bumped in the same transaction as every change of
            what a session is opened with (password, permissions, factors);
            opening or refreshing a session succeeds only if it is unchanged
            since the user was read.
    """

    user: User
    password_hash: str
    token_version: int
    credential_version: int = 0


@dataclass(frozen=True, slots=True)
class NewUser:
    """What registration stores."""

    username: str
    email: str
    age: int
    password_hash: str
    permissions: tuple[str, ...]
    created_at: float
    email_verified: bool = False


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A stored refresh token, found by the digest of its value.

    Attributes:
        session_id: Its family.
        user_id: The owner.
        expires_at: Epoch seconds.
        used_at: When it was exchanged, or ``None`` while unspent.
        session_revoked: Whether its whole family is dead.
        amr: How the session was authenticated (RFC 8176), carried into
            every access token the family yields.
    """

    session_id: str
    user_id: int
    expires_at: float
    used_at: float | None
    session_revoked: bool
    amr: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Revocation:
    """A durable "tokens before this are dead" mark, kept until they expire.

    Attributes:
        subject: ``"session:<sid>"`` or ``"user:<id>"``.
        min_version: For a user: tokens with a lower ``ver`` are dead. For a
            session: unused (every token of the session is dead).
        expires_at: When every token the mark can apply to has expired.
    """

    subject: str
    min_version: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One security event (OWASP logging vocabulary)."""

    at: float
    type: str
    outcome: str
    user_id: int | None = None
    username: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of ``GET /events``; ``before_id`` is the pagination cursor."""

    type: str | None = None
    user_id: int | None = None
    ip: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class EventCountQuery:
    """Counts of events per type in equal time buckets (the admin charts).

    Attributes:
        since: Start of the first bucket, epoch seconds.
        width: Bucket length in seconds.
        buckets: How many buckets from ``since``.
        types: Only these types (all when empty).
        user_id: Only this user's events.
        ip: Only events from this address.
    """

    since: float
    width: float
    buckets: int
    types: tuple[str, ...] = ()
    user_id: int | None = None
    ip: str | None = None

    @property
    def until(self) -> float:
        """End of the last bucket."""
        return self.since + self.width * self.buckets


@dataclass(frozen=True, slots=True)
class EventCount:
    """``count`` events of ``type`` in bucket number ``bucket`` (from 0)."""

    type: str
    bucket: int
    count: int


@dataclass(frozen=True, slots=True)
class BrowserSessionRecord:
    """A signed-in browser, found by the digest of its cookie.

    Attributes:
        session_id: The session (refresh-token family) it belongs to.
        user_id: Who is signed in.
        created_at: Sign-in time, epoch seconds.
        last_seen_at: Last request seen (updated at most once a minute).
        expires_at: The absolute end, whatever the activity.
    """

    session_id: str
    user_id: int
    created_at: float
    last_seen_at: float
    expires_at: float


class BrowserSessionStore(Protocol):
    """Server-side sessions of the web pages."""

    async def create(
        self,
        *,
        digest: str,
        session_id: str,
        user_id: int,
        now: float,
        expires_at: float,
        ip: str | None,
        user_agent: str | None,
    ) -> None:
        """Store a new browser session."""
        ...

    async def find(self, digest: str, *, now: float) -> BrowserSessionRecord | None:
        """The live session with this digest: unexpired, and its family not
        revoked or expired."""
        ...

    async def touch(self, digest: str, *, now: float) -> None:
        """Record activity."""
        ...

    async def delete(self, digest: str) -> None:
        """Forget one browser session."""
        ...

    async def prune(self, *, before: float, limit: int) -> int:
        """Delete up to ``limit`` sessions whose end is before ``before``."""
        ...

    async def count_active(self, *, now: float, idle_since: float) -> tuple[int, int]:
        """Live API sessions and live browser sessions."""
        ...


class UserStore(Protocol):
    """Accounts. Uniqueness of username and email is the store's to enforce."""

    async def create(self, new: NewUser, mail: Sequence[NewMail] = ()) -> User:
        """Insert, queueing ``mail`` in the same transaction (a mail naming no
        user goes to the new one); raise :class:`bastion.errors.Conflict` if
        a unique value is taken."""
        ...

    async def get(self, user_id: int) -> StoredUser | None:
        """By id."""
        ...

    async def get_by_username(self, username: str) -> StoredUser | None:
        """By username, case-insensitively."""
        ...

    async def search(self, term: str, limit: int, after: str | None = None) -> list[User]:
        """Users whose username contains ``term`` literally, case-insensitively,
        ordered by lower-cased username, from the first one past ``after``."""
        ...

    async def set_permissions(
        self, user_id: int, permissions: tuple[str, ...], revocation: Revocation
    ) -> StoredUser | None:
        """Replace permissions, bump the token version and record ``revocation``."""
        ...

    async def upgrade_hash(self, user_id: int, old_hash: str, new_hash: str) -> bool:
        """Replace ``old_hash`` by a rehash of the same password (login, new
        parameters); ``False`` if the hash changed meanwhile (compare and set,
        so a rehash never undoes a concurrent password change)."""
        ...

    async def replace_password(
        self,
        user_id: int,
        password_hash: str,
        *,
        keep_session: str | None,
        now: float,
        expires_at: float,
    ) -> list[str] | None:
        """Store a new password in one transaction: the hash, a credential
        version bump, and the revocation of every live session but
        ``keep_session`` (``None``: all of them; a reset). Returns the revoked
        session ids, or ``None`` if there is no such user."""
        ...

    async def bump_credential_version(self, user_id: int) -> int | None:
        """Bump the user's credential version; the new value, or ``None`` if
        there is no such user. Sessions being opened from an earlier read of
        the user then fail their check and start over."""
        ...

    async def delete(self, user_id: int, revocation: Revocation) -> bool:
        """Delete the user and its sessions, and record ``revocation``."""
        ...

    async def hash_schemes(self) -> dict[str, int]:
        """How many stored hashes use each scheme (``"argon2"``, ``"bcrypt"``)."""
        ...

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        ...


#: What :meth:`SessionStore.add_token` found: done, the user's credential
#: version moved on (read the user again), or the session is over.
TokenOutcome = Literal["added", "stale", "revoked"]


class SessionStore(Protocol):
    """Sessions (refresh-token families) and their refresh tokens."""

    async def create(
        self,
        *,
        session_id: str,
        user_id: int,
        credential_version: int,
        digest: str,
        now: float,
        expires_at: float,
        amr: Sequence[str] = (),
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> bool:
        """Open a session with its first refresh token, its ``amr`` and client,
        in a transaction that first checks (and locks) the user's credential
        version: ``False``, nothing stored, if it is no longer
        ``credential_version`` or the user is gone."""
        ...

    async def find(self, digest: str) -> RefreshRecord | None:
        """The refresh token with this digest."""
        ...

    async def spend(self, digest: str, *, now: float) -> bool:
        """Mark the token used; ``False`` if it already was (atomic)."""
        ...

    async def add_token(
        self,
        *,
        session_id: str,
        user_id: int,
        credential_version: int,
        digest: str,
        now: float,
        expires_at: float,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> TokenOutcome:
        """Add the next refresh token of a live family, checking the user's
        credential version as :meth:`create` does; note when and from where."""
        ...

    async def revoke(self, session_ids: Sequence[str], *, now: float, expires_at: float) -> None:
        """End sessions and record a revocation of each, in one transaction."""
        ...

    async def active_sessions(self, user_id: int, *, now: float) -> list[str]:
        """Ids of the user's sessions that are neither revoked nor expired."""
        ...


class RevocationStore(Protocol):
    """The durable log of revocations, read by every instance's cache."""

    async def load(self, *, after_id: int, now: float) -> list[tuple[int, Revocation]]:
        """Unexpired revocations with an id above ``after_id``, with their ids,
        in id order."""
        ...


class EventStore(Protocol):
    """Security events."""

    async def add_many(self, events: Sequence[SecurityEvent]) -> None:
        """Insert a batch."""
        ...

    async def query(self, query: EventQuery) -> list[SecurityEvent]:
        """Newest first, filtered."""
        ...

    async def count(self, query: EventCountQuery) -> list[EventCount]:
        """Events per type and time bucket (buckets with none are left out)."""
        ...


@dataclass(frozen=True, slots=True)
class RateRule:
    """One rate limit: ``limit`` hits per ``window`` seconds per client.

    Attributes:
        name: Identifies the rule in keys and headers (``default``, ``login``...).
        limit: Hits allowed in any window.
        window: Window length in seconds.
        fail_closed: With the shared store unreachable, refuse (503) rather
            than fall back to the local limiter.
    """

    name: str
    limit: int
    window: int
    fail_closed: bool = False


class RateLimitStore(Protocol):
    """Counts hits per rule and client."""

    async def hit(self, rule: RateRule, key: str, now: float) -> RateDecision:
        """Count a hit if it fits; raise :class:`bastion.errors.Unavailable`
        when the store cannot be reached."""
        ...


class RevocationBroadcaster(Protocol):
    """Tells other instances about revocations at once (the database log is
    the durable record; this is the fast path)."""

    async def publish(self, marks: Sequence[Revocation]) -> None:
        """Announce ``marks``; never raises (the log is the fallback)."""
        ...


class NullBroadcaster:
    """The broadcaster of a single instance: nobody else to tell."""

    async def publish(self, marks: Sequence[Revocation]) -> None:
        """Do nothing."""


@dataclass(frozen=True, slots=True)
class ThrottleKeys:
    """The keys one login attempt is throttled by.

    Attributes:
        account: The case-folded username (known or not).
        client: The client's rate-limit key (its address, or its /64 for IPv6).
        bucket: Whether the per-client bucket applies (``False`` for clients
            in ``BASTION_THROTTLE_EXEMPT``).
    """

    account: str
    client: str
    bucket: bool = True


class LoginThrottleStore(Protocol):
    """Failure counts per account, per account and client, and per client
    (see :mod:`bastion.security.throttle`). Every method is atomic: with
    several instances sharing the store, concurrent attempts count exactly."""

    async def reserve(self, keys: ThrottleKeys, now: float) -> float:
        """Count the attempt as a failure on every key, or, if any key is
        held back, count nothing and return the seconds to wait (> 0)."""
        ...

    async def refund(self, keys: ThrottleKeys, now: float) -> None:
        """Take back a reservation (the password was right, the login not done)."""
        ...

    async def success(self, keys: ThrottleKeys, now: float) -> None:
        """A completed login: reset the account and its client's pair, and
        take the attempt back out of the client's bucket."""
        ...

    async def locked_until(self, account: str, now: float) -> float | None:
        """Until when the account key is locked, or ``None``."""
        ...

    async def unlock(self, account: str) -> None:
        """Forget the account's failures, from every client."""
        ...


class DeviceTokenStore(Protocol):
    """Known-device tokens (OWASP device cookies), kept as digests, each bound
    to one account and with its own failure budget."""

    async def reserve(self, digest: str, user_id: int, *, budget: int, now: float) -> bool:
        """Count an attempt against the token's budget, atomically, if the
        token exists, is bound to ``user_id`` and has fewer than ``budget``
        failures; ``False`` (nothing counted) otherwise."""
        ...

    async def refund(self, digest: str, user_id: int) -> None:
        """Take back a reservation (the password was right, the login not done)."""
        ...

    async def succeed(self, digest: str, user_id: int, *, now: float) -> None:
        """A completed login with the token: its failures start afresh."""
        ...

    async def issue(self, digest: str, user_id: int, *, now: float, keep: int) -> None:
        """Store a new token for ``user_id``, keeping its ``keep`` most recently
        used ones."""
        ...
