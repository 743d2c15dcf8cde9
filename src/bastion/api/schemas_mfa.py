"""Request and response bodies of the MFA, passkey and session routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictStr

from bastion.api.schemas import Password, _Strict
from bastion.services.mfa import TotpEnrolment
from bastion.storage.protocols_mfa import MfaSummary, PasskeyRecord, SessionInfo
from bastion.types import utc

#: A TOTP code is 6 digits and a recovery code 19 characters; anything far
#: longer is refused by the schema, before any work.
Code = Annotated[StrictStr, Field(min_length=1, max_length=64)]
OpaqueToken = Annotated[StrictStr, Field(min_length=1, max_length=512)]


class CurrentPassword(_Strict):
    """Re-authentication for a sensitive change."""

    current_password: Password


class CodeIn(_Strict):
    """A TOTP code (confirming an enrolment)."""

    code: Code


class TotpDisable(_Strict):
    """Turning TOTP off: the password and a TOTP or recovery code."""

    current_password: Password
    code: Code


class PasskeyCreate(_Strict):
    """The browser's ``PublicKeyCredential.toJSON()`` and a name for it."""

    credential: dict[str, Any]
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None


class MfaTokenIn(_Strict):
    """A pending login's handle."""

    mfa_token: OpaqueToken


class TotpEnrolmentOut(BaseModel):
    """A pending TOTP enrolment."""

    secret: str
    otpauth_uri: str
    qr_svg: str

    @classmethod
    def of(cls, enrolment: TotpEnrolment) -> TotpEnrolmentOut:
        """Render an enrolment."""
        return cls(
            secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
        )


class RecoveryCodesOut(BaseModel):
    """Recovery codes, shown this once."""

    recovery_codes: list[str]


class MfaStatusOut(BaseModel):
    """``GET /users/me/mfa``."""

    totp: bool
    passkeys: int
    recovery_codes_left: int

    @classmethod
    def of(cls, summary: MfaSummary) -> MfaStatusOut:
        """Render a summary."""
        return cls(
            totp=summary.totp,
            passkeys=summary.passkeys,
            recovery_codes_left=summary.recovery_codes_left,
        )


class PasskeyOut(BaseModel):
    """A passkey as listed."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, record: PasskeyRecord) -> PasskeyOut:
        """Render a stored passkey (no key material)."""
        return cls(
            id=record.id,
            name=record.name,
            created_at=utc(record.created_at),
            last_used_at=None if record.last_used_at is None else utc(record.last_used_at),
        )


class SessionOut(BaseModel):
    """A live session as listed."""

    id: str
    current: bool
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    amr: list[str]

    @classmethod
    def of(cls, info: SessionInfo, *, current_id: str | None) -> SessionOut:
        """Render a session; ``current`` when it is the caller's own."""
        return cls(
            id=info.id,
            current=info.id == current_id,
            created_at=utc(info.created_at),
            last_used_at=utc(info.last_used_at),
            ip=info.ip,
            user_agent=info.user_agent,
            amr=list(info.amr),
        )
