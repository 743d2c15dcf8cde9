"""Abuse protection over HTTP: rate limits, client identity, login throttling."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import GOOD_PASSWORD, ManualClock, ServerFactory, register

WRONG = "definitely not the password"


async def _token(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )


async def test_the_101st_request_in_a_minute_is_refused(start_server: ServerFactory) -> None:
    server = await start_server(rate_limit="100/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        statuses = [(await client.get("/openapi.json")).status_code for _ in range(100)]
        refused = await client.get("/openapi.json")
    assert statuses == [200] * 100
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-policy"] == '"default";q=100;w=60'
    assert refused.headers["ratelimit"].startswith('"default";r=0;t=')
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert refused.json() == {"detail": "rate limit exceeded", "code": "rate_limited"}


async def test_probes_are_not_rate_limited(start_server: ServerFactory) -> None:
    server = await start_server(rate_limit="3/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        statuses = {(await client.get("/health")).status_code for _ in range(10)}
        statuses |= {(await client.get("/ready")).status_code for _ in range(10)}
    assert statuses == {200}


async def test_spoofed_forwarded_for_from_untrusted_peer_changes_nothing(
    start_server: ServerFactory,
) -> None:
    server = await start_server(rate_limit="5/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        statuses = [
            (
                await client.get("/openapi.json", headers={"X-Forwarded-For": f"203.0.113.{n}"})
            ).status_code
            for n in range(6)
        ]
    assert statuses == [200] * 5 + [429]


async def test_trusted_proxy_forwarded_for_gives_each_client_its_budget(
    start_server: ServerFactory,
) -> None:
    server = await start_server(rate_limit="2/minute", trusted_proxies="127.0.0.1")
    async with httpx.AsyncClient(base_url=server.base_url) as client:

        async def as_client(address: str) -> int:
            headers = {"X-Forwarded-For": f"198.51.100.9, {address}"}
            return (await client.get("/openapi.json", headers=headers)).status_code

        first = [await as_client("203.0.113.1") for _ in range(3)]
        second = [await as_client("203.0.113.2") for _ in range(2)]
    assert first == [200, 200, 429]
    assert second == [200, 200]


async def test_ipv6_clients_share_a_budget_per_64(start_server: ServerFactory) -> None:
    server = await start_server(rate_limit="2/minute", trusted_proxies="127.0.0.1")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        statuses = [
            (
                await client.get("/openapi.json", headers={"X-Forwarded-For": f"2001:db8::{n}"})
            ).status_code
            for n in range(1, 4)
        ]
    assert statuses == [200, 200, 429]


async def test_login_rate_limit_applies_to_the_token_endpoint(start_server: ServerFactory) -> None:
    server = await start_server(login_rate_limit="3/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        statuses = [(await _token(client, f"nobody{n}", WRONG)).status_code for n in range(4)]
        other_route = await client.get("/health")
    assert statuses == [400, 400, 400, 429]
    assert other_route.status_code == 200


async def test_register_rate_limit_applies_to_registration(start_server: ServerFactory) -> None:
    server = await start_server(register_rate_limit="2/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        statuses = [
            (await client.post("/users", json={"username": f"u{n}xx"})).status_code
            for n in range(3)
        ]
    assert statuses == [422, 422, 429]


async def test_rate_limit_refusal_is_a_security_event(start_server: ServerFactory) -> None:
    server = await start_server(rate_limit="1/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await client.get("/openapi.json")
        await client.get("/openapi.json")
    from bastion.storage.protocols import EventQuery

    events = await server.bastion.container.events.query(
        EventQuery(type="excess_rate_limit_exceeded")
    )
    assert len(events) == 1
    assert events[0].ip == "127.0.0.1"
    assert events[0].detail["rule"] == "default"


async def test_failed_logins_throttle_even_the_right_password(start_server: ServerFactory) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "alice")
        failures = [(await _token(client, "alice", WRONG)).status_code for _ in range(5)]
        locked = await _token(client, "alice", GOOD_PASSWORD)
    assert failures == [400] * 5
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= 60


async def test_case_variants_share_one_failure_counter(start_server: ServerFactory) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "alice")
        for name in ("alice", "ALICE", "Alice", "aLiCe", "alicE"):
            assert (await _token(client, name, WRONG)).status_code == 400
        locked = await _token(client, "alice", GOOD_PASSWORD)
    assert locked.status_code == 429


async def test_unknown_usernames_are_throttled_like_known_ones(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "alice")
        known = [(await _token(client, "alice", WRONG)).status_code for _ in range(6)]
        unknown = [(await _token(client, "nobody", WRONG)).status_code for _ in range(6)]
    assert known == unknown == [400] * 5 + [429]


async def test_throttle_lifts_after_the_delay_and_success_resets_it(
    start_server: ServerFactory,
) -> None:
    clock = ManualClock()
    server = await start_server(clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "alice")
        for _ in range(5):
            await _token(client, "alice", WRONG)
        assert (await _token(client, "alice", GOOD_PASSWORD)).status_code == 429
        clock.advance(61)
        assert (await _token(client, "alice", GOOD_PASSWORD)).status_code == 200
        # Reset: four new failures do not lock.
        statuses = [(await _token(client, "alice", WRONG)).status_code for _ in range(4)]
        assert statuses == [400] * 4
        assert (await _token(client, "alice", GOOD_PASSWORD)).status_code == 200


async def test_delays_never_exceed_a_minute(start_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await start_server(clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "alice")
        waits = []
        for _ in range(15):
            response = await _token(client, "alice", WRONG)
            if response.status_code == 429:
                waits.append(int(response.headers["retry-after"]))
                clock.advance(int(response.headers["retry-after"]))
                response = await _token(client, "alice", WRONG)
            assert response.status_code == 400
    assert waits
    assert max(waits) <= 60
    assert waits == sorted(waits)


async def test_throttle_is_a_security_event(start_server: ServerFactory) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for _ in range(6):
            await _token(client, "mallory", WRONG)
    from bastion.storage.protocols import EventQuery

    events = await server.bastion.container.events.query(EventQuery(type="authn_login_lock"))
    assert [event.username for event in events] == ["mallory"]


async def test_health_keeps_answering_during_a_login_flood(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    async with httpx.AsyncClient(
        base_url=server.base_url, limits=httpx.Limits(max_connections=400), timeout=60
    ) as client:
        await register(client, "alice")
        flood = [_token(client, f"user{n}", WRONG) for n in range(300)]
        results = await asyncio.gather(*flood, client.get("/health"))
    health = results[-1]
    statuses = {response.status_code for response in results[:-1]}
    assert health.status_code == 200
    assert statuses <= {400, 429, 503}
    shed = [r for r in results[:-1] if r.status_code in (429, 503)]
    assert all(r.headers.get("retry-after") for r in shed)


async def test_hsts_only_when_a_trusted_proxy_says_https(start_server: ServerFactory) -> None:
    trusted = await start_server(trusted_proxies="127.0.0.1")
    untrusted = await start_server()
    https = {"X-Forwarded-Proto": "https"}
    async with httpx.AsyncClient(base_url=trusted.base_url) as client:
        via_proxy = await client.get("/health", headers=https)
        plain = await client.get("/health")
    async with httpx.AsyncClient(base_url=untrusted.base_url) as client:
        spoofed = await client.get("/health", headers=https)
    assert via_proxy.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in plain.headers
    assert "strict-transport-security" not in spoofed.headers
