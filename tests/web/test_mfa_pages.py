"""Two-step verification through the pages on the real services: TOTP
enrolment, the login's second step, recovery codes, the admin's MFA reset
and unlock, and the known-device cookie."""

from __future__ import annotations

import base64
import contextlib
import re
import time

import pyotp
import pytest

from bastion.errors import InvalidCredentials, Throttled
from bastion.storage.protocols import EventQuery
from bastion.types import RequestContext
from tests.conftest import GOOD_PASSWORD, RunningServer, make_admin
from tests.web.conftest import PageClient

SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')
QR = re.compile(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"')
MFA_TOKEN = re.compile(r'name="mfa_token" value="([^"]+)"')
CODE = re.compile(r"<li><code>([^<]+)</code></li>")


@pytest.fixture
def backend() -> str:
    """The MFA services' backends are covered by their own suites."""
    return "sqlite"


async def event_types(server: RunningServer) -> list[str]:
    await server.bastion.container.events.flush()
    found = await server.bastion.container.events.query(EventQuery(limit=500))
    return [event.type for event in reversed(found)]


async def enrol(pages: PageClient) -> tuple[pyotp.TOTP, list[str]]:
    """Turn TOTP on from /account; the TOTP and the recovery codes shown."""
    wrong = await pages.post(
        "/account/mfa/totp", {"current_password": "not it at all"}, csrf_from="/account"
    )
    assert "alert error" in wrong.text
    shown = await pages.post(
        "/account/mfa/totp", {"current_password": GOOD_PASSWORD}, csrf_from="/account"
    )
    assert shown.status_code == 200
    secret = SECRET.search(shown.text)
    qr = QR.search(shown.text)
    assert secret
    assert qr
    assert base64.b64decode(qr.group(1)).lstrip().startswith((b"<svg", b"<?xml"))
    totp = pyotp.TOTP(secret.group(1))
    done = await pages.post("/account/mfa/totp/confirm", {"code": totp.now()}, csrf_from="/account")
    codes = CODE.findall(done.text)
    assert len(codes) == 10
    assert "Recovery codes left: 10" in (await pages.get("/account")).text
    return totp, codes


async def password_step(pages: PageClient, username: str) -> str:
    response = await pages.post(
        "/account/login",
        {"username": username, "password": GOOD_PASSWORD},
        csrf_from="/account/login",
    )
    assert response.status_code == 200
    assert "Confirm it is you" in response.text
    found = MFA_TOKEN.search(response.text)
    assert found
    return found.group(1)


async def test_totp_enrolment_second_step_and_recovery_codes(
    server: RunningServer, pages: PageClient
) -> None:
    await make_admin(server, "alice")
    await pages.sign_in("alice")
    totp, codes = await enrol(pages)
    await pages.post("/account/logout", {}, csrf_from="/account")

    mfa_token = await password_step(pages, "alice")
    assert (await pages.get("/account")).status_code == 303  # not signed in yet
    wrong = await pages.post(
        "/account/login/mfa",
        {"mfa_token": mfa_token, "otp": "000000", "methods": "otp recovery_code"},
        csrf_from="/account/login",
    )
    assert "That code did not work" in wrong.text
    assert 'name="otp"' in wrong.text
    # The next step's code: the confirmation spent this one (RFC 6238 §5.2).
    code = totp.at(time.time() + 30)
    response = await pages.post(
        "/account/login/mfa", {"mfa_token": mfa_token, "otp": code}, csrf_from="/account/login"
    )
    assert response.status_code == 303, response.text
    assert (await pages.get("/account")).status_code == 200
    await pages.post("/account/logout", {}, csrf_from="/account")

    mfa_token = await password_step(pages, "alice")
    response = await pages.post(
        "/account/login/mfa",
        {"mfa_token": mfa_token, "recovery_code": codes[0]},
        csrf_from="/account/login",
    )
    assert response.status_code == 303
    assert "Recovery codes left: 9" in (await pages.get("/account")).text

    response = await pages.post(
        "/account/mfa/totp/disable",
        {"current_password": GOOD_PASSWORD, "code": codes[1]},
        csrf_from="/account",
    )
    assert response.headers["location"] == "/account?done=mfa_off"
    assert "Set up an authenticator app" in (await pages.get("/account")).text
    kinds = await event_types(server)
    assert kinds.count("mfa_enabled") == 1
    assert kinds.count("mfa_disabled") == 1
    assert kinds.count("authn_mfa_fail") == 1
    assert kinds.count("authn_recovery_code_used") >= 1


async def test_the_admin_resets_mfa_and_lifts_a_lock(
    server: RunningServer, admin_pages: PageClient, pages: PageClient
) -> None:
    user = await server.bastion.container.user_service.register(
        username="bob", email="bob@example.com", age=30, password=GOOD_PASSWORD
    )
    await pages.sign_in("bob")
    await enrol(pages)
    page = await admin_pages.get(f"/admin/users/{user.id}")
    assert "Authenticator app: on" in page.text
    response = await admin_pages.post(
        f"/admin/users/{user.id}/mfa/reset", {}, csrf_from=f"/admin/users/{user.id}"
    )
    assert response.status_code == 303
    page = await admin_pages.get(response.headers["location"])
    assert "Authenticator app: off" in page.text
    assert "Every second factor of this user is removed" in page.text

    # Guesses from many addresses lock the account itself (not one client).
    auth = server.bastion.container.auth_service
    for n in range(10):
        with contextlib.suppress(InvalidCredentials, Throttled):
            await auth.password_grant(
                "bob", "a wrong password here", context=RequestContext(ip=f"203.0.113.{n + 1}")
            )
    page = await admin_pages.get(f"/admin/users/{user.id}")
    assert "locked until" in page.text
    response = await admin_pages.post(
        f"/admin/users/{user.id}/unlock", {}, csrf_from=f"/admin/users/{user.id}"
    )
    assert response.status_code == 303
    page = await admin_pages.get(response.headers["location"])
    assert "locked until" not in page.text
    assert "The sign-in lock is lifted." in page.text
    kinds = await event_types(server)
    assert "authn_login_unlock" in kinds
    assert "mfa_disabled" in kinds or "mfa_reset" in kinds


async def test_the_device_cookie_is_kept_and_sent_back(
    server: RunningServer, pages: PageClient
) -> None:
    await make_admin(server, "carol")
    await pages.sign_in("carol")
    header = next(h for h in pages.raw_set_cookies if h.startswith("__Host-bastion-device="))
    lowered = header.lower()
    for attribute in ("httponly", "secure", "samesite=strict", "path=/", "max-age="):
        assert attribute in lowered
    first = pages.cookies["__Host-bastion-device"]
    await pages.post("/account/logout", {}, csrf_from="/account")
    assert pages.cookies["__Host-bastion-device"] == first  # outlives the session
    await pages.sign_in("carol")
    # The token presented was valid, so the same one comes back (SPEC).
    assert pages.cookies["__Host-bastion-device"] == first
    # An attacker hammering the account does not lock this browser out.
    attacker = PageClient(pages.http)
    for _ in range(12):
        await attacker.post(
            "/account/login",
            {"username": "carol", "password": "a wrong password here"},
            csrf_from="/account/login",
        )
    locked = await attacker.post(
        "/account/login",
        {"username": "carol", "password": GOOD_PASSWORD},
        csrf_from="/account/login",
    )
    assert locked.status_code == 429
    await pages.post("/account/logout", {}, csrf_from="/account")
    await pages.sign_in("carol")
