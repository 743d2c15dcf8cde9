"""What clients and operators are told at the edge (issue 10 #4 #5, issue 16 #2).

- an untrusted peer that sends proxy headers is reported once, with the remedy;
- every 429 carries ``Retry-After`` and the IETF RateLimit headers;
- every answer of ``POST /auth/token`` that is not a token is an RFC 6749
  §5.2 error object, 429 and 503 included.
"""

from __future__ import annotations

import json

import httpx
import pytest

from bastion.api.middleware.proxywarning import ProxyWarnings
from bastion.logs import configure_logging
from bastion.storage.protocols import EventQuery
from tests.conftest import GOOD_PASSWORD, ServerFactory, register
from tests.servers import free_port

WRONG = "definitely not the password"
RATELIMIT_HEADERS = ("retry-after", "ratelimit", "ratelimit-policy", "ratelimit-limit")


@pytest.fixture
def backend() -> str:
    """Edge answers do not depend on the database: SQLite suffices."""
    return "sqlite"


def _form(username: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


# -- proxy_misconfigured -------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        ("X-Forwarded-For", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9"),
        ("X-Real-IP", "203.0.113.9"),
    ],
)
async def test_proxy_headers_from_an_untrusted_peer_are_reported_once(
    start_server: ServerFactory, capsys: pytest.CaptureFixture[str], header: tuple[str, str]
) -> None:
    configure_logging()
    server = await start_server()
    capsys.readouterr()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for _ in range(5):
            assert (await client.get("/health", headers=dict([header]))).status_code == 200
    events = await server.bastion.container.events.query(EventQuery(type="proxy_misconfigured"))
    assert len(events) == 1
    [event] = events
    assert event.ip == "127.0.0.1"
    assert event.outcome == "warning"
    assert event.detail["header"] == header[0].lower()
    assert "BASTION_TRUSTED_PROXIES=127.0.0.1" in event.detail["remedy"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    warnings = [r for r in lines if r.get("event") == "proxy_misconfigured"]
    assert len(warnings) == 1
    assert warnings[0]["level"] == "warning"
    assert "BASTION_TRUSTED_PROXIES" in warnings[0]["remedy"]


async def test_a_trusted_proxy_is_not_reported(start_server: ServerFactory) -> None:
    server = await start_server(trusted_proxies="127.0.0.1")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await client.get("/health", headers={"X-Forwarded-For": "203.0.113.9"})
    events = await server.bastion.container.events.query(EventQuery(type="proxy_misconfigured"))
    assert events == []


async def test_requests_without_proxy_headers_are_not_reported(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await client.get("/health")
    events = await server.bastion.container.events.query(EventQuery(type="proxy_misconfigured"))
    assert events == []


def test_the_peers_remembered_are_bounded() -> None:
    warnings = ProxyWarnings(max_peers=3)
    fresh = [warnings.first_time(f"192.0.2.{n}") for n in range(10)]
    assert fresh == [True] * 10
    assert len(warnings) == 3
    assert warnings.first_time("192.0.2.9") is False


# -- every 429 speaks RateLimit; the token endpoint speaks RFC 6749 -------------------------


def _assert_rate_limit_headers(response: httpx.Response) -> None:
    assert response.status_code == 429
    for name in RATELIMIT_HEADERS:
        assert name in response.headers, name
    retry = int(response.headers["retry-after"])
    assert retry >= 1
    assert response.headers["ratelimit"].endswith(f";r=0;t={retry}")


def _assert_oauth_error(response: httpx.Response, code: str) -> None:
    body = response.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"]
    assert body["code"] == code
    assert "no-store" in response.headers["cache-control"]


async def test_a_login_throttle_429_is_an_oauth_error_with_ratelimit_headers(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "alice")
        for _ in range(10):
            response = await client.post("/auth/token", data=_form("alice", WRONG))
            if response.status_code == 429:
                break
        locked = await client.post("/auth/token", data=_form("alice", GOOD_PASSWORD))
    _assert_rate_limit_headers(locked)
    _assert_oauth_error(locked, "throttled")
    assert locked.headers["ratelimit-policy"].startswith('"login-throttle";q=1;w=')


async def test_a_login_rate_limit_429_is_an_oauth_error_with_ratelimit_headers(
    start_server: ServerFactory,
) -> None:
    server = await start_server(login_rate_limit="2/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for _ in range(2):
            await client.post("/auth/token", data=_form("nobody", WRONG))
        refused = await client.post("/auth/token", data=_form("nobody", WRONG))
    _assert_rate_limit_headers(refused)
    _assert_oauth_error(refused, "rate_limited")
    assert refused.headers["ratelimit-policy"] == '"login";q=2;w=60'


async def test_the_general_rate_limit_on_the_token_endpoint_is_an_oauth_error(
    start_server: ServerFactory,
) -> None:
    server = await start_server(rate_limit="1/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await client.get("/openapi.json")
        refused = await client.post("/auth/token", data=_form("nobody", WRONG))
    _assert_rate_limit_headers(refused)
    _assert_oauth_error(refused, "rate_limited")


async def test_a_limiter_outage_503_on_the_token_endpoint_is_an_oauth_error(
    start_server: ServerFactory,
) -> None:
    server = await start_server(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        refused = await client.post("/auth/token", data=_form("nobody", WRONG))
        registration = await client.post("/users", json={})
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    _assert_oauth_error(refused, "unavailable")
    assert registration.status_code == 503
    assert "error" not in registration.json(), "RFC 6749 bodies are for the token endpoint"
