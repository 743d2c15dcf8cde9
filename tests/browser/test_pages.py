"""The pages in a real browser (Debian's Chromium): no CSP violation, no
console error, no serious or critical axe-core finding; the main journeys by
mouse and by keyboard; forged posts refused.

``__Host-`` cookies are ``Secure``; Chromium stores and sends them on
``http://127.0.0.1`` and ``http://localhost`` because it treats loopback as
a potentially trustworthy origin (W3C Secure Contexts §3.2), so these tests
run over plain HTTP exactly as a production browser runs over HTTPS.
"""

from __future__ import annotations

import pytest
from playwright.async_api import BrowserContext, Dialog, Page, Route, expect

from tests.browser.watch import PageWatch, serious_axe_findings
from tests.conftest import GOOD_PASSWORD, RunningServer, make_admin

NEW_PASSWORD = "a different long passphrase"


@pytest.fixture
def backend() -> str:
    """Pages are the same on every backend; the HTTP suite covers both."""
    return "sqlite"


async def assert_page_ok(page: Page, watch: PageWatch) -> None:
    findings = await serious_axe_findings(page)
    assert not findings, findings
    watch.assert_clean()


async def sign_in(page: Page, base: str, username: str, password: str = GOOD_PASSWORD) -> None:
    await page.goto(f"{base}/account/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your account")


async def test_every_page_renders_cleanly(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    admin = await make_admin(server)
    base = server.base_url
    for path in (
        "/account/login",
        "/account/register",
        "/account/forgot",
        "/account/reset",
        "/account/verify",
    ):
        response = await page.goto(base + path)
        assert response is not None
        assert response.status == 200
        await assert_page_ok(page, watch)
    await sign_in(page, base, "root")
    for path in (
        "/account",
        "/admin",
        "/admin/users",
        f"/admin/users/{admin['id']}",
        "/admin/events",
        "/admin/events?type=nope",
    ):
        await page.goto(base + path)
        await page.wait_for_load_state("networkidle")
        await assert_page_ok(page, watch)


async def test_the_session_cookie_is_kept_by_chromium_on_loopback(
    server: RunningServer, page: Page, browser_context: BrowserContext
) -> None:
    await make_admin(server)
    await sign_in(page, server.base_url, "root")
    cookie = next(
        c for c in await browser_context.cookies() if c["name"] == "__Host-bastion-session"
    )
    assert cookie["secure"] is True
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert await page.evaluate("document.cookie") == ""


async def test_register_sign_in_change_password_sign_out(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    base = server.base_url
    await page.goto(f"{base}/account/register")
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Email address").fill("alice@example.com")
    await page.get_by_label("Age").fill("30")
    await page.get_by_label("Password", exact=True).fill(GOOD_PASSWORD)
    await page.get_by_label("Password again").fill(GOOD_PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("status")).to_contain_text("Your account is ready")
    await sign_in(page, base, "alice")
    await page.locator("#f-current_password").fill(GOOD_PASSWORD)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    await page.get_by_role("button", name="Sign out (").click()
    await expect(page.get_by_role("status")).to_contain_text("You are signed out")
    await page.goto(f"{base}/account")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await sign_in(page, base, "alice", NEW_PASSWORD)
    watch.assert_clean()


async def test_keyboard_only_sign_in(server: RunningServer, page: Page, watch: PageWatch) -> None:
    await make_admin(server)
    await page.goto(f"{server.base_url}/account/login")
    # Skip link, brand, two nav links, then the form.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    username = page.get_by_label("Username")
    for _ in range(6):
        await page.keyboard.press("Tab")
        if await username.evaluate("el => el === document.activeElement"):
            break
    await expect(username).to_be_focused()
    await page.keyboard.type("root")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(GOOD_PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    watch.assert_clean()


async def test_the_admin_searches_edits_permissions_and_filters_events(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    await make_admin(server)
    await server.bastion.container.user_service.register(
        username="bob", email="bob@example.com", age=33, password=GOOD_PASSWORD
    )
    base = server.base_url
    await sign_in(page, base, "root")
    await page.get_by_role("link", name="Users").click()
    await page.get_by_label("Username contains").fill("bo")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name="bob").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("User bob")
    await page.get_by_role("textbox", name="Permissions").fill("reports:read users:read")
    await page.get_by_role("button", name="Save permissions").click()
    await expect(page.get_by_role("status")).to_have_text("Permissions saved.")
    field = page.get_by_role("textbox", name="Permissions")
    await expect(field).to_have_value("reports:read users:read")
    await page.get_by_role("link", name="Events").first.click()
    await page.get_by_label("Type").select_option("authz_change")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("table.events tbody tr")).to_have_count(1)
    chart = page.get_by_role("img", name="Events over time (UTC)")
    await expect(chart).to_be_visible()
    await expect(page.locator("#events-chart rect")).to_have_count(1)
    await page.get_by_role("link", name="Overview").click()
    await expect(
        page.get_by_role("img", name="Sign-in activity, last 24 hours (UTC)")
    ).to_be_visible()
    await assert_page_ok(page, watch)


async def test_deleting_a_user_asks_first(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    await make_admin(server)
    bob = await server.bastion.container.user_service.register(
        username="bob", email="bob@example.com", age=33, password=GOOD_PASSWORD
    )
    base = server.base_url
    await sign_in(page, base, "root")
    await page.goto(f"{base}/admin/users/{bob.id}")
    answers: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        answers.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", dismiss)
    await page.get_by_role("button", name="Delete bob").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("User bob")
    assert len(answers) == 1
    assert "Delete the account bob" in answers[0]

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.once("dialog", accept)
    await page.get_by_role("button", name="Delete bob").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    watch.assert_clean()


async def test_forged_posts_are_refused(server: RunningServer, page: Page) -> None:
    await make_admin(server)
    base = server.base_url
    await sign_in(page, base, "root")
    token = await page.locator('input[name="csrf"]').first.input_value()

    # Same origin, no token: refused by the synchronizer token.
    await page.evaluate(
        """(action) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = action;
            document.body.append(form);
            form.submit();
        }""",
        f"{base}/account/logout",
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")

    # Another site, even holding the right token: refused by the Origin check
    # (and SameSite=Strict keeps the cookie home as well).
    async def evil(route: Route) -> None:
        await route.fulfill(
            content_type="text/html",
            body=(
                f'<form method="post" action="{base}/account/logout">'
                f'<input name="csrf" value="{token}"><button>Win</button></form>'
            ),
        )

    await page.route("http://evil.test/**", evil)
    await page.goto("http://evil.test/")
    await page.get_by_role("button", name="Win").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    await page.goto(f"{base}/account")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
