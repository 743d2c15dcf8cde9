"""The batched shared limiter against a real Redis, with two limiter instances.

The general budget is counted locally and synchronised in batches
(``bastion.storage.limits_batched``); these check its stated over-admission
bound, that it saves the round trips it exists to save, that the login and
registration budgets stay exact, and that two app instances share it over HTTP.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from bastion.errors import Unavailable
from bastion.storage.limits_batched import (
    BatchedRedisRateLimitStore,
    burst_of,
    over_admission_bound,
)
from bastion.storage.protocols import RateRule
from tests.conftest import ServerFactory, SettingsFactory
from tests.servers import RedisServer

DEFAULT = RateRule("default", 100, 60)


@pytest.fixture
def backend() -> str:
    """Two app instances share state: the shared database."""
    return "postgres"


@pytest.fixture
async def two(redis: RedisServer) -> AsyncIterator[tuple[BatchedRedisRateLimitStore, ...]]:
    """Two limiter instances on one Redis, each with its own key prefix per test."""
    prefix = "t" + uuid.uuid4().hex[:8]
    stores = (
        BatchedRedisRateLimitStore(redis.url, key_prefix=prefix),
        BatchedRedisRateLimitStore(redis.url, key_prefix=prefix),
    )
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def _admitted(
    stores: tuple[BatchedRedisRateLimitStore, ...], rule: RateRule, hits: int, key: str
) -> int:
    import time

    admitted = 0
    for n in range(hits):
        decision = await stores[n % len(stores)].hit(rule, key, time.time())
        admitted += decision.allowed
    return admitted


async def test_two_instances_admit_the_limit_within_the_stated_bound_sequentially(
    two: tuple[BatchedRedisRateLimitStore, ...],
) -> None:
    admitted = await _admitted(two, DEFAULT, 300, "198.51.100.1")
    assert DEFAULT.limit <= admitted <= DEFAULT.limit + over_admission_bound(DEFAULT, 2)


async def test_two_instances_admit_the_limit_within_the_stated_bound_concurrently(
    two: tuple[BatchedRedisRateLimitStore, ...],
) -> None:
    import time

    async def client(store: BatchedRedisRateLimitStore) -> int:
        admitted = 0
        for _ in range(150):
            admitted += (await store.hit(DEFAULT, "198.51.100.2", time.time())).allowed
            await asyncio.sleep(0)
        return admitted

    results = await asyncio.gather(*(client(store) for store in two for _ in range(3)))
    admitted = sum(results)
    assert DEFAULT.limit <= admitted <= DEFAULT.limit + over_admission_bound(DEFAULT, 2)


async def test_the_hot_path_saves_round_trips(
    two: tuple[BatchedRedisRateLimitStore, ...],
) -> None:
    big = RateRule("default", 100_000, 60)
    hits = 2_000
    admitted = await _admitted(two[:1], big, hits, "198.51.100.3")
    assert admitted == hits
    assert two[0].round_trips <= hits // burst_of(big) + 10


async def test_synchronisation_shares_the_count(
    two: tuple[BatchedRedisRateLimitStore, ...],
) -> None:
    big = RateRule("default", 100_000, 60)
    await _admitted(two[:1], big, 50, "198.51.100.4")
    await two[0].sync()
    import time

    decision = await two[1].hit(big, "198.51.100.4", time.time())
    assert decision.remaining == big.limit - 51


async def test_fail_closed_budgets_stay_exact(two: tuple[BatchedRedisRateLimitStore, ...]) -> None:
    login = RateRule("login" + uuid.uuid4().hex[:6], 3, 60, fail_closed=True)
    assert await _admitted(two, login, 10, "198.51.100.5") == 3


@pytest.fixture
async def unreachable() -> AsyncIterator[BatchedRedisRateLimitStore]:
    """A limiter whose Redis port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = BatchedRedisRateLimitStore(f"redis://127.0.0.1:{port}/0")
    try:
        yield store
    finally:
        await store.close()


async def test_an_unreachable_redis_is_unavailable_not_an_error(
    unreachable: BatchedRedisRateLimitStore,
) -> None:
    import time

    with pytest.raises(Unavailable):
        await unreachable.hit(DEFAULT, "198.51.100.6", time.time())


async def test_concurrent_hits_of_a_stale_key_share_one_round_trip(
    two: tuple[BatchedRedisRateLimitStore, ...],
) -> None:
    """32 connections of one new client: one script call decides for all of
    them, not 32 at once."""
    import time

    big = RateRule("default", 100_000, 60)
    store = two[0]
    now = time.time()
    decisions = await asyncio.gather(*(store.hit(big, "198.51.100.7", now) for _ in range(32)))
    assert all(decision.allowed for decision in decisions)
    assert store.round_trips == 1


async def test_hits_waiting_on_an_unreachable_redis_all_fail_at_once(
    unreachable: BatchedRedisRateLimitStore,
) -> None:
    import time

    now = time.time()
    results = await asyncio.gather(
        *(unreachable.hit(DEFAULT, "198.51.100.8", now) for _ in range(8)), return_exceptions=True
    )
    assert all(isinstance(result, Unavailable) for result in results)
    # Only the first asked Redis; the others learnt its failure.
    assert unreachable.round_trips == 1


async def test_two_app_instances_share_the_general_budget_over_http(
    make_settings: SettingsFactory, start_server: ServerFactory, redis: RedisServer
) -> None:
    settings = await make_settings(redis_url=redis.url, rate_limit="10/minute")
    first = await start_server(settings)
    second = await start_server(settings)
    async with (
        httpx.AsyncClient(base_url=first.base_url) as a,
        httpx.AsyncClient(base_url=second.base_url) as b,
    ):
        statuses = [(await (a if n % 2 else b).get("/openapi.json")).status_code for n in range(14)]
    assert statuses == [200] * 10 + [429] * 4
