"""LeanRoute: an APIRoute that calls a request-only endpoint without FastAPI's solver."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from bastion.api.leanroute import LeanRoute


class Refused(Exception):
    """An error the app maps to an answer of its own."""


def _app() -> FastAPI:
    app = FastAPI()

    async def hello(request: Request) -> Response:
        if request.headers.get("x-fail"):
            raise Refused
        return JSONResponse({"path": request.url.path})

    async def refused(_request: Request, _exc: Exception) -> Response:
        return JSONResponse({"detail": "refused"}, status_code=401)

    app.add_exception_handler(Refused, refused)
    app.router.add_api_route("/hello", hello, methods=["GET"], route_class_override=LeanRoute)
    return app


async def _get(app: FastAPI, method: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, "/hello", headers=headers)


async def test_endpoint_answers() -> None:
    response = await _get(_app(), "GET")
    assert response.status_code == 200
    assert response.json() == {"path": "/hello"}


async def test_exceptions_go_through_the_apps_handlers() -> None:
    response = await _get(_app(), "GET", {"x-fail": "1"})
    assert response.status_code == 401
    assert response.json() == {"detail": "refused"}


async def test_other_methods_are_405_with_allow_and_head_is_not_added() -> None:
    app = _app()
    for method in ("POST", "HEAD"):
        response = await _get(app, method)
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET"


def test_the_operation_is_in_the_openapi_document() -> None:
    assert "get" in _app().openapi()["paths"]["/hello"]


@pytest.mark.parametrize("signature", ["query", "dependency"])
def test_an_endpoint_that_needs_resolving_is_refused(signature: str) -> None:
    from fastapi import Depends

    async def needs_query(request: Request, q: int) -> Response:
        return Response()

    async def dep() -> int:
        return 1

    async def needs_dependency(request: Request, value: int = Depends(dep)) -> Response:
        return Response()

    endpoint = needs_query if signature == "query" else needs_dependency
    with pytest.raises(TypeError, match="takes only the request"):
        LeanRoute("/x", endpoint, methods=["GET"])
