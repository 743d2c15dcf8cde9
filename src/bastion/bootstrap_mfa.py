"""Bootstrap of multi-factor authentication, passkeys and the session list.

Kept beside ``bootstrap.py`` (which calls :func:`build_mfa`) so that file
stays one concern per section; it picks the same kinds of backends.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.config import Settings
from bastion.errors import ConfigurationError
from bastion.security.secretbox import SecretBox, decode_key
from bastion.security.webauthn import RelyingParty
from bastion.services.auth import AuthService
from bastion.services.events import EventRecorder
from bastion.services.mfa import MfaService
from bastion.services.mfa_login import MfaLogin
from bastion.services.passkeys import PasskeyService
from bastion.services.passwords import PasswordService
from bastion.services.sessions import SessionService
from bastion.storage.challenges import RedisChallengeStore, SqlChallengeStore
from bastion.storage.protocols import UserStore
from bastion.storage.protocols_mfa import ChallengeStore
from bastion.storage.secret_file import MFA_KEY_FILE, load_or_create_key
from bastion.storage.sql_mfa import SqlMfaStore
from bastion.storage.sql_passkeys import SqlPasskeyStore
from bastion.storage.sql_session_list import SqlSessionDirectory
from bastion.types import Clock


@dataclass(frozen=True)
class MfaParts:
    """The MFA services of one instance."""

    mfa: MfaService
    passkeys: PasskeyService
    login: MfaLogin
    sessions: SessionService
    challenges: ChallengeStore


def mfa_key(settings: Settings) -> bytes:
    """The AES-GCM key of TOTP secrets: configured, or kept in the data directory.

    Raises:
        ConfigurationError: a configured key is not base64 of 32 bytes, or
            the key file cannot be used.
    """
    if settings.mfa_encryption_key is not None:
        try:
            return decode_key(settings.mfa_encryption_key.get_secret_value())
        except ValueError as exc:
            raise ConfigurationError(f"BASTION_MFA_ENCRYPTION_KEY: {exc}") from exc
    try:
        return load_or_create_key(settings.data_dir / MFA_KEY_FILE)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"BASTION_DATA_DIR: cannot use {MFA_KEY_FILE}: {exc}") from exc


def build_mfa(
    settings: Settings,
    *,
    engine: AsyncEngine,
    users: UserStore,
    passwords: PasswordService,
    auth: AuthService,
    events: EventRecorder,
    clock: Clock,
    redis: Redis | None,
) -> MfaParts:
    """Build the MFA services and hook the login step into ``auth``."""
    challenges: ChallengeStore = (
        RedisChallengeStore(redis) if redis is not None else SqlChallengeStore(engine)
    )
    mfa = MfaService(
        users=users,
        store=SqlMfaStore(engine),
        box=SecretBox(mfa_key(settings)),
        # Throttled like a login: a stolen access token is no oracle for the
        # password (issue 17 #6).
        reauth=auth.verify_current_password,
        events=events,
        clock=clock,
        issuer=settings.issuer if settings.issuer != "bastion" else "Bastion",
    )
    rp = RelyingParty(
        id=settings.resolved_webauthn_rp_id,
        name="Bastion",
        origins=settings.resolved_webauthn_origins,
    )
    passkeys = PasskeyService(
        users=users,
        store=SqlPasskeyStore(engine),
        challenges=challenges,
        rp=rp,
        events=events,
        clock=clock,
    )
    login = MfaLogin(
        auth=auth,
        users=users,
        mfa=mfa,
        passkeys=passkeys,
        challenges=challenges,
        throttle=auth.throttle,
        events=events,
        clock=clock,
    )
    auth.second_factor = login.gate
    sessions = SessionService(
        directory=SqlSessionDirectory(engine), users=users, auth=auth, events=events, clock=clock
    )
    return MfaParts(
        mfa=mfa, passkeys=passkeys, login=login, sessions=sessions, challenges=challenges
    )
