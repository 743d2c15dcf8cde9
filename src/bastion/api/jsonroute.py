"""A route class that answers 415 to a body that is not JSON, 422 to one that is not UTF-8."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type header names JSON (``application/json``, ``+json``)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _not_utf8(error: UnicodeDecodeError) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", error.start),
                "msg": "JSON text must be UTF-8 (RFC 8259 §8.1)",
            }
        ]
    )


class JsonRoute(APIRoute):
    """Refuses non-JSON request bodies with 415 before FastAPI parses them.

    A body that is not UTF-8 is malformed JSON (RFC 8259 §8.1) and gets the
    same 422 as a syntax error; FastAPI alone would answer 400 to it.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needs_body = self.body_field is not None

        async def json_only(request: Request) -> Response:
            if needs_body and not is_json(request.headers.get("content-type")):
                return JSONResponse(
                    {"detail": "Content-Type must be application/json"}, status_code=415
                )
            if needs_body:
                # The body is read once: FastAPI's handler reuses the cached bytes.
                try:
                    (await request.body()).decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _not_utf8(exc) from None
                except ClientDisconnect:
                    # The body limit has already answered 413 and ended the
                    # exchange; whatever is sent now is dropped.
                    return Response(status_code=400)
            return await handler(request)

        return json_only
