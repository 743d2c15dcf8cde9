"""``bastion serve``'s server stack: uvloop + httptools, ``TCP_NODELAY`` on every connection."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from bastion.serving import H11_PROTOCOL, HTTPTOOLS_PROTOCOL, server_stack
from tests.conftest import fresh_database
from tests.deploy.test_process import bastion_serve, service_env, worker_pids


def test_the_production_stack_is_chosen_when_it_imports() -> None:
    stack = server_stack()
    assert (stack.loop, stack.http) == ("uvloop", HTTPTOOLS_PROTOCOL)
    assert stack.production


def test_the_stack_falls_back_cleanly_where_it_cannot_import() -> None:
    assert server_stack(uvloop=False, httptools=False).http == H11_PROTOCOL
    assert server_stack(uvloop=False, httptools=False).loop == "asyncio"
    assert not server_stack(uvloop=True, httptools=False).production


@pytest.mark.parametrize("http", [HTTPTOOLS_PROTOCOL, H11_PROTOCOL])
async def test_every_accepted_connection_has_tcp_nodelay(http: str) -> None:
    """Even on a listening socket made with ``proto=0``, as uvicorn's
    ``--workers`` path makes it (asyncio then skips ``TCP_NODELAY``)."""
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"ok": "yes"}

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, http=http, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as c:
            assert (await c.get("/")).status_code == 200
            flags = [
                conn.transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY
                )
                for conn in server.server_state.connections
            ]
    finally:
        server.should_exit = True
        await task
        sock.close()
    assert flags
    assert all(flags)


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_bastion_serve_runs_on_uvloop_and_httptools(
    tmp_path: Path, workers: str, request: pytest.FixtureRequest
) -> None:
    env = service_env(tmp_path)
    if workers == "2":
        # Two workers share state: PostgreSQL and Redis, as deployed.
        env["BASTION_REDIS_URL"] = request.getfixturevalue("redis").url
        env["BASTION_DATABASE_URL"] = await fresh_database(request.getfixturevalue("pg"))
    async with bastion_serve(tmp_path, env, "--workers", workers) as service:
        pids = worker_pids(service.process.pid) if workers == "2" else [service.process.pid]
        maps = [_mapped(pid) for pid in pids]
    assert len(maps) == int(workers)
    for text in maps:
        assert "uvloop/loop" in text
        assert "httptools/parser" in text


async def test_the_heap_is_frozen_once_the_app_has_started() -> None:
    """What exists after startup lives as long as the process: the collector
    must not walk it on every full collection (a 91 ms pause, issue 15)."""
    import gc

    from bastion.serving import freeze_heap_after_startup

    app = FastAPI()
    seen: list[int] = []
    freeze_heap_after_startup(app)
    gc.unfreeze()
    try:
        async with app.router.lifespan_context(app):
            seen.append(gc.get_freeze_count())
    finally:
        gc.unfreeze()
    assert len(seen) == 1
    assert seen[0] > 0
