"""``/docs``: Swagger UI 5 from the installed ``swagger-ui-bundle-v2`` package, no CDN.

Swagger UI 4 cannot read the OpenAPI 3.1 document FastAPI emits ("Unable to
render this definition"); 5.x can. The page has no inline script or style:
Swagger UI's own files come from the package, the start-up script from
``bastion/api/static/docs/``, so the docs CSP is ``script-src 'self'``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

#: The only files served, by name: nothing else of either folder is reachable.
_VENDOR_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "index.css", "favicon-32x32.png")
_OWN_ASSETS = ("init.js",)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bastion API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="stylesheet" href="/docs/assets/index.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<main id="swagger-ui"></main>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
"""


def swagger_ui_dir() -> Path:
    """Where the installed Swagger UI release files are."""
    return Path(str(swagger_ui_path))


def own_assets_dir() -> Path:
    """Bastion's own docs files (the start-up script)."""
    return Path(str(files("bastion.api").joinpath("static/docs")))


def build_router() -> APIRouter:
    """The docs routes (not part of the API schema)."""
    router = APIRouter(include_in_schema=False)
    sources = {name: swagger_ui_dir() / name for name in _VENDOR_ASSETS}
    sources.update({name: own_assets_dir() / name for name in _OWN_ASSETS})

    @router.get("/docs")
    async def docs_page() -> HTMLResponse:
        return HTMLResponse(_PAGE)

    @router.get("/docs/assets/{name}")
    async def docs_asset(name: str) -> Response:
        source = sources.get(name)
        if source is None:
            return Response(status_code=404)
        return FileResponse(source)

    return router
