"""Storage seams of multi-factor authentication, passkeys and the session list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class TotpRecord:
    """A user's TOTP factor.

    Attributes:
        sealed_secret: The encrypted shared secret.
        confirmed: Whether enrolment was confirmed (TOTP is on).
        last_step: Highest time step accepted so far (-1: none).
    """

    sealed_secret: str
    confirmed: bool
    last_step: int


@dataclass(frozen=True, slots=True)
class MfaSummary:
    """``GET /users/me/mfa``."""

    totp: bool
    passkeys: int
    recovery_codes_left: int

    @property
    def enabled(self) -> bool:
        """SPEC: MFA is on with TOTP on or at least one passkey."""
        return self.totp or self.passkeys > 0


@dataclass(frozen=True, slots=True)
class PasskeyRecord:
    """A registered WebAuthn credential."""

    id: str
    user_id: int
    credential_id: str
    public_key: bytes
    sign_count: int
    user_handle: str
    name: str
    backed_up: bool
    created_at: float
    last_used_at: float | None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One live session as the session list shows it."""

    id: str
    created_at: float
    last_used_at: float
    ip: str | None
    user_agent: str | None
    amr: tuple[str, ...]


class MfaStore(Protocol):
    """TOTP factors and recovery codes."""

    async def summary(self, user_id: int) -> MfaSummary:
        """What the user has enrolled."""
        ...

    async def get_totp(self, user_id: int) -> TotpRecord | None:
        """The user's TOTP factor, pending or confirmed."""
        ...

    async def put_pending_totp(self, user_id: int, sealed_secret: str, *, now: float) -> bool:
        """Start (or restart) an enrolment; ``False`` if TOTP is already on."""
        ...

    async def enable_totp(
        self, user_id: int, *, step: int, code_digests: Sequence[str], now: float
    ) -> bool:
        """Confirm the pending factor at ``step`` and store a new set of recovery
        codes, in one transaction; ``False`` if nothing was pending."""
        ...

    async def advance_step(self, user_id: int, step: int) -> bool:
        """Accept ``step`` if it is later than the last one (atomic: of two
        concurrent uses of one code, exactly one gets ``True``)."""
        ...

    async def disable_totp(self, user_id: int, *, drop_codes: bool) -> bool:
        """Remove the TOTP factor (and the recovery codes if asked)."""
        ...

    async def replace_codes(self, user_id: int, digests: Sequence[str], *, now: float) -> None:
        """Store a new set of recovery codes; the old set stops working."""
        ...

    async def use_code(self, user_id: int, digest: str, *, now: float) -> bool:
        """Spend an unused recovery code (atomic)."""
        ...

    async def reset(self, user_id: int) -> bool:
        """Remove every factor: TOTP, recovery codes, passkeys."""
        ...


class PasskeyStore(Protocol):
    """WebAuthn credentials."""

    async def add(self, record: PasskeyRecord) -> None:
        """Store a new credential; :class:`bastion.errors.Conflict` if its id is known."""
        ...

    async def of_user(self, user_id: int) -> list[PasskeyRecord]:
        """The user's credentials, oldest first."""
        ...

    async def find(self, credential_id: str) -> PasskeyRecord | None:
        """By the credential id (base64url)."""
        ...

    async def record_use(
        self, passkey_id: str, *, old_count: int, new_count: int, now: float
    ) -> bool:
        """Move the sign count from ``old_count`` (atomic; ``False`` if it moved meanwhile)."""
        ...

    async def delete(self, user_id: int, passkey_id: str) -> bool:
        """Remove one of the user's credentials."""
        ...


class ChallengeStore(Protocol):
    """Short-lived, single-use ceremony state: mfa_tokens, WebAuthn challenges.

    Keys are digests of the secret values, never the values.
    """

    async def put(self, key: str, data: dict[str, Any], *, expires_at: float) -> None:
        """Store ``data`` until ``expires_at``."""
        ...

    async def get(self, key: str, *, now: float) -> dict[str, Any] | None:
        """The live entry, left in place."""
        ...

    async def take(self, key: str, *, now: float) -> dict[str, Any] | None:
        """The live entry, removed (atomic: one caller gets it)."""
        ...

    async def fail(self, key: str, *, now: float) -> int:
        """Count a wrong answer against the entry; the new count (0: no entry)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the entry."""
        ...


class SessionDirectory(Protocol):
    """The session list."""

    async def live(self, user_id: int, *, now: float) -> list[SessionInfo]:
        """The user's live sessions, newest first."""
        ...

    async def owner(self, session_id: str, *, now: float) -> int | None:
        """Who owns a live session."""
        ...
