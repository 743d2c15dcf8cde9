"""The single map from Bastion errors to HTTP statuses and bodies."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from bastion.api.ratelimit_headers import as_text, throttle_headers
from bastion.errors import (
    BastionError,
    Conflict,
    Forbidden,
    InsufficientAuthentication,
    InvalidCredentials,
    InvalidGrant,
    InvalidLinkToken,
    InvalidToken,
    MfaRequired,
    MissingToken,
    NotFound,
    Overloaded,
    Throttled,
    Unavailable,
    ValidationFailed,
    WrongPassword,
)

#: RFC 6750 §3: how a client learns why its bearer token was refused.
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'  # noqa: S105 - not a secret
NO_TOKEN_CHALLENGE = 'Bearer realm="bastion"'  # noqa: S105 - not a secret
#: RFC 9470 §3: the session's authentication is not strong enough.
INSUFFICIENT_AUTH_CHALLENGE = 'Bearer error="insufficient_user_authentication"'

_STATUS: list[tuple[type[BastionError], int]] = [
    (ValidationFailed, 422),
    (Conflict, 409),
    (NotFound, 404),
    (MfaRequired, 403),
    (InvalidToken, 401),
    (Forbidden, 403),
    (WrongPassword, 400),
    (InvalidCredentials, 400),
    (InvalidGrant, 400),
    (InvalidLinkToken, 400),
    (Throttled, 429),
    (Overloaded, 503),
    (Unavailable, 503),
]


def status_of(error: BastionError) -> int:
    """The HTTP status that answers ``error``."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 400


def retry_headers(error: BastionError) -> dict[str, str]:
    """``Retry-After`` for errors that have one; a throttle's 429 also gets
    the IETF RateLimit fields (SPEC: every 429 carries them)."""
    if isinstance(error, Throttled):
        return as_text(throttle_headers(error.retry_after))
    if isinstance(error, Overloaded | Unavailable):
        return {"Retry-After": str(error.retry_after)}
    return {}


def error_response(error: BastionError) -> JSONResponse:
    """The JSON answer to ``error`` in FastAPI's ``{"detail": ...}`` shape."""
    status = status_of(error)
    headers = retry_headers(error)
    if isinstance(error, MfaRequired):
        return mfa_required_response(error)
    if isinstance(error, InsufficientAuthentication):
        headers["WWW-Authenticate"] = INSUFFICIENT_AUTH_CHALLENGE
    if isinstance(error, MissingToken):
        headers["WWW-Authenticate"] = NO_TOKEN_CHALLENGE
    elif isinstance(error, InvalidToken):
        headers["WWW-Authenticate"] = INVALID_TOKEN_CHALLENGE
    detail: Any = error.message
    if isinstance(error, ValidationFailed):
        detail = [{"type": error.code, "loc": [error.location, error.field], "msg": error.message}]
    return JSONResponse({"detail": detail, "code": error.code}, status_code=status, headers=headers)


