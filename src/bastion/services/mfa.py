"""Second factors: TOTP enrolment and checks, recovery codes, the admin reset.

TOTP follows RFC 6238 (see :mod:`bastion.security.totp`); the shared secret is
encrypted at rest; each code is accepted at most once per user by advancing
the last used time step atomically in storage. Recovery codes are shown once
and stored as digests; each works once, and a new set voids the old.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.errors import AlreadyEnabled, InvalidCode, NotFound
from bastion.security.recovery_codes import digest_code, new_codes
from bastion.security.secretbox import SecretBox, SecretBoxError
from bastion.security.totp import TotpVerifier, new_secret, qr_svg
from bastion.services.events import EventRecorder
from bastion.services.notify import LoggingNotifier, SecurityNotifier
from bastion.services.reauth import CurrentPasswordCheck
from bastion.storage.protocols import UserStore
from bastion.storage.protocols_mfa import MfaStore, MfaSummary
from bastion.types import Clock, Principal, RequestContext


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """What the user needs to add the secret to an authenticator app."""

    secret: str
    otpauth_uri: str
    qr_svg: str


def _context_of(user_id: int) -> str:
    # AES-GCM associated data: a sealed secret opens only on its own row.
    return f"totp:{user_id}"


class MfaService:
    """TOTP and recovery codes of the signed-in user, and the admin reset.

    Args:
        users: The user store.
        store: TOTP factors and recovery codes.
        box: Encrypts TOTP secrets at rest.
        reauth: The current-password check.
        events: Security event recorder.
        clock: Time source.
        issuer: Shown by authenticator apps beside the account name.
        notifier: Tells users about changes made by an administrator.
    """

    def __init__(
        self,
        *,
        users: UserStore,
        store: MfaStore,
        box: SecretBox,
        reauth: CurrentPasswordCheck,
        events: EventRecorder,
        clock: Clock,
        issuer: str = "Bastion",
        notifier: SecurityNotifier | None = None,
    ) -> None:
        self._users = users
        self._store = store
        self._box = box
        self.reauth = reauth
        self._events = events
        self._clock = clock
        self._issuer = issuer
        self.notifier: SecurityNotifier = notifier or LoggingNotifier()

    async def status(self, user_id: int) -> MfaSummary:
        """What the user has enrolled."""
        return await self._store.summary(user_id)

    # -- TOTP ------------------------------------------------------------------

    async def enrol_totp(
        self, principal: Principal, current_password: str, *, context: RequestContext | None = None
    ) -> TotpEnrolment:
        """Start a TOTP enrolment: a new secret, pending until confirmed.

        Raises:
            WrongPassword: ``current_password`` is wrong.
            AlreadyEnabled: TOTP is already on (disable it first).
        """
        stored = await self.reauth(principal.user_id, current_password, context=context)
        secret = new_secret()
        sealed = self._box.seal(secret.encode("ascii"), context=_context_of(stored.user.id))
        if not await self._store.put_pending_totp(stored.user.id, sealed, now=self._clock.now()):
            raise AlreadyEnabled("TOTP is already on; disable it first", code="totp_enabled")
        uri = TotpVerifier(secret).provisioning_uri(
            account=stored.user.username, issuer=self._issuer
        )
        return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri))

    async def confirm_totp(
        self, principal: Principal, code: str, *, context: RequestContext | None = None
    ) -> list[str]:
        """Turn TOTP on with a first code from the app; returns the recovery codes.

        Raises:
            InvalidCode: no pending enrolment, or the code is wrong.
        """
        record = await self._store.get_totp(principal.user_id)
        if record is None or record.confirmed:
            raise InvalidCode("there is no pending TOTP enrolment", code="totp_not_pending")
        now = self._clock.now()
        step = self._verifier(principal.user_id, record.sealed_secret).match(code, now)
        if step is None:
            raise InvalidCode("the code is wrong", code="invalid_code")
        codes = new_codes()
        digests = [d for d in (digest_code(c) for c in codes) if d is not None]
        if not await self._store.enable_totp(
            principal.user_id, step=step, code_digests=digests, now=now
        ):
            raise InvalidCode("there is no pending TOTP enrolment", code="totp_not_pending")
        await self._events.record(
            "mfa_enabled",
            context=context,
            user_id=principal.user_id,
            username=await self._username(principal.user_id),
            method="totp",
        )
        return codes

    async def disable_totp(
        self,
        principal: Principal,
        current_password: str,
        code: str,
        *,
        context: RequestContext | None = None,
    ) -> None:
        """Turn TOTP off, proven by the password and a TOTP or recovery code.

        Raises:
            WrongPassword: ``current_password`` is wrong.
            InvalidCode: TOTP is off, or the code is wrong.
        """
        stored = await self.reauth(principal.user_id, current_password, context=context)
        summary = await self._store.summary(stored.user.id)
        if not summary.totp:
            raise InvalidCode("TOTP is not on", code="totp_not_enabled")
        if not (
            await self.verify_totp(stored.user.id, code)
            or await self.use_recovery_code(stored.user.id, code, context=context)
        ):
            await self._events.record(
                "authn_mfa_fail",
                outcome="failure",
                context=context,
                user_id=stored.user.id,
                username=stored.user.username,
                method="totp_disable",
            )
            raise InvalidCode("the code is wrong", code="invalid_code")
        # Recovery codes stand in for a lost factor; with no passkey left they
        # would stand in for nothing.
        await self._store.disable_totp(stored.user.id, drop_codes=summary.passkeys == 0)
        await self._events.record(
            "mfa_disabled",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            method="totp",
        )

    async def verify_totp(self, user_id: int, code: str) -> bool:
        """Whether ``code`` is a fresh, right code of the user's TOTP (it is then spent).

        RFC 6238 §5.2: a code accepted once is never accepted again, nor is
        one of an earlier step; the step advances in one conditional UPDATE,
        so of two concurrent logins with one code exactly one succeeds.
        """
        record = await self._store.get_totp(user_id)
        if record is None or not record.confirmed:
            return False
        verifier = self._verifier(user_id, record.sealed_secret)
        step = verifier.match(code, self._clock.now(), after_step=record.last_step)
        return step is not None and await self._store.advance_step(user_id, step)

    def _verifier(self, user_id: int, sealed: str) -> TotpVerifier:
        try:
            secret = self._box.open(sealed, context=_context_of(user_id)).decode("ascii")
        except SecretBoxError as exc:
            # A changed BASTION_MFA_ENCRYPTION_KEY or a tampered row: refuse
            # rather than accept anything.
            raise InvalidCode("the TOTP factor cannot be read", code="totp_unreadable") from exc
        return TotpVerifier(secret)

    # -- recovery codes ----------------------------------------------------------

    async def new_recovery_codes(
        self, principal: Principal, current_password: str, *, context: RequestContext | None = None
    ) -> list[str]:
        """A new set of recovery codes; the old set stops working.

        Raises:
            WrongPassword: ``current_password`` is wrong.
            InvalidCode: MFA is off (recovery codes would recover nothing).
        """
        stored = await self.reauth(principal.user_id, current_password, context=context)
        if not (await self._store.summary(stored.user.id)).enabled:
            raise InvalidCode("MFA is not on", code="mfa_not_enabled")
        codes = new_codes()
        digests = [d for d in (digest_code(c) for c in codes) if d is not None]
        await self._store.replace_codes(stored.user.id, digests, now=self._clock.now())
        await self._events.record(
            "mfa_enabled",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            method="recovery_codes",
        )
        return codes

    async def use_recovery_code(
        self, user_id: int, code: str, *, context: RequestContext | None = None
    ) -> bool:
        """Spend one of the user's recovery codes (atomic); ``False`` if it is not one."""
        digest = digest_code(code)
        if digest is None or not await self._store.use_code(user_id, digest, now=self._clock.now()):
            return False
        left = (await self._store.summary(user_id)).recovery_codes_left
        await self._events.record(
            "authn_recovery_code_used",
            context=context,
            user_id=user_id,
            username=await self._username(user_id),
            codes_left=left,
        )
        return True

    # -- administration ----------------------------------------------------------

    async def reset(
        self, user_id: int, *, actor: Principal, context: RequestContext | None = None
    ) -> None:
        """Remove every factor of a user (TOTP, passkeys, recovery codes) and notify them.

        Raises:
            NotFound: no such user.
        """
        stored = await self._users.get(user_id)
        if stored is None:
            raise NotFound("no such user")
        await self._store.reset(user_id)
        await self._events.record(
            "mfa_disabled",
            context=context,
            user_id=stored.user.id,
            username=stored.user.username,
            method="all",
            via="admin_reset",
            actor=actor.user_id,
        )
        await self.notifier.mfa_reset(stored.user)

    async def _username(self, user_id: int) -> str | None:
        # SPEC: every event about a known user carries user_id and username.
        stored = await self._users.get(user_id)
        return stored.user.username if stored else None
