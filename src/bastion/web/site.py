"""What every page handler shares: templates, static files, the signed-in
viewer, cookies, form checks, and the turning of errors into pages."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bastion.bootstrap import Container
from bastion.errors import BastionError, NotFound, Overloaded, Throttled, Unavailable
from bastion.security.clientip import rate_limit_key
from bastion.services.browser_sessions import BrowserSession, csrf_matches, csrf_token_for
from bastion.types import ADMIN, Principal, RequestContext, User
from bastion.web.cookies import ANON_COOKIE, SESSION_COOKIE, set_cookie
from bastion.web.guard import same_origin
from bastion.web.hooks import PageHooks

#: Forms are small; a body with more fields is not one of ours.
MAX_FORM_FIELDS = 30
MAX_FIELD_LENGTH = 4096

#: The status of a form shown again with its mistakes marked. It is a page
#: that worked: a 4xx here would make Chromium log "Failed to load resource"
#: to the console on every typo (SPEC: no console error on any page). What
#: is refused outright keeps its status (403, 404, 429, 503).
FORM_ERROR = 200

#: The features whose parts the templates show.
FEATURES = frozenset({"recovery", "sessions", "mfa"})

STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


class PageError(Exception):
    """Ends a page request with an error page.

    Attributes:
        status: The HTTP status.
        message: Shown to the visitor.
        headers: Extra response headers (``Retry-After``).
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Redirect(Exception):
    """Ends a page request with a redirect (``303 See Other`` after a POST)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of a page request."""

    session: BrowserSession
    user: User

    @property
    def principal(self) -> Principal:
        """The user as the services know a caller: in the session opened by
        the page login, with the permissions stored now (not at sign-in)."""
        return Principal(
            user_id=self.user.id,
            session_id=self.session.record.session_id,
            token_id=f"web:{self.session.record.session_id}",
            permissions=frozenset(self.user.permissions),
        )

    @property
    def is_admin(self) -> bool:
        """Whether the admin console is open to this viewer."""
        return self.user.has(ADMIN)


def format_time(moment: datetime | float | None) -> str:
    """A UTC time as the pages show it."""
    if moment is None:
        return ""
    if isinstance(moment, float | int):
        from bastion.types import utc

        moment = utc(float(moment))
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _load_static() -> dict[str, tuple[bytes, str]]:
    found: dict[str, tuple[bytes, str]] = {}
    root = resources.files("bastion.web") / "static"

    def walk(folder: Any, prefix: str) -> None:
        for item in folder.iterdir():
            name = f"{prefix}{item.name}"
            if item.is_dir():
                walk(item, f"{name}/")
                continue
            suffix = "." + item.name.rsplit(".", 1)[-1]
            if suffix in STATIC_TYPES:
                found[name] = (item.read_bytes(), STATIC_TYPES[suffix])

    walk(root, "")
    return found


