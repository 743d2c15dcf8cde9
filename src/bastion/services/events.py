"""Security events: one recording function, a bounded background writer.

Recording logs the event at once (a JSON line, so hostile text in a username
or user agent is escaped and cannot split or forge a record) and queues it for
the database. The writer inserts in batches. When the queue is full the
caller waits for room: backpressure falls on the flood that caused it, and no
event is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from bastion.errors import Unavailable
from bastion.storage.protocols import EventQuery, EventStore, SecurityEvent
from bastion.types import Clock, RequestContext

#: The event types of SPEC.md (OWASP Logging Vocabulary Cheat Sheet).
EVENT_TYPES = frozenset(
    {
        "user_created",
        "user_deleted",
        "authn_login_success",
        "authn_login_fail",
        "authn_login_lock",
        "authn_token_created",
        "authn_token_reuse",
        "authn_token_revoked",
        "authn_password_change",
        "authz_change",
        "authz_fail",
        "excess_rate_limit_exceeded",
    }
)
QUEUE_SIZE = 10_000
BATCH_SIZE = 500
_MAX_TEXT = 256

logger = structlog.get_logger("bastion.security")


def _clip(value: str | None, limit: int = _MAX_TEXT) -> str | None:
    return None if value is None else value[:limit]


class EventRecorder:
    """Records security events to the log and, in batches, to the store.

    Args:
        store: Where events are kept.
        clock: Time source.
    """

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._queue: asyncio.Queue[SecurityEvent] = asyncio.Queue(QUEUE_SIZE)
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def depth(self) -> int:
        """Events waiting to be written."""
        return self._queue.qsize()

    async def record(
        self,
        type_: str,
        *,
        outcome: str = "success",
        context: RequestContext | None = None,
        user_id: int | None = None,
        username: str | None = None,
        **detail: Any,
    ) -> None:
        """Record one event of ``type_`` (one of :data:`EVENT_TYPES`)."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        context = context or RequestContext()
        event = SecurityEvent(
            at=self._clock.now(),
            type=type_,
            outcome=outcome,
            user_id=user_id,
            username=_clip(username, 64),
            ip=_clip(context.ip, 64),
            user_agent=_clip(context.user_agent, 512),
            request_id=_clip(context.request_id, 64),
            detail=detail,
        )
        logger.info(
            "security_event",
            event_type=event.type,
            outcome=event.outcome,
            user_id=event.user_id,
            username=event.username,
            ip=event.ip,
            user_agent=event.user_agent,
            request_id=event.request_id,
            detail=event.detail,
        )
        self._idle.clear()
        await self._queue.put(event)

    def start(self) -> None:
        """Start the background writer."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bastion-event-writer")

    async def flush(self) -> None:
        """Wait until every queued event is written (or the writer stops)."""
        if self._task is None or self._task.done():
            await self._drain_once()
            return
        await self._idle.wait()

    async def stop(self) -> None:
        """Write what is queued, then stop the writer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Unavailable):
            await self._drain_once()

    async def query(self, query: EventQuery) -> list[SecurityEvent]:
        """Stored events, newest first; queued ones are written first."""
        await self.flush()
        return await self._store.query(query)

    def _take_batch(self) -> list[SecurityEvent]:
        batch: list[SecurityEvent] = []
        while len(batch) < BATCH_SIZE and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _drain_once(self) -> None:
        while batch := self._take_batch():
            await self._store.add_many(batch)
        self._idle.set()

    async def _run(self) -> None:
        delay = 0.1
        pending: list[SecurityEvent] = []
        while True:
            if not pending:
                first = await self._queue.get()
                pending = [first, *self._take_batch()]
            try:
                await self._store.add_many(pending)
            except Unavailable:
                # Keep the batch and retry: the database coming back must not
                # cost us the events recorded while it was away.
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except Exception:
                logger.exception("event_write_failed", count=len(pending))
                await asyncio.sleep(delay)
                continue
            delay = 0.1
            pending = []
            if self._queue.empty():
                self._idle.set()
