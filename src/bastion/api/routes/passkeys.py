"""``/users/me/passkeys``: register, list and delete passkeys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from bastion.api.context import request_context
from bastion.api.jsonroute import JsonRoute
from bastion.api.schemas_mfa import PasskeyCreate, PasskeyOut
from bastion.types import Principal

if TYPE_CHECKING:
    from bastion.api.app import Bastion

PasskeyId = Annotated[str, Path(min_length=1, max_length=64)]
_ERRORS: dict[int | str, dict[str, str]] = {401: {"description": "Missing or invalid token"}}


def build_router(auth: Bastion) -> APIRouter:
    """The passkey routes."""
    router = auth.api_router(tags=["passkeys"], route_class=JsonRoute)
    service = auth.container.mfa.passkeys

    @router.post("/users/me/passkeys/options", responses=_ERRORS)
    async def options(principal: Principal = Depends(auth.principal)) -> JSONResponse:
        """Creation options for a new passkey (``parseCreationOptionsFromJSON`` input)."""
        body = await service.registration_options(principal)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @router.post(
        "/users/me/passkeys",
        status_code=201,
        response_model=PasskeyOut,
        responses={**_ERRORS, 400: {"description": "The credential does not verify"}, 409: {}},
    )
    async def create(
        body: PasskeyCreate, request: Request, principal: Principal = Depends(auth.principal)
    ) -> PasskeyOut:
        """Register the browser's answer to the creation options."""
        record = await service.register(
            principal, body.credential, body.name, context=request_context(request)
        )
        return PasskeyOut.of(record)

    @router.get("/users/me/passkeys", response_model=list[PasskeyOut], responses=_ERRORS)
    async def list_passkeys(principal: Principal = Depends(auth.principal)) -> list[PasskeyOut]:
        """The caller's passkeys, oldest first."""
        return [PasskeyOut.of(record) for record in await service.of_user(principal.user_id)]

    @router.delete(
        "/users/me/passkeys/{passkey_id}", status_code=204, responses={**_ERRORS, 404: {}}
    )
    async def delete(
        passkey_id: PasskeyId, request: Request, principal: Principal = Depends(auth.principal)
    ) -> Response:
        """Delete one of the caller's passkeys (another user's: 404)."""
        await service.remove(principal, passkey_id, context=request_context(request))
        return Response(status_code=204)

    return router
