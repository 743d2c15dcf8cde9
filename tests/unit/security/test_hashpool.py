"""The bounded hash pool sheds load instead of queueing without end."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bastion.errors import Overloaded
from bastion.security.hashpool import HashPool


async def test_calls_beyond_workers_and_queue_are_refused_at_once() -> None:
    pool = HashPool(workers=1, max_waiting=2)
    release = threading.Event()
    try:
        admitted = [asyncio.create_task(pool.run(release.wait, 10)) for _ in range(3)]
        await asyncio.sleep(0)
        assert pool.in_flight == 3
        with pytest.raises(Overloaded) as refused:
            await pool.run(release.wait, 10)
        assert refused.value.retry_after >= 1
        release.set()
        assert await asyncio.gather(*admitted) == [True, True, True]
        assert pool.in_flight == 0
    finally:
        release.set()
        pool.close()


async def test_pool_admits_again_once_work_drains() -> None:
    pool = HashPool(workers=1, max_waiting=0)
    try:
        assert await pool.run(sum, [1, 2, 3]) == 6
        assert await pool.run(sum, [4]) == 4
    finally:
        pool.close()
