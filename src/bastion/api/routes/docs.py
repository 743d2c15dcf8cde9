"""``/docs``: Swagger UI from the installed ``swagger-ui-bundle`` package, no CDN.

The page loads no inline script, so the docs CSP can forbid inline scripts.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Bastion API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
"""

_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"""


def swagger_ui_dir() -> Path:
    """Where the installed Swagger UI files are."""
    vendor = Path(str(files("swagger_ui_bundle"))) / "vendor"
    return next(vendor.glob("swagger-ui-*"))


def build_router() -> APIRouter:
    """The docs routes (not part of the API schema)."""
    router = APIRouter(include_in_schema=False)
    assets = swagger_ui_dir()

    @router.get("/docs")
    async def docs_page() -> HTMLResponse:
        return HTMLResponse(_PAGE)

    @router.get("/docs/assets/init.js")
    async def docs_init() -> Response:
        return Response(_INIT, media_type="text/javascript")

    @router.get("/docs/assets/{name}")
    async def docs_asset(name: str) -> Response:
        if name not in _ASSETS:
            return Response(status_code=404)
        return FileResponse(assets / name)

    return router
