"""What the login throttle costs a login (issue 10), next to the login itself.

```sh
.venv/bin/python -m bench.throttle            # 2,000 throttle checks, 20 logins
.venv/bin/python -m bench.throttle --calls 200 --logins 5
```

Prints, in microseconds per login:

- ``throttle in process``: ``LoginThrottle.keys`` + ``reserve`` + ``success``
  (what a successful login does to the throttle) on the in-process store,
  each attempt a new account from one of 1,000 clients;
- ``throttle on Redis``: the same on ``RedisLoginThrottle`` against a
  throwaway ``redis-server`` on loopback (``tests.servers.redis_server``;
  skipped with the reason when it is not installed): two Lua scripts, i.e.
  two round trips;
- ``password verification``: one argon2id verification (OWASP minimum), the
  cost the throttle guards;
- ``password login``: ``AuthService.password_grant`` end to end on SQLite
  (user lookup, device token, throttle, verification, session, events),
  sequential, after one warm-up login.

Nothing is pinned; the figures are for comparison with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bastion.services.throttle import LoginThrottle
from bastion.storage.throttle_memory import MemoryLoginThrottle

PASSWORD = "correct horse battery staple"


async def _per_call_us(calls: int, step: Callable[[int], Awaitable[None]]) -> float:
    for n in range(min(50, calls)):
        await step(-n - 1)  # warm-up
    start = time.perf_counter()
    for n in range(calls):
        await step(n)
    return (time.perf_counter() - start) / calls * 1e6


def _throttle_step(throttle: LoginThrottle) -> Callable[[int], Awaitable[None]]:
    async def step(n: int) -> None:
        keys = throttle.keys(f"user{n}", f"10.0.{n % 1000 // 250}.{n % 250}")
        now = time.time()
        if await throttle.reserve(keys, now) == 0:
            await throttle.success(keys, now)

    return step


async def throttle_in_process(calls: int) -> float:
    """µs per login spent in the in-process throttle."""
    return await _per_call_us(calls, _throttle_step(LoginThrottle(MemoryLoginThrottle())))


async def throttle_on_redis(calls: int) -> float | str:
    """µs per login spent in the Redis throttle, or why it was not measured."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (scripts/test installs it)"
    from redis.asyncio import Redis
    from tests.servers import redis_server

    from bastion.storage.throttle_redis import RedisLoginThrottle

    with redis_server() as server:
        client = Redis.from_url(server.url)
        try:
            throttle = LoginThrottle(RedisLoginThrottle(client))
            return await _per_call_us(calls, _throttle_step(throttle))
        finally:
            await client.aclose()


def verification_us(count: int) -> float:
    """µs of one argon2id verification (median)."""
    from bastion.security.passwords import PasswordHasher

    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


async def login_us(logins: int) -> float:
    """µs of one whole password login on SQLite (median); the event log lines
    go to a throwaway buffer, as to a log collector."""
    from bastion import Settings
    from bastion.bootstrap import build

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        container = build(Settings(_env_file=None, data_dir=Path(tmp) / "data"))
        await container.start()
        try:
            await container.user_service.register(
                username="bench", email="bench@example.com", age=30, password=PASSWORD
            )
            service = container.auth_service
            await service.password_grant("bench", PASSWORD)
            times = []
            for _ in range(logins):
                start = time.perf_counter()
                await service.password_grant("bench", PASSWORD)
                times.append(time.perf_counter() - start)
        finally:
            await container.stop()
    return statistics.median(times) * 1e6


async def main(calls: int, logins: int) -> None:
    """Measure and print each figure."""
    memory = await throttle_in_process(calls)
    print(f"throttle in process:   {memory:10.1f} µs per login ({calls} logins)")
    redis = await throttle_on_redis(calls)
    if isinstance(redis, str):
        print(f"throttle on Redis:     skipped: {redis}")
    else:
        print(f"throttle on Redis:     {redis:10.1f} µs per login ({calls} logins)")
    verify = verification_us(max(5, logins // 2))
    print(f"password verification: {verify:10.1f} µs (argon2id, median)")
    login = await login_us(logins)
    print(f"password login:        {login:10.1f} µs (SQLite, whole grant, median of {logins})")
    print(f"throttle share of a login: in process {memory / login:.2%}", end="")
    print("" if isinstance(redis, str) else f", Redis {redis / login:.2%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--logins", type=int, default=20)
    options = parser.parse_args()
    asyncio.run(main(options.calls, options.logins))
