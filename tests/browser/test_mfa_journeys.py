"""Round-2 journeys in Chromium: verify the address from the mail, TOTP
enrolment and a sign-in with the code, a passkey added and used for a
passwordless sign-in (Chromium's virtual authenticator over CDP), and a
password reset from the mail link. Every page: no console error, no CSP
violation, no serious or critical axe-core finding."""

from __future__ import annotations

import dataclasses
import time

import pyotp
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.test_pages import assert_page_ok, sign_in
from tests.browser.watch import PageWatch
from tests.conftest import GOOD_PASSWORD, RunningServer
from tests.web.mailbox import link_token

NEW_PASSWORD = "a different long passphrase"


@pytest.fixture
def backend() -> str:
    """Pages are the same on every backend; the HTTP suite covers both."""
    return "sqlite"


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out (").click()
    await expect(page.get_by_role("status")).to_contain_text("You are signed out")


async def test_register_verify_enrol_totp_and_sign_in_with_the_code(
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

    token = await link_token(server, "alice@example.com", "verify")
    await page.goto(f"{base}/account/verify#token={token}")
    await expect(page.get_by_label("Token from the mail")).to_be_hidden()
    assert "#" not in page.url  # fragment.js took the token out of the address bar
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("status")).to_have_text("Your address is confirmed.")
    await assert_page_ok(page, watch)

    await sign_in(page, base, "alice")
    mfa = page.locator("section[aria-labelledby=mfa]")
    await mfa.get_by_label("Current password").fill(GOOD_PASSWORD)
    await mfa.get_by_role("button", name="Set up an authenticator app").click()
    qr = page.get_by_role("img", name="QR code of the key below")
    await expect(qr).to_be_visible()
    assert await qr.evaluate("img => img.decode().then(() => img.naturalWidth > 0)")
    totp = pyotp.TOTP(await page.locator("#totp-secret").inner_text())
    await assert_page_ok(page, watch)
    await page.get_by_label("Code from the app").fill(totp.now())
    await page.get_by_role("button", name="Turn on").click()
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    await assert_page_ok(page, watch)

    await sign_out(page)
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(GOOD_PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it is you")
    await assert_page_ok(page, watch)
    # The next step's code: the one of the confirmation is spent (RFC 6238 §5.2).
    await page.get_by_label("Code from your authenticator app").fill(totp.at(time.time() + 30))
    await page.get_by_role("button", name="Continue").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    await expect(page.locator("section[aria-labelledby=mfa]")).to_contain_text(
        "Recovery codes left: 10"
    )
    watch.assert_clean()


async def test_a_passkey_is_added_and_signs_in_without_a_password(
    server: RunningServer, page: Page, browser_context: BrowserContext, watch: PageWatch
) -> None:
    await server.bastion.container.user_service.register(
        username="bob", email="bob@example.com", age=30, password=GOOD_PASSWORD
    )
    cdp = await browser_context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    # WebAuthn refuses IP addresses as RP IDs: the browser visits the server
    # as localhost (a potentially trustworthy origin too), the RP ID the
    # default public URL gives, on the port the test server got.
    base = server.base_url.replace("127.0.0.1", "localhost")
    passkeys = server.bastion.container.mfa.passkeys
    passkeys.rp = dataclasses.replace(passkeys.rp, origins=(base,))
    await sign_in(page, base, "bob")
    await page.get_by_label("Name of the new passkey").fill("Laptop")
    await page.get_by_role("button", name="Add a passkey").click()
    await expect(page.get_by_role("status")).to_have_text("The passkey is added.")
    await expect(page.locator("section[aria-labelledby=passkeys]")).to_contain_text("Laptop")
    await assert_page_ok(page, watch)

    await sign_out(page)
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    await expect(page.get_by_role("definition").first).to_have_text("bob")

    # With a passkey, MFA is on: the password is followed by the passkey.
    await sign_out(page)
    await page.get_by_label("Username").fill("bob")
    await page.get_by_label("Password").fill(GOOD_PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it is you")
    await assert_page_ok(page, watch)
    await page.get_by_role("button", name="Use your passkey").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    watch.assert_clean()


async def test_forgot_then_reset_from_the_mail_link(
    server: RunningServer, page: Page, watch: PageWatch
) -> None:
    await server.bastion.container.user_service.register(
        username="carol", email="carol@example.com", age=30, password=GOOD_PASSWORD
    )
    base = server.base_url
    await page.goto(f"{base}/account/login")
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.get_by_label("Email address of your account").fill("carol@example.com")
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("status")).to_contain_text("If an account has that address")
    await assert_page_ok(page, watch)
    token = await link_token(server, "carol@example.com", "reset")
    await page.goto(f"{base}/account/reset#token={token}")
    await expect(page.get_by_label("Token from the mail")).to_be_hidden()
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD)
    await assert_page_ok(page, watch)
    await page.get_by_role("button", name="Set the password").click()
    await expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    await sign_in(page, base, "carol", NEW_PASSWORD)
    watch.assert_clean()
