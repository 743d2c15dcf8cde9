"""The liveness probe, answered by the edge before routing.

SPEC: under a flood of hundreds of concurrent logins ``/health`` keeps
answering. A probe that waits behind the router, the dependency machinery and
the rate limiter competes with the flood for the event loop at every step;
answered here it costs one dictionary lookup and two ``send`` calls. It
touches no backend, exactly like the routed ``GET /health`` it shadows (which
stays for the OpenAPI document and for host apps that mount it elsewhere).
"""

from __future__ import annotations

from starlette.types import Send

from bastion.api.middleware.responses import send_json

HEALTH_BODY = b'{"status":"ok"}'


class HealthShortcut:
    """Answers ``GET {prefix}/health`` itself.

    Args:
        prefix: Where Bastion's routes are mounted.
    """

    __slots__ = ("path",)

    def __init__(self, prefix: str = "") -> None:
        self.path = f"{prefix}/health"

    def matches(self, method: str, path: str) -> bool:
        """Whether this request is the liveness probe."""
        return path == self.path and method == "GET"

    async def answer(self, send: Send) -> None:
        """``200 {"status": "ok"}``."""
        await send_json(send, 200, HEALTH_BODY)