def oauth_error_response(error: str, description: str, status: int = 400) -> JSONResponse:
    """RFC 6749 §5.2 error body, with the no-store headers of §5.1."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


#: RFC 6749 §5.2 ``error`` of a token-endpoint answer that is neither a token
#: nor a credential or request problem. 429 (rate limit, login throttle) and
#: 503 (hash queue full, a store down) both say "not now, retry after
#: Retry-After": ``temporarily_unavailable`` (RFC 6749 §4.1.2.1, the code
#: clients customarily accept on the token endpoint too). RFC 8628's
#: ``slow_down`` was passed over: it is a device-flow polling signal
#: ("add 5 s to your interval") that generic clients do not expect.
#: Bastion's own ``code`` (``throttled``, ``rate_limited``, ``overloaded``,
#: ``unavailable``) stays beside it to tell them apart.
TOKEN_RETRY_LATER = "temporarily_unavailable"  # noqa: S105 - not a secret


def oauth_error_code(status: int) -> str:
    """The RFC 6749 ``error`` for a token-endpoint refusal of ``status``."""
    if status in (429, 503):
        return TOKEN_RETRY_LATER
    if status >= 500:
        return "server_error"
    return "invalid_request"


def token_error_response(error: BastionError) -> JSONResponse:
    """``error`` answered on ``POST /auth/token``: an RFC 6749 §5.2 error object
    (``error``, ``error_description``) with Bastion's ``code`` and ``detail``,
    ``Retry-After`` and RateLimit headers kept, never cached (§5.1)."""
    if isinstance(error, MfaRequired):
        # Already an RFC 6749-shaped error object, with the mfa_token.
        return mfa_required_response(error)
    status = status_of(error)
    headers = {**retry_headers(error), "Cache-Control": "no-store", "Pragma": "no-cache"}
    body = {
        "error": oauth_error_code(status),
        "error_description": error.message,
        "detail": error.message,
        "code": error.code,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def mfa_required_response(error: MfaRequired) -> JSONResponse:
    """``403 mfa_required``: the password was right, a second factor is due (no token)."""
    return JSONResponse(
        {
            "error": error.code,
            "error_description": error.message,
            "mfa_token": error.mfa_token,
            "mfa_methods": error.methods,
            "expires_in": error.expires_in,
        },
        status_code=403,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    # Never echo submitted values: they may be passwords (SPEC: a 422 never
    # echoes a password) and are attacker-controlled text in any case.
    cleaned = []
    for error in errors:
        cleaned.append(
            {"type": error.get("type"), "loc": list(error.get("loc", ())), "msg": error.get("msg")}
        )
    return cleaned


async def _bastion_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BastionError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(tuple(error.get("loc", ()))[:1] == ("path",) for error in errors):
        shadowed = _shadowed_route_methods(request)
        if shadowed:
            return JSONResponse(
                {"detail": "Method Not Allowed"},
                status_code=405,
                headers={"Allow": ", ".join(shadowed)},
            )
    return JSONResponse({"detail": _clean_validation_errors(errors)}, status_code=422)


def _matching_methods(request: Request) -> list[tuple[int, set[str]]]:
    """(path parameters, methods) of every route whose path matches the request."""
    matching: list[tuple[int, set[str]]] = []
    for context in iter_route_contexts(request.app.router.routes):
        methods = context.methods
        if methods and context.matches(request.scope)[0] is not Match.NONE:
            matching.append(((context.path_format or "").count("{"), set(methods)))
    return matching


def allowed_methods(request: Request) -> list[str]:
    """Every method some route offers for this request's path (RFC 9110 §15.5.6).

    Starlette's 405 names only the first route whose path matched, so
    ``OPTIONS /users`` said ``Allow: POST`` although ``GET /users`` exists. Of
    the routes that match, those with the fewest path parameters count: a
    literal path (``/users/me``) shadows a pattern that also matches it
    (``/users/{user_id}``).
    """
    matching = _matching_methods(request)
    if not matching:
        return []
    fewest = min(count for count, _ in matching)
    return sorted(set().union(*(methods for count, methods in matching if count == fewest)))


def _shadowed_route_methods(request: Request) -> list[str]:
    """The methods of a literal path the request fell through to a pattern from.

    ``DELETE /users/me`` matches no method of ``/users/me`` and so reaches
    ``DELETE /users/{user_id}``, whose path validation refuses ``me``. The
    client asked ``/users/me`` for a method it does not have: that is a 405
    with ``/users/me``'s ``Allow``, not a 422 about a user id.
    """
    route = request.scope.get("route")
    handled_with = (getattr(route, "path_format", "") or "").count("{")
    matching = _matching_methods(request)
    if not matching or min(count for count, _ in matching) >= handled_with:
        return []
    return allowed_methods(request)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        methods = allowed_methods(request)
        if methods:
            headers["Allow"] = ", ".join(methods)
    return JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=headers or None
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(BastionError, _bastion_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
