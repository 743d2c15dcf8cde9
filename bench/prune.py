"""Housekeeping cost on SQLite: how fast ``bastion prune`` removes a backlog,
and how long one batch (one write transaction) holds the database.

    .venv/bin/python -m bench.prune [--events 100000]

Prints the figures; not part of ``bench.run`` (it measures no HTTP server).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bastion import Settings
from bastion.bootstrap import build
from bastion.services.housekeeping import BATCH_SIZE
from bastion.storage.migrate import upgrade_sqlite
from bastion.storage.protocols import SecurityEvent
from bastion.storage.sql_events import SqlEventStore
from bastion.storage.sql_housekeeping import SqlEventPruner


async def measure(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        container = build(Settings(_env_file=None, data_dir=Path(tmp) / "data"))
        try:
            await upgrade_sqlite(container.engine)
            store = SqlEventStore(container.engine)
            old = SecurityEvent(at=0.0, type="authz_fail", outcome="failure", ip="192.0.2.1")
            for start in range(0, count, 5000):
                await store.add_many([old] * min(5000, count - start))
            pruner = SqlEventPruner(container.engine, retention_seconds=90 * 86_400)
            batches: list[float] = []
            began = time.perf_counter()
            removed = 0
            while True:
                t0 = time.perf_counter()
                n = await pruner.prune(time.time(), BATCH_SIZE)
                batches.append(time.perf_counter() - t0)
                removed += n
                if n < BATCH_SIZE:
                    break
            total = time.perf_counter() - began
        finally:
            await container.stop()
    batches.sort()
    print(f"events removed: {removed} in {total:.2f} s ({removed / total:,.0f} rows/s)")
    print(
        f"one batch of {BATCH_SIZE}: median {batches[len(batches) // 2] * 1000:.1f} ms, "
        f"max {batches[-1] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    asyncio.run(measure(parser.parse_args().events))


if __name__ == "__main__":
    main()
