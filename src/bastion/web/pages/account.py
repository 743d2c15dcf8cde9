"""``/account``: sign-in, registration, the profile, password change, sign-out.

Every action calls the same service method as the API route that does it, so
it records the same security events.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bastion.errors import (
    BastionError,
    InvalidCredentials,
    MfaRequired,
    Throttled,
    ValidationFailed,
    WrongPassword,
)
from bastion.types import TokenPair
from bastion.web.cookies import (
    ANON_COOKIE,
    DEVICE_COOKIE,
    DEVICE_COOKIE_MAX_AGE,
    SESSION_COOKIE,
    clear_cookie,
    set_cookie,
)
from bastion.web.pages.sessions import session_rows
from bastion.web.site import FORM_ERROR, Site, Viewer

#: Notices a redirect may ask a page to show, by key: never text from the URL.
NOTICES = {
    "registered": "Your account is ready. Sign in to continue.",
    "signed_out": "You are signed out.",
    "password": "Your password is changed. Your other sessions were signed out.",
    "mfa_off": "Two-step verification is off.",
    "email": "A confirmation mail is on its way to the new address; "
    "your address changes when you follow its link.",
    "passkey_added": "The passkey is added.",
    "passkey_removed": "The passkey is removed.",
}


def notice_of(request: Request) -> str | None:
    """The fixed notice named by ``?done=``, if any."""
    return NOTICES.get(request.query_params.get("done", ""))


def validation_messages(exc: ValidationError) -> dict[str, str]:
    """Field name to message, never the submitted value (it may be a password)."""
    found: dict[str, str] = {}
    for error in exc.errors():
        loc = error.get("loc", ())
        name = str(loc[0]) if loc else "form"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        found.setdefault(name, message)
    return found


def build_router(site: Site) -> APIRouter:
    """The ``/account`` pages."""
    router = APIRouter(include_in_schema=False)
    container = site.container
    auth = container.auth_service

    def add(path: str, handler: Any, method: str = "GET") -> None:
        router.add_api_route(site.url(path), site.page(handler), methods=[method])

    # -- sign-in ---------------------------------------------------------------

    def login_form(
        request: Request,
        *,
        status: int = 200,
        error: str | None = None,
        username: str = "",
        target: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response:
        target = target or site.local_target(request.query_params.get("next", ""), "")
        values = {
            "error": error,
            "notice": notice_of(request),
            "next": target,
            "username": username,
        }
        return site.render(request, "account/login.html", values, status=status, headers=headers)

    async def login_page(request: Request) -> Response:
        if await site.viewer(request) is not None:
            return RedirectResponse(site.url("/account"), status_code=303)
        return login_form(request)

    async def login(request: Request) -> Response:
        viewer = await site.viewer(request)
        form = await site.form(request, viewer)
        username = site.field(form, "username")
        password = site.field(form, "password")
        target = site.local_target(site.field(form, "next"), site.url("/account"))
        await site.limit(request, "login")
        if not username or not password:
            return login_form(
                request,
                status=FORM_ERROR,
                error="Enter your username and password.",
                username=username,
            )
        context = site.context(request)
        try:
            pair = await auth.password_grant(
                username,
                password,
                device_token=request.cookies.get(DEVICE_COOKIE) or None,
                context=context,
            )
        except InvalidCredentials:
            site.hooks.on_login("failure")
            return login_form(
                request, status=FORM_ERROR, error="Invalid username or password.", username=username
            )
        except Throttled as exc:
            site.hooks.on_login("throttled")
            return throttled_form(request, exc, username)
        except MfaRequired as exc:
            # The password was right; the second step completes the sign-in
            # (``/account/login/mfa``, pages/mfa.py).
            return site.render(
                request,
                "account/login_mfa.html",
                {"error": None, "mfa_token": exc.mfa_token, "methods": exc.methods, "next": target},
            )
        site.hooks.on_login("success")
        return await start_session(site, request, viewer, pair, target)

    def throttled_form(request: Request, exc: Throttled, username: str) -> Response:
        return login_form(
            request,
            status=429,
            error=f"Too many failed sign-ins. Try again in {exc.retry_after} seconds.",
            username=username,
            headers={"Retry-After": str(exc.retry_after)},
        )

    async def logout(request: Request) -> Response:
        viewer = await site.viewer(request)
        # Checked first, signed in or not: a forged post is refused as such.
        await site.form(request, viewer)
        if viewer is None:
            return RedirectResponse(site.url("/account/login"), status_code=303)
        await auth.logout(viewer.principal, context=site.context(request))
        await container.browser_sessions.end(viewer.session.token)
        response = RedirectResponse(site.url("/account/login?done=signed_out"), status_code=303)
        clear_cookie(response, SESSION_COOKIE)
        return response

    # -- registration ------------------------------------------------------------

    def register_form(
        request: Request, *, status: int = 200, errors: dict[str, str] | None = None, **values: str
    ) -> Response:
        fields = {"username": "", "email": "", "age": "", **values}
        return site.render(
            request,
            "account/register.html",
            {"errors": errors or {}, "values": fields, "min_length": _min_length(site)},
            status=status,
        )

    async def register_page(request: Request) -> Response:
        return register_form(request)

    async def register(request: Request) -> Response:
        form = await site.form(request, await site.viewer(request))
        await site.limit(request, "register")
        values = {name: site.field(form, name) for name in ("username", "email", "age")}
        password = site.field(form, "password")
        errors: dict[str, str] = {}
        age_text = values["age"].strip()
        age = int(age_text) if age_text.isascii() and age_text.isdigit() else None
        if age is None:
            errors["age"] = "Enter your age in whole years."
        if password != site.field(form, "password_confirm"):
            errors["password_confirm"] = "The two passwords differ."  # noqa: S105 - a message
        if not errors:
            try:
                body = site.hooks.parse_registration(
                    {
                        "username": values["username"],
                        "email": values["email"],
                        "age": age,
                        "password": password,
                    }
                )
                await container.user_service.register(
                    username=body.username,
                    email=body.email,
                    age=body.age,
                    password=body.password,
                    context=site.context(request),
                )
            except ValidationError as exc:
                errors = validation_messages(exc)
            except ValidationFailed as exc:
                errors = {exc.field if exc.field != "new_password" else "password": exc.message}
            except BastionError as exc:
                if site.hooks.status_of(exc) != 409:
                    raise
                errors = {getattr(exc, "field", "username"): exc.message}
        if errors:
            return register_form(request, status=FORM_ERROR, errors=errors, **values)
        return RedirectResponse(site.url("/account/login?done=registered"), status_code=303)

    # -- the profile -------------------------------------------------------------

    async def account_page_of(
        request: Request, viewer: Viewer, *, status: int = 200, errors: dict[str, str] | None = None
    ) -> Response:
        return await render_account(site, request, viewer, status=status, errors=errors)

    async def account(request: Request) -> Response:
        return await account_page_of(request, await site.signed_in(request))

    async def change_password(request: Request) -> Response:
        viewer = await site.signed_in(request)
        form = await site.form(request, viewer)
        new = site.field(form, "new_password")
        if new != site.field(form, "new_password_confirm"):
            return await account_page_of(
                request,
                viewer,
                status=FORM_ERROR,
                errors={"new_password_confirm": "The two new passwords differ."},
            )
        try:
            await auth.change_password(
                viewer.principal,
                site.field(form, "current_password"),
                new,
                context=site.context(request),
            )
        except WrongPassword as exc:
            return await account_page_of(
                request, viewer, status=FORM_ERROR, errors={"current_password": exc.message}
            )
        except ValidationFailed as exc:
            return await account_page_of(
                request, viewer, status=FORM_ERROR, errors={"new_password": exc.message}
            )
        return RedirectResponse(site.url("/account?done=password"), status_code=303)

    add("/account/login", login_page)
    add("/account/login", login, "POST")
    add("/account/logout", logout, "POST")
    add("/account/register", register_page)
    add("/account/register", register, "POST")
    add("/account", account)
    add("/account/password", change_password, "POST")
    return router


async def start_session(
    site: Site, request: Request, viewer: Viewer | None, pair: TokenPair, target: str
) -> Response:
    """Open the browser session of a completed sign-in and go on to ``target``.

    A new session cookie at every sign-in: a session id planted before the
    login is worthless after it (session fixation, OWASP). The pair's device
    token goes into its own long-lived cookie, for the next sign-in.
    """
    container = site.container
    if viewer is not None:
        await container.browser_sessions.end(viewer.session.token)
    session = await container.browser_sessions.create(
        user_id=pair.user_id, session_id=pair.session_id, context=site.context(request)
    )
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, SESSION_COOKIE, session.token)
    if pair.device_token:
        set_cookie(response, DEVICE_COOKIE, pair.device_token, max_age=DEVICE_COOKIE_MAX_AGE)
    clear_cookie(response, ANON_COOKIE)
    return response


async def render_account(
    site: Site,
    request: Request,
    viewer: Viewer,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """The ``/account`` page; ``extra`` adds the one-time parts (the TOTP
    enrolment, the new recovery codes, an error of the MFA forms)."""
    current = viewer.session.record.session_id
    user_id = viewer.user.id
    mfa = site.container.mfa
    values: dict[str, Any] = {
        "user": viewer.user,
        "session": viewer.session.record,
        "notice": notice_of(request),
        "errors": errors or {},
        "min_length": _min_length(site),
        "sessions": await session_rows(site, user_id, current),
        "mfa": await mfa.mfa.status(user_id),
        "passkeys": await mfa.passkeys.of_user(user_id),
        "enrolment": None,
        "recovery_codes": None,
        "mfa_error": None,
    }
    values.update(extra)
    return site.render(request, "account/account.html", values, viewer=viewer, status=status)


def _min_length(site: Site) -> int:
    return site.container.settings.password_min_length
