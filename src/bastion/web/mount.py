"""Mounting the pages on an app: the always-on modules, the optional ones
whose services exist in this build, and the static files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from bastion.bootstrap import Container
from bastion.web.hooks import PageHooks
from bastion.web.pages import account, admin, recovery, sessions
from bastion.web.site import Site

__all__ = ["OPTIONAL_PAGES", "PageHooks", "mount_pages", "page_prefixes"]


@dataclass(frozen=True, slots=True)
class OptionalPages:
    """Pages that need a service not every build has yet.

    Attributes:
        name: The feature (templates test ``features`` for it).
        service: The :class:`Container` attribute holding the service.
        build: Makes the router from the site and the service.
    """

    name: str
    service: str
    build: Callable[[Site, object], APIRouter]


def _recovery(site: Site, service: object) -> APIRouter:
    if not isinstance(service, recovery.RecoveryPort):
        raise TypeError("the recovery service lacks the methods the pages call")
    return recovery.build_router(site, service)


def _sessions(site: Site, service: object) -> APIRouter:
    if not isinstance(service, sessions.SessionsPort):
        raise TypeError("the session service lacks the methods the pages call")
    return sessions.build_router(site, service)


#: The seam for the features other issues add: a module is mounted when the
#: container has its service (an attribute of that name, not ``None``) and the
#: service has the methods of the module's port protocol. Still to write:
#: ``mfa`` (``mfa_service``): the login's second step (``login_mfa.html``),
#: TOTP enrolment and passkeys (``account/_mfa.html``, ``passkey.js``).
OPTIONAL_PAGES: tuple[OptionalPages, ...] = (
    OptionalPages("recovery", "recovery_service", _recovery),
    OptionalPages("sessions", "session_service", _sessions),
)


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
    optional = [
        (pages, getattr(container, pages.service, None))
        for pages in OPTIONAL_PAGES
        if getattr(container, pages.service, None) is not None
    ]
    site = Site(container, hooks, prefix, {pages.name: service for pages, service in optional})
    app.include_router(account.build_router(site))
    app.include_router(admin.build_router(site))
    for pages, service in optional:
        app.include_router(pages.build(site, service))
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
