"""``/account/forgot``, ``/account/reset``, ``/account/verify``: recovery by mail.

Mounted only when the container has a recovery service (the mail issue builds
it); :data:`bastion.web.mount.OPTIONAL_PAGES` decides. The reset and
verification tokens arrive in the URL fragment (``#token=...``), which never
reaches a server log or a ``Referer``; ``fragment.js`` moves it into the
form's hidden field, and only the POST spends it (no GET consumes a token).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bastion.errors import BastionError, ValidationFailed
from bastion.types import RequestContext
from bastion.web.site import FORM_ERROR, Site


@runtime_checkable
class RecoveryPort(Protocol):
    """What these pages need of the recovery service."""

    async def request_reset(self, email: str, *, context: RequestContext | None = None) -> None:
        """Queue a reset mail if an account has ``email`` (always silent)."""
        ...

    async def reset_password(
        self, token: str, new_password: str, *, context: RequestContext | None = None
    ) -> None:
        """Spend a reset token; raises ``invalid_token`` or a password rule."""
        ...

    async def verify_email(self, token: str, *, context: RequestContext | None = None) -> None:
        """Spend a verification token."""
        ...


def build_router(site: Site, recovery: RecoveryPort) -> APIRouter:
    """The recovery pages."""
    router = APIRouter(include_in_schema=False)

    def add(path: str, handler: Any, method: str = "GET") -> None:
        router.add_api_route(site.url(path), site.page(handler), methods=[method])

    async def forgot_page(request: Request) -> Response:
        return site.render(request, "account/forgot.html", {"sent": False})

    async def forgot(request: Request) -> Response:
        form = await site.form(request, await site.viewer(request))
        await recovery.request_reset(site.field(form, "email"), context=site.context(request))
        # The same page whether or not an account has the address (SPEC).
        return site.render(request, "account/forgot.html", {"sent": True}, status=202)

    async def reset_page(request: Request) -> Response:
        return site.render(request, "account/reset.html", {"error": None})

    async def reset(request: Request) -> Response:
        form = await site.form(request, await site.viewer(request))
        new = site.field(form, "new_password")
        if new != site.field(form, "new_password_confirm"):
            return site.render(
                request,
                "account/reset.html",
                {"error": "The two passwords differ."},
                status=FORM_ERROR,
            )
        try:
            await recovery.reset_password(
                site.field(form, "token"), new, context=site.context(request)
            )
        except ValidationFailed as exc:
            return site.render(
                request, "account/reset.html", {"error": exc.message}, status=FORM_ERROR
            )
        except BastionError as exc:
            return site.render(
                request, "account/reset.html", {"error": exc.message}, status=FORM_ERROR
            )
        return RedirectResponse(site.url("/account/login?done=password"), status_code=303)

    async def verify_page(request: Request) -> Response:
        return site.render(request, "account/verify.html", {"error": None, "done": False})

    async def verify(request: Request) -> Response:
        form = await site.form(request, await site.viewer(request))
        try:
            await recovery.verify_email(site.field(form, "token"), context=site.context(request))
        except BastionError as exc:
            values = {"error": exc.message, "done": False}
            return site.render(request, "account/verify.html", values, status=FORM_ERROR)
        return site.render(request, "account/verify.html", {"error": None, "done": True})

    add("/account/forgot", forgot_page)
    add("/account/forgot", forgot, "POST")
    add("/account/reset", reset_page)
    add("/account/reset", reset, "POST")
    add("/account/verify", verify_page)
    add("/account/verify", verify, "POST")
    return router
