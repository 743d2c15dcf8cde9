"""``Bastion``: the library entry point, and ``create_app``: the whole service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Scope

from bastion.api.context import request_context
from bastion.api.errors import install_error_handlers, status_of
from bastion.api.metrics import Metrics
from bastion.api.middleware.authentication import (
    STATE_AUTH_ERROR,
    STATE_PRINCIPAL,
    AuthenticationMiddleware,
)
from bastion.api.middleware.bodylimit import BodyLimitMiddleware
from bastion.api.middleware.context import STATE_USER_ID, RequestContextMiddleware
from bastion.api.middleware.headers import SecurityHeadersMiddleware
from bastion.api.middleware.ratelimit import RateLimitMiddleware, limit_headers
from bastion.api.routes import auth as auth_routes
from bastion.api.routes import docs as docs_routes
from bastion.api.routes import events as event_routes
from bastion.api.routes import system as system_routes
from bastion.api.routes import users as user_routes
from bastion.api.schemas import PermissionsUpdate, UserCreate
from bastion.bootstrap import Container, build
from bastion.config import Settings
from bastion.errors import Forbidden, InvalidToken, MissingToken
from bastion.logs import configure_logging
from bastion.security.clientip import ClientResolver
from bastion.security.headers import SecurityHeadersPolicy
from bastion.storage.protocols import RateRule
from bastion.types import Clock, Principal, User
from bastion.web import PageHooks, mount_pages, page_prefixes

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
    """

    def __init__(self, settings: Settings | None = None, *, clock: Clock | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.container: Container = build(self.settings, clock=clock)
        self.metrics = Metrics()
        self.container.hash_pool.on_wait = self.metrics.hash_wait.observe
        self.container.events.on_drop = self.metrics.events_dropped.inc
        #: Dependencies that demand a bearer token, for the OpenAPI document.
        self._token_dependencies: set[Callable[..., Any]] = {self.principal, self.current_user}

    # -- dependencies ----------------------------------------------------------

    async def principal(self, request: Request) -> Principal:
        """The verified caller of this request (401 otherwise).

        The token was verified by ``AuthenticationMiddleware``; this only reads
        the outcome, so it declares no ``HTTPBearer`` sub-dependency (which
        would cost every request a second parse). The OpenAPI document still
        marks the routes that use it as bearer-protected (``_document_bearer``).
        """
        return self._principal_of(request)

    @staticmethod
    def _principal_of(request: Request) -> Principal:
        state = request.scope.get("state", {})
        principal = state.get(STATE_PRINCIPAL)
        if principal is not None:
            assert isinstance(principal, Principal)
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
            principal = self._principal_of(request)
            if not principal.has(permission):
                await self.container.events.record(
                    "authz_fail",
                    outcome="failure",
                    context=request_context(request),
                    user_id=principal.user_id,
                    permission=permission,
                    path=request.url.path[:200],
                )
                raise Forbidden(f"this needs the {permission!r} permission")
            return principal

        self._token_dependencies.add(check)
        return check

    async def _load_user(self, principal: Principal) -> User:
        stored = await self.container.users.get(principal.user_id)
        if stored is None:
            raise InvalidToken()
        return stored.user

    # -- assembly --------------------------------------------------------------

    def install(self, app: FastAPI, *, prefix: str = "") -> None:
        """Add Bastion's routes, middleware, error handlers and lifecycle to ``app``."""
        # Routes are matched in order, each candidate costing time: the hot
        # ones (/protected, /health) go first.
        for router in (
            system_routes.build_router(self),
            user_routes.build_router(self),
            auth_routes.build_router(self),
            event_routes.build_router(self),
        ):
            app.include_router(router, prefix=prefix)
        if self.settings.web:
            mount_pages(app, self.container, self._page_hooks(), prefix=prefix)
        self._document_bearer(app)
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

    def _needs_token(self, dependant: Dependant) -> bool:
        return any(
            dependency.call in self._token_dependencies or self._needs_token(dependency)
            for dependency in dependant.dependencies
        )

    def _document_bearer(self, app: FastAPI) -> None:
        """Mark routes that need a token as ``HTTPBearer``-secured in OpenAPI."""
        generate = app.openapi

        def openapi() -> dict[str, Any]:
            if app.openapi_schema:
                return app.openapi_schema
            schema = generate()
            components = schema.setdefault("components", {})
            components.setdefault("securitySchemes", {})["HTTPBearer"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "An access token from POST /auth/token",
            }
            for context in iter_route_contexts(app.routes):
                route = context.route
                if not isinstance(route, APIRoute) or not self._needs_token(route.dependant):
                    continue
                operations = schema.get("paths", {}).get(context.path_format, {})
                for method in context.methods or ():
                    operation = operations.get(method.lower())
                    if operation is not None:
                        operation.setdefault("security", [{"HTTPBearer": []}])
            app.openapi_schema = schema
            return schema

        app.openapi = openapi  # type: ignore[method-assign]

    def _add_middleware(
        self,
        app: FastAPI,
        *,
        prefix: str,
        docs_prefixes: tuple[str, ...],
        page_prefixes: tuple[str, ...] = (),
    ) -> None:
        # Added innermost first: the last one added runs first.
        app.add_middleware(
            AuthenticationMiddleware, authenticate=self.container.auth_service.authenticate
        )
        app.add_middleware(BodyLimitMiddleware)
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
            RateLimitMiddleware,
            store=container.rate_store,
            default=container.rules.default,
            login=container.rules.login,
            register=container.rules.register,
            prefix=prefix,
            on_exceeded=self._rate_limited,
            fallback=container.local_rate_store,
        )
        app.add_middleware(
            RequestContextMiddleware,
            resolver=ClientResolver(self.settings.trusted_proxies),
            observe=self.metrics.observe,
        )
        app.add_middleware(
            SecurityHeadersMiddleware,
            policy=SecurityHeadersPolicy(self.settings.x_xss_protection),
            docs_prefixes=docs_prefixes,
            page_prefixes=page_prefixes,
        )

    async def startup(self) -> None:
        """Start the instance (migrations on SQLite, background tasks)."""
        await self.container.start()

    async def shutdown(self) -> None:
        """Flush and release everything."""
        await self.container.stop()
        self.metrics.close()


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The complete Bastion service as an ASGI app.

    Args:
        settings: The configuration; ``Settings()`` reads the environment.
        clock: Time source (tests inject one).
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
    auth = Bastion(settings, clock=clock)
    auth.install(app)
    if settings.docs:
        app.include_router(docs_routes.build_router())
    app.state.bastion = auth
    return app
