"""Probes, metrics, JWKS and the blog post's ``/protected`` example."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from bastion.api.leanroute import LeanRoute
from bastion.api.schemas import MessageOut
from bastion.errors import BastionError, Unavailable
from bastion.types import ADMIN

if TYPE_CHECKING:
    from bastion.api.app import Bastion

_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


def build_router(auth: Bastion) -> APIRouter:
    """Probes, metrics, JWKS and ``/protected``."""
    router = auth.api_router()
    container = auth.container

    async def protected(request: Request) -> Response:
        """The blog post's example of a protected route."""
        # The benchmark of the authenticated hot path: the principal is read
        # straight from what the edge verified (no dependency to solve) and
        # the answer is sent as is (no response-model validation).
        principal = auth.principal_of(request)
        return JSONResponse({"message": f"Hello user {principal.user_id}"})

    router.add_api_route(
        "/protected",
        auth.token_endpoint(protected),
        methods=["GET"],
        response_model=MessageOut,
        tags=["example"],
        responses={401: {}},
        route_class_override=LeanRoute,
    )

    @router.get("/health", tags=["probes"])
    async def health() -> Response:
        """Liveness: the process answers. Touches no backend."""
        return JSONResponse({"status": "ok"})

    @router.get("/ready", tags=["probes"], responses={503: {}})
    async def ready() -> Response:
        """Readiness: the database (and Redis, when configured) answer."""
        checks: dict[str, str] = {}
        probes = [("database", container.users.ping)]
        if container.redis_limits is not None:
            probes.append(("redis", container.redis_limits.ping))
        for name, probe in probes:
            try:
                await probe()
                checks[name] = "ok"
            except (BastionError, OSError):
                checks[name] = "unavailable"
        # Not ready until revocations made elsewhere are loaded (fail closed).
        if not container.revocations_synced:
            checks["revocations"] = "unavailable"
        if any(value != "ok" for value in checks.values()):
            return JSONResponse(
                {"status": "unavailable", **checks},
                status_code=503,
                headers={"Retry-After": str(Unavailable().retry_after)},
            )
        return JSONResponse({"status": "ok", **checks})

    async def metrics_text() -> Response:
        auth.metrics.hash_queue.set(container.hash_pool.in_flight)
        auth.metrics.event_queue.set(container.events.depth)
        return Response(auth.metrics.render(), media_type=_PROMETHEUS)

    if auth.settings.metrics_public:

        @router.get("/metrics", tags=["probes"], response_class=Response)
        async def public_metrics() -> Response:
            """Prometheus metrics."""
            return await metrics_text()

    else:

        @router.get(
            "/metrics",
            tags=["probes"],
            response_class=Response,
            dependencies=[Depends(auth.require(ADMIN))],
            responses={401: {}, 403: {}},
        )
        async def admin_metrics() -> Response:
            """Prometheus metrics (``admin``; ``BASTION_METRICS_PUBLIC=true`` opens them)."""
            return await metrics_text()

    @router.get("/.well-known/jwks.json", tags=["auth"], responses={404: {}})
    async def jwks(request: Request) -> Response:
        """Public signing keys (RFC 7517), under EdDSA or ES256 only."""
        if auth.settings.jwt_algorithm == "HS256":
            return JSONResponse({"detail": "no public keys: tokens are signed with HS256"}, 404)
        body: dict[str, Any] = container.codec.ring.jwks()
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})

    return router
