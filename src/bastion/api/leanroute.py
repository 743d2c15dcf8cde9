"""A route class for endpoints that take only the request and answer a Response.

FastAPI's handler, on every request, solves the endpoint's dependencies,
opens two exit stacks for dependencies with ``yield`` and prepares response
validation: 33 us of a 126 us ``GET /protected`` measured in process
(FastAPI 0.163, issue 15). An endpoint ``async def f(request) -> Response``
needs none of that. This route keeps everything ``APIRoute`` gives (the
OpenAPI operation, its methods, 405 with ``Allow``) and calls the endpoint
through Starlette's plain handler, which still sends any exception to the
app's exception handlers, so errors answer exactly as on other routes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import request_response


class LeanRoute(APIRoute):
    """An ``APIRoute`` whose endpoint takes only ``request`` and returns a Response.

    Raises:
        TypeError: at definition, if the endpoint declares anything FastAPI
            would have to resolve (parameters, a body, dependencies).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        dependant = self.dependant
        declared = (
            dependant.path_params
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.dependencies
            or self.dependencies
        )
        if declared or dependant.request_param_name is None:
            raise TypeError(f"{path}: a LeanRoute endpoint takes only the request")
        self.app = request_response(endpoint)
