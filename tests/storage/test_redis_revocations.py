"""The Redis revocation listener notices a dead connection, reconnects and
resynchronises (issue 17 #2), against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from bastion.storage.protocols import Revocation
from bastion.storage.redis_revocations import RedisRevocationBus
from tests.servers import RedisServer

#: Bound on every wait: a listener that never recovers fails, not hangs.
DEADLINE = 20.0


class BlackholeProxy:
    """A TCP proxy to Redis that can turn its open connections into black
    holes: they stay open and swallow every byte, as a half-open connection
    does (a peer host gone, a NAT entry dropped). New connections work."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._generation = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """Redis URL through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def swallow_open_connections(self) -> None:
        """From now on, connections opened so far carry nothing."""
        self._generation += 1

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        generation = self._generation
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                if generation == self._generation:
                    sink.write(data)
                    await sink.drain()

        try:
            with contextlib.suppress(OSError):
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            writer.close()
            up_writer.close()


@contextlib.asynccontextmanager
async def proxy_to(redis: RedisServer) -> AsyncIterator[BlackholeProxy]:
    proxy = BlackholeProxy(redis.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


async def test_a_silent_connection_is_replaced_and_the_caller_resynchronised(
    redis: RedisServer,
) -> None:
    received: list[Revocation] = []
    connects = 0

    async def on_connect() -> None:
        nonlocal connects
        connects += 1

    async with proxy_to(redis) as proxy:
        bus = RedisRevocationBus(
            proxy.url, ping_interval=0.2, ping_timeout=0.5, reconnect_delay=0.1
        )
        publisher = RedisRevocationBus(redis.url)
        listener = asyncio.create_task(bus.listen(received.append, on_connect=on_connect))
        try:
            deadline = time.monotonic() + DEADLINE
            while connects < 1:
                assert time.monotonic() < deadline, "the listener never subscribed"
                await asyncio.sleep(0.02)
            proxy.swallow_open_connections()
            mark = Revocation("session:s1", 0, time.time() + 600)
            while not received:
                assert time.monotonic() < deadline, "the listener never came back"
                await publisher.publish([mark])
                await asyncio.sleep(0.1)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await bus.close()
            await publisher.close()
    assert received[0] == mark
    assert connects >= 2, "every reconnect is followed by a resynchronisation"
    assert proxy.connections >= 2


async def test_marks_published_while_connected_are_applied(redis: RedisServer) -> None:
    received: list[Revocation] = []
    subscribed = asyncio.Event()

    async def on_connect() -> None:
        subscribed.set()

    bus = RedisRevocationBus(redis.url, ping_interval=0.2, ping_timeout=0.5)
    listener = asyncio.create_task(bus.listen(received.append, on_connect=on_connect))
    try:
        await asyncio.wait_for(subscribed.wait(), DEADLINE)
        marks = [Revocation("user:7", 3, 1e10), Revocation("session:x", 0, 1e10)]
        await bus.publish(marks)
        deadline = time.monotonic() + DEADLINE
        while len(received) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        # Idle past several ping intervals: pongs are not mistaken for marks.
        await asyncio.sleep(0.8)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await bus.close()
    assert received == marks
