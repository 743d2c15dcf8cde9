"""``/users``: registration, the caller, lookup, search, permissions, deletion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from bastion.api.context import request_context
from bastion.api.jsonroute import JsonRoute
from bastion.api.schemas import PasswordChange, PermissionsUpdate, UserCreate, UserOut
from bastion.types import ADMIN, USERS_READ, Principal, User

if TYPE_CHECKING:
    from bastion.api.app import Bastion

UserId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The user's id")]
_AUTH_ERRORS: dict[int | str, dict[str, str]] = {401: {"description": "Missing or invalid token"}}


def may_see_email(principal: Principal, user: User) -> bool:
    """Email addresses are shown to their owner and to admins or ``users:read``."""
    return principal.user_id == user.id or principal.has(USERS_READ)


def build_router(auth: Bastion) -> APIRouter:
    """The ``/users`` routes."""
    router = auth.api_router(tags=["users"], route_class=JsonRoute)
    users = auth.container.user_service
    sessions = auth.container.auth_service

    async def render(user: User, principal: Principal) -> dict[str, object]:
        """A user as ``principal`` may see it: the address for its owner and
        readers, and ``locked_until`` (ISO 8601 or null) for admins."""
        out = UserOut.of(user, show_email=may_see_email(principal, user))
        admin = principal.has(ADMIN)
        if admin:
            out = out.model_copy(update={"locked_until": await users.locked_until(user)})
        body: dict[str, object] = out.model_dump(mode="json", exclude_none=True)
        if admin:
            body.setdefault("locked_until", None)
        return body

    @router.post(
        "/users",
        status_code=201,
        response_model=UserOut,
        response_model_exclude_none=True,
        responses={409: {"description": "Username or email taken"}, 415: {}, 422: {}},
    )
    async def register(body: UserCreate, request: Request) -> UserOut:
        """Register a new user. Permissions cannot be chosen here."""
        user = await users.register(
            username=body.username,
            email=body.email,
            age=body.age,
            password=body.password,
            context=request_context(request),
        )
        return UserOut.of(user, show_email=True)

    @router.get("/users/me", response_model=UserOut, responses=_AUTH_ERRORS)
    async def me(
        user: User = Depends(auth.current_user),
        principal: Principal = Depends(auth.principal),
    ) -> JSONResponse:
        """The calling user."""
        return JSONResponse(await render(user, principal))

    @router.post(
        "/users/me/password",
        status_code=204,
        responses={**_AUTH_ERRORS, 400: {"description": "Wrong current password"}},
    )
    async def change_password(
        body: PasswordChange,
        request: Request,
        principal: Principal = Depends(auth.principal),
    ) -> Response:
        """Change the caller's password; every other session is ended."""
        await sessions.change_password(
            principal,
            body.current_password,
            body.new_password,
            context=request_context(request),
        )
        return Response(status_code=204)

    @router.get(
        "/users",
        response_model=list[UserOut],
        response_model_exclude_none=True,
        responses=_AUTH_ERRORS,
    )
    async def search(
        q: Annotated[
            str, Query(min_length=1, max_length=100, description="Substring of the username")
        ],
        limit: Annotated[int, Query(ge=1, le=50)] = 50,
        principal: Principal = Depends(auth.principal),
    ) -> JSONResponse:
        """Users whose username contains ``q`` (case-insensitive, literal)."""
        found = await users.search(q, limit)
        return JSONResponse([await render(user, principal) for user in found])

    @router.get(
        "/users/{user_id}",
        response_model=UserOut,
        response_model_exclude_none=True,
        responses={**_AUTH_ERRORS, 404: {}},
    )
    async def get_user(
        user_id: UserId, principal: Principal = Depends(auth.principal)
    ) -> JSONResponse:
        """One user (with ``locked_until`` for admins)."""
        return JSONResponse(await render(await users.get(user_id), principal))

    @router.put(
        "/users/{user_id}/permissions",
        response_model=UserOut,
        responses={**_AUTH_ERRORS, 403: {}, 404: {}},
    )
    async def set_permissions(
        user_id: UserId,
        request: Request,
        body: Annotated[PermissionsUpdate, Body()],
        principal: Principal = Depends(auth.require(ADMIN)),
    ) -> JSONResponse:
        """Replace a user's permissions; their existing tokens stop working."""
        user = await users.set_permissions(
            user_id,
            tuple(sorted(set(body.permissions))),
            actor=principal,
            context=request_context(request),
        )
        return JSONResponse(await render(user, principal))

    @router.post(
        "/users/{user_id}/unlock",
        status_code=204,
        responses={**_AUTH_ERRORS, 403: {}, 404: {}},
    )
    async def unlock(
        user_id: UserId,
        request: Request,
        principal: Principal = Depends(auth.require(ADMIN)),
    ) -> Response:
        """Lift the login throttle's lock on a user's account."""
        await users.unlock(user_id, actor=principal, context=request_context(request))
        return Response(status_code=204)

    @router.delete(
        "/users/{user_id}", status_code=204, responses={**_AUTH_ERRORS, 403: {}, 404: {}}
    )
    async def delete_user(
        user_id: UserId, request: Request, principal: Principal = Depends(auth.principal)
    ) -> Response:
        """Delete a user (themself, or anyone for an admin); all their tokens stop working."""
        await users.delete(user_id, actor=principal, context=request_context(request))
        return Response(status_code=204)

    return router
