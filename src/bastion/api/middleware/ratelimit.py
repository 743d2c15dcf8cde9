"""Per-client rate limits as pure ASGI, ahead of routing and parsing.

One moving-window budget per client across every route except the probes,
plus tighter budgets for ``POST /auth/token`` and ``POST /users``. With the
shared (Redis) store unreachable, the tight budgets fail closed (503) and the
general one falls back to the bounded in-process limiter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.api.middleware.context import STATE_CLIENT_IP, route_path, state_of
from bastion.api.middleware.responses import send_json
from bastion.errors import Unavailable
from bastion.security.clientip import rate_limit_key
from bastion.security.ratelimit import MovingWindowLimiter, RateDecision
from bastion.storage.limits_memory import MemoryRateLimitStore
from bastion.storage.protocols import RateLimitStore, RateRule

#: Called once per client and rule per window when a client is refused.
OnExceeded = Callable[[Scope, RateRule], Awaitable[None]]


def limit_headers(rule: RateRule, decision: RateDecision) -> list[tuple[bytes, bytes]]:
    """``Retry-After`` and the IETF RateLimit headers for a refusal.

    Both the structured-field form of draft-ietf-httpapi-ratelimit-headers
    (``RateLimit-Policy``/``RateLimit``) and the older, widely parsed
    ``RateLimit-Limit``/``-Remaining``/``-Reset`` trio.
    """
    reset = max(1, math.ceil(decision.reset_after))
    name = rule.name
    return [
        (b"retry-after", str(reset).encode()),
        (b"ratelimit-policy", f'"{name}";q={rule.limit};w={rule.window}'.encode()),
        (b"ratelimit", f'"{name}";r={decision.remaining};t={reset}'.encode()),
        (b"ratelimit-limit", str(rule.limit).encode()),
        (b"ratelimit-remaining", str(decision.remaining).encode()),
        (b"ratelimit-reset", str(reset).encode()),
    ]


class RateLimitMiddleware:
    """Applies the rate rules before the request reaches the app.

    Args:
        app: The wrapped application.
        store: Where hits are counted (in process or Redis).
        default: The per-client budget across all routes but the probes.
        login: The budget of ``POST {prefix}/auth/token``.
        register: The budget of ``POST {prefix}/users``.
        prefix: Where Bastion's routes are mounted.
        on_exceeded: Records the security event of a refusal.
        fallback: The local store used when ``store`` is unreachable.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: RateLimitStore,
        default: RateRule,
        login: RateRule,
        register: RateRule,
        prefix: str = "",
        on_exceeded: OnExceeded | None = None,
        fallback: MemoryRateLimitStore | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.default = default
        self.login = login
        self.register = register
        self.token_path = f"{prefix}/auth/token"
        self.users_path = f"{prefix}/users"
        self.exempt = frozenset({f"{prefix}/health", f"{prefix}/ready"})
        self.on_exceeded = on_exceeded
        self.fallback = fallback or MemoryRateLimitStore()
        # At most one security event per client and rule per minute: a flood
        # of refusals must not become a flood of events.
        self._reported = MovingWindowLimiter(1, 60.0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if path in self.exempt:
            await self.app(scope, receive, send)
            return
        state = state_of(scope)
        client = state.get(STATE_CLIENT_IP)
        if client is None:
            peer = scope.get("client")
            client = peer[0] if peer else "unknown"
        key = rate_limit_key(client)
        now = time.time()
        rules = [self.default]
        if scope["method"] == "POST":
            if path == self.token_path:
                rules.append(self.login)
            elif path == self.users_path:
                rules.append(self.register)
        for rule in rules:
            try:
                decision = await self.store.hit(rule, key, now)
            except Unavailable as exc:
                if rule.fail_closed:
                    body = b'{"detail":"rate limiter unavailable, retry shortly"}'
                    retry = [(b"retry-after", str(exc.retry_after).encode())]
                    await send_json(send, 503, body, retry)
                    return
                decision = await self.fallback.hit(rule, key, now)
            if not decision.allowed:
                await self._refuse(scope, send, rule, decision, key, now)
                return
        await self.app(scope, receive, send)

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        rule: RateRule,
        decision: RateDecision,
        key: str,
        now: float,
    ) -> None:
        if self.on_exceeded is not None and self._reported.hit(f"{rule.name}|{key}", now).allowed:
            await self.on_exceeded(scope, rule)
        body = b'{"detail":"rate limit exceeded"}'
        await send_json(send, 429, body, limit_headers(rule, decision))
