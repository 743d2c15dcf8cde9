"""Two instances behind nginx (deploy/nginx/bastion.conf) act as one service,
and the proxy decides who the client is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bastion.storage.protocols import EventQuery
from tests.conftest import bearer, login, register
from tests.deploy.conftest import NGINX_CONF, ClusterFactory, client_from
from tests.servers import free_port, nginx_server

#: Header values a client might send to pose as someone else.
SPOOFS = ("198.51.100.7", "127.0.0.1", "203.0.113.1, 127.0.0.9")
WRONG = "definitely not the password"
#: Below twice the per-account-and-client threshold (5): with counters kept
#: per instance, round robin would leave each instance at 4 failures and
#: never throttle.
LOGIN_ATTEMPTS = 8


class HeaderRecorder:
    """A minimal HTTP upstream that records the request headers it receives."""

    def __init__(self) -> None:
        self.requests: list[dict[str, list[str]]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read one request head, answer 200 and close."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            headers: dict[str, list[str]] = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers.setdefault(name.strip().lower(), []).append(value.strip())
            self.requests.append(headers)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def recorder_upstream() -> AsyncIterator[tuple[HeaderRecorder, str]]:
    """A header-recording upstream on 127.0.0.1; yields it and its ``host:port``."""
    recorder = HeaderRecorder()
    server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield recorder, f"127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_the_proxy_replaces_a_client_x_forwarded_for_with_the_peer_address(
    recorder_upstream: tuple[HeaderRecorder, str],
) -> None:
    recorder, upstream = recorder_upstream
    with nginx_server(NGINX_CONF, (upstream, upstream)) as proxy:
        async with client_from(proxy.base_url, "127.0.0.6") as client:
            for spoof in SPOOFS:
                response = await client.get(
                    "/anything", headers={"X-Forwarded-For": spoof, "X-Forwarded-Proto": "https"}
                )
                assert response.status_code == 200
    assert len(recorder.requests) == len(SPOOFS)
    for headers in recorder.requests:
        assert headers["x-forwarded-for"] == ["127.0.0.6"]
        assert headers["x-forwarded-proto"] == ["http"]


async def test_the_proxy_hides_its_version(
    recorder_upstream: tuple[HeaderRecorder, str],
) -> None:
    _, upstream = recorder_upstream
    with nginx_server(NGINX_CONF, (upstream, upstream)) as proxy:
        async with client_from(proxy.base_url, "127.0.0.6") as client:
            proxied = await client.get("/")
            # Over client_max_body_size: an error page of nginx's own.
            too_large = await client.post("/users", content=b"x" * (2 * 1024 * 1024))
    assert too_large.status_code == 413
    for response in (proxied, too_large):
        assert response.headers.get("server", "nginx") == "nginx"
        assert "nginx/" not in response.text


async def test_with_no_instance_reachable_the_proxy_answers_503_with_retry_after() -> None:
    down = (f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}")
    with nginx_server(NGINX_CONF, down) as proxy:
        async with client_from(proxy.base_url, "127.0.0.6") as client:
            response = await client.post("/auth/token", data={"grant_type": "password"})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.json() == {"detail": "service unavailable, retry shortly"}


async def test_requests_alternate_between_instances_and_share_one_rate_limit(
    start_cluster: ClusterFactory,
) -> None:
    cluster = await start_cluster(rate_limit="4/minute")
    before = cluster.served()
    async with cluster.client("127.0.0.2") as client:
        statuses = [(await client.get("/openapi.json")).status_code for _ in range(5)]
    after = cluster.served()
    assert statuses == [200, 200, 200, 200, 429]
    assert after[0] > before[0]
    assert after[1] > before[1], "round robin must reach both instances"


async def test_logout_through_the_proxy_is_rejected_by_whichever_instance_serves_next(
    start_cluster: ClusterFactory,
) -> None:
    cluster = await start_cluster()
    async with cluster.client("127.0.0.2") as client:
        await register(client, "alice")
        tokens = await login(client, "alice")
        valid = [(await client.get("/protected", headers=bearer(tokens))).status_code]
        valid.append((await client.get("/protected", headers=bearer(tokens))).status_code)
        assert (await client.post("/auth/logout", headers=bearer(tokens))).status_code == 204
        before = cluster.served()
        rejected = [await client.get("/protected", headers=bearer(tokens)) for _ in range(4)]
        after = cluster.served()
    assert valid == [200, 200]
    assert [response.status_code for response in rejected] == [401] * 4
    assert all('error="invalid_token"' in r.headers["www-authenticate"] for r in rejected)
    assert after[0] - before[0] >= 1
    assert after[1] - before[1] >= 1, "both instances must have refused the token"


async def test_failed_logins_on_both_instances_add_up_to_one_throttle(
    start_cluster: ClusterFactory,
) -> None:
    cluster = await start_cluster()
    form = {"grant_type": "password", "username": "carol", "password": WRONG}
    async with cluster.client("127.0.0.2") as client:
        await register(client, "carol")
        before = cluster.served()
        statuses: list[int] = []
        for _ in range(LOGIN_ATTEMPTS):
            response = await client.post("/auth/token", data=form)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["code"] == "throttled"
                break
        after = cluster.served()
    # The fifth consecutive failure locks the account for this client for a
    # second, then two, four...: one of the next attempts meets the lock.
    assert statuses[:5] == [400] * 5
    assert statuses[-1] == 429
    assert after[0] - before[0] >= 2
    assert after[1] - before[1] >= 2


async def test_distinct_client_addresses_get_distinct_budgets_through_the_proxy(
    start_cluster: ClusterFactory,
) -> None:
    cluster = await start_cluster(rate_limit="3/minute")
    async with cluster.client("127.0.0.2") as first, cluster.client("127.0.0.3") as second:
        exhausted = [(await first.get("/openapi.json")).status_code for _ in range(4)]
        fresh = [(await second.get("/openapi.json")).status_code for _ in range(3)]
        still_refused = (await first.get("/openapi.json")).status_code
    assert exhausted == [200, 200, 200, 429]
    assert fresh == [200, 200, 200]
    assert still_refused == 429


async def test_a_spoofed_x_forwarded_for_neither_changes_the_client_nor_its_budget(
    start_cluster: ClusterFactory,
) -> None:
    cluster = await start_cluster(rate_limit="3/minute")
    async with cluster.client("127.0.0.4") as client:
        statuses = [
            (await client.get("/openapi.json", headers={"X-Forwarded-For": spoof})).status_code
            for spoof in (*SPOOFS, "192.0.2.44")
        ]
    assert statuses == [200, 200, 200, 429]
    for instance in cluster.instances:
        await instance.bastion.container.events.flush()
    events = await cluster.instances[0].bastion.container.events.query(
        EventQuery(type="excess_rate_limit_exceeded")
    )
    assert [event.ip for event in events] == ["127.0.0.4"]


async def test_login_through_the_proxy_records_the_real_client_address(
    start_cluster: ClusterFactory,
) -> None:
    cluster = await start_cluster()
    async with cluster.client("127.0.0.5") as client:
        await register(client, "alice", password="correct horse battery staple")
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": "not the password"},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
    assert response.status_code == 400
    for instance in cluster.instances:
        await instance.bastion.container.events.flush()
    events = await cluster.instances[1].bastion.container.events.query(
        EventQuery(type="authn_login_fail")
    )
    assert [(event.username, event.ip) for event in events] == [("alice", "127.0.0.5")]
