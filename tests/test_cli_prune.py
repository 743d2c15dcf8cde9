"""``bastion prune``: the housekeeping on demand, saying what it removed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from bastion import Settings
from bastion.bootstrap import build
from bastion.storage.migrate import upgrade_sqlite
from bastion.storage.protocols import SecurityEvent
from bastion.storage.sql_events import SqlEventStore
from bastion.storage.sql_sessions import SqlSessionStore

BASTION = str(Path(sys.executable).with_name("bastion"))


async def _old_rows(data_dir: Path) -> None:
    container = build(Settings(_env_file=None, data_dir=data_dir))
    try:
        await upgrade_sqlite(container.engine)
        # Events from 1970: far past the 90 days of retention.
        await SqlEventStore(container.engine).add_many(
            [SecurityEvent(at=float(n), type="authz_fail", outcome="failure") for n in range(3)]
        )
        await SqlEventStore(container.engine).add_many(
            [SecurityEvent(at=container.clock.now(), type="authz_fail", outcome="failure")]
        )
        # A mark that expired in 1970.
        await SqlSessionStore(container.engine).revoke(["gone"], now=0.0, expires_at=100.0)
    finally:
        await container.stop()


def test_prune_removes_what_is_obsolete_and_says_what_per_kind(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    asyncio.run(_old_rows(data_dir))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["BASTION_DATA_DIR"] = str(data_dir)
    first = subprocess.run(
        [BASTION, "prune"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    again = subprocess.run(
        [BASTION, "prune"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "bastion: removed 0 refresh_tokens",
        "bastion: removed 0 sessions",
        "bastion: removed 1 revocations",
        "bastion: removed 3 events",
        "bastion: removed 0 mail",
        "bastion: removed 0 one-time tokens",
        "bastion: removed 0 browser sessions",
        "bastion: removed 0 mfa challenges",
    ]
    assert again.returncode == 0, again.stderr
    assert "bastion: removed 0 events" in again.stdout.splitlines()
