"""Account recovery over HTTP: forgot/reset password, verify and change email.

No GET here spends a token: link scanners and prefetchers follow GETs (the
link carries the token in its fragment, which the page posts).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from bastion.api.context import request_context
from bastion.api.jsonroute import JsonRoute
from bastion.api.middleware.ratelimit import limit_headers
from bastion.api.schemas import (
    AcceptedOut,
    AddressRequest,
    EmailChange,
    PasswordReset,
    TokenSubmission,
)
from bastion.bootstrap_limits import rate_rule
from bastion.errors import Unavailable
from bastion.security.clientip import rate_limit_key
from bastion.security.ratelimit import MovingWindowLimiter
from bastion.types import Principal

if TYPE_CHECKING:
    from bastion.api.app import Bastion

#: The same body for every address (no enumeration by body).
ACCEPTED = {"detail": "if an account has this address, a mail is on its way"}
_ACCEPTED_DOC: dict[int | str, dict[str, object]] = {
    202: {"model": AcceptedOut, "description": "Always, whatever the address"},
    422: {"description": "Not an email address"},
    429: {"description": "BASTION_RECOVERY_RATE_LIMIT exceeded by this client"},
}
_TOKEN_DOC: dict[int | str, dict[str, object]] = {
    400: {"description": "Bad, used or expired token (code invalid_token)"},
}


def build_router(auth: Bastion) -> APIRouter:
    """The recovery routes."""
    router = auth.api_router(tags=["recovery"], route_class=JsonRoute)
    recovery = auth.container.mail.recovery
    store = auth.container.rate_store
    rule = rate_rule("recovery", auth.settings.recovery_rate_limit, fail_closed=True)
    reported = MovingWindowLimiter(1, 60.0)

    async def over_budget(request: Request) -> Response | None:
        """One per-client budget for forgot and resend (fail closed, like login)."""
        context = request_context(request)
        key = rate_limit_key(context.ip or "unknown")
        now = time.time()
        try:
            decision = await store.hit(rule, key, now)
        except Unavailable as exc:
            return JSONResponse(
                {"detail": "rate limiter unavailable, retry shortly"},
                status_code=503,
                headers={"Retry-After": str(exc.retry_after)},
            )
        if decision.allowed:
            return None
        if reported.hit(key, now).allowed:
            await auth.container.events.record(
                "excess_rate_limit_exceeded",
                outcome="failure",
                context=context,
                rule=rule.name,
                limit=f"{rule.limit}/{rule.window}s",
            )
        headers = {name.decode(): value.decode() for name, value in limit_headers(rule, decision)}
        return JSONResponse({"detail": "rate limit exceeded"}, status_code=429, headers=headers)

    def accepted() -> Response:
        return JSONResponse(ACCEPTED, status_code=202, headers={"Cache-Control": "no-store"})

    @router.post("/auth/password/forgot", status_code=202, responses=_ACCEPTED_DOC)
    async def forgot(body: AddressRequest, request: Request) -> Response:
        """Ask for a password-reset mail. The answer is the same whether or
        not an account has the address; the mail, if any, follows."""
        refused = await over_budget(request)
        if refused is not None:
            return refused
        await recovery.forgot_password(body.email, context=request_context(request))
        return accepted()

    @router.post("/auth/password/reset", status_code=204, responses=_TOKEN_DOC)
    async def reset(body: PasswordReset, request: Request) -> Response:
        """Set a new password with the token of a reset mail. Every session of
        the account ends; nobody is logged in."""
        await recovery.reset_password(
            body.token, body.new_password, context=request_context(request)
        )
        return Response(status_code=204)

    @router.post("/auth/email/verify", status_code=204, responses=_TOKEN_DOC)
    async def verify(body: TokenSubmission, request: Request) -> Response:
        """Confirm an address (verification or email-change token)."""
        await recovery.verify_email(body.token, context=request_context(request))
        return Response(status_code=204)

    @router.post("/auth/email/verify/resend", status_code=202, responses=_ACCEPTED_DOC)
    async def resend(body: AddressRequest, request: Request) -> Response:
        """Ask for another verification mail (same rules as forgot)."""
        refused = await over_budget(request)
        if refused is not None:
            return refused
        await recovery.resend_verification(body.email, context=request_context(request))
        return accepted()

    @router.post(
        "/users/me/email",
        status_code=202,
        responses={
            202: {"model": AcceptedOut},
            400: {"description": "Wrong current password"},
            401: {},
            409: {"description": "Address taken"},
        },
    )
    async def change_email(
        body: EmailChange, request: Request, principal: Principal = Depends(auth.principal)
    ) -> Response:
        """Change the caller's address: it changes once the link mailed to
        the new address is used; the old address gets a notice."""
        await recovery.change_email(
            principal, body.new_email, body.current_password, context=request_context(request)
        )
        return JSONResponse(
            {"detail": "a confirmation mail was sent to the new address"},
            status_code=202,
            headers={"Cache-Control": "no-store"},
        )

    return router
