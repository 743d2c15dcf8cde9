"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)

from bastion.security.policy import MAX_PASSWORD_LENGTH
from bastion.storage.protocols import SecurityEvent
from bastion.types import User, utc

#: SPEC: the whole string, ASCII only. ``re.ASCII`` keeps ``\w``-style
#: look-alikes out; ``fullmatch`` refuses a trailing newline that ``$`` allows.
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_]{3,20}", re.ASCII)
MAX_EMAIL_LENGTH = 254
#: A user's permissions are bounded so that the access token carrying them
#: always passes the 8 KiB verify limit (``security.tokens.MAX_TOKEN_BYTES``):
#: 50 names of 64 characters are 3,351 bytes of JSON, 4,468 in base64url;
#: with the other claims (issuer and audience at their 255-character maximum),
#: the header and an ES256 signature the worst case is 5,500 bytes, which
#: leaves room for claims to come (``amr``). tests/api/test_permission_bounds.py
#: issues and verifies exactly that worst case.
MAX_PERMISSIONS = 50
MAX_PERMISSION_LENGTH = 64
PERMISSION_PATTERN = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_PERMISSION_LENGTH}}}", re.ASCII)
#: Strict ISO 8601 date-times for query parameters: a date, optionally a time
#: and an offset. Pydantic alone would also take ``0.5`` as a Unix time.
ISO_DATETIME_PATTERN = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2})(?::(\d{2})([.,]\d{1,9})?)?"
    r"([Zz]|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII,
)


def _username(value: str) -> str:
    if not USERNAME_PATTERN.fullmatch(value):
        raise ValueError("username must be 3-20 characters: letters A-Z, digits and underscore")
    return value


def _email(value: str) -> str:
    if len(value) > MAX_EMAIL_LENGTH:
        raise ValueError(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"email is not valid: {exc}") from None
    local, _, domain = result.normalized.rpartition("@")
    normalized = f"{local}@{domain.lower()}"
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise ValueError(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    return normalized


def _permission(value: str) -> str:
    if not PERMISSION_PATTERN.fullmatch(value):
        raise ValueError("permission names are 1-64 of A-Z a-z 0-9 _ . : -")
    return value


def _iso_datetime(value: object) -> object:
    if isinstance(value, datetime):
        return value
    match = ISO_DATETIME_PATTERN.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z")
    date, hours, seconds, fraction, offset = match.groups()
    if hours is None:
        return datetime.fromisoformat(date)
    # RFC 3339 §5.6 admits a leap second (:60); Python's datetime does not.
    leap = seconds == "60"
    text = f"{date}T{hours}:{'59' if leap else seconds or '00'}{(fraction or '')[:7]}"
    parsed = datetime.fromisoformat(text.replace(",", ".") + (offset or "").upper())
    return parsed + timedelta(seconds=1) if leap else parsed


Username = Annotated[
    StrictStr,
    AfterValidator(_username),
    Field(json_schema_extra={"pattern": "^[A-Za-z0-9_]{3,20}$", "minLength": 3, "maxLength": 20}),
]
Email = Annotated[
    StrictStr,
    AfterValidator(_email),
    Field(json_schema_extra={"format": "email", "maxLength": MAX_EMAIL_LENGTH}),
]
Permission = Annotated[
    StrictStr,
    AfterValidator(_permission),
    Field(
        json_schema_extra={
            "pattern": f"^[A-Za-z0-9_.:-]{{1,{MAX_PERMISSION_LENGTH}}}$",
            "minLength": 1,
            "maxLength": MAX_PERMISSION_LENGTH,
        }
    ),
]
#: Length rules live in the password policy (configurable, with reason codes:
#: ``password_too_long`` rather than a generic ``string_too_long``), so the
#: parser only bounds the work done before it runs; the document states the
#: policy's real maximum (the minimum is set from the settings in api/openapi.py).
Password = Annotated[
    StrictStr,
    Field(max_length=4096, json_schema_extra={"maxLength": MAX_PASSWORD_LENGTH}),
]
#: A query parameter in strict ISO 8601; without an offset it means UTC.
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class UserCreate(_Strict):
    """Registration. Unknown fields (``permissions``!) are refused."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "username": "alice",
                    "email": "alice@example.com",
                    "age": 30,
                    "password": "correct horse battery staple",
                }
            ]
        }
    )

    username: Username
    email: Email
    age: Annotated[StrictInt, Field(ge=13, le=120)]
    password: Password


class PermissionsUpdate(_Strict):
    """The complete new permission set of a user (duplicates count once)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"permissions": ["reports:read", "users:read"]}]}
    )

    permissions: Annotated[list[Permission], Field(max_length=MAX_PERMISSIONS)]


class PasswordChange(_Strict):
    """A password change by the signed-in user."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "current_password": "correct horse battery staple",
                    "new_password": "a longer passphrase nobody guesses",
                }
            ]
        }
    )

    current_password: Password
    new_password: Password


#: A one-time token as posted. Its exact shape is checked by the service (400
#: ``invalid_token`` like any other bad token); this only bounds the input.
OnetimeToken = Annotated[StrictStr, Field(min_length=1, max_length=512)]


class AddressRequest(_Strict):
    """``POST /auth/password/forgot`` and ``/auth/email/verify/resend``."""

    email: Email


class PasswordReset(_Strict):
    """``POST /auth/password/reset``."""

    token: OnetimeToken
    new_password: Password


class TokenSubmission(_Strict):
    """``POST /auth/email/verify``."""

    token: OnetimeToken


class EmailChange(_Strict):
    """``POST /users/me/email``."""

    new_email: Email
    current_password: Password


class AcceptedOut(BaseModel):
    """The one answer of the requests that queue mail."""

    detail: str


class UserOut(BaseModel):
    """A user as the API shows it; ``email`` (and ``email_verified``) only to
    the user and to admins."""

    id: int
    username: str
    email: str | None = None
    email_verified: bool | None = None
    age: int
    permissions: list[str]
    created_at: datetime
    locked_until: datetime | None = None
    """Only for admins: until when the login throttle locks the account."""

    @classmethod
    def of(cls, user: User, *, show_email: bool) -> UserOut:
        """Render ``user``, with or without the address."""
        return cls(
            id=user.id,
            username=user.username,
            email=user.email if show_email else None,
            email_verified=user.email_verified if show_email else None,
            age=user.age,
            permissions=list(user.permissions),
            created_at=user.created_at,
        )


class TokenOut(BaseModel):
    """RFC 6749 §5.1 access token response."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - RFC 6749 token type
    expires_in: int
    refresh_token: str
    device_token: str | None = None
    """The known-device token of a password login (absent on refresh)."""


class MessageOut(BaseModel):
    """``GET /protected``."""

    message: str


class EventOut(BaseModel):
    """One security event."""

    id: int
    at: datetime
    type: str
    outcome: str
    user_id: int | None
    username: str | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    detail: dict[str, object]

    @classmethod
    def of(cls, event: SecurityEvent) -> EventOut:
        """Render a stored event (``at`` as an aware UTC datetime)."""
        fields = {name: getattr(event, name) for name in _EVENT_FIELDS}
        return cls(**fields, id=event.id or 0, at=utc(event.at))


_EVENT_FIELDS = (
    "type",
    "outcome",
    "user_id",
    "username",
    "ip",
    "user_agent",
    "request_id",
    "detail",
)


class EventsPage(BaseModel):
    """A page of ``GET /events``."""

    events: list[EventOut]
    next_cursor: str | None
