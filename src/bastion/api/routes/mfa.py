"""``/users/me/mfa``: TOTP, recovery codes, status; the admin reset; and the
WebAuthn options of the login step (``/auth/mfa/webauthn/options``,
``/auth/passkey/options``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from bastion.api.context import request_context
from bastion.api.jsonroute import JsonRoute, is_json
from bastion.api.schemas_mfa import (
    CodeIn,
    CurrentPassword,
    MfaStatusOut,
    MfaTokenIn,
    RecoveryCodesOut,
    TotpDisable,
    TotpEnrolmentOut,
)
from bastion.types import ADMIN, Principal

if TYPE_CHECKING:
    from bastion.api.app import Bastion

UserId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The user's id")]
_NO_STORE = {"Cache-Control": "no-store"}
_ERRORS: dict[int | str, dict[str, str]] = {
    400: {"description": "Wrong current password (`wrong_password`) or code"},
    401: {"description": "Missing or invalid token"},
}


def build_router(auth: Bastion) -> APIRouter:
    """The MFA routes."""
    router = auth.api_router(tags=["mfa"], route_class=JsonRoute)
    parts = auth.container.mfa

    @router.get("/users/me/mfa", response_model=MfaStatusOut, responses=_ERRORS)
    async def status(principal: Principal = Depends(auth.principal)) -> MfaStatusOut:
        """Which factors the caller has."""
        return MfaStatusOut.of(await parts.mfa.status(principal.user_id))

    @router.post(
        "/users/me/mfa/totp", status_code=201, response_model=TotpEnrolmentOut, responses=_ERRORS
    )
    async def enrol(
        body: CurrentPassword, request: Request, principal: Principal = Depends(auth.principal)
    ) -> TotpEnrolmentOut:
        """Start a TOTP enrolment; it is pending until confirmed with a code."""
        enrolment = await parts.mfa.enrol_totp(
            principal, body.current_password, context=request_context(request)
        )
        return TotpEnrolmentOut.of(enrolment)

    @router.post("/users/me/mfa/totp/confirm", response_model=RecoveryCodesOut, responses=_ERRORS)
    async def confirm(
        body: CodeIn, request: Request, principal: Principal = Depends(auth.principal)
    ) -> RecoveryCodesOut:
        """Turn TOTP on with a first code; the recovery codes are shown this once."""
        codes = await parts.mfa.confirm_totp(principal, body.code, context=request_context(request))
        return RecoveryCodesOut(recovery_codes=codes)

    @router.post("/users/me/mfa/totp/disable", status_code=204, responses=_ERRORS)
    async def disable(
        body: TotpDisable, request: Request, principal: Principal = Depends(auth.principal)
    ) -> Response:
        """Turn TOTP off (the password and a TOTP or recovery code)."""
        await parts.mfa.disable_totp(
            principal, body.current_password, body.code, context=request_context(request)
        )
        return Response(status_code=204)

    @router.post("/users/me/mfa/recovery-codes", response_model=RecoveryCodesOut, responses=_ERRORS)
    async def recovery_codes(
        body: CurrentPassword, request: Request, principal: Principal = Depends(auth.principal)
    ) -> RecoveryCodesOut:
        """A new set of recovery codes; the old set stops working."""
        codes = await parts.mfa.new_recovery_codes(
            principal, body.current_password, context=request_context(request)
        )
        return RecoveryCodesOut(recovery_codes=codes)

    @router.post(
        "/users/{user_id}/mfa/reset", status_code=204, responses={**_ERRORS, 403: {}, 404: {}}
    )
    async def reset(
        user_id: UserId, request: Request, principal: Principal = Depends(auth.require(ADMIN))
    ) -> Response:
        """Remove every factor of a user (admin); the user gets a notice."""
        await parts.mfa.reset(user_id, actor=principal, context=request_context(request))
        return Response(status_code=204)

    @router.post("/auth/mfa/webauthn/options", responses={400: {"description": "invalid_grant"}})
    async def mfa_webauthn_options(body: MfaTokenIn) -> JSONResponse:
        """WebAuthn request options for the second step of a login."""
        options = await parts.login.webauthn_options(body.mfa_token)
        return JSONResponse(options, headers=_NO_STORE)

    @router.post("/auth/passkey/options", responses={422: {}})
    async def passkey_options(request: Request) -> Response:
        """WebAuthn request options for passwordless sign-in (no body, or ``{}``)."""
        refusal = await _empty_body_or_refusal(request)
        if refusal is not None:
            return refusal
        return JSONResponse(await parts.passkeys.passwordless_options(), headers=_NO_STORE)

    return router


async def _empty_body_or_refusal(request: Request) -> Response | None:
    raw = await request.body()
    if not raw.strip():
        return None
    if not is_json(request.headers.get("content-type")):
        return JSONResponse({"detail": "Content-Type must be application/json"}, status_code=415)
    try:
        value: Any = json.loads(raw)
    except ValueError:
        return JSONResponse(
            {"detail": [{"type": "json_invalid", "loc": ["body"], "msg": "malformed JSON"}]},
            status_code=422,
        )
    if value != {}:
        return JSONResponse(
            {"detail": [{"type": "extra_forbidden", "loc": ["body"], "msg": "send no body or {}"}]},
            status_code=422,
        )
    return None
