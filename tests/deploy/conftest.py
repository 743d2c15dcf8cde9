"""Fixtures of the deployment tests: two Bastion instances on one PostgreSQL
database and one Redis, behind nginx running the shipped configuration
(deploy/nginx/bastion.conf)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import RunningServer, ServerFactory, SettingsFactory
from tests.servers import NginxServer, RestartableRedis, nginx_server, restartable_redis_server

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx" / "bastion.conf"
SYSTEMD_UNIT = REPO / "deploy" / "systemd" / "bastion@.service"


def client_from(base_url: str, source: str) -> httpx.AsyncClient:
    """An HTTP client of ``base_url`` whose connections come from ``source``
    (any 127.0.0.x: all of 127.0.0.0/8 is loopback on Linux)."""
    return httpx.AsyncClient(
        base_url=base_url,
        transport=httpx.AsyncHTTPTransport(local_address=source),
        timeout=30,
    )


def served(server: RunningServer) -> int:
    """How many requests ``server`` has answered (its own metrics registry)."""
    total = 0.0
    for metric in server.bastion.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "bastion_requests_total":
                total += sample.value
    return int(total)


def host_port(server: RunningServer) -> str:
    """``127.0.0.1:<port>`` of an in-process server."""
    return str(urlsplit(server.base_url).netloc)


@dataclass
class Cluster:
    """Two instances and the proxy in front of them."""

    instances: tuple[RunningServer, RunningServer]
    proxy: NginxServer

    def client(self, source: str) -> httpx.AsyncClient:
        """A client of the proxy connecting from ``source``."""
        return client_from(self.proxy.base_url, source)

    def served(self) -> tuple[int, int]:
        """Requests answered so far by each instance."""
        return served(self.instances[0]), served(self.instances[1])


ClusterFactory = Callable[..., Awaitable[Cluster]]


@pytest.fixture
def backend() -> str:
    """Instances share state through one PostgreSQL database."""
    return "postgres"


@pytest.fixture
def own_redis() -> Iterator[RestartableRedis]:
    """A Redis of this test's own, which it may stop and start: budgets of
    other tests cannot leak in."""
    with restartable_redis_server() as server:
        yield server


@pytest.fixture
async def start_cluster(
    make_settings: SettingsFactory, start_server: ServerFactory, own_redis: RestartableRedis
) -> AsyncIterator[ClusterFactory]:
    """Start two instances (settings overrides as keywords) behind nginx, which
    is the only trusted proxy."""
    proxies = contextlib.ExitStack()

    async def factory(**overrides: Any) -> Cluster:
        settings = await make_settings(
            redis_url=own_redis.url, trusted_proxies="127.0.0.1", **overrides
        )
        first = await start_server(settings)
        second = await start_server(settings)
        proxy = proxies.enter_context(
            nginx_server(NGINX_CONF, (host_port(first), host_port(second)))
        )
        return Cluster((first, second), proxy)

    with proxies:
        yield factory
