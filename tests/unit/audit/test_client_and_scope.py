"""The polite client's budget, pace and origin; the scope check."""

from __future__ import annotations

import itertools

import httpx
import pytest

from bastion.audit.client import BudgetExhausted, Pace, PoliteClient
from bastion.audit.scope import ScopeError, ensure_in_scope, parse_target


class FakeTime:
    """A clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_pace_spaces_request_starts() -> None:
    """At 4/s, five starts take at least a second, none closer than 0.25 s."""
    time = FakeTime()
    pace = Pace(4.0, clock=time.clock, sleep=time.sleep)
    starts = []
    for _ in range(5):
        await pace.wait()
        starts.append(time.now)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= 0.25 - 1e-9 for gap in gaps)
    assert starts[-1] - starts[0] == pytest.approx(1.0)


async def test_budget_is_enforced_by_the_client() -> None:
    """The third request of a budget of two is refused before it is sent."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    client = PoliteClient(
        parse_target("http://127.0.0.1:9"),
        max_requests=2,
        rate=1000,
        transport=httpx.MockTransport(answer),
    )
    await client.request("GET", "/a")
    await client.request("GET", "/b")
    with pytest.raises(BudgetExhausted):
        await client.request("GET", "/c")
    assert [r.url.path for r in seen] == ["/a", "/b"]
    assert "bastion-audit" in seen[0].headers["user-agent"]
    with pytest.raises(ValueError, match="not a path"):
        await client.request("GET", "//elsewhere.example/x")
    await client.aclose()


def test_scope_accepts_loopback_and_private_refuses_public() -> None:
    """127.0.0.1, ::1, 10/8, 192.168/16 pass; a public address needs permission."""
    for url in ("http://127.0.0.1:8000", "http://[::1]/", "https://10.1.2.3", "http://192.168.0.9"):
        ensure_in_scope(parse_target(url), permitted=False)
    with pytest.raises(ScopeError, match="--i-have-permission"):
        ensure_in_scope(parse_target("https://8.8.8.8/api"), permitted=False)
    ensure_in_scope(parse_target("https://8.8.8.8/api"), permitted=True)


def test_urls_other_than_http_are_refused() -> None:
    """Only http(s) URLs, without credentials in them."""
    with pytest.raises(ScopeError):
        parse_target("ftp://127.0.0.1/")
    with pytest.raises(ScopeError, match="credentials"):
        parse_target("http://u:p@127.0.0.1/")
    target = parse_target("http://127.0.0.1:8000/api/")
    assert (target.origin, target.base_path) == ("http://127.0.0.1:8000", "/api")
