"""Probes, metrics access, and interactive docs that work offline (no CDN)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import RunningServer, ServerFactory, bearer, login, make_admin

ASSET_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
ASSET_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
}


async def test_health_answers_200(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_answers_200_when_the_database_is_up(
    shared_client: httpx.AsyncClient,
) -> None:
    response = await shared_client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_docs_page_is_html(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text


async def test_docs_page_loads_nothing_from_other_hosts(shared_client: httpx.AsyncClient) -> None:
    page = (await shared_client.get("/docs")).text
    assert re.search(r"https?:|//[a-z0-9.-]+\.[a-z]", page, re.IGNORECASE) is None, page
    references = ASSET_REFERENCE.findall(page)
    assert references
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in references)


async def test_docs_page_has_no_inline_script(shared_client: httpx.AsyncClient) -> None:
    page = (await shared_client.get("/docs")).text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.DOTALL)
    assert scripts
    assert all("src=" in attributes and not body.strip() for attributes, body in scripts)


async def test_every_docs_asset_loads_with_its_type(shared_client: httpx.AsyncClient) -> None:
    page = (await shared_client.get("/docs")).text
    references = ASSET_REFERENCE.findall(page)
    assert len(references) >= 3
    for ref in references:
        response = await shared_client.get(ref)
        assert response.status_code == 200, ref
        suffix = ref[ref.rindex(".") :]
        assert ASSET_TYPES[suffix] in response.headers["content-type"], ref
        assert response.content, ref


async def test_docs_script_points_at_the_local_schema(shared_client: httpx.AsyncClient) -> None:
    init = await shared_client.get("/docs/assets/init.js")
    assert init.status_code == 200
    assert 'url: "/openapi.json"' in init.text


async def test_docs_csp_allows_own_scripts_only(shared_client: httpx.AsyncClient) -> None:
    csp = (await shared_client.get("/docs")).headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize(
    "path",
    [
        "/docs/assets/pyproject.toml",
        "/docs/assets/..%2F..%2Fpyproject.toml",
        "/docs/assets/%2e%2e%2fREADME.md",
        "/docs/assets/package.json",
    ],
)
async def test_only_the_known_docs_assets_are_served(
    shared_client: httpx.AsyncClient, path: str
) -> None:
    response = await shared_client.get(path)
    assert response.status_code == 404


async def test_openapi_schema_is_served(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/users", "/users/me", "/users/{user_id}", "/auth/token"} <= set(schema["paths"])


async def test_openapi_schema_documents_bearer_auth(shared_client: httpx.AsyncClient) -> None:
    schema = (await shared_client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"].values()
    assert any(s["type"] == "http" and s["scheme"].lower() == "bearer" for s in schemes)


async def test_docs_disabled_hides_docs_and_schema(start_server: ServerFactory) -> None:
    server = await start_server(docs=False)
    paths = ["/docs", "/openapi.json", "/docs/assets/swagger-ui.css", "/docs/assets/init.js"]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        statuses = {path: (await http.get(path)).status_code for path in paths}
    assert statuses == dict.fromkeys(paths, 404)


# -- /metrics ------------------------------------------------------------------------


async def test_metrics_need_a_token_by_default(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/metrics")
    assert response.status_code == 401


async def test_metrics_are_served_to_an_admin(
    shared_server: RunningServer, shared_client: httpx.AsyncClient
) -> None:
    admin = await make_admin(shared_server, "metricsadmin")
    tokens = await login(shared_client, admin["username"])
    response = await shared_client.get("/metrics", headers=bearer(tokens))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
