"""The pages over plain HTTP: status, headers, cookies, sessions, and that
every action records the same security events as the API."""

from __future__ import annotations

import httpx
import pytest

from bastion.services.events import EventQuery
from tests.conftest import (
    GOOD_PASSWORD,
    ManualClock,
    RunningServer,
    ServerFactory,
    bearer,
    login,
    register,
)
from tests.web.conftest import PageClient

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
NEW_PASSWORD = "a different long passphrase"
ANONYMOUS_PAGES = ["/account/login", "/account/register"]
ADMIN_PAGES = ["/account", "/admin", "/admin/users", "/admin/users/1", "/admin/events"]


async def event_types(server: RunningServer) -> list[str]:
    events = await server.bastion.container.events.query(EventQuery(limit=200))
    return [event.type for event in reversed(events)]


def assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "server" not in response.headers


@pytest.mark.parametrize("path", ANONYMOUS_PAGES)
async def test_anonymous_pages_render_with_the_page_policy(pages: PageClient, path: str) -> None:
    response = await pages.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_page_headers(response)
    assert '<html lang="en">' in response.text


async def test_admin_pages_render_with_the_page_policy(admin_pages: PageClient) -> None:
    for path in ADMIN_PAGES:
        response = await admin_pages.get(path)
        assert response.status_code == 200, path
        assert_page_headers(response)


async def test_static_files_and_favicon_are_served(pages: PageClient) -> None:
    for path, kind in [
        ("/static/bastion/bastion.css", "text/css"),
        ("/static/bastion/js/main.js", "text/javascript"),
        ("/static/bastion/favicon.svg", "image/svg+xml"),
        ("/favicon.ico", "image/svg+xml"),
    ]:
        response = await pages.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(kind)
    assert (await pages.get("/static/bastion/../config.py")).status_code == 404


async def test_api_responses_keep_the_api_policy(pages: PageClient) -> None:
    response = await pages.get("/health")
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


async def test_session_cookie_is_host_prefixed_http_only_secure_and_strict(
    server: RunningServer, pages: PageClient
) -> None:
    await register(pages.http, "alice")
    await pages.sign_in("alice")
    cookie = next(c for c in pages.raw_set_cookies if c.startswith("__Host-bastion-session="))
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "path=/", "samesite=strict"} <= attributes
    assert not any(part.startswith("domain") for part in attributes)


async def test_sign_in_renews_the_session_and_the_old_cookie_dies(
    server: RunningServer, pages: PageClient
) -> None:
    await register(pages.http, "alice")
    await pages.sign_in("alice")
    first = pages.cookies["__Host-bastion-session"]
    await pages.sign_in("alice")
    second = pages.cookies["__Host-bastion-session"]
    assert first != second
    pages.cookies["__Host-bastion-session"] = first
    response = await pages.get("/account")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/account/login")


