"""``/account/forgot``, ``/account/reset``, ``/account/verify``: recovery by mail.

They call ``container.mail.recovery``, as ``/auth/password/...`` and
``/auth/email/...`` do. The reset and
verification tokens arrive in the URL fragment (``#token=...``), which never
reaches a server log or a ``Referer``; ``fragment.js`` moves it into the
form's hidden field, and only the POST spends it (no GET consumes a token).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bastion.errors import BastionError, WrongPassword
from bastion.web.pages.account import render_account
from bastion.web.site import FORM_ERROR, Site


def build_router(site: Site) -> APIRouter:
    """The recovery pages: each calls the :class:`RecoveryService` method of
    the API route that does the same, so it records the same events."""
    router = APIRouter(include_in_schema=False)
    recovery = site.container.mail.recovery

    def add(path: str, handler: Any, method: str = "GET") -> None:
        router.add_api_route(site.url(path), site.page(handler), methods=[method])

    async def show(
        request: Request, template: str, values: dict[str, Any], status: int = 200
    ) -> Response:
        # A signed-in visitor's forms carry the session's CSRF token, which
        # is the one the post is checked against.
        viewer = await site.viewer(request)
        return site.render(request, template, values, viewer=viewer, status=status)

    async def forgot_page(request: Request) -> Response:
        return await show(request, "account/forgot.html", {"sent": False})

    async def forgot(request: Request) -> Response:
        form = await site.form(request, await site.viewer(request))
        await recovery.forgot_password(site.field(form, "email"), context=site.context(request))
        # The same page whether or not an account has the address (SPEC).
        return await show(request, "account/forgot.html", {"sent": True}, 202)

    async def reset_page(request: Request) -> Response:
        return await show(request, "account/reset.html", {"error": None})

    async def reset(request: Request) -> Response:
        form = await site.form(request, await site.viewer(request))
        new = site.field(form, "new_password")
        if new != site.field(form, "new_password_confirm"):
            return await show(
                request,
                "account/reset.html",
                {"error": "The two passwords differ."},
                FORM_ERROR,
            )
        try:
            await recovery.reset_password(
                site.field(form, "token"), new, context=site.context(request)
            )
        except BastionError as exc:
            return await show(request, "account/reset.html", {"error": exc.message}, FORM_ERROR)
        return RedirectResponse(site.url("/account/login?done=password"), status_code=303)

    async def verify_page(request: Request) -> Response:
        return await show(request, "account/verify.html", {"error": None, "done": False})

    async def verify(request: Request) -> Response:
        form = await site.form(request, await site.viewer(request))
        try:
            await recovery.verify_email(site.field(form, "token"), context=site.context(request))
        except BastionError as exc:
            values = {"error": exc.message, "done": False}
            return await show(request, "account/verify.html", values, FORM_ERROR)
        return await show(request, "account/verify.html", {"error": None, "done": True})

    async def change_email(request: Request) -> Response:
        viewer = await site.signed_in(request)
        form = await site.form(request, viewer)
        try:
            await recovery.change_email(
                viewer.principal,
                site.field(form, "new_email").strip(),
                site.field(form, "email_password"),
                context=site.context(request),
            )
        except BastionError as exc:
            field = "email_password" if isinstance(exc, WrongPassword) else "new_email"
            return await render_account(
                site, request, viewer, status=FORM_ERROR, errors={field: exc.message}
            )
        return RedirectResponse(site.url("/account?done=email"), status_code=303)

    add("/account/email", change_email, "POST")
    add("/account/forgot", forgot_page)
    add("/account/forgot", forgot, "POST")
    add("/account/reset", reset_page)
    add("/account/reset", reset, "POST")
    add("/account/verify", verify_page)
    add("/account/verify", verify, "POST")
    return router
