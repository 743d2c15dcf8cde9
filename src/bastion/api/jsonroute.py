"""A route class that answers 415 to a body that is not JSON."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type header names JSON (``application/json``, ``+json``)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JsonRoute(APIRoute):
    """Refuses non-JSON request bodies with 415 before FastAPI parses them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needs_body = self.body_field is not None

        async def json_only(request: Request) -> Response:
            if needs_body and not is_json(request.headers.get("content-type")):
                return JSONResponse(
                    {"detail": "Content-Type must be application/json"}, status_code=415
                )
            return await handler(request)

        return json_only