async def test_register_sign_in_change_password_sign_out_records_the_api_events(
    server: RunningServer, pages: PageClient
) -> None:
    response = await pages.post(
        "/account/register",
        {
            "username": "alice",
            "email": "alice@example.com",
            "age": "30",
            "password": GOOD_PASSWORD,
            "password_confirm": GOOD_PASSWORD,
        },
        csrf_from="/account/register",
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/account/login?done=registered"
    await pages.sign_in("alice")
    account = await pages.get("/account")
    assert "alice@example.com" in account.text
    other = await login(pages.http, "alice")  # an API session, ended by the change
    response = await pages.post(
        "/account/password",
        {
            "current_password": GOOD_PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        },
        csrf_from="/account",
    )
    assert response.status_code == 303
    assert (await pages.get("/account")).status_code == 200  # this session survives
    assert (await pages.http.get("/users/me", headers=bearer(other))).status_code == 401
    response = await pages.post("/account/logout", {}, csrf_from="/account")
    assert response.status_code == 303
    assert (await pages.get("/account")).status_code == 303
    await server.bastion.container.events.flush()
    assert [kind for kind in await event_types(server) if kind != "authn_token_created"] == [
        "user_created",
        "authn_login_success",
        "authn_login_success",
        "authn_password_change",
        "authn_token_revoked",
    ]


async def test_a_wrong_password_shows_one_message_and_records_a_failure(
    server: RunningServer, pages: PageClient
) -> None:
    await register(pages.http, "alice")
    for name in ("alice", "nobody"):
        response = await pages.post(
            "/account/login",
            {"username": name, "password": "wrong" * 4},
            csrf_from="/account/login",
        )
        assert response.status_code == 200  # a form shown again (site.FORM_ERROR)
        assert "Invalid username or password." in response.text
        assert "wrongwrong" not in response.text
    assert (await event_types(server)).count("authn_login_fail") == 2


async def test_registration_errors_are_shown_without_echoing_the_password(
    pages: PageClient,
) -> None:
    response = await pages.post(
        "/account/register",
        {
            "username": "a b",
            "email": "nope",
            "age": "12",
            "password": "short secret",
            "password_confirm": "short secret",
        },
        csrf_from="/account/register",
    )
    assert response.status_code == 200
    assert "The account was not created" in response.text
    assert "short secret" not in response.text
    assert 'aria-invalid="true"' in response.text


async def test_the_json_api_never_accepts_the_session_cookie(
    server: RunningServer, pages: PageClient
) -> None:
    await register(pages.http, "alice")
    await pages.sign_in("alice")
    response = await pages.get("/users/me")
    assert response.status_code == 401
    assert (await pages.get("/account")).status_code == 200


async def test_no_get_changes_state(server: RunningServer, pages: PageClient) -> None:
    await register(pages.http, "alice")
    await pages.sign_in("alice")
    for path in ("/account/logout", "/account/password", "/admin/users/1/delete"):
        assert (await pages.get(path)).status_code in (404, 405), path
    assert (await pages.get("/account")).status_code == 200


async def test_admin_pages_need_admin_and_record_authz_fail(
    server: RunningServer, pages: PageClient
) -> None:
    anonymous = await pages.get("/admin")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/account/login?next=%2Fadmin"
    await register(pages.http, "alice")
    await pages.sign_in("alice")
    response = await pages.get("/admin/users")
    assert response.status_code == 403
    assert "authz_fail" in await event_types(server)


async def test_the_admin_changes_permissions_and_deletes_a_user(
    server: RunningServer, admin_pages: PageClient
) -> None:
    bob = await register(admin_pages.http, "bob")
    page = f"/admin/users/{bob['id']}"
    response = await admin_pages.post(
        f"{page}/permissions", {"permissions": "reports:read, users:read"}, csrf_from=page
    )
    assert response.status_code == 303
    assert "<code>reports:read</code>" in (await admin_pages.get("/admin/users?q=bob")).text
    bad = await admin_pages.post(f"{page}/permissions", {"permissions": "<b>"}, csrf_from=page)
    assert "permission names are" in bad.text
    response = await admin_pages.post(f"{page}/delete", {}, csrf_from=page)
    assert response.status_code == 303
    assert (await admin_pages.get(page)).status_code == 404
    kinds = await event_types(server)
    assert "authz_change" in kinds
    assert "user_deleted" in kinds


async def test_users_are_paged(server: RunningServer, admin_pages: PageClient) -> None:
    for n in range(27):
        await server.bastion.container.user_service.register(
            username=f"user{n:02d}", email=f"u{n}@example.com", age=20, password=GOOD_PASSWORD
        )
    first = await admin_pages.get("/admin/users?q=user")
    assert "user24" in first.text
    assert "user25" not in first.text
    assert "after=user24" in first.text
    second = await admin_pages.get("/admin/users?q=user&after=user24")
    assert "user26" in second.text
    assert "user24<" not in second.text


async def test_events_filter_by_type_user_and_address_and_draw_a_chart(
    server: RunningServer, admin_pages: PageClient
) -> None:
    await register(admin_pages.http, "alice")
    await admin_pages.http.post(
        "/auth/token", data={"grant_type": "password", "username": "alice", "password": "x" * 20}
    )
    await server.bastion.container.events.flush()
    response = await admin_pages.get("/admin/events?type=authn_login_fail&user=alice&ip=127.0.0.1")
    assert response.status_code == 200
    assert response.text.count("<code>authn_login_fail</code>") == 1
    assert '<svg id="events-chart"' in response.text
    assert "authn_login_fail: <strong>1</strong>" in response.text
    none = await admin_pages.get("/admin/events?ip=10.9.9.9")
    assert "No events." in none.text
    bad = await admin_pages.get("/admin/events?type=nope&since=yesterday")
    assert "Unknown event type." in bad.text
    assert "Not a date and time." in bad.text


async def test_the_overview_counts_the_last_day(
    server: RunningServer, admin_pages: PageClient
) -> None:
    response = await admin_pages.get("/admin")
    assert '<svg id="overview-chart"' in response.text
    # The admin's own sign-in.
    assert "Sign-ins: <strong>1</strong>" in response.text


async def test_an_idle_session_expires(start_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await start_server(clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        pages = PageClient(http)
        await register(http, "alice")
        await pages.sign_in("alice")
        clock.advance(29 * 60)
        assert (await pages.get("/account")).status_code == 200
        clock.advance(29 * 60)
        assert (await pages.get("/account")).status_code == 200
        clock.advance(31 * 60)
        assert (await pages.get("/account")).status_code == 303


async def test_a_session_ends_at_its_absolute_limit(start_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await start_server(clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        pages = PageClient(http)
        await register(http, "alice")
        await pages.sign_in("alice")
        for _ in range(25):  # active every 29 minutes: never idle
            clock.advance(29 * 60)
            await pages.get("/account")
        assert (await pages.get("/account")).status_code == 303


async def test_a_password_change_through_the_api_ends_browser_sessions(
    server: RunningServer, pages: PageClient
) -> None:
    await register(pages.http, "alice")
    await pages.sign_in("alice")
    tokens = await login(pages.http, "alice")
    response = await pages.http.post(
        "/users/me/password",
        json={"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )
    assert response.status_code == 204
    assert (await pages.get("/account")).status_code == 303


async def test_pages_are_absent_when_web_is_off(start_server: ServerFactory) -> None:
    server = await start_server(web=False)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.get("/account/login")).status_code == 404
        assert (await http.get("/static/bastion/bastion.css")).status_code == 404


async def test_login_redirects_only_to_own_pages(server: RunningServer, pages: PageClient) -> None:
    await register(pages.http, "alice")
    for target, expected in [
        ("/admin/events", "/admin/events"),
        ("https://evil.example/", "/account"),
        ("//evil.example/account", "/account"),
        ("/account/../../x", "/account/../../x"),
    ]:
        response = await pages.post(
            "/account/login",
            {"username": "alice", "password": GOOD_PASSWORD, "next": target},
            csrf_from="/account/login",
        )
        assert response.headers["location"] == expected


async def test_page_sign_ins_spend_the_login_budget(start_server: ServerFactory) -> None:
    server = await start_server(login_rate_limit="2/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        pages = PageClient(http)
        for _ in range(2):
            response = await pages.post(
                "/account/login",
                {"username": "a", "password": "b" * 20},
                csrf_from="/account/login",
            )
            assert response.status_code == 200
        response = await pages.post(
            "/account/login", {"username": "a", "password": "b" * 20}, csrf_from="/account/login"
        )
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert "ratelimit-policy" in response.headers
    assert "excess_rate_limit_exceeded" in await event_types(server)
