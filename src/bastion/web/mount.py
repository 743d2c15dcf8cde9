"""Mounting the pages on an app: the page modules and the static files."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from bastion.bootstrap import Container
from bastion.web.hooks import PageHooks
from bastion.web.pages import account, admin, mfa, recovery, sessions
from bastion.web.site import Site

__all__ = ["PageHooks", "mount_pages", "page_prefixes"]


def page_prefixes(prefix: str = "") -> tuple[str, ...]:
    """The paths the pages own (they get the page CSP)."""
    return (
        f"{prefix}/account",
        f"{prefix}/admin",
        f"{prefix}/static/bastion/",
        f"{prefix}/favicon.ico",
    )


def mount_pages(app: FastAPI, container: Container, hooks: PageHooks, *, prefix: str = "") -> Site:
    """Add the pages to ``app`` under ``prefix``; returns their :class:`Site`."""
    site = Site(container, hooks, prefix)
    for module in (account, admin, recovery, sessions, mfa):
        app.include_router(module.build_router(site))
    app.include_router(_static_router(site))
    return site


def _static_router(site: Site) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def asset(request: Request) -> Response:
        found = site.static.get(request.path_params["name"])
        if found is None:
            return Response(b"not found", status_code=404, media_type="text/plain")
        body, media_type = found
        return Response(body, media_type=media_type)

    async def favicon(_request: Request) -> Response:
        body, media_type = site.static["favicon.svg"]
        return Response(body, media_type=media_type)

    router.add_api_route(site.url("/static/bastion/{name:path}"), asset, methods=["GET"])
    router.add_api_route(site.url("/favicon.ico"), favicon, methods=["GET"])
    return router
