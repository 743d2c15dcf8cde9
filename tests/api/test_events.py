"""Security events over HTTP: each type of SPEC after its action, the event
shape, and ``GET /events`` (order, filters, limits, pagination, access)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from bastion.storage.protocols import EventQuery
from bastion.types import RequestContext
from tests.conftest import (
    GOOD_PASSWORD,
    ManualClock,
    RunningServer,
    ServerFactory,
    bearer,
    login,
    make_admin,
    register,
)

WRONG = "definitely not the password"
NEW_PASSWORD = "a brand new passphrase for events"
EVENT_FIELDS = {
    "id",
    "at",
    "type",
    "outcome",
    "user_id",
    "username",
    "ip",
    "user_agent",
    "request_id",
    "detail",
}
#: Seeded events use user ids far beyond any registered user's.
_seed_ids = iter(range(10**12, 10**13))

Json = dict[str, Any]


def fresh_name() -> str:
    """A username no other test of the module uses."""
    return f"u{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
async def admin(shared_server: RunningServer) -> dict[str, str]:
    """The Authorization header of an admin of ``shared_server``."""
    await make_admin(shared_server, "events_admin")
    async with httpx.AsyncClient(base_url=shared_server.base_url) as http:
        return bearer(await login(http, "events_admin"))


@pytest.fixture
async def client(shared_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """This module's tests share one server per backend."""
    return shared_client


async def list_events(
    client: httpx.AsyncClient, admin: dict[str, str], **params: Any
) -> list[Json]:
    response = await client.get("/events", params=params, headers=admin)
    assert response.status_code == 200, response.text
    events: list[Json] = response.json()["events"]
    return events


async def event_of(
    client: httpx.AsyncClient, admin: dict[str, str], action: httpx.Response, type_: str
) -> Json:
    """The one event of ``type_`` recorded while answering ``action``."""
    request_id = action.headers["x-request-id"]
    found = [
        event
        for event in await list_events(client, admin, type=type_, limit=200)
        if event["request_id"] == request_id
    ]
    assert len(found) == 1, found
    return found[0]


async def post_user(client: httpx.AsyncClient, username: str) -> httpx.Response:
    return await client.post(
        "/users",
        json={
            "username": username,
            "email": f"{username}@example.com",
            "age": 30,
            "password": GOOD_PASSWORD,
        },
    )


async def password_grant(
    client: httpx.AsyncClient, username: str, password: str = GOOD_PASSWORD
) -> httpx.Response:
    return await client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )


