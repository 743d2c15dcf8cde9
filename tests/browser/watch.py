"""What a page did wrong in the browser: console errors, uncaught exceptions,
Content-Security-Policy violations and serious accessibility findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import ConsoleMessage, Error, Page

#: Reports every CSP violation to the console, where PageWatch collects it.
#: Playwright evaluates init scripts through the DevTools protocol, so the
#: page's own CSP (``script-src 'self'``) does not block this one.
_CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""

#: axe-core impact levels that fail a page (SPEC: no serious or critical finding).
FAILING_IMPACTS = frozenset({"serious", "critical"})


@dataclass
class PageWatch:
    """Collects a page's problems as they happen."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @classmethod
    async def attach(cls, page: Page) -> PageWatch:
        """Start watching ``page`` (before it navigates)."""
        watch = cls()
        await page.add_init_script(_CSP_REPORTER)
        page.on("console", watch._on_console)
        page.on("pageerror", watch._on_page_error)
        return watch

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _on_page_error(self, error: Error) -> None:
        self.page_errors.append(str(error))

    def csp_violations(self) -> list[str]:
        """The console errors that are CSP violations."""
        return [
            text
            for text in self.console_errors
            if text.startswith("CSP violation") or "Content Security Policy" in text
        ]

    def assert_clean(self) -> None:
        """Fail on any console error, uncaught exception or CSP violation."""
        assert not self.page_errors, self.page_errors
        assert not self.console_errors, self.console_errors


async def serious_axe_findings(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now.

    axe-core is injected with ``page.evaluate`` (not a script tag), so the
    page's CSP does not stand in its way and the page itself is unchanged.
    """
    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response.get("violations", [])
    return [
        {
            "id": item["id"],
            "impact": item["impact"],
            "help": item["help"],
            "nodes": [node["target"] for node in item["nodes"]][:5],
        }
        for item in violations
        if item.get("impact") in FAILING_IMPACTS
    ]
