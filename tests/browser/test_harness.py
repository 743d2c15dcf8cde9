"""The browser harness itself: Chromium starts, reaches a test server, and
PageWatch sees the errors pages must not have."""

from __future__ import annotations

from playwright.async_api import Page

from tests.browser.watch import PageWatch, serious_axe_findings
from tests.conftest import RunningServer


async def test_chromium_reaches_a_bastion_server(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    response = await page.goto(f"{server.base_url}/health")
    assert response is not None
    assert response.status == 200
    assert '"status"' in await page.content()


async def test_watch_collects_uncaught_errors_and_console_errors(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    await page.goto(f"{server.base_url}/health")
    await page.evaluate("console.error('seen by the watch')")
    await page.evaluate("setTimeout(() => { throw new Error('uncaught') }, 0)")
    await page.wait_for_timeout(100)
    assert "seen by the watch" in watch.console_errors
    assert any("uncaught" in text for text in watch.page_errors)


async def test_axe_runs_under_the_api_csp_and_reports_serious_findings(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    # A JSON answer rendered as a document has no <title> and no lang: axe
    # must see that even under the API's `default-src 'none'` policy.
    await page.goto(f"{server.base_url}/health")
    findings = await serious_axe_findings(page)
    assert {"document-title", "html-has-lang"} <= {item["id"] for item in findings}
