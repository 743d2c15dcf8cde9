"""Several processes starting at once on a fresh SQLite data directory: the
schema is created once, never raced (issue 17 #12: "table users already
exists" in one of the workers of ``bastion serve --workers 2``)."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.deploy.test_process import DEADLINE, bastion_serve, service_env, two_workers
from tests.servers import RestartableRedis

#: Processes started together in the synchronised test.
STARTERS = 4

#: Each starter imports Bastion, reports ready, waits for the go file, then
#: runs the app's startup (the lifespan that ``bastion serve`` workers run).
_STARTER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from pathlib import Path
    from bastion import Settings, create_app

    ready, go = Path(sys.argv[1]), Path(sys.argv[2])
    app = create_app(Settings(_env_file=None))
    ready.touch()
    while not go.exists():
        time.sleep(0.0005)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(main())
    """
)


def _schema_versions(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "bastion.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT version_num FROM alembic_version")]


def test_processes_starting_together_on_a_fresh_directory_all_start(tmp_path: Path) -> None:
    env = service_env(tmp_path)
    go = tmp_path / "go"
    logs = [tmp_path / f"starter{n}.log" for n in range(STARTERS)]
    with contextlib.ExitStack() as stack:
        starters = []
        for n, log in enumerate(logs):
            out = stack.enter_context(log.open("wb"))
            process = subprocess.Popen(
                [sys.executable, "-c", _STARTER, str(tmp_path / f"ready{n}"), str(go)],
                env=env,
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            stack.callback(_reap, process)
            starters.append(process)
        # Importing is slow on a loaded machine; this only guards against a hang.
        deadline = time.monotonic() + 3 * DEADLINE
        while not all((tmp_path / f"ready{n}").exists() for n in range(STARTERS)):
            assert time.monotonic() < deadline, "the starters never got ready"
            assert all(p.poll() is None for p in starters), "a starter died while importing"
            time.sleep(0.02)
        go.touch()
        codes = [process.wait(3 * DEADLINE) for process in starters]
    for code, log in zip(codes, logs, strict=True):
        output = log.read_text(errors="replace")
        assert code == 0, output
        assert "already exists" not in output, output
    assert len(_schema_versions(tmp_path / "data")) == 1


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


async def test_bastion_serve_with_two_workers_starts_on_a_fresh_sqlite_directory(
    tmp_path: Path, own_redis: RestartableRedis
) -> None:
    env = service_env(tmp_path, BASTION_REDIS_URL=own_redis.url)
    async with bastion_serve(tmp_path, env, "--workers", "2") as service:
        await two_workers(service)
        output = service.output()
    assert "Traceback" not in output, output
    assert "already exists" not in output, output
    assert len(_schema_versions(tmp_path / "data")) == 1
