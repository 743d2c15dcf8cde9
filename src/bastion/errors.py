"""Bastion's error tree.

Services raise these; only ``bastion.api.errors`` maps a ``code`` to an HTTP
status and body, so the same failure always answers the same way.
"""

from __future__ import annotations


class BastionError(Exception):
    """Root of every error Bastion raises on purpose.

    Attributes:
        code: Stable, machine-readable identifier of the failure.
        message: Human-readable explanation, safe to show to the client.
    """

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigurationError(BastionError):
    """The settings cannot work together; the service refuses to start."""

    code = "configuration"


class ValidationFailed(BastionError):
    """Input broke a rule that is only checkable past the schema.

    Attributes:
        field: The offending input field.
        location: Where the field was: ``"body"`` or ``"query"``.
    """

    code = "invalid"

    def __init__(self, message: str, *, code: str, field: str, location: str = "body") -> None:
        super().__init__(message, code=code)
        self.field = field
        self.location = location


class WeakPassword(ValidationFailed):
    """A new password breaks the password policy (``code`` says which rule)."""


class Conflict(BastionError):
    """A unique value (username, email) is already taken."""

    code = "conflict"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, code=f"{field}_taken")
        self.field = field


class NotFound(BastionError):
    """The addressed resource does not exist."""

    code = "not_found"


class InvalidCredentials(BastionError):
    """Username or password wrong. One message for every cause (no enumeration)."""

    code = "invalid_grant"

    def __init__(self, message: str = "invalid username or password") -> None:
        super().__init__(message)


class InvalidGrant(BastionError):
    """A refresh token that is unknown, expired, revoked or reused."""

    code = "invalid_grant"


class WrongPassword(BastionError):
    """The current password given to a password change is wrong."""

    code = "wrong_password"

    def __init__(self) -> None:
        super().__init__("the current password is wrong")


class InvalidToken(BastionError):
    """An access token failed verification (any reason: one answer)."""

    code = "invalid_token"

    def __init__(self, message: str = "the access token is invalid") -> None:
        super().__init__(message)


class InvalidLinkToken(BastionError):
    """A one-time token (reset, verification) that is unknown, used, voided or
    expired. One answer for every cause. Not an :class:`InvalidToken`: it is a
    400 about the body, not a 401 about the bearer token."""

    code = "invalid_token"

    def __init__(self, message: str = "the token is invalid, used or expired") -> None:
        super().__init__(message)


class MissingToken(InvalidToken):
    """No bearer token was sent (RFC 6750 §3.1: the challenge then names no error)."""

    code = "not_authenticated"

    def __init__(self) -> None:
        super().__init__("not authenticated")


class Forbidden(BastionError):
    """The caller lacks the permission the operation needs."""

    code = "forbidden"


class Throttled(BastionError):
    """Too many attempts; retry after ``retry_after`` seconds."""

    code = "throttled"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class Overloaded(BastionError):
    """Capacity (hash pool queue) is exhausted; shed the request at once."""

    code = "overloaded"

    def __init__(
        self, message: str = "server busy, retry shortly", *, retry_after: int = 1
    ) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class Unavailable(BastionError):
    """A backing service (database, Redis) is unreachable."""

    code = "unavailable"

    def __init__(
        self, message: str = "service temporarily unavailable", *, retry_after: int = 5
    ) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


# -- multi-factor authentication (mfa) ---------------------------------------


class MfaRequired(BastionError):
    """The password was right and a second factor is due; no token yet.

    Attributes:
        mfa_token: Single-use handle of the pending login (shown once).
        methods: Second factors the user can answer with.
        expires_in: Seconds the handle lives.
    """

    code = "mfa_required"

    def __init__(self, *, mfa_token: str, methods: list[str], expires_in: int) -> None:
        super().__init__("a second factor is required")
        self.mfa_token = mfa_token
        self.methods = methods
        self.expires_in = expires_in


class InsufficientAuthentication(Forbidden):
    """The session lacks the authentication strength asked for (RFC 9470)."""

    code = "insufficient_user_authentication"

    def __init__(self, message: str = "this needs a multi-factor session") -> None:
        super().__init__(message)


class InvalidCode(BastionError):
    """A TOTP or recovery code, or a WebAuthn credential, did not verify (400)."""

    code = "invalid_code"


class AlreadyEnabled(Conflict):
    """The factor is already on (409)."""

    def __init__(self, message: str, *, code: str) -> None:
        BastionError.__init__(self, message, code=code)
        self.field = code


class InvalidRequest(BastionError):
    """A token request that is malformed (RFC 6749 §5.2 ``invalid_request``)."""

    code = "invalid_request"
