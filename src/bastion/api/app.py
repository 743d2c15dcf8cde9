"""``Bastion``: the library entry point, and ``create_app``: the whole service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Scope

from bastion.api.context import request_context
from bastion.api.errors import install_error_handlers, status_of
from bastion.api.metrics import Metrics
from bastion.api.middleware.authentication import (
    STATE_AUTH_ERROR,
    STATE_PRINCIPAL,
    BearerAuthentication,
)
from bastion.api.middleware.bodylimit import BodyLimit
from bastion.api.middleware.context import STATE_USER_ID, RequestContext
from bastion.api.middleware.edge import EdgeMiddleware
from bastion.api.middleware.headers import SecurityHeaders
from bastion.api.middleware.pacing import RetryPacing
from bastion.api.middleware.probes import HealthShortcut
from bastion.api.middleware.proxywarning import remedy
from bastion.api.middleware.ratelimit import RateLimit, limit_headers
from bastion.api.openapi import RouteTraits, install_openapi
from bastion.api.routes import auth as auth_routes
from bastion.api.routes import docs as docs_routes
from bastion.api.routes import events as event_routes
from bastion.api.routes import mfa as mfa_routes
from bastion.api.routes import passkeys as passkey_routes
from bastion.api.routes import recovery as recovery_routes
from bastion.api.routes import sessions as session_routes
from bastion.api.routes import system as system_routes
from bastion.api.routes import users as user_routes
from bastion.api.schemas import PermissionsUpdate, UserCreate
from bastion.bootstrap import Container, build
from bastion.config import Settings
from bastion.errors import (
    Forbidden,
    InsufficientAuthentication,
    InvalidToken,
    MissingToken,
    Unavailable,
)
from bastion.logs import configure_logging
from bastion.security.amr import is_multi_factor
from bastion.security.clientip import ClientResolver
from bastion.security.headers import SecurityHeadersPolicy
from bastion.storage.mailport import MailTransport
from bastion.storage.protocols import RateRule
from bastion.types import Clock, Principal, User
from bastion.web import PageHooks, mount_pages, page_prefixes

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])

#: Declared for the OpenAPI document ("Authorize" in the docs); the token is
#: verified by ``AuthenticationMiddleware``.
bearer_scheme = HTTPBearer(auto_error=False, description="An access token from POST /auth/token")


class Bastion:
    """Bastion's routers, middleware and dependencies for a FastAPI app.

    Example::

        auth = Bastion(Settings())
        auth.install(app)

        @app.get("/reports", dependencies=[Depends(auth.require("reports:read"))])
        async def reports(user: User = Depends(auth.current_user)) -> dict: ...

    Args:
        settings: The configuration; ``Settings()`` reads the environment.
        clock: Time source (tests inject one).
        mail_transport: Sends mail (any object with ``async send(EmailMessage)``,
            see :class:`bastion.MailTransport`); default: ``BASTION_SMTP_URL``
            or the Maildir in the data directory.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        mail_transport: MailTransport | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        self.container: Container = build(self.settings, clock=clock, mail_transport=mail_transport)
        self.metrics = Metrics()
        self.container.hash_pool.on_wait = self.metrics.hash_wait.observe
        self.container.events.on_drop = self.metrics.events_dropped.inc
        #: Dependencies that demand a bearer token, for the OpenAPI document.
        self._token_dependencies: set[Callable[..., Any]] = {self.principal, self.current_user}
        #: Dependencies that demand a permission (403 in the OpenAPI document).
        self._permission_dependencies: set[Callable[..., Any]] = set()
        #: Endpoints that call ``principal_of`` themselves.
        self._token_endpoints: set[Callable[..., Any]] = set()
        #: The app and prefix ``install`` is adding routes to.
        self._target: tuple[FastAPI | None, str] = (None, "")

    # -- dependencies ----------------------------------------------------------

    async def principal(self, request: Request) -> Principal:
        """The verified caller of this request (401 otherwise).

        The token was verified by ``AuthenticationMiddleware``; this only reads
        the outcome, so it declares no ``HTTPBearer`` sub-dependency (which
        would cost every request a second parse). The OpenAPI document still
        marks the routes that use it as bearer-protected (``api/openapi.py``).
        """
        return self.principal_of(request)

    def principal_of(self, request: Request) -> Principal:
        """:meth:`principal` called directly, for an endpoint that takes only
        the request (no dependency for FastAPI to solve on each call); such an
        endpoint is registered with :meth:`token_endpoint` for the OpenAPI
        document.

        Raises:
            MissingToken, InvalidToken: no valid token came (401).
            Unavailable: revocations are not loaded yet (503).
        """
        if not self.container.revocations_synced:
            # Fail closed: until this instance has loaded the revocations made
            # by others (logouts, demotions), a token it would accept may be
            # one that was revoked. The database is back within Retry-After.
            raise Unavailable("revocations not loaded yet, retry shortly")
        state = request.scope.get("state", {})
        principal = state.get(STATE_PRINCIPAL)
        if principal is not None:
            # A real check, not ``assert`` (gone under ``python -O``): only
            # what AuthenticationMiddleware verified is a principal.
            if not isinstance(principal, Principal):
                raise InvalidToken()
            return principal
        error = state.get(STATE_AUTH_ERROR)
        if isinstance(error, InvalidToken):
            raise error
        raise MissingToken()

    async def current_user(
        self,
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
    ) -> User:
        """The calling user, loaded fresh from storage (401 if gone)."""
        return await self._load_user(await self.principal(request))

    def require(self, permission: str) -> Callable[..., Awaitable[Principal]]:
        """A dependency that demands ``permission`` of the caller (403 otherwise)."""

        async def check(request: Request) -> Principal:
            principal = self.principal_of(request)
            if not principal.has(permission):
                await self.container.events.record(
                    "authz_fail",
                    outcome="failure",
                    context=request_context(request),
                    user_id=principal.user_id,
                    username=await self.container.user_service.username_of(principal.user_id),
                    permission=permission,
                    path=request.url.path[:200],
                )
                raise Forbidden(f"this needs the {permission!r} permission")
            return principal

        self._token_dependencies.add(check)
        self._permission_dependencies.add(check)
        return check

    def require_mfa(self) -> Callable[..., Awaitable[Principal]]:
        """A dependency that demands a multi-factor session (403 otherwise).

        The refusal carries ``WWW-Authenticate: Bearer
        error="insufficient_user_authentication"`` (RFC 9470 §3), telling the
        client to sign in again with a second factor. Multi-factor means
        ``amr`` has ``mfa`` (password plus a second factor) or a passkey with
        user verification (:func:`bastion.security.amr.is_multi_factor`).
        """

        async def check(request: Request) -> Principal:
            principal = self.principal_of(request)
            if not is_multi_factor(principal.amr):
                await self.container.events.record(
                    "authz_fail",
                    outcome="failure",
                    context=request_context(request),
                    user_id=principal.user_id,
                    requirement="mfa",
                    path=request.url.path[:200],
                )
                raise InsufficientAuthentication()
            return principal

        self._token_dependencies.add(check)
        return check

    async def _load_user(self, principal: Principal) -> User:
        stored = await self.container.users.get(principal.user_id)
        if stored is None:
            raise InvalidToken()
        return stored.user

    # -- assembly --------------------------------------------------------------

    def api_router(self, **options: Any) -> APIRouter:
        """A router for Bastion's routes, carrying the prefix and dependency
        overrides of the app being installed into."""
        app, prefix = self._target
        return APIRouter(prefix=prefix, dependency_overrides_provider=app, **options)

    def install(self, app: FastAPI, *, prefix: str = "") -> None:
        """Add Bastion's routes, middleware, error handlers and lifecycle to ``app``."""
        self._target = (app, prefix)
        # Routes are matched in order, each candidate costing time: the hot
        # ones (/protected, /health) go first.
        for build_routes in (
            system_routes.build_router,
            # Before the user routes: /users/me/sessions must not be taken for
            # /users/{user_id}/... with user_id "me".
            session_routes.build_router,
            mfa_routes.build_router,
            passkey_routes.build_router,
            user_routes.build_router,
            auth_routes.build_router,
            recovery_routes.build_router,
            event_routes.build_router,
        ):
            # Not include_router: FastAPI 0.163 includes a router lazily, and
            # every request then walks a wrapper around it (16 us of a 126 us
            # GET /protected, measured in process). These routers are built
            # with the app's prefix and dependency overrides already, so their
            # routes join the app's own list exactly as @app.get routes do.
            app.router.routes.extend(build_routes(self).routes)
        if self.settings.web:
            mount_pages(app, self.container, self._page_hooks(), prefix=prefix)
        install_openapi(
            app,
            traits_of=self._traits,
            token_path=f"{prefix}/auth/token",
            password_min_length=self.settings.password_min_length,
        )
        install_error_handlers(app)
        self._add_middleware(
            app,
            prefix=prefix,
            docs_prefixes=(f"{prefix}/docs", f"{prefix}/openapi.json"),
            page_prefixes=page_prefixes(prefix) if self.settings.web else (),
        )
        original = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(inner: Any) -> AsyncIterator[Any]:
            try:
                await self.startup()
            except BaseException:
                # Release what was built (connections, hash threads) before
                # the failure propagates and the server exits.
                await self.shutdown()
                raise
            try:
                async with original(inner) as state:
                    yield state
            finally:
                await self.shutdown()

        app.router.lifespan_context = lifespan

    def _page_hooks(self) -> PageHooks:
        """What the pages share with the API: the error map, the request
        context, the schemas, the login metric."""
        return PageHooks(
            status_of=status_of,
            context_of=request_context,
            parse_registration=UserCreate.model_validate,
            parse_permissions=lambda names: tuple(
                sorted(set(PermissionsUpdate(permissions=names).permissions))
            ),
            on_login=lambda outcome: self.metrics.logins.labels(outcome).inc(),
            limit_headers=limit_headers,
        )

    async def _rate_limited(self, scope: Scope, rule: RateRule) -> None:
        await self.container.events.record(
            "excess_rate_limit_exceeded",
            outcome="failure",
            context=request_context(Request(scope)),
            user_id=scope.get("state", {}).get(STATE_USER_ID),
            rule=rule.name,
            limit=f"{rule.limit}/{rule.window}s",
        )

    async def _proxy_misconfigured(self, scope: Scope, peer: str, header: str) -> None:
        await self.container.events.record(
            "proxy_misconfigured",
            outcome="warning",
            context=request_context(Request(scope)),
            header=header,
            remedy=remedy(peer),
        )

    def _needs(self, dependant: Dependant, calls: set[Callable[..., Any]]) -> bool:
        return any(
            dependency.call in calls or self._needs(dependency, calls)
            for dependency in dependant.dependencies
        )

    def token_endpoint(self, endpoint: _Endpoint) -> _Endpoint:
        """Mark ``endpoint`` as bearer-protected in the OpenAPI document (it
        calls :meth:`principal_of` itself)."""
        self._token_endpoints.add(endpoint)
        return endpoint

    def _traits(self, route: APIRoute) -> RouteTraits:
        return RouteTraits(
            needs_token=route.endpoint in self._token_endpoints
            or self._needs(route.dependant, self._token_dependencies),
            needs_permission=self._needs(route.dependant, self._permission_dependencies),
        )

    def _add_middleware(
        self,
        app: FastAPI,
        *,
        prefix: str,
        docs_prefixes: tuple[str, ...],
        page_prefixes: tuple[str, ...] = (),
    ) -> None:
        # CORS (when configured) answers preflights inside the edge, so they
        # are rate limited and carry the security headers like any answer.
        if self.settings.cors_origins:
            app.add_middleware(
                CORSMiddleware,
                allow_origins=list(self.settings.cors_origins),
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                allow_credentials=False,
            )
        container = self.container
        app.add_middleware(
            EdgeMiddleware,
            context=RequestContext(
                ClientResolver(self.settings.trusted_proxies),
                on_proxy_misconfigured=self._proxy_misconfigured,
            ),
            health=HealthShortcut(prefix),
            rate_limit=RateLimit(
                store=container.rate_store,
                default=container.rules.default,
                login=container.rules.login,
                register=container.rules.register,
                prefix=prefix,
                on_exceeded=self._rate_limited,
                fallback=container.local_rate_store,
            ),
            body_limit=BodyLimit(),
            authentication=BearerAuthentication(container.auth_service.authenticate),
            headers=SecurityHeaders(
                SecurityHeadersPolicy(self.settings.x_xss_protection),
                docs_prefixes,
                page_prefixes,
            ),
            token_path=f"{prefix}/auth/token",
            observe=self.metrics.observe,
            pacing=RetryPacing(),
        )

    async def startup(self) -> None:
        """Start the instance (migrations on SQLite, background tasks)."""
        await self.container.start()

    async def shutdown(self) -> None:
        """Flush and release everything."""
        await self.container.stop()
        self.metrics.close()


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    mail_transport: MailTransport | None = None,
) -> FastAPI:
    """The complete Bastion service as an ASGI app.

    Args:
        settings: The configuration; ``Settings()`` reads the environment.
        clock: Time source (tests inject one).
        mail_transport: Sends mail instead of the configured transport.
    """
    settings = settings if settings is not None else Settings()
    configure_logging()
    app = FastAPI(
        title="Bastion",
        version="0.1.0",
        description="Secure-by-default user and authentication service.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
    )
    auth = Bastion(settings, clock=clock, mail_transport=mail_transport)
    auth.install(app)
    if settings.docs:
        app.include_router(docs_routes.build_router())
    app.state.bastion = auth
    return app
