"""A real browser for page tests: Debian's Chromium driven by Playwright.

Playwright cannot download its own browser on this project's machines (and
must not try), so it launches the system ``chromium`` with
``executable_path``. ``scripts/test`` installs it from apt when it is missing.
The flags keep Chromium from reaching out to the network at start, which a
closed machine answers with a burst of refused connections.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.browser.watch import PageWatch

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    """Debian's Chromium; a missing browser fails the run, it is never skipped."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        raise RuntimeError("chromium is not installed (scripts/test installs it with apt)")
    return found


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the whole test session."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile (no cookies, no storage) per test."""
    context = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def page(browser_context: BrowserContext) -> AsyncIterator[Page]:
    """A page of a fresh profile."""
    new_page = await browser_context.new_page()
    yield new_page
    await new_page.close()


@pytest.fixture
async def watch(page: Page) -> PageWatch:
    """Console errors, uncaught exceptions and CSP violations of ``page``."""
    return await PageWatch.attach(page)
