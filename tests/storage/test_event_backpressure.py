"""With the database down and the event queue full, recording an event waits
briefly, then drops and counts it: it never holds a request without bound
(issue 17 #9). The store is the real SQL one, its database unreachable."""

from __future__ import annotations

import asyncio

from bastion.services.events import EventRecorder
from bastion.storage.database import create_engine
from bastion.storage.sql_events import SqlEventStore
from tests.conftest import ManualClock
from tests.servers import free_port

#: A recording that hangs fails the test instead of hanging the run; not a
#: timing assertion (each record returns within the recorder's short wait).
HANG_GUARD = 10.0
RECORDED = 6
QUEUE = 2


async def test_a_full_queue_during_an_outage_drops_and_counts_instead_of_blocking() -> None:
    # Nothing listens on this port: every write fails as an outage would.
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/bastion")
    recorder = EventRecorder(
        SqlEventStore(engine), ManualClock(), queue_size=QUEUE, full_queue_wait=0.05
    )
    dropped: list[int] = []
    recorder.on_drop = dropped.append
    recorder.start()
    try:
        for n in range(RECORDED):
            await asyncio.wait_for(
                recorder.record("authz_fail", outcome="failure", username=f"user{n}"),
                HANG_GUARD,
            )
        assert recorder.depth + sum(dropped) == RECORDED
        assert sum(dropped) >= RECORDED - QUEUE - 1
        assert recorder.depth <= QUEUE + 1, "held: the queue and the batch being retried"
    finally:
        await asyncio.wait_for(recorder.stop(), HANG_GUARD)
        await engine.dispose()
