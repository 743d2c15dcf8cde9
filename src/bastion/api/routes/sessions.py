"""``/users/me/sessions`` and the admin's ``/users/{id}/sessions``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from bastion.api.context import request_context
from bastion.api.schemas_mfa import SessionOut
from bastion.types import ADMIN, Principal

if TYPE_CHECKING:
    from bastion.api.app import Bastion

UserId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The user's id")]
SessionId = Annotated[str, Path(min_length=1, max_length=64)]
_ERRORS: dict[int | str, dict[str, str]] = {401: {"description": "Missing or invalid token"}}


def build_router(auth: Bastion) -> APIRouter:
    """The session routes (``/users/me/...`` before ``/users/{id}/...``)."""
    router = auth.api_router(tags=["sessions"])
    service = auth.container.mfa.sessions

    @router.get("/users/me/sessions", response_model=list[SessionOut], responses=_ERRORS)
    async def mine(principal: Principal = Depends(auth.principal)) -> list[SessionOut]:
        """The caller's live sessions, newest first."""
        found = await service.of_user(principal.user_id)
        return [SessionOut.of(info, current_id=principal.session_id) for info in found]

    @router.delete(
        "/users/me/sessions/{session_id}", status_code=204, responses={**_ERRORS, 404: {}}
    )
    async def end(
        session_id: SessionId, request: Request, principal: Principal = Depends(auth.principal)
    ) -> Response:
        """End one of the caller's sessions at once (the current one: a logout)."""
        await service.end(principal, session_id, context=request_context(request))
        return Response(status_code=204)

    @router.get(
        "/users/{user_id}/sessions",
        response_model=list[SessionOut],
        responses={**_ERRORS, 403: {}, 404: {}},
    )
    async def of_user(
        user_id: UserId, principal: Principal = Depends(auth.require(ADMIN))
    ) -> list[SessionOut]:
        """A user's live sessions (admin)."""
        found = await service.of_user(user_id, must_exist=True)
        return [SessionOut.of(info, current_id=principal.session_id) for info in found]

    @router.delete(
        "/users/{user_id}/sessions", status_code=204, responses={**_ERRORS, 403: {}, 404: {}}
    )
    async def end_all(
        user_id: UserId, request: Request, principal: Principal = Depends(auth.require(ADMIN))
    ) -> Response:
        """End every session of a user (admin)."""
        await service.end_all(user_id, actor=principal, context=request_context(request))
        return Response(status_code=204)

    return router
