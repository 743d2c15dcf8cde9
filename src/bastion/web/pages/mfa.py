"""Two-step verification and passkeys in the pages: the login's second step,
passwordless passkey sign-in, TOTP enrolment, passkeys on ``/account``, and
the admin's MFA reset and unlock of a user.

Every action calls the service method of the API route that does the same
(``container.mfa``: :class:`MfaService`, :class:`PasskeyService`,
:class:`MfaLogin`; :meth:`UserService.unlock`), so it records the same
events. The WebAuthn options come as JSON from POSTs that carry the form's
CSRF token (``passkey.js`` fetches them); nothing here changes state on a GET.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from bastion.errors import BastionError, InvalidGrant, Throttled
from bastion.web.pages.account import render_account, start_session
from bastion.web.pages.sessions import user_id_of
from bastion.web.site import FORM_ERROR, PageError, Site

#: The second-step methods of the form, by field name.
_ANSWERS = ("otp", "recovery_code", "webauthn")


def svg_data_uri(svg: str) -> str:
    """SVG markup as a ``data:`` URI for an ``<img>``: the page CSP allows
    ``img-src data:``, and markup inside an image cannot run script. An SVG
    document on its own (unlike one inline in HTML) needs its namespace."""
    if "xmlns=" not in svg.split(">", 1)[0]:
        svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def build_router(site: Site) -> APIRouter:
    """The MFA and passkey pages and actions."""
    router = APIRouter(include_in_schema=False)
    container = site.container
    mfa, passkeys, login = container.mfa.mfa, container.mfa.passkeys, container.mfa.login

    def add(path: str, handler: Any) -> None:
        router.add_api_route(site.url(path), site.page(handler), methods=["POST"])

    # -- sign-in -----------------------------------------------------------------

    async def second_step(request: Request) -> Response:
        viewer = await site.viewer(request)
        form = await site.form(request, viewer)
        mfa_token = site.field(form, "mfa_token")
        target = site.local_target(site.field(form, "next"), site.url("/account"))
        method = next((name for name in _ANSWERS if site.field(form, name)), "")
        await site.limit(request, "login")
        try:
            if not method:
                raise InvalidGrant("enter a code")
            pair = await login.grant(
                mfa_token,
                method=method,
                answer=site.field(form, method).strip(),
                context=site.context(request),
            )
        except Throttled as exc:
            site.hooks.on_login("throttled")
            raise PageError(
                429,
                f"Too many failed sign-ins. Try again in {exc.retry_after} seconds.",
                {"Retry-After": str(exc.retry_after)},
            ) from exc
        except InvalidGrant:
            site.hooks.on_login("failure")
            # The mfa_token may still be good (it dies after 5 wrong codes,
            # or in 5 minutes): offer the step again; a dead one fails again
            # and the visitor starts over from the password.
            values = {
                "error": "That code did not work. Try again, or sign in again.",
                "mfa_token": mfa_token,
                "methods": [name for name in _ANSWERS if name in site.field(form, "methods")],
                "next": target,
            }
            return site.render(request, "account/login_mfa.html", values, status=FORM_ERROR)
        site.hooks.on_login("success")
        return await start_session(site, request, viewer, pair, target)

    async def second_step_options(request: Request) -> Response:
        form = await site.form(request, await site.viewer(request))
        try:
            options = await login.webauthn_options(site.field(form, "mfa_token"))
        except InvalidGrant as exc:
            raise PageError(400, "The sign-in has expired. Sign in again.") from exc
        return JSONResponse(options)

    async def passkey_options(request: Request) -> Response:
        await site.form(request, await site.viewer(request))
        return JSONResponse(await passkeys.passwordless_options())

    async def passkey_sign_in(request: Request) -> Response:
        viewer = await site.viewer(request)
        form = await site.form(request, viewer)
        await site.limit(request, "login")
        try:
            pair = await login.passwordless_grant(
                site.field(form, "credential"), context=site.context(request)
            )
        except BastionError:
            site.hooks.on_login("failure")
            values = {
                "error": "The passkey was not accepted.",
                "notice": None,
                "next": "",
                "username": "",
            }
            return site.render(request, "account/login.html", values, status=FORM_ERROR)
        site.hooks.on_login("success")
        return await start_session(site, request, viewer, pair, site.url("/account"))

    # -- TOTP on /account ----------------------------------------------------------

    async def totp_enrol(request: Request) -> Response:
        viewer = await site.signed_in(request)
        form = await site.form(request, viewer)
        try:
            enrolment = await mfa.enrol_totp(
                viewer.principal,
                site.field(form, "current_password"),
                context=site.context(request),
            )
        except BastionError as exc:
            return await render_account(
                site, request, viewer, status=FORM_ERROR, mfa_error=exc.message
            )
        shown = {"secret": enrolment.secret, "qr": svg_data_uri(enrolment.qr_svg)}
        return await render_account(site, request, viewer, enrolment=shown)

    async def totp_confirm(request: Request) -> Response:
        viewer = await site.signed_in(request)
        form = await site.form(request, viewer)
        try:
            codes = await mfa.confirm_totp(
                viewer.principal, site.field(form, "code").strip(), context=site.context(request)
            )
        except BastionError as exc:
            return await render_account(
                site, request, viewer, status=FORM_ERROR, mfa_error=exc.message
            )
        # Shown once, in this answer only (not after a redirect: they are
        # never stored in the clear).
        return await render_account(site, request, viewer, recovery_codes=codes)

    async def totp_disable(request: Request) -> Response:
        viewer = await site.signed_in(request)
        form = await site.form(request, viewer)
        try:
            await mfa.disable_totp(
                viewer.principal,
                site.field(form, "current_password"),
                site.field(form, "code").strip(),
                context=site.context(request),
            )
        except BastionError as exc:
            return await render_account(
                site, request, viewer, status=FORM_ERROR, mfa_error=exc.message
            )
        return RedirectResponse(site.url("/account?done=mfa_off"), status_code=303)

    async def recovery_codes(request: Request) -> Response:
        viewer = await site.signed_in(request)
        form = await site.form(request, viewer)
        try:
            codes = await mfa.new_recovery_codes(
                viewer.principal,
                site.field(form, "current_password"),
                context=site.context(request),
            )
        except BastionError as exc:
            return await render_account(
                site, request, viewer, status=FORM_ERROR, mfa_error=exc.message
            )
        return await render_account(site, request, viewer, recovery_codes=codes)

    # -- passkeys on /account --------------------------------------------------------

    async def passkey_add_options(request: Request) -> Response:
        viewer = await site.signed_in(request)
        await site.form(request, viewer)
        return JSONResponse(await passkeys.registration_options(viewer.principal))

    async def passkey_add(request: Request) -> Response:
        viewer = await site.signed_in(request)
        form = await site.form(request, viewer)
        try:
            await passkeys.register(
                viewer.principal,
                site.field(form, "credential"),
                site.field(form, "name").strip()[:64] or None,
                context=site.context(request),
            )
        except BastionError as exc:
            return await render_account(
                site, request, viewer, status=FORM_ERROR, mfa_error=exc.message
            )
        return RedirectResponse(site.url("/account?done=passkey_added"), status_code=303)

    async def passkey_remove(request: Request) -> Response:
        viewer = await site.signed_in(request)
        await site.form(request, viewer)
        passkey_id = str(request.path_params["passkey_id"])
        await passkeys.remove(viewer.principal, passkey_id, context=site.context(request))
        return RedirectResponse(site.url("/account?done=passkey_removed"), status_code=303)

    # -- the admin ---------------------------------------------------------------------

    async def admin_mfa_reset(request: Request) -> Response:
        viewer = await site.admin(request)
        await site.form(request, viewer)
        user_id = user_id_of(request)
        await mfa.reset(user_id, actor=viewer.principal, context=site.context(request))
        return RedirectResponse(site.url(f"/admin/users/{user_id}?done=mfa"), status_code=303)

    async def admin_unlock(request: Request) -> Response:
        viewer = await site.admin(request)
        await site.form(request, viewer)
        user_id = user_id_of(request)
        await container.user_service.unlock(
            user_id, actor=viewer.principal, context=site.context(request)
        )
        return RedirectResponse(site.url(f"/admin/users/{user_id}?done=unlock"), status_code=303)

    add("/account/login/mfa", second_step)
    add("/account/login/mfa/options", second_step_options)
    add("/account/login/passkey/options", passkey_options)
    add("/account/login/passkey", passkey_sign_in)
    add("/account/mfa/totp", totp_enrol)
    add("/account/mfa/totp/confirm", totp_confirm)
    add("/account/mfa/totp/disable", totp_disable)
    add("/account/mfa/recovery-codes", recovery_codes)
    add("/account/passkeys/options", passkey_add_options)
    add("/account/passkeys", passkey_add)
    add("/account/passkeys/{passkey_id}/delete", passkey_remove)
    add("/admin/users/{user_id}/mfa/reset", admin_mfa_reset)
    add("/admin/users/{user_id}/unlock", admin_unlock)
    return router
