"""``bastion serve`` as a real process: workers, signals, crashes and outages.

Each test runs the installed ``bastion`` script on a free 127.0.0.1 port,
configured through ``BASTION_*`` variables, with its data directory in the
test's temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import GOOD_PASSWORD, bearer, fresh_database
from tests.servers import PostgresServer, RestartableRedis, free_port

BASTION = str(Path(sys.executable).with_name("bastion"))
#: Every wait on a process or port gives up after this many seconds.
DEADLINE = 60.0
#: Registrations sent at once in the crash test, and how many must have been
#: acknowledged when the process is killed.
FLOOD = 60
KILL_AFTER = 10


def service_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The environment of a ``bastion serve``: no BASTION_* of the machine, a
    data directory in ``tmp_path``, generous limits unless overridden."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update(
        BASTION_DATA_DIR=str(tmp_path / "data"),
        BASTION_RATE_LIMIT="100000/minute",
        BASTION_LOGIN_RATE_LIMIT="100000/minute",
        BASTION_REGISTER_RATE_LIMIT="100000/minute",
        PYTHONUNBUFFERED="1",
    )
    env.update(variables)
    return env


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def worker_pids(master: int) -> list[int]:
    """uvicorn's worker processes (multiprocessing children) of ``master``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fields is not None and int(fields[1]) == master and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


async def _until(condition: Callable[[], bool], what: str, seconds: float = DEADLINE) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


def fresh_connections(base_url: str) -> httpx.AsyncClient:
    """A client that opens a new connection for every request, so the kernel
    hands each one to whichever worker accepts it."""
    return httpx.AsyncClient(
        base_url=base_url, limits=httpx.Limits(max_keepalive_connections=0), timeout=30
    )


def registration(name: str) -> dict[str, Any]:
    """A valid registration body for ``name``."""
    return {"username": name, "email": f"{name}@example.com", "age": 30, "password": GOOD_PASSWORD}


def password_form(name: str) -> dict[str, str]:
    """A password grant for ``name``."""
    return {"grant_type": "password", "username": name, "password": GOOD_PASSWORD}


