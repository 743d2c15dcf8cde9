"""Passkeys (WebAuthn): registration, the list, and assertions for sign-in.

Each ceremony's challenge is kept in a :class:`ChallengeStore` under a digest
of its value, for 5 minutes, and taken (removed) by the first answer, right or
wrong: a challenge never serves twice (W3C WebAuthn §13.4.3). The store is
shared (the database, or Redis), so any instance finishes what another began.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import structlog

from bastion.errors import InvalidCode, InvalidGrant, InvalidToken, NotFound
from bastion.security.webauthn import (
    CHALLENGE_TTL_SECONDS,
    RelyingParty,
    WebAuthnFailed,
    authentication_options,
    b64url,
    challenge_of,
    credential_id_of,
    from_b64url,
    new_challenge,
    new_user_handle,
    parse_credential,
    registration_options,
    user_handle_of,
    verify_assertion,
    verify_registration,
)
from bastion.services.events import EventRecorder
from bastion.storage.protocols import StoredUser, UserStore
from bastion.storage.protocols_mfa import ChallengeStore, PasskeyRecord, PasskeyStore
from bastion.types import Clock, Principal, RequestContext

logger = structlog.get_logger("bastion.passkeys")
#: Challenge purposes; a challenge of one purpose never answers another.
REGISTER, PASSWORDLESS, SECOND_FACTOR = "register", "passwordless", "mfa"
MAX_NAME = 64


def challenge_key(purpose: str, challenge: str) -> str:
    """Where a challenge is kept: a digest, never the value."""
    digest = hashlib.sha256(challenge.encode("ascii", "replace")).hexdigest()
    return f"wa:{purpose}:{digest}"


@dataclass(frozen=True, slots=True)
class Assertion:
    """A verified assertion: whose credential, and how strong (RFC 8176)."""

    user_id: int
    amr: tuple[str, ...]


class PasskeyService:
    """Passkeys of the signed-in user, and WebAuthn assertions.

    Args:
        users: The user store.
        store: The credentials.
        challenges: Ceremony state shared by every instance.
        rp: The relying party (RP ID, origins).
        events: Security event recorder.
        clock: Time source.
    """

    def __init__(
        self,
        *,
        users: UserStore,
        store: PasskeyStore,
        challenges: ChallengeStore,
        rp: RelyingParty,
        events: EventRecorder,
        clock: Clock,
    ) -> None:
        self._users = users
        self._store = store
        self._challenges = challenges
        self.rp = rp
        self._events = events
        self._clock = clock

    # -- registration ----------------------------------------------------------

    async def registration_options(self, principal: Principal) -> dict[str, Any]:
        """Creation options for a new passkey of the caller."""
        stored = await self._user(principal.user_id)
        existing = await self._store.of_user(stored.user.id)
        handle = existing[0].user_handle if existing else b64url(new_user_handle())
        challenge = new_challenge()
        options = registration_options(
            self.rp,
            challenge=challenge,
            user_handle=from_b64url(handle),
            user_name=stored.user.username,
            exclude=[record.credential_id for record in existing],
        )
        await self._put(REGISTER, challenge, {"user_id": stored.user.id, "user_handle": handle})
        return options

    async def register(
        self,
        principal: Principal,
        credential: Any,
        name: str | None,
        *,
        context: RequestContext | None = None,
    ) -> PasskeyRecord:
        """Verify the browser's answer to the creation options and keep the passkey.

        Raises:
            InvalidCode: the credential does not verify (``invalid_credential``).
            Conflict: the credential is already registered.
        """
        try:
            parsed = parse_credential(credential)
            challenge = challenge_of(parsed)
            entry = await self._challenges.take(
                challenge_key(REGISTER, challenge), now=self._clock.now()
            )
            if entry is None or entry.get("user_id") != principal.user_id:
                raise WebAuthnFailed("unknown, spent or foreign challenge")
            new = verify_registration(self.rp, parsed, challenge=from_b64url(challenge))
        except WebAuthnFailed as exc:
            logger.info("passkey_registration_refused", user_id=principal.user_id, reason=str(exc))
            raise InvalidCode(
                "the passkey could not be verified", code="invalid_credential"
            ) from exc
        now = self._clock.now()
        record = PasskeyRecord(
            id=secrets.token_urlsafe(12),
            user_id=principal.user_id,
            credential_id=new.credential_id,
            public_key=new.public_key,
            sign_count=new.sign_count,
            user_handle=str(entry["user_handle"]),
            name=(name or "Passkey")[:MAX_NAME],
            backed_up=new.backed_up,
            created_at=now,
            last_used_at=None,
        )
        await self._store.add(record)
        await self._events.record(
            "passkey_added",
            context=context,
            user_id=principal.user_id,
            username=await self._username(principal.user_id),
            passkey_id=record.id,
            synced=new.multi_device,
        )
        return record

    async def of_user(self, user_id: int) -> list[PasskeyRecord]:
        """The user's passkeys, oldest first."""
        return await self._store.of_user(user_id)

    async def remove(
        self, principal: Principal, passkey_id: str, *, context: RequestContext | None = None
    ) -> None:
        """Delete one of the caller's passkeys.

        Raises:
            NotFound: no such passkey of the caller's (another user's included).
        """
        if len(passkey_id) > 64 or not await self._store.delete(principal.user_id, passkey_id):
            raise NotFound("no such passkey")
        await self._events.record(
            "passkey_removed",
            context=context,
            user_id=principal.user_id,
            username=await self._username(principal.user_id),
            passkey_id=passkey_id,
        )

    # -- assertions --------------------------------------------------------------

    async def passwordless_options(self) -> dict[str, Any]:
        """Request options for a discoverable credential with user verification."""
        challenge = new_challenge()
        options = authentication_options(self.rp, challenge=challenge, allow=None, require_uv=True)
        await self._put(PASSWORDLESS, challenge, {})
        return options

    async def second_factor_options(self, user_id: int, bound_to: str) -> dict[str, Any]:
        """Request options for the user's passkeys, bound to one pending login.

        Raises:
            InvalidGrant: the user has no passkey.
        """
        allow = [record.credential_id for record in await self._store.of_user(user_id)]
        if not allow:
            raise InvalidGrant("this account has no passkey")
        challenge = new_challenge()
        options = authentication_options(
            self.rp, challenge=challenge, allow=allow, require_uv=False
        )
        await self._put(SECOND_FACTOR, challenge, {"user_id": user_id, "bound_to": bound_to})
        return options

    async def verify_second_factor(
        self, user_id: int, credential: Any, *, bound_to: str
    ) -> Assertion | None:
        """The assertion of one of the user's passkeys for this pending login, or ``None``."""
        try:
            return await self._assert(SECOND_FACTOR, credential, user_id=user_id, bound_to=bound_to)
        except WebAuthnFailed as exc:
            logger.info("passkey_assertion_refused", user_id=user_id, reason=str(exc))
            return None

    async def verify_passwordless(self, credential: Any) -> Assertion:
        """The assertion of a discoverable credential with user verification.

        Raises:
            InvalidGrant: for any failure (wrong origin, RP ID, challenge,
                signature, counter, no user verification).
        """
        try:
            return await self._assert(PASSWORDLESS, credential, user_id=None, bound_to=None)
        except WebAuthnFailed as exc:
            logger.info("passkey_assertion_refused", reason=str(exc))
            raise InvalidGrant("the passkey assertion is invalid") from exc

    async def _assert(
        self, purpose: str, credential: Any, *, user_id: int | None, bound_to: str | None
    ) -> Assertion:
        parsed = parse_credential(credential)
        challenge = challenge_of(parsed)
        entry = await self._challenges.take(
            challenge_key(purpose, challenge), now=self._clock.now()
        )
        if entry is None:
            raise WebAuthnFailed("unknown, expired or spent challenge")
        if user_id is not None and entry.get("user_id") != user_id:
            raise WebAuthnFailed("the challenge belongs to another user")
        if bound_to is not None and entry.get("bound_to") != bound_to:
            raise WebAuthnFailed("the challenge belongs to another login")
        record = await self._store.find(credential_id_of(parsed))
        if record is None or (user_id is not None and record.user_id != user_id):
            raise WebAuthnFailed("unknown credential")
        handle = user_handle_of(parsed)
        if handle is not None and handle != record.user_handle:
            raise WebAuthnFailed("the user handle does not match the credential")
        verified = verify_assertion(
            self.rp,
            parsed,
            challenge=from_b64url(challenge),
            public_key=record.public_key,
            sign_count=record.sign_count,
            require_uv=purpose == PASSWORDLESS,
        )
        if not await self._store.record_use(
            record.id,
            old_count=record.sign_count,
            new_count=verified.sign_count,
            now=self._clock.now(),
        ):
            raise WebAuthnFailed("the sign count moved meanwhile")
        # RFC 8176: "swk" for a synced (software-protected) passkey, "hwk" for
        # one bound to its authenticator; "user" when the authenticator verified
        # the user (PIN or biometrics).
        kind = "swk" if verified.multi_device else "hwk"
        amr = (kind, "user") if verified.user_verified else (kind,)
        return Assertion(user_id=record.user_id, amr=amr)

    async def _put(self, purpose: str, challenge: bytes, data: dict[str, Any]) -> None:
        await self._challenges.put(
            challenge_key(purpose, b64url(challenge)),
            data,
            expires_at=self._clock.now() + CHALLENGE_TTL_SECONDS,
        )

    async def _username(self, user_id: int) -> str | None:
        # SPEC: every event about a known user carries user_id and username.
        stored = await self._users.get(user_id)
        return stored.user.username if stored else None

    async def _user(self, user_id: int) -> StoredUser:
        stored = await self._users.get(user_id)
        if stored is None:
            raise InvalidToken()
        return stored
