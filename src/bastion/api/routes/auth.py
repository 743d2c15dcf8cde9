"""``/auth``: the OAuth 2.0 token endpoint (RFC 6749) and logout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData

from bastion.api.context import request_context
from bastion.api.errors import oauth_error_response, token_error_response
from bastion.api.routes.grants import MFA_GRANT, PASSKEY_GRANT, extension_grants
from bastion.api.schemas import TokenOut
from bastion.errors import (
    BastionError,
    InvalidCredentials,
    InvalidGrant,
    InvalidRequest,
    Throttled,
)
from bastion.types import Principal, TokenPair

if TYPE_CHECKING:
    from bastion.api.app import Bastion

_FORM = "application/x-www-form-urlencoded"
_MAX_FIELD = 4096
_TOKEN_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        _FORM: {
            "schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {
                        "type": "string",
                        "enum": ["password", "refresh_token", MFA_GRANT, PASSKEY_GRANT],
                    },
                    "username": {"type": "string", "maxLength": _MAX_FIELD},
                    "password": {"type": "string", "format": "password", "maxLength": _MAX_FIELD},
                    "refresh_token": {"type": "string", "maxLength": _MAX_FIELD},
                    "device_token": {
                        "type": "string",
                        "description": "The device_token of an earlier login of this account",
                    },
                    "mfa_token": {"type": "string", "maxLength": _MAX_FIELD},
                    "otp": {"type": "string", "maxLength": _MAX_FIELD},
                    "recovery_code": {"type": "string", "maxLength": _MAX_FIELD},
                    "webauthn": {"type": "string", "description": "assertion JSON text"},
                },
            },
            "example": {
                "grant_type": "password",
                "username": "alice",
                "password": "correct horse battery staple",
            },
        }
    },
}


def _token_response(pair: TokenPair) -> JSONResponse:
    body = TokenOut(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        device_token=pair.device_token,
    )
    # RFC 6749 §5.1: token responses must not be cached.
    return JSONResponse(
        body.model_dump(exclude_none=True),
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _single(form: FormData, name: str) -> str | None:
    """One form value; RFC 6749 §3.2 forbids repeating a parameter, and §3.1
    treats a parameter sent without a value as omitted."""
    values = form.getlist(name)
    if len(values) > 1:
        raise ValueError(f"parameter {name!r} is repeated")
    if not values:
        return None
    value = values[0]
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        raise ValueError(f"parameter {name!r} is malformed")
    return value or None


def _device_token(form: FormData) -> str | None:
    """The ``device_token`` field; a malformed one counts as none (the login
    proceeds as without it), never as a bad request that would tell anything."""
    try:
        return _single(form, "device_token")
    except ValueError:
        return None


#: Fields any length of which is taken: a device token of the wrong shape
#: counts as none (SPEC), an assertion is as long as its authenticator makes it.
_UNBOUNDED_FIELDS = frozenset({"device_token", "webauthn"})


def _check_lengths(form: FormData) -> None:
    """Refuse a field over the documented length, even one the grant ignores.

    Raises:
        ValueError: naming the field (answered ``invalid_request``).
    """
    for name, value in form.multi_items():
        if name not in _UNBOUNDED_FIELDS and isinstance(value, str) and len(value) > _MAX_FIELD:
            raise ValueError(f"{name[:40]} is longer than {_MAX_FIELD} characters")


def build_router(auth: Bastion) -> APIRouter:
    """The ``/auth`` routes."""
    router = auth.api_router(tags=["auth"])
    service = auth.container.auth_service
    extensions = extension_grants(auth)

    @router.post(
        "/auth/token",
        response_model=TokenOut,
        openapi_extra={"requestBody": _TOKEN_REQUEST_BODY},
        responses={400: {"description": "RFC 6749 §5.2 error"}, 429: {}, 503: {}},
    )
    async def token(request: Request) -> Response:
        """Exchange a password or a refresh token for tokens (form-encoded)."""
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != _FORM:
            return oauth_error_response("invalid_request", f"the body must be {_FORM}")
        try:
            form = await request.form(max_files=0, max_fields=20)
            grant_type = _single(form, "grant_type")
            username = _single(form, "username")
            password = _single(form, "password")
            refresh_token = _single(form, "refresh_token")
            device_token = _device_token(form)
            _check_lengths(form)
        except (ValueError, UnicodeDecodeError) as exc:
            return oauth_error_response("invalid_request", str(exc))
        except Exception:
            return oauth_error_response("invalid_request", "the form body is malformed")
        context = request_context(request)
        try:
            if grant_type == "password":
                if not username or password is None:
                    return oauth_error_response(
                        "invalid_request", "username and password are required"
                    )
                pair = await service.password_grant(
                    username, password, device_token=device_token, context=context
                )
                auth.metrics.logins.labels("success").inc()
            elif grant_type == "refresh_token":
                if not refresh_token:
                    return oauth_error_response("invalid_request", "refresh_token is required")
                pair = await service.refresh_grant(refresh_token, context=context)
            elif grant_type in extensions:
                pair = await extensions[grant_type](lambda name: _single(form, name), context)
            elif grant_type is None:
                return oauth_error_response("invalid_request", "grant_type is required")
            else:
                return oauth_error_response(
                    "unsupported_grant_type", "use grant_type=password or refresh_token"
                )
        except (InvalidCredentials, InvalidGrant) as exc:
            if grant_type == "password":
                auth.metrics.logins.labels("failure").inc()
            return oauth_error_response("invalid_grant", exc.message)
        except (InvalidRequest, ValueError) as exc:
            return oauth_error_response("invalid_request", str(exc))
        except Throttled as exc:
            auth.metrics.logins.labels("throttled").inc()
            return token_error_response(exc)
        except BastionError as exc:
            return token_error_response(exc)
        return _token_response(pair)

    @router.post("/auth/logout", status_code=204, responses={401: {}})
    async def logout(request: Request, principal: Principal = Depends(auth.principal)) -> Response:
        """End this session: its access token and refresh tokens stop working at once."""
        await service.logout(principal, context=request_context(request))
        return Response(status_code=204)

    return router