class Site:
    """The pages' shared machinery.

    Args:
        container: The instance's services.
        hooks: What the API lends the pages.
        prefix: Where Bastion is mounted (``""`` at the root).
    """

    def __init__(self, container: Container, hooks: PageHooks, prefix: str) -> None:
        self.container = container
        self.hooks = hooks
        self.prefix = prefix
        #: The templates still test for these (a library user's own
        #: templates may leave a feature out).
        self.features = FEATURES
        #: Every asset, read once: served from memory by name, so no request
        #: path ever reaches the file system.
        self.static = _load_static()
        self.env = Environment(
            loader=PackageLoader("bastion.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = format_time
        self.env.globals.update(
            base=prefix, static=f"{prefix}/static/bastion", features=self.features
        )

    def url(self, path: str) -> str:
        """An absolute path under the mount prefix."""
        return f"{self.prefix}{path}"

    # -- who is asking ------------------------------------------------------------

    async def viewer(self, request: Request) -> Viewer | None:
        """The signed-in user, or ``None``."""
        session = await self.container.browser_sessions.resolve(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        try:
            user = await self.container.user_service.get(session.record.user_id)
        except NotFound:
            return None
        return Viewer(session, user)

    async def signed_in(self, request: Request) -> Viewer:
        """The signed-in user; anyone else is sent to the login page."""
        viewer = await self.viewer(request)
        if viewer is None:
            raise Redirect(self.url("/account/login") + "?" + urlencode({"next": request.url.path}))
        return viewer

    def local_target(self, value: str, default: str) -> str:
        """``value`` if it is one of our own pages, else ``default``: a login
        link must not send the user on to another site (open redirect)."""
        pages = (self.url("/account"), self.url("/admin"))
        ok = (
            value.startswith(pages)
            and value.isascii()
            and "//" not in value
            and "\\" not in value
            and all(ch.isprintable() for ch in value)
        )
        return value if ok else default

    async def admin(self, request: Request) -> Viewer:
        """The signed-in admin; others get 403 and an ``authz_fail`` event, as
        the API's ``require("admin")`` records."""
        viewer = await self.signed_in(request)
        if not viewer.is_admin:
            await self.container.events.record(
                "authz_fail",
                outcome="failure",
                context=self.hooks.context_of(request),
                user_id=viewer.user.id,
                username=viewer.user.username,
                permission=ADMIN,
                path=request.url.path[:200],
            )
            raise PageError(403, "This page is for administrators.")
        return viewer

    def context(self, request: Request) -> RequestContext:
        """Who is asking, for security events."""
        return self.hooks.context_of(request)

    async def limit(self, request: Request, rule_name: str) -> None:
        """Spend the API's budget for the same action (``login``,
        ``register``): the pages are no way around the tighter limits of
        ``POST /auth/token`` and ``POST /users``.

        Raises:
            PageError: 429 with the rate-limit headers, or 503 when the
                shared limiter is unreachable (these budgets fail closed).
        """
        container = self.container
        rule = getattr(container.rules, rule_name)
        context = self.context(request)
        key = rate_limit_key(context.ip or "unknown")
        try:
            decision = await container.rate_store.hit(rule, key, container.clock.now())
        except Unavailable as exc:
            raise PageError(
                503, "Sign-in is unavailable for a moment.", {"Retry-After": str(exc.retry_after)}
            ) from exc
        if decision.allowed:
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in self.hooks.limit_headers(rule, decision)
        }
        await container.events.record(
            "excess_rate_limit_exceeded",
            outcome="failure",
            context=context,
            rule=rule.name,
            limit=f"{rule.limit}/{rule.window}s",
            path=request.url.path[:200],
        )
        raise PageError(
            429,
            f"Too many attempts from your network. Try again in {headers['retry-after']} s.",
            headers,
        )

    # -- forms ------------------------------------------------------------------

    async def form(self, request: Request, viewer: Viewer | None) -> FormData:
        """The posted form, after both CSRF checks.

        Raises:
            PageError: 403 for a foreign origin or a missing or wrong token;
                400 for a body that is not a small urlencoded form.
        """
        if not same_origin(request.headers):
            raise PageError(403, "This request did not come from this site's own pages.")
        expired = PageError(
            403, "The form has expired or was not sent from this site. Reload and try again."
        )
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            # Our forms are urlencoded; anything else carries no token of ours.
            raise expired
        try:
            form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        except Exception as exc:
            raise PageError(400, "The form could not be read.") from exc
        secret = viewer.session.token if viewer else request.cookies.get(ANON_COOKIE)
        sent = form.get("csrf")
        if not csrf_matches(secret, sent if isinstance(sent, str) else None):
            raise expired
        return form

    @staticmethod
    def field(form: FormData, name: str) -> str:
        """One text field (empty when missing; over-long input is cut)."""
        value = form.get(name)
        return value[:MAX_FIELD_LENGTH] if isinstance(value, str) else ""

    # -- answers ------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        values: Mapping[str, Any] | None = None,
        *,
        viewer: Viewer | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """A page; its forms carry the CSRF token of the viewer's session, or
        of a fresh anonymous cookie."""
        anon: str | None = None
        if viewer is not None:
            csrf = viewer.session.csrf_token
        else:
            anon = request.cookies.get(ANON_COOKIE)
            fresh = not anon or len(anon) > 64
            if fresh:
                anon = secrets.token_urlsafe(32)
            csrf = csrf_token_for(anon or "")
            if not fresh:
                anon = None
        body = self.env.get_template(template).render(
            **(values or {}), csrf=csrf, viewer=viewer, path=request.url.path
        )
        response = HTMLResponse(body, status_code=status, headers=dict(headers or {}))
        if anon is not None:
            set_cookie(response, ANON_COOKIE, anon)
        return response

    def error_page(self, request: Request, error: PageError, viewer: Viewer | None) -> Response:
        """An error page."""
        return self.render(
            request,
            "error.html",
            {"status": error.status, "message": error.message},
            viewer=viewer,
            status=error.status,
            headers=error.headers,
        )

    def page_error_of(self, error: BastionError) -> PageError:
        """The error page of a service error, with the API's status."""
        status = self.hooks.status_of(error)
        headers: dict[str, str] = {}
        if isinstance(error, Throttled | Overloaded | Unavailable):
            headers["Retry-After"] = str(error.retry_after)
        return PageError(status, error.message, headers)

    def page(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a page handler: redirects and errors become responses."""

        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except Redirect as exc:
                return RedirectResponse(exc.location, status_code=303)
            except PageError as exc:
                return self.error_page(request, exc, None)
            except (Unavailable, Overloaded, NotFound) as exc:
                return self.error_page(request, self.page_error_of(exc), None)

        return run