class Service:
    """A running ``bastion serve``."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """What the process wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    async def wait_ready(self) -> None:
        """Wait until ``/health`` answers (or fail with the process's output)."""
        deadline = time.monotonic() + DEADLINE
        async with fresh_connections(self.base_url) as client:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"bastion serve exited early:\n{self.output()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health", timeout=2)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"bastion serve never became healthy:\n{self.output()}")
                await asyncio.sleep(0.05)

    async def wait_exit(self) -> int:
        """Wait (bounded) for the process to end; its exit status."""
        await _until(lambda: self.process.poll() is not None, "bastion serve to exit")
        code = self.process.returncode
        assert code is not None
        return code

    def listening(self) -> bool:
        """Whether a connection to the port is accepted."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1):
                return True
        except OSError:
            return False

    async def close(self) -> None:
        """Resume stopped workers, then SIGTERM; SIGKILL the group if that fails."""
        if self.process.poll() is not None:
            return
        for pid in worker_pids(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.process.terminate()
        try:
            await _until(lambda: self.process.poll() is not None, "bastion serve to stop", 20)
        except AssertionError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@contextlib.contextmanager
def _spawn(tmp_path: Path, env: dict[str, str], args: tuple[str, ...]) -> Iterator[Service]:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [BASTION, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group: a crash of the test still lets the
            # finally block below take every worker down with it.
            start_new_session=True,
        )
        try:
            yield Service(process, port, log)
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@contextlib.asynccontextmanager
async def bastion_serve(
    tmp_path: Path, env: dict[str, str], *args: str, ready: bool = True
) -> AsyncIterator[Service]:
    """Run ``bastion serve`` with ``env``; stopped (SIGTERM) on the way out."""
    with _spawn(tmp_path, env, args) as service:
        try:
            if ready:
                await service.wait_ready()
            yield service
        finally:
            await service.close()


async def _set_stopped(pid: int, stopped: bool) -> None:
    os.kill(pid, signal.SIGSTOP if stopped else signal.SIGCONT)

    def reached() -> bool:
        fields = _stat(pid)
        return fields is not None and (fields[0] == "T") == stopped

    await _until(reached, f"worker {pid} to {'stop' if stopped else 'resume'}", 5)


@contextlib.asynccontextmanager
async def only(workers: list[int], serving: int) -> AsyncIterator[None]:
    """Let only ``serving`` accept connections: the other workers are stopped
    (SIGSTOP) meanwhile, so the kernel hands new connections to it. Kept
    short: uvicorn replaces a worker that misses its 5 s health ping."""
    others = [pid for pid in workers if pid != serving]
    for pid in others:
        await _set_stopped(pid, True)
    try:
        yield
    finally:
        for pid in others:
            await _set_stopped(pid, False)


async def two_workers(service: Service) -> list[int]:
    """The two worker pids of ``service``, each shown to serve on its own."""
    await _until(lambda: len(worker_pids(service.process.pid)) == 2, "two workers")
    workers = worker_pids(service.process.pid)
    async with fresh_connections(service.base_url) as client:
        for pid in workers:
            async with only(workers, pid):
                assert (await client.get("/health", timeout=4)).status_code == 200
    return workers


# -- workers ----------------------------------------------------------------------


async def test_two_workers_without_redis_refuse_to_start_with_a_clear_message(
    tmp_path: Path,
) -> None:
    async with bastion_serve(tmp_path, service_env(tmp_path), "--workers", "2", ready=False) as s:
        code = await s.wait_exit()
        output = s.output()
    assert code != 0
    assert "--workers > 1 needs BASTION_REDIS_URL" in output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1


async def test_two_workers_share_one_rate_limit(
    tmp_path: Path, pg: PostgresServer, own_redis: RestartableRedis
) -> None:
    env = service_env(
        tmp_path,
        BASTION_DATABASE_URL=await fresh_database(pg),
        BASTION_REDIS_URL=own_redis.url,
        BASTION_RATE_LIMIT="4/minute",
    )
    async with bastion_serve(tmp_path, env, "--workers", "2") as service:
        first, second = workers = await two_workers(service)
        statuses = []
        async with fresh_connections(service.base_url) as client:
            for pid in (first, second, first, second, first, second):
                async with only(workers, pid):
                    statuses.append((await client.get("/openapi.json")).status_code)
    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_a_logout_served_by_one_worker_is_enforced_by_the_other(
    tmp_path: Path, pg: PostgresServer, own_redis: RestartableRedis
) -> None:
    env = service_env(
        tmp_path, BASTION_DATABASE_URL=await fresh_database(pg), BASTION_REDIS_URL=own_redis.url
    )
    async with bastion_serve(tmp_path, env, "--workers", "2") as service:
        first, second = workers = await two_workers(service)
        async with fresh_connections(service.base_url) as client:
            async with only(workers, first):
                assert (await client.post("/users", json=registration("alice"))).status_code == 201
                tokens = (await client.post("/auth/token", data=password_form("alice"))).json()
            async with only(workers, second):
                valid = await client.get("/protected", headers=bearer(tokens))
                logout = await client.post("/auth/logout", headers=bearer(tokens))
            async with only(workers, first):
                await client.get("/health")
                revoked = await client.get("/protected", headers=bearer(tokens))
    assert valid.status_code == 200
    assert logout.status_code == 204
    assert revoked.status_code == 401


# -- signals and crashes ------------------------------------------------------------


async def test_sigterm_lets_in_flight_requests_finish_and_flushes_their_events(
    tmp_path: Path, pg: PostgresServer
) -> None:
    """Registrations held inside the server (their INSERT waits on a table
    lock) when SIGTERM arrives all complete, and their events are stored."""
    url = await fresh_database(pg)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    database = dsn.rsplit("/", 1)[1]
    names = [f"term{n}" for n in range(6)]
    env = service_env(tmp_path, BASTION_DATABASE_URL=url)
    async with bastion_serve(tmp_path, env) as service:
        locker = await asyncpg.connect(dsn)
        watcher = await asyncpg.connect(dsn)
        transaction = locker.transaction()
        try:
            await transaction.start()
            await locker.execute("LOCK TABLE users IN EXCLUSIVE MODE")
            async with fresh_connections(service.base_url) as client:
                requests = [
                    asyncio.create_task(client.post("/users", json=registration(name)))
                    for name in names
                ]
                try:
                    waiting = 0
                    deadline = time.monotonic() + 8
                    while waiting < len(names) and time.monotonic() < deadline:
                        await asyncio.sleep(0.05)
                        waiting = await watcher.fetchval(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE datname = $1 AND wait_event_type = 'Lock'",
                            database,
                        )
                    assert waiting == len(names), "every registration is inside the server"
                    service.process.send_signal(signal.SIGTERM)
                    await _until(lambda: not service.listening(), "the listener to close", 5)
                    await transaction.rollback()
                    responses = await asyncio.gather(*requests)
                finally:
                    for task in requests:
                        task.cancel()
            code = await service.wait_exit()
        finally:
            with contextlib.suppress(asyncpg.InterfaceError):
                await transaction.rollback()
            await locker.close()
            stored = await watcher.fetch(
                "SELECT username FROM events WHERE type = 'user_created' ORDER BY username"
            )
            users = await watcher.fetch("SELECT username FROM users ORDER BY username")
            await watcher.close()
    assert [r.status_code for r in responses] == [201] * len(names), service.output()
    # uvicorn re-raises the signal once it has shut down cleanly, so the
    # process ends "killed by SIGTERM" (which systemd counts as a clean stop).
    assert code in (0, -signal.SIGTERM), service.output()
    assert "Traceback" not in service.output()
    assert [row["username"] for row in users] == names
    assert [row["username"] for row in stored] == names


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_kill_9_during_a_registration_flood_loses_no_acknowledged_user(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    variables = {}
    if database == "postgres":
        pg_server: PostgresServer = request.getfixturevalue("pg")
        variables["BASTION_DATABASE_URL"] = await fresh_database(pg_server)
    env = service_env(tmp_path, **variables)
    acknowledged: list[dict[str, Any]] = []
    async with bastion_serve(tmp_path, env) as service:
        async with fresh_connections(service.base_url) as client:

            async def register_one(name: str) -> None:
                try:
                    response = await client.post("/users", json=registration(name))
                except httpx.TransportError:
                    return  # in flight when the process died: no promise made
                if response.status_code == 201:
                    acknowledged.append(response.json())
                    if len(acknowledged) == KILL_AFTER:
                        service.process.kill()
                else:
                    assert response.status_code == 503, response.text

            await asyncio.wait_for(
                asyncio.gather(*(register_one(f"flood{n}") for n in range(FLOOD))), DEADLINE
            )
        assert await service.wait_exit() == -signal.SIGKILL
    assert len(acknowledged) >= KILL_AFTER
    async with (
        bastion_serve(tmp_path, env) as restarted,
        httpx.AsyncClient(base_url=restarted.base_url, timeout=30) as client,
    ):
        first = acknowledged[0]["username"]
        tokens = (await client.post("/auth/token", data=password_form(first))).json()
        found = []
        for user in acknowledged:
            response = await client.get(f"/users/{user['id']}", headers=bearer(tokens))
            found.append((response.status_code, response.json().get("username")))
    assert found == [(200, user["username"]) for user in acknowledged]


# -- Redis outage -----------------------------------------------------------------------


async def test_a_redis_outage_fails_closed_where_it_must_and_recovers_without_restart(
    tmp_path: Path, pg: PostgresServer, own_redis: RestartableRedis
) -> None:
    env = service_env(
        tmp_path, BASTION_DATABASE_URL=await fresh_database(pg), BASTION_REDIS_URL=own_redis.url
    )
    async with (
        bastion_serve(tmp_path, env) as service,
        httpx.AsyncClient(base_url=service.base_url, timeout=30) as client,
    ):
        assert (await client.post("/users", json=registration("alice"))).status_code == 201
        tokens = (await client.post("/auth/token", data=password_form("alice"))).json()
        own_redis.stop()
        try:
            closed = [
                await client.post("/auth/token", data=password_form("alice")),
                await client.post("/users", json=registration("bob")),
            ]
            open_ = [
                await client.get("/protected", headers=bearer(tokens)),
                await client.get("/users/me", headers=bearer(tokens)),
                await client.get("/openapi.json"),
                await client.get("/health"),
            ]
            ready_during = await client.get("/ready")
        finally:
            own_redis.start()
        recovered = False
        for _ in range(100):
            if (await client.get("/ready")).status_code == 200:
                recovered = True
                break
            await asyncio.sleep(0.1)
        after = [
            await client.post("/auth/token", data=password_form("alice")),
            await client.post("/users", json=registration("bob")),
            await client.get("/protected", headers=bearer(tokens)),
        ]
    assert [r.status_code for r in closed] == [503, 503]
    assert all(int(r.headers["retry-after"]) >= 1 for r in closed)
    assert [r.status_code for r in open_] == [200, 200, 200, 200]
    assert ready_during.status_code == 503
    assert ready_during.json()["redis"] == "unavailable"
    assert recovered, "Bastion reconnects to Redis by itself"
    assert [r.status_code for r in after] == [200, 201, 200]


def _health_count(metrics_text: str) -> float:
    wanted = ('route="/health"', 'status="200"', 'method="GET"')
    for line in metrics_text.splitlines():
        if line.startswith("bastion_requests_total{") and all(w in line for w in wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_add_up_the_requests_of_every_worker(
    tmp_path: Path, pg: PostgresServer, own_redis: RestartableRedis
) -> None:
    env = service_env(
        tmp_path,
        BASTION_DATABASE_URL=await fresh_database(pg),
        BASTION_REDIS_URL=own_redis.url,
        BASTION_METRICS_PUBLIC="true",
    )
    async with bastion_serve(tmp_path, env, "--workers", "2") as service:
        first, second = workers = await two_workers(service)
        scrapes = []
        async with fresh_connections(service.base_url) as client:
            before = _health_count((await client.get("/metrics")).text)
            for pid in (first, second):
                async with only(workers, pid):
                    for _ in range(10):
                        assert (await client.get("/health")).status_code == 200
            for pid in (first, second):
                async with only(workers, pid):
                    scrapes.append(_health_count((await client.get("/metrics")).text))
    assert scrapes == [before + 20, before + 20]
