"""The recovery pages and the session lists, on the real services
(``container.mail.recovery``, ``container.mfa.sessions``); mail is read from
the embedded Maildir of the server's data directory."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from bastion import Bastion
from bastion.storage.protocols import EventQuery
from tests.conftest import GOOD_PASSWORD, RunningServer, SettingsFactory, make_admin
from tests.web.conftest import PageClient
from tests.web.mailbox import link_token

NEW_PASSWORD = "a different long passphrase"


@pytest.fixture
def backend() -> str:
    """The services' backends are covered by their own suites."""
    return "sqlite"


async def events_of(server: RunningServer, kind: str) -> list[dict[str, object]]:
    await server.bastion.container.events.flush()
    found = await server.bastion.container.events.query(EventQuery(limit=500))
    return [dict(event.detail, user_id=event.user_id) for event in found if event.type == kind]


async def register(pages: PageClient, username: str) -> None:
    response = await pages.post(
        "/account/register",
        {
            "username": username,
            "email": f"{username}@example.com",
            "age": "30",
            "password": GOOD_PASSWORD,
            "password_confirm": GOOD_PASSWORD,
        },
        csrf_from="/account/register",
    )
    assert response.status_code == 303, response.text


async def test_verify_then_forgot_and_reset_through_the_pages(
    server: RunningServer, pages: PageClient
) -> None:
    await register(pages, "alice")
    token = await link_token(server, "alice@example.com", "verify")
    verify = await pages.get("/account/verify")
    assert "data-fragment-token" in verify.text
    response = await pages.post("/account/verify", {"token": token}, csrf_from="/account/verify")
    assert "Your address is confirmed." in response.text
    user = await server.bastion.container.user_service.get(1)
    assert user.email_verified
    again = await pages.post("/account/verify", {"token": token}, csrf_from="/account/verify")
    assert "Your address is confirmed." not in again.text  # single use

    login_page = await pages.get("/account/login")
    assert 'href="/account/forgot"' in login_page.text
    response = await pages.post(
        "/account/forgot", {"email": "alice@example.com"}, csrf_from="/account/forgot"
    )
    assert response.status_code == 202
    unknown = await pages.post(
        "/account/forgot", {"email": "nobody@example.com"}, csrf_from="/account/forgot"
    )
    assert (unknown.status_code, unknown.text.count("form")) == (202, response.text.count("form"))
    token = await link_token(server, "alice@example.com", "reset")
    differ = await pages.post(
        "/account/reset",
        {"token": token, "new_password": NEW_PASSWORD, "new_password_confirm": "other"},
        csrf_from="/account/reset",
    )
    assert "The two passwords differ." in differ.text
    response = await pages.post(
        "/account/reset",
        {"token": token, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
        csrf_from="/account/reset",
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/account/login?done=password"
    await pages.sign_in("alice", NEW_PASSWORD)
    spent = await pages.post(
        "/account/reset",
        {"token": token, "new_password": GOOD_PASSWORD, "new_password_confirm": GOOD_PASSWORD},
        csrf_from="/account/reset",
    )
    assert spent.status_code == 200
    assert "alert error" in spent.text
    changes = await events_of(server, "authn_password_change")
    assert [event["via"] for event in changes] == ["reset"]
    assert [
        event["account_found"] for event in await events_of(server, "authn_password_reset_request")
    ] == [False, True]


async def test_sessions_are_listed_and_revoked_through_the_pages(
    server: RunningServer, pages: PageClient
) -> None:
    admin = await make_admin(server)
    await pages.sign_in("root")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        other = PageClient(http)
        await other.sign_in("root", GOOD_PASSWORD)
        account = await pages.get("/account")
        assert account.text.count("/revoke") == 2
        assert "Sign out here" in account.text
        sessions = await server.bastion.container.mfa.sessions.of_user(admin["id"])
        here = re.search(
            r'sessions/([^/"]+)/revoke"[^>]*>\s*<input[^>]*>\s*<button[^>]*>Sign out here',
            account.text,
        )
        assert here is not None
        mine = here.group(1)
        theirs = next(s.id for s in sessions if s.id != mine)
        response = await pages.post(f"/account/sessions/{theirs}/revoke", {}, csrf_from="/account")
        assert response.headers["location"] == "/account"
        assert (await other.get("/account")).status_code == 303  # signed out there
        foreign = await pages.post("/account/sessions/nope/revoke", {}, csrf_from="/account")
        assert foreign.status_code == 404
        await other.sign_in("root")
        user_page = await pages.get(f"/admin/users/{admin['id']}")
        assert "Sign out everywhere" in user_page.text
        response = await pages.post(
            f"/admin/users/{admin['id']}/sessions/revoke", {}, csrf_from="/account"
        )
        assert response.status_code == 303
        assert (await other.get("/account")).status_code == 303
    revoked = await events_of(server, "authn_token_revoked")
    assert any(event.get("via") == "session_list" for event in revoked)
    assert any(event.get("sessions_revoked") == 2 for event in revoked)


async def test_pages_mount_under_a_prefix(make_settings: SettingsFactory) -> None:
    app = FastAPI()
    Bastion(await make_settings()).install(app, prefix="/auth-service")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bastion.test") as http,
    ):
        pages = PageClient(http)
        page = await pages.get("/auth-service/account/login")
        assert page.status_code == 200
        assert 'action="/auth-service/account/login"' in page.text
        assert 'href="/auth-service/account/forgot"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert (await pages.get("/auth-service/static/bastion/bastion.css")).status_code == 200
        forgot = await pages.get("/auth-service/account/forgot")
        assert forgot.status_code == 200


async def test_the_email_address_changes_from_the_account_page(
    server: RunningServer, pages: PageClient
) -> None:
    await make_admin(server, "dora")
    await pages.sign_in("dora")
    wrong = await pages.post(
        "/account/email",
        {"new_email": "dora.new@example.com", "email_password": "not the password"},
        csrf_from="/account",
    )
    assert wrong.status_code == 200
    assert 'id="e-email_password"' in wrong.text
    response = await pages.post(
        "/account/email",
        {"new_email": "dora.new@example.com", "email_password": GOOD_PASSWORD},
        csrf_from="/account",
    )
    assert response.headers["location"] == "/account?done=email"
    assert "dora@example.com" in (await pages.get("/account")).text  # not yet changed
    token = await link_token(server, "dora.new@example.com", "verify")
    await pages.post("/account/verify", {"token": token}, csrf_from="/account/verify")
    assert "dora.new@example.com" in (await pages.get("/account")).text
    assert len(await events_of(server, "user_email_change_request")) == 1
