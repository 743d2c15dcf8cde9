"""``/docs`` in a real browser: Swagger UI renders the OpenAPI 3.1 document,
Authorize works with the password grant and with a pasted token, and "Try it
out" on ``GET /users/me`` answers 200, all without a CSP violation or a
console error.

Issue 16: Swagger UI 4 showed "Unable to render this definition" and no
operation at all, which a test of ``GET /docs == 200`` could not see.

With ``DOCS_SCREENSHOT=docs/screenshots/docs.png`` the authorized page is
saved there (the README shows it).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from tests.browser.watch import PageWatch
from tests.conftest import GOOD_PASSWORD, RunningServer, login, register

#: The docs do not depend on the storage backend.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])
#: Swagger UI is one 1.5 MB script: generous on a loaded 2-core machine.
RENDER_TIMEOUT_MS = 30_000


async def open_docs(page: Page, server: RunningServer) -> int:
    """Load /docs and wait for every operation; returns how many there are."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        document = (await http.get("/openapi.json")).json()
    count = sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    )
    response = await page.goto(f"{server.base_url}/docs")
    assert response is not None
    assert response.status == 200
    await expect(page.locator(".opblock")).to_have_count(count, timeout=RENDER_TIMEOUT_MS)
    return count


def operation(page: Page, method: str, path: str) -> Locator:
    """The operation block of ``method path``."""
    summary = page.locator(f'.opblock-summary-path[data-path="{path}"]')
    return page.locator(f".opblock-{method}").filter(has=summary)


async def try_users_me(page: Page) -> Locator:
    """Expand ``GET /users/me``, "Try it out", "Execute"; returns the live response."""
    block = operation(page, "get", "/users/me")
    await block.locator(".opblock-summary").first.click()
    await block.locator("button.try-out__btn").click()
    await block.locator("button.execute").click()
    live = block.locator(".live-responses-table .response")
    await expect(live.locator(".response-col_status").first).to_have_text(
        "200", timeout=RENDER_TIMEOUT_MS
    )
    return live


async def save_screenshot(page: Page, block: Locator) -> None:
    """With ``DOCS_SCREENSHOT`` set, save the view of ``block`` there (README)."""
    target = os.environ.get("DOCS_SCREENSHOT")
    if target:
        await block.evaluate("element => element.scrollIntoView()")
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=target, full_page=False)


async def test_docs_render_every_operation_of_the_openapi_31_document(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    count = await open_docs(page, server)
    assert count >= 15
    await expect(page.locator(".version-stamp")).to_contain_text("OAS 3.1")
    await expect(page.locator("button.authorize")).to_be_visible()
    assert "Unable to render this definition" not in await page.content()
    watch.assert_clean()


async def test_authorize_with_the_password_grant_then_try_users_me(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await register(http, "docs_user")
    token_requests: list[str] = []
    page.on(
        "request",
        lambda request: (
            token_requests.append(request.post_data or "")
            if request.url.endswith("/auth/token")
            else None
        ),
    )
    await open_docs(page, server)
    await page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    await dialog.locator("#oauth_username").fill("docs_user")
    await dialog.locator("#oauth_password").fill(GOOD_PASSWORD)
    await dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    # Swagger UI swaps the button for "Logout" once the token endpoint answered.
    await expect(dialog.get_by_role("button", name="Remove authorization").first).to_be_visible(
        timeout=RENDER_TIMEOUT_MS
    )
    await dialog.locator("button.btn-done").first.click()
    assert any("grant_type=password" in body for body in token_requests), token_requests
    live = await try_users_me(page)
    await expect(live.locator(".response-col_description")).to_contain_text('"docs_user"')
    await save_screenshot(page, operation(page, "get", "/users/me"))
    watch.assert_clean()


async def test_authorize_with_a_pasted_bearer_token_then_try_users_me(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await register(http, "paste_user")
        token = (await login(http, "paste_user"))["access_token"]
    await open_docs(page, server)
    await page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    await dialog.locator("#auth-bearer-value").fill(token)
    await dialog.get_by_role("button", name="Apply credentials").click()
    await dialog.locator("button.btn-done").first.click()
    live = await try_users_me(page)
    await expect(live.locator(".response-col_description")).to_contain_text('"paste_user"')
    watch.assert_clean()
