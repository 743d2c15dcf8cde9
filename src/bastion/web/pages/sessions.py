"""The sessions list with revoke, on ``/account`` and ``/admin/users/{id}``.

Mounted only when the container has a session service (the sessions work
builds it; :data:`bastion.web.mount.OPTIONAL_PAGES`). The lists themselves
are drawn by ``account/_sessions.html`` and ``admin/_user_sessions.html``,
which the account and user pages include when the feature is on
(:func:`session_rows` gives them their rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bastion.types import Principal, RequestContext
from bastion.web.cookies import SESSION_COOKIE, clear_cookie
from bastion.web.site import PageError, Site


@runtime_checkable
class SessionsPort(Protocol):
    """What these pages need of the session service. Rows carry ``id``,
    ``current``, ``created_at``, ``last_used_at``, ``ip``, ``user_agent``."""

    async def list_sessions(self, user_id: int, *, current: str | None = None) -> Sequence[Any]:
        """Live sessions of ``user_id``, newest first."""
        ...

    async def revoke_session(
        self,
        user_id: int,
        session_id: str,
        *,
        actor: Principal,
        context: RequestContext | None = None,
    ) -> None:
        """End one session of ``user_id`` (``NotFound`` if it is not theirs)."""
        ...

    async def revoke_all(
        self, user_id: int, *, actor: Principal, context: RequestContext | None = None
    ) -> None:
        """End every session of ``user_id``."""
        ...


async def session_rows(site: Site, user_id: int, current: str | None) -> Sequence[Any]:
    """The rows of a sessions list, or none when the feature is off."""
    port = site.services.get("sessions")
    if not isinstance(port, SessionsPort):
        return []
    return await port.list_sessions(user_id, current=current)


def build_router(site: Site, sessions: SessionsPort) -> APIRouter:
    """The revoke actions."""
    router = APIRouter(include_in_schema=False)

    def add(path: str, handler: Any) -> None:
        router.add_api_route(site.url(path), site.page(handler), methods=["POST"])

    async def revoke_own(request: Request) -> Response:
        viewer = await site.signed_in(request)
        await site.form(request, viewer)
        session_id = str(request.path_params["session_id"])[:64]
        await sessions.revoke_session(
            viewer.user.id, session_id, actor=viewer.principal, context=site.context(request)
        )
        if session_id != viewer.session.record.session_id:
            return RedirectResponse(site.url("/account"), status_code=303)
        # Ending the session this browser is in is signing out.
        await site.container.browser_sessions.end(viewer.session.token)
        response = RedirectResponse(site.url("/account/login?done=signed_out"), status_code=303)
        clear_cookie(response, SESSION_COOKIE)
        return response

    async def revoke_user(request: Request) -> Response:
        viewer = await site.admin(request)
        await site.form(request, viewer)
        text = str(request.path_params["user_id"])
        if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**63:
            raise PageError(404, "No such user.")
        user = await site.container.user_service.get(int(text))
        await sessions.revoke_all(user.id, actor=viewer.principal, context=site.context(request))
        return RedirectResponse(site.url(f"/admin/users/{user.id}"), status_code=303)

    add("/account/sessions/{session_id}/revoke", revoke_own)
    add("/admin/users/{user_id}/sessions/revoke", revoke_user)
    return router