async def refresh_grant(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def signed_in(client: httpx.AsyncClient) -> tuple[Json, Json]:
    """A new user and its token response."""
    name = fresh_name()
    user = await register(client, name)
    return user, await login(client, name)


async def seed(server: RunningServer, count: int) -> int:
    """Record ``count`` events of a user id of their own; returns the id."""
    user_id = next(_seed_ids)
    for n in range(count):
        await server.bastion.container.events.record(
            "authz_fail", outcome="failure", user_id=user_id, seq=n
        )
    return user_id


async def admin_of(server: RunningServer, client: httpx.AsyncClient) -> dict[str, str]:
    await make_admin(server)
    return bearer(await login(client, "root"))


# -- one test per event type -------------------------------------------------------


async def test_registration_records_user_created(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    name = fresh_name()
    response = await post_user(client, name)
    assert response.status_code == 201
    event = await event_of(client, admin, response, "user_created")
    assert (event["outcome"], event["user_id"], event["username"]) == (
        "success",
        response.json()["id"],
        name,
    )


async def test_deletion_records_user_deleted(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user, tokens = await signed_in(client)
    response = await client.delete(f"/users/{user['id']}", headers=bearer(tokens))
    assert response.status_code == 204
    event = await event_of(client, admin, response, "user_deleted")
    assert (event["outcome"], event["user_id"]) == ("success", user["id"])
    assert event["detail"]["actor"] == user["id"]


async def test_login_records_authn_login_success(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    name = fresh_name()
    user = await register(client, name)
    response = await password_grant(client, name.upper())
    assert response.status_code == 200
    event = await event_of(client, admin, response, "authn_login_success")
    assert (event["outcome"], event["user_id"], event["username"]) == ("success", user["id"], name)


async def test_wrong_password_records_authn_login_fail_with_the_user(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    name = fresh_name()
    user = await register(client, name)
    response = await password_grant(client, name, WRONG)
    assert response.status_code == 400
    event = await event_of(client, admin, response, "authn_login_fail")
    assert (event["outcome"], event["user_id"], event["username"]) == ("failure", user["id"], name)


async def test_unknown_user_records_authn_login_fail_with_the_name_and_no_user_id(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    name = fresh_name()
    response = await password_grant(client, name, WRONG)
    assert response.status_code == 400
    event = await event_of(client, admin, response, "authn_login_fail")
    assert (event["outcome"], event["user_id"], event["username"]) == ("failure", None, name)


async def test_login_while_throttled_records_authn_login_lock(
    start_server: ServerFactory,
) -> None:
    # The clock stands still, so the lock cannot lapse between the attempts.
    server = await start_server(clock=ManualClock())
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        admin = await admin_of(server, client)
        await register(client, "victim")
        failures = [(await password_grant(client, "victim", WRONG)).status_code for _ in range(5)]
        locked = await password_grant(client, "victim", GOOD_PASSWORD)
        assert failures == [400] * 5
        assert locked.status_code == 429
        event = await event_of(client, admin, locked, "authn_login_lock")
    assert (event["outcome"], event["username"]) == ("failure", "victim")
    assert event["detail"]["retry_after"] > 0


async def test_refresh_records_authn_token_created(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user, tokens = await signed_in(client)
    response = await refresh_grant(client, tokens["refresh_token"])
    assert response.status_code == 200
    event = await event_of(client, admin, response, "authn_token_created")
    assert (event["outcome"], event["user_id"], event["username"]) == (
        "success",
        user["id"],
        user["username"],
    )


async def test_reuse_of_a_spent_refresh_token_records_authn_token_reuse(
    start_server: ServerFactory,
) -> None:
    server = await start_server(refresh_reuse_interval=0)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        admin = await admin_of(server, client)
        user, tokens = await signed_in(client)
        assert (await refresh_grant(client, tokens["refresh_token"])).status_code == 200
        reused = await refresh_grant(client, tokens["refresh_token"])
        assert reused.status_code == 400
        event = await event_of(client, admin, reused, "authn_token_reuse")
    assert (event["outcome"], event["user_id"]) == ("failure", user["id"])


async def test_logout_records_authn_token_revoked(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user, tokens = await signed_in(client)
    response = await client.post("/auth/logout", headers=bearer(tokens))
    assert response.status_code == 204
    event = await event_of(client, admin, response, "authn_token_revoked")
    assert (event["outcome"], event["user_id"]) == ("success", user["id"])


async def test_password_change_records_authn_password_change(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user, tokens = await signed_in(client)
    response = await client.post(
        "/users/me/password",
        json={"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )
    assert response.status_code == 204
    event = await event_of(client, admin, response, "authn_password_change")
    assert (event["outcome"], event["user_id"], event["username"]) == (
        "success",
        user["id"],
        user["username"],
    )


async def test_wrong_current_password_records_a_failed_authn_password_change(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user, tokens = await signed_in(client)
    response = await client.post(
        "/users/me/password",
        json={"current_password": WRONG + " and more", "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )
    assert response.status_code == 400
    event = await event_of(client, admin, response, "authn_password_change")
    assert (event["outcome"], event["user_id"]) == ("failure", user["id"])


async def test_permission_change_records_authz_change(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user, _ = await signed_in(client)
    response = await client.put(
        f"/users/{user['id']}/permissions",
        json={"permissions": ["reports:read"]},
        headers=admin,
    )
    assert response.status_code == 200
    event = await event_of(client, admin, response, "authz_change")
    assert (event["outcome"], event["user_id"], event["username"]) == (
        "success",
        user["id"],
        user["username"],
    )
    assert event["detail"]["permissions"] == ["reports:read"]
    assert isinstance(event["detail"]["actor"], int)
    assert event["detail"]["actor"] != user["id"]


async def test_non_admin_reading_events_records_authz_fail(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user, tokens = await signed_in(client)
    response = await client.get("/events", headers=bearer(tokens))
    assert response.status_code == 403
    event = await event_of(client, admin, response, "authz_fail")
    assert (event["outcome"], event["user_id"]) == ("failure", user["id"])
    assert event["detail"]["permission"] == "admin"


async def test_non_admin_changing_permissions_records_authz_fail(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user, tokens = await signed_in(client)
    response = await client.put(
        f"/users/{user['id']}/permissions", json={"permissions": ["admin"]}, headers=bearer(tokens)
    )
    assert response.status_code == 403
    event = await event_of(client, admin, response, "authz_fail")
    assert (event["outcome"], event["user_id"]) == ("failure", user["id"])


async def test_rate_limit_refusal_records_excess_rate_limit_exceeded(
    start_server: ServerFactory,
) -> None:
    server = await start_server(rate_limit="2/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        statuses = [(await client.get("/openapi.json")).status_code for _ in range(2)]
        refused = await client.get("/openapi.json", headers={"User-Agent": "flood/1.0"})
    assert statuses == [200, 200]
    assert refused.status_code == 429
    events = await server.bastion.container.events.query(
        EventQuery(type="excess_rate_limit_exceeded")
    )
    assert len(events) == 1
    event = events[0]
    assert (event.outcome, event.ip, event.user_agent) == ("failure", "127.0.0.1", "flood/1.0")
    assert event.request_id == refused.headers["x-request-id"]
    assert event.detail["rule"] == "default"


async def test_a_nul_in_a_login_name_is_stored_and_later_events_still_are(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # PostgreSQL text cannot hold U+0000: an event carrying one must neither be
    # lost silently with a 500 nor block the events recorded after it.
    name = "nul\x00" + fresh_name()
    response = await password_grant(client, name, WRONG)
    assert response.status_code == 400
    event = await event_of(client, admin, response, "authn_login_fail")
    assert event["username"] == name.replace("\x00", "\ufffd")
    later = await post_user(client, fresh_name())
    assert later.status_code == 201
    assert (await event_of(client, admin, later, "user_created"))["user_id"] == later.json()["id"]


# -- the shape of an event ---------------------------------------------------------------


async def test_event_has_exactly_the_documented_fields(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    name = fresh_name()
    response = await client.post(
        "/users",
        json={
            "username": name,
            "email": f"{name}@example.com",
            "age": 30,
            "password": GOOD_PASSWORD,
        },
        headers={"User-Agent": "EventShape/2.1 (test)"},
    )
    assert response.status_code == 201
    event = await event_of(client, admin, response, "user_created")
    assert set(event) == EVENT_FIELDS
    assert isinstance(event["id"], int)
    assert event["ip"] == "127.0.0.1"
    assert event["user_agent"] == "EventShape/2.1 (test)"
    assert event["request_id"] == response.headers["x-request-id"]
    assert event["detail"] == {}


async def test_event_time_is_iso_8601_utc(start_server: ServerFactory) -> None:
    clock = ManualClock(1_700_000_000.25)
    server = await start_server(clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        admin = await admin_of(server, client)
        [event] = await list_events(client, admin, type="authn_login_success")
    assert event["at"].endswith(("Z", "+00:00"))
    at = datetime.fromisoformat(event["at"])
    assert at.utcoffset() == timedelta(0)
    assert at == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)


# -- GET /events ----------------------------------------------------------------------


async def test_events_are_newest_first(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    user, tokens = await signed_in(client)
    assert (await client.post("/auth/logout", headers=bearer(tokens))).status_code == 204
    events = await list_events(client, admin, user_id=user["id"])
    assert [event["type"] for event in events] == [
        "authn_token_revoked",
        "authn_login_success",
        "user_created",
    ]
    everything = await list_events(client, admin, limit=200)
    ids = [event["id"] for event in everything]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)


async def test_events_filter_by_type(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await signed_in(client)
    events = await list_events(client, admin, type="authn_login_success", limit=200)
    assert events
    assert {event["type"] for event in events} == {"authn_login_success"}


async def test_events_filter_by_user_id(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    user, _ = await signed_in(client)
    await signed_in(client)
    events = await list_events(client, admin, user_id=user["id"])
    assert [event["type"] for event in events] == ["authn_login_success", "user_created"]
    assert {event["user_id"] for event in events} == {user["id"]}


async def test_events_filter_by_since_and_until(start_server: ServerFactory) -> None:
    start = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    clock = ManualClock(start.timestamp())
    server = await start_server(clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        admin = await admin_of(server, client)
        for name in ("early", "middle", "late"):
            await server.bastion.container.events.record("user_created", username=name)
            clock.advance(100)

        async def created(**params: str) -> list[str]:
            events = await list_events(client, admin, type="user_created", **params)
            return [event["username"] for event in events]

        halfway = start + timedelta(seconds=50)
        assert await created(since=halfway.isoformat()) == ["late", "middle"]
        assert await created(until=(start + timedelta(seconds=150)).isoformat()) == [
            "middle",
            "early",
            "root",
        ]
        assert await created(
            since=halfway.isoformat(), until=(start + timedelta(seconds=150)).isoformat()
        ) == ["middle"]
        # Any offset names the same instant.
        east = halfway.astimezone(timezone(timedelta(hours=2)))
        assert await created(since=east.isoformat()) == ["late", "middle"]
        assert await created(since="2024-03-01T12:00:50Z") == ["late", "middle"]


@pytest.mark.parametrize("limit", [0, 201, -1])
async def test_limit_out_of_range_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], limit: int
) -> None:
    response = await client.get("/events", params={"limit": limit}, headers=admin)
    assert response.status_code == 422


async def test_limit_bounds_are_inclusive(
    shared_server: RunningServer, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user_id = await seed(shared_server, 3)
    assert len(await list_events(client, admin, user_id=user_id, limit=1)) == 1
    assert len(await list_events(client, admin, user_id=user_id, limit=200)) == 3


async def test_limit_defaults_to_50(
    shared_server: RunningServer, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user_id = await seed(shared_server, 55)
    response = await client.get("/events", params={"user_id": user_id}, headers=admin)
    assert response.status_code == 200
    assert len(response.json()["events"]) == 50
    assert response.json()["next_cursor"] is not None


async def test_cursor_pages_cover_everything_once(
    shared_server: RunningServer, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user_id = await seed(shared_server, 25)
    pages: list[list[int]] = []
    cursors: list[str | None] = []
    params: dict[str, Any] = {"user_id": user_id, "limit": 10}
    while True:
        response = await client.get("/events", params=params, headers=admin)
        assert response.status_code == 200
        body = response.json()
        pages.append([event["id"] for event in body["events"]])
        cursors.append(body["next_cursor"])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
        assert len(pages) < 10
    assert [len(page) for page in pages] == [10, 10, 5]
    assert cursors[-1] is None
    flat = [event_id for page in pages for event_id in page]
    assert flat == sorted(flat, reverse=True)
    assert len(set(flat)) == 25
    seqs = {
        event["detail"]["seq"]
        for event in await list_events(client, admin, user_id=user_id, limit=200)
    }
    assert seqs == set(range(25))


async def test_an_exactly_full_last_page_has_no_cursor(
    shared_server: RunningServer, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user_id = await seed(shared_server, 4)
    response = await client.get("/events", params={"user_id": user_id, "limit": 4}, headers=admin)
    assert len(response.json()["events"]) == 4
    assert response.json()["next_cursor"] is None


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        _b64("x12"),
        _b64("e-5"),
        _b64("e"),
        _b64("e" + "9" * 30),
        _b64("e" + str(2**63)),
        "\u00e912",
    ],
    ids=["garbage", "wrong-prefix", "negative", "empty-id", "overflow", "just-over-int64", "utf8"],
)
async def test_a_bad_cursor_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], cursor: str
) -> None:
    response = await client.get("/events", params={"cursor": cursor}, headers=admin)
    assert response.status_code == 422, response.text


async def test_an_unknown_type_is_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get("/events", params={"type": "login"}, headers=admin)
    assert response.status_code == 422


@pytest.mark.parametrize("name", ["since", "until"])
async def test_a_malformed_time_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], name: str
) -> None:
    response = await client.get("/events", params={name: "yesterday"}, headers=admin)
    assert response.status_code == 422


async def test_non_admin_gets_403(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_in(client)
    response = await client.get("/events", headers=bearer(tokens))
    assert response.status_code == 403
    assert "events" not in response.json()


async def test_no_token_gets_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/events")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_events_recorded_by_the_service_layer_carry_their_context(
    shared_server: RunningServer, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    user_id = next(_seed_ids)
    context = RequestContext(ip="203.0.113.7", user_agent="cli/1", request_id="req-42")
    await shared_server.bastion.container.events.record(
        "authz_change", context=context, user_id=user_id, username="someone", actor=1
    )
    [event] = await list_events(client, admin, user_id=user_id)
    assert (event["ip"], event["user_agent"], event["request_id"]) == (
        "203.0.113.7",
        "cli/1",
        "req-42",
    )
    assert event["detail"] == {"actor": 1}
