"""Per-client rate limits, a step of the edge layer ahead of routing and parsing.

One moving-window budget per client across every route except the probes,
plus tighter budgets for ``POST /auth/token`` and ``POST /users``. With the
shared (Redis) store unreachable, the tight budgets fail closed (503) and the
general one falls back to the bounded in-process limiter.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.types import Scope, Send

from bastion.api.errors import TOKEN_RETRY_LATER
from bastion.api.middleware.responses import TOKEN_NO_STORE, error_body, send_json
from bastion.api.ratelimit_headers import rate_limit_headers
from bastion.errors import Unavailable
from bastion.security.clientip import rate_limit_key
from bastion.security.ratelimit import MovingWindowLimiter, RateDecision
from bastion.storage.limits_memory import MemoryRateLimitStore
from bastion.storage.protocols import RateLimitStore, RateRule

#: Called once per client and rule per window when a client is refused.
OnExceeded = Callable[[Scope, RateRule], Awaitable[None]]


def limit_headers(rule: RateRule, decision: RateDecision) -> list[tuple[bytes, bytes]]:
    """``Retry-After`` and the IETF RateLimit headers for a refusal of ``rule``."""
    return rate_limit_headers(
        rule.name, rule.limit, rule.window, decision.remaining, decision.reset_after
    )


_RATE_LIMITED = error_body("rate limit exceeded", "rate_limited")
_TOKEN_RATE_LIMITED = error_body("rate limit exceeded", "rate_limited", TOKEN_RETRY_LATER)
_UNAVAILABLE = error_body("rate limiter unavailable, retry shortly", "unavailable")
_TOKEN_UNAVAILABLE = error_body(
    "rate limiter unavailable, retry shortly", "unavailable", TOKEN_RETRY_LATER
)


class RateLimit:
    """Applies the rate rules before the request reaches the app.

    Args:
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
        *,
        store: RateLimitStore,
        default: RateRule,
        login: RateRule,
        register: RateRule,
        prefix: str = "",
        on_exceeded: OnExceeded | None = None,
        fallback: MemoryRateLimitStore | None = None,
    ) -> None:
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

    async def admit(self, scope: Scope, path: str, client: str, send: Send) -> bool:
        """Count the request; ``False`` once a refusal (429 or 503) was sent.

        Args:
            scope: The request.
            path: Its route path (``context.route_path``).
            client: Its client address.
            send: Where a refusal is sent.
        """
        if path in self.exempt:
            return True
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
                    retry = [(b"retry-after", str(exc.retry_after).encode())]
                    if path == self.token_path:
                        await send_json(send, 503, _TOKEN_UNAVAILABLE, retry + TOKEN_NO_STORE)
                    else:
                        await send_json(send, 503, _UNAVAILABLE, retry)
                    return False
                decision = await self.fallback.hit(rule, key, now)
            if not decision.allowed:
                await self._refuse(scope, send, rule, decision, key, now, path)
                return False
        return True

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        rule: RateRule,
        decision: RateDecision,
        key: str,
        now: float,
        path: str,
    ) -> None:
        if self.on_exceeded is not None and self._reported.hit(f"{rule.name}|{key}", now).allowed:
            await self.on_exceeded(scope, rule)
        if path == self.token_path and scope["method"] == "POST":
            headers = limit_headers(rule, decision) + TOKEN_NO_STORE
            await send_json(send, 429, _TOKEN_RATE_LIMITED, headers)
        else:
            await send_json(send, 429, _RATE_LIMITED, limit_headers(rule, decision))
