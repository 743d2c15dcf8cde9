"""Hostile text is rendered as text: an XSS probe in a user agent, in a
username search, and in a filter."""

from __future__ import annotations

from tests.conftest import RunningServer
from tests.web.conftest import PageClient

PROBE = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'"


async def test_a_hostile_user_agent_is_escaped_on_the_events_page(
    server: RunningServer, admin_pages: PageClient
) -> None:
    await admin_pages.http.post(
        "/auth/token",
        data={"grant_type": "password", "username": "ghost", "password": "x" * 20},
        headers={"User-Agent": PROBE},
    )
    await server.bastion.container.events.flush()
    page = await admin_pages.get("/admin/events?type=authn_login_fail")
    assert PROBE not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page.text
    assert "<script>alert" not in page.text


async def test_a_hostile_search_is_escaped(admin_pages: PageClient) -> None:
    page = await admin_pages.get("/admin/users", params={"q": PROBE})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;" in page.text
    events = await admin_pages.get("/admin/events", params={"ip": PROBE, "user": PROBE})
    assert "<script>alert" not in events.text
    assert "onerror=alert(2)>" not in events.text
