"""The sessions list with revoke, on ``/account`` and ``/admin/users/{id}``.

The actions call ``container.mfa.sessions`` (:class:`SessionService`), as
``DELETE /users/me/sessions/{id}`` and ``DELETE /users/{id}/sessions`` do.
The lists are drawn by ``account/_sessions.html`` and
``admin/_user_sessions.html`` (:func:`session_rows` gives them their rows).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bastion.web.cookies import SESSION_COOKIE, clear_cookie
from bastion.web.site import PageError, Site


async def session_rows(site: Site, user_id: int, current: str | None) -> list[dict[str, Any]]:
    """The live sessions of ``user_id``, newest first, the one of this
    browser (``current``) marked."""
    found = await site.container.mfa.sessions.of_user(user_id)
    return [{**dataclasses.asdict(item), "current": item.id == current} for item in found]


def user_id_of(request: Request) -> int:
    """The ``{user_id}`` of an admin path (404 unless a plausible id)."""
    text = str(request.path_params["user_id"])
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**63:
        raise PageError(404, "No such user.")
    return int(text)


def build_router(site: Site) -> APIRouter:
    """The revoke actions."""
    router = APIRouter(include_in_schema=False)
    sessions = site.container.mfa.sessions

    def add(path: str, handler: Any) -> None:
        router.add_api_route(site.url(path), site.page(handler), methods=["POST"])

    async def revoke_own(request: Request) -> Response:
        viewer = await site.signed_in(request)
        await site.form(request, viewer)
        session_id = str(request.path_params["session_id"])[:64]
        await sessions.end(viewer.principal, session_id, context=site.context(request))
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
        user_id = user_id_of(request)
        await sessions.end_all(user_id, actor=viewer.principal, context=site.context(request))
        return RedirectResponse(site.url(f"/admin/users/{user_id}?done=sessions"), status_code=303)

    add("/account/sessions/{session_id}/revoke", revoke_own)
    add("/admin/users/{user_id}/sessions/revoke", revoke_user)
    return router
