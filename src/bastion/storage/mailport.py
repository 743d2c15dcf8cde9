"""The seams of mail and account recovery: the transport port, the outbox and
one-time token stores, and their records.

Kept apart from ``storage/protocols.py`` so that the mail feature is one
place to read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

#: Outbox row states. ``dropped``: an intent that resolved to no mail (an
#: unknown address, an address already verified).
PENDING = "pending"
SENT = "sent"
ABANDONED = "abandoned"
DROPPED = "dropped"


class MailTransport(Protocol):
    """Delivers one composed message: SMTP, a Maildir, or an embedding app's own.

    ``send`` returns once the message is accepted and raises any exception
    when it was not; the courier retries it later.
    """

    async def send(self, message: EmailMessage) -> None:
        """Hand ``message`` (with ``From`` and ``To`` set) to the mail system."""
        ...


@dataclass(frozen=True, slots=True)
class NewMail:
    """A mail to queue.

    Attributes:
        kind: The template (``reset``, ``verify``, ``password_changed``...).
        user_id: The recipient account; ``None`` when it is resolved from
            ``address`` by the courier (or for a new user, set by the store).
        address: The normalised address an intent names (the per-address
            limit counts it) or the recipient of a mail to no account.
        data: Non-secret extras for the template (a new address...).
    """

    kind: str
    user_id: int | None = None
    address: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A claimed outbox row.

    Attributes:
        id: Row id.
        kind: The template.
        user_id: The account, when known.
        address: The normalised address of an intent.
        data: Non-secret extras, including the request context.
        payload: The sealed composed mail, once composed (token mails only).
        attempts: Failed attempts so far.
        created_at: When it was queued.
    """

    id: int
    kind: str
    user_id: int | None
    address: str | None
    data: dict[str, Any]
    payload: str | None
    attempts: int
    created_at: float


@dataclass(frozen=True, slots=True)
class OnetimeRecord:
    """A live one-time token, found by its digest.

    Attributes:
        user_id: Its owner.
        purpose: ``reset``, ``verify`` or ``email_change``.
        data: What it was issued for (the address it confirms).
        expires_at: Epoch seconds.
    """

    user_id: int
    purpose: str
    data: dict[str, Any]
    expires_at: float


@dataclass(frozen=True, slots=True)
class Recipient:
    """The account an address belongs to, as the courier needs it."""

    user_id: int
    username: str
    email: str
    email_verified: bool


class OutboxStore(Protocol):
    """The durable queue of mail."""

    async def add(self, mails: list[NewMail], *, now: float) -> list[int]:
        """Queue ``mails`` in one transaction; returns their ids."""
        ...

    async def request(
        self, mail: NewMail, *, now: float, per_hour: int, also: tuple[NewMail, ...] = ()
    ) -> bool:
        """Queue ``mail`` unless ``per_hour`` of its kind for its address were
        queued in the last hour, and then ``also`` in the same transaction;
        ``True`` if queued."""
        ...

    async def claim(
        self, *, worker: str, now: float, lease: float, limit: int, only: int | None = None
    ) -> list[OutboxRow]:
        """Take up to ``limit`` due rows for ``lease`` seconds (each row goes
        to one worker); ``only`` restricts the claim to one row id."""
        ...

    async def save_payload(self, row_id: int, worker: str, payload: str) -> None:
        """Keep the composed (sealed) mail of a claimed row for its retries."""
        ...

    async def finish(
        self,
        row_id: int,
        worker: str,
        *,
        status: str,
        now: float,
        attempts: int | None = None,
        error: str | None = None,
    ) -> bool:
        """Mark a claimed row sent, dropped or abandoned and erase its payload
        (``False`` if it is no longer this worker's)."""
        ...

    async def retry_later(
        self, row_id: int, worker: str, *, attempts: int, at: float, error: str
    ) -> None:
        """Count a failed attempt and release the row until ``at``."""
        ...

    async def status(self, row_id: int) -> tuple[str, int, str | None] | None:
        """``(status, attempts, last_error)`` of a row."""
        ...

    async def prune(self, now: float, batch: int) -> int:
        """Remove up to ``batch`` finished rows that no limit still counts."""
        ...


class OnetimeTokenStore(Protocol):
    """One-time tokens, by keyed digest."""

    async def issue(
        self,
        *,
        digest: str,
        purpose: str,
        user_id: int,
        data: dict[str, Any],
        now: float,
        expires_at: float,
    ) -> None:
        """Store a new token and void the user's older ones of ``purpose``."""
        ...

    async def find(
        self, digest: str, purposes: frozenset[str], *, now: float
    ) -> OnetimeRecord | None:
        """The live (unused, unexpired) token with ``digest``, without spending it."""
        ...

    async def prune(self, now: float, batch: int) -> int:
        """Remove up to ``batch`` expired or spent tokens."""
        ...


class RecoveryStore(Protocol):
    """The transactions of account recovery."""

    async def recipient(self, address: str) -> Recipient | None:
        """The account whose address is ``address`` (any case)."""
        ...

    async def email_taken(self, address: str) -> bool:
        """Whether some account has ``address`` (any case)."""
        ...

    async def reset_password(
        self, digest: str, *, password_hash: str, now: float, notice: NewMail
    ) -> OnetimeRecord | None:
        """Spend a reset token, store the hash and queue ``notice``, atomically."""
        ...

    async def confirm_email(self, digest: str, *, now: float) -> OnetimeRecord | None:
        """Spend a verification or email-change token and apply it, atomically."""
        ...
