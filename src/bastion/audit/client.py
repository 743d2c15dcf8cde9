"""The audit's only way to send a request: one origin, a budget, a pace.

Every check talks to the target through :class:`PoliteClient`; the httpx
client inside it is private, so the request budget, the rate and the origin
are enforced by construction rather than by each check's good manners.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx

from bastion.audit.scope import Target

#: Larger bodies mean a misbehaving target (an endless stream), not an API.
MAX_BODY_BYTES = 1024 * 1024


class TargetError(Exception):
    """The target cannot be audited: unreachable, too slow, or answering garbage."""


class BudgetExhausted(Exception):
    """The ``--max-requests`` budget is spent."""


def user_agent() -> str:
    """The identifying User-Agent every audit request carries."""
    try:
        release = version("bastion")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        release = "0"
    return f"bastion-audit/{release} (authentication audit; +https://pypi.org/project/bastion/)"


@dataclass(frozen=True)
class Exchange:
    """One request and its response, kept as evidence.

    Attributes:
        method: HTTP method.
        path: Path and query sent.
        request_headers: Headers the audit set (not httpx's defaults).
        request_body: Body sent, decoded as text.
        status: Response status code.
        headers: Response headers, names lower-cased.
        body: Response body, decoded as text.
        seconds: Time from sending to the last byte of the body.
    """

    method: str
    path: str
    request_headers: Mapping[str, str]
    request_body: str
    status: int
    headers: Mapping[str, str]
    body: str
    seconds: float

    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        """A response header by case-insensitive name."""
        return self.headers.get(name.lower())


@dataclass
class Pace:
    """At most ``rate`` request starts per second, one after another.

    A minimum interval rather than a bucket: a bucket would let a burst of
    ``rate`` requests go at once, which is exactly what a polite scanner avoids.
    """

    rate: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _next: float = field(default=0.0, init=False)

    async def wait(self) -> None:
        """Return when the next request may start."""
        now = self.clock()
        if now < self._next:
            await self.sleep(self._next - now)
            now = self._next
        self._next = now + 1.0 / self.rate


class PoliteClient:
    """Sends requests to one origin within a budget, at a bounded rate.

    Args:
        target: The origin and base path; requests take paths relative to it.
        max_requests: Budget for the whole audit.
        rate: Requests per second, at most.
        timeout: Seconds one exchange may take, body included.
        transport: An httpx transport (tests); the default connects directly,
            ignoring proxy environment variables.
    """

    def __init__(
        self,
        target: Target,
        *,
        max_requests: int,
        rate: float,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_requests < 1 or rate <= 0:
            raise ValueError("max_requests must be at least 1 and rate positive")
        self.target = target
        self.max_requests = max_requests
        self.sent = 0
        self._timeout = timeout
        self._pace = Pace(rate)
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(
            base_url=target.origin,
            follow_redirects=False,  # a redirect could lead off the origin
            trust_env=False,
            timeout=timeout,
            headers={"User-Agent": user_agent()},
            transport=transport,
            # A fresh connection per request: servers that crash a handler may
            # close a kept-alive one under us, and fresh ones time alike.
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    @property
    def remaining(self) -> int:
        """Requests left in the budget."""
        return self.max_requests - self.sent

    def path(self, route: str) -> str:
        """``route`` under the target's base path."""
        return self.target.base_path + route

    async def request(
        self,
        method: str,
        route: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
    ) -> Exchange:
        """Send one request to ``route`` (a path under the target) and read it all.

        Raises:
            BudgetExhausted: The budget is spent; nothing was sent.
            TargetError: No answer in time, a connection failure, or a body
                larger than :data:`MAX_BODY_BYTES`.
        """
        if not route.startswith("/") or route.startswith("//"):
            raise ValueError(f"{route!r} is not a path on the target")
        async with self._lock:  # one request at a time: the pace is per audit
            if self.sent >= self.max_requests:
                raise BudgetExhausted(f"the request budget of {self.max_requests} is spent")
            await self._pace.wait()
            self.sent += 1
            request = self._http.build_request(
                method,
                self.path(route),
                headers=dict(headers or {}),
                params=dict(params) if params else None,
                data=dict(data) if data is not None else None,
                json=json_body,
                content=content,
            )
            return await self._exchange(request, dict(headers or {}))

    async def _exchange(self, request: httpx.Request, sent_headers: dict[str, str]) -> Exchange:
        what = f"{request.method} {request.url.raw_path.decode('ascii', 'replace')}"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.send(request, stream=True)
                try:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_BODY_BYTES:
                            raise TargetError(
                                f"the target answered {what} with a body larger than "
                                f"{MAX_BODY_BYTES // 1024} KiB"
                            )
                finally:
                    await response.aclose()
        except TimeoutError:
            raise TargetError(
                f"the target did not answer {what} within {self._timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise TargetError(f"{what} failed: {type(exc).__name__}: {exc}") from None
        seconds = time.perf_counter() - started
        return Exchange(
            method=request.method,
            path=what.split(" ", 1)[1],
            request_headers=sent_headers,
            request_body=request.content.decode("utf-8", "replace"),
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body.decode(response.encoding or "utf-8", "replace"),
            seconds=seconds,
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()
