"""The edge: one pure-ASGI layer running Bastion's request rules in order.

Order, and why:

1. :class:`~.context.RequestContext`: request id and client address first,
   so every later answer (a 429, a 413, a crash) carries the id and is
   logged with the right client; untrusted proxies are reported here.
2. :class:`~.probes.HealthShortcut`: the liveness probe is answered before
   anything that a flood can make slow (SPEC: ``/health`` keeps answering).
3. :class:`~.pacing.RetryPacing`: under a flood of refused logins, a login
   retried before its ``Retry-After`` waits for it (the loop stays free).
4. :class:`~.ratelimit.RateLimit`: before any parsing, so a refused client
   costs a counter lookup.
5. :class:`~.bodylimit.BodyLimit`: framing refused on the headers, and every
   body counted as it streams in.
6. :class:`~.authentication.BearerAuthentication`: the verdict on the token
   goes into the request state for the route's dependency.
7. The app, whose response start gets :class:`~.headers.SecurityHeaders`
   and the request id; an exception becomes a JSON 500 (never a trace).

One layer wraps ``send`` once and ``receive`` at most once per request, where
five middlewares wrapped them five times (issue 15).
"""

from __future__ import annotations

import contextlib
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.api.middleware.authentication import BearerAuthentication
from bastion.api.middleware.bodylimit import BodyLimit, refuse
from bastion.api.middleware.context import (
    Observe,
    RequestContext,
    finish,
    route_path,
    state_of,
)
from bastion.api.middleware.headers import SecurityHeaders
from bastion.api.middleware.pacing import RetryPacing
from bastion.api.middleware.probes import HealthShortcut
from bastion.api.middleware.ratelimit import RateLimit
from bastion.api.middleware.responses import send_json

error_log = structlog.get_logger("bastion.error")


class EdgeMiddleware:
    """Bastion's security layer; the steps are built by the caller.

    Args:
        app: The wrapped application.
        context: Request id, client address, proxy warnings.
        health: The probe shortcut.
        rate_limit: Per-client budgets.
        body_limit: Body framing and size.
        authentication: Bearer tokens.
        headers: Security headers of every response.
        token_path: The token endpoint's route path (RFC 6749 error bodies).
        observe: Metrics hook (route, method, status, seconds), or ``None``.
        pacing: Holds logins that ignore ``Retry-After`` under a flood, or ``None``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        context: RequestContext,
        health: HealthShortcut,
        rate_limit: RateLimit,
        body_limit: BodyLimit,
        authentication: BearerAuthentication,
        headers: SecurityHeaders,
        token_path: str = "/auth/token",  # noqa: S107 - a path, not a secret
        observe: Observe | None = None,
        pacing: RetryPacing | None = None,
    ) -> None:
        self.app = app
        self.context = context
        self.health = health
        self.rate_limit = rate_limit
        self.body_limit = body_limit
        self.authentication = authentication
        self.headers = headers
        self.token_path = token_path
        self.observe = observe
        self.pacing = pacing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = state_of(scope)
        path = route_path(scope)
        info = await self.context.begin(scope, state)
        surface = self.headers.surface_of(path)
        status = 500
        started_response = False
        shortcut: str | None = None
        method = scope["method"]
        login = method == "POST" and path == self.token_path
        paced = self.pacing if login else None
        # Only logins are paced: other requests build no key.
        pace_key = (scope.get("client"), info.client_ip) if paced is not None else (None, "")

        async def send_wrapped(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                headers = message.get("headers", [])
                if paced is not None:
                    headers = paced.answered(pace_key, status, list(headers))
                headers = self.headers.apply(
                    headers,
                    surface=surface,
                    https=scope.get("scheme") == "https",
                )
                headers.append(info.id_header)
                message["headers"] = headers
            await send(message)

        try:
            if self.health.matches(method, path):
                shortcut = path
                await self.health.answer(send_wrapped)
                return
            if paced is not None:
                await paced.hold(pace_key)
            if not await self.rate_limit.admit(scope, path, info.client_ip, send_wrapped):
                return
            oauth = login
            problem = self.body_limit.problem(scope)
            if problem is not None:
                await refuse(send_wrapped, problem, oauth=oauth)
                return
            self.authentication.run(scope, state)
            await self.app(scope, *self.body_limit.wrap(scope, receive, send_wrapped, oauth=oauth))
        except Exception:
            # A broken log sink must not also cost the client its JSON 500.
            with contextlib.suppress(Exception):
                error_log.exception(
                    "unhandled_error", request_id=info.request_id, path=scope.get("path", "")[:200]
                )
            if started_response:
                raise
            body = b'{"detail":"internal server error","request_id":"'
            body += info.request_id.encode() + b'"}'
            await send_json(send_wrapped, 500, body)
        finally:
            finish(scope, info, status, time.perf_counter() - started, self.observe, shortcut)
