"""Security events: one recording function, a bounded background writer.

Recording logs the event at once (a JSON line, so hostile text in a username
or user agent is escaped and cannot split or forge a record) and queues it for
the database. The writer inserts in batches. When the queue is full the
caller waits for room, briefly (:data:`FULL_QUEUE_WAIT`): backpressure falls on
the flood that caused it. If there is still no room (the database has been
down long enough to fill the queue) the event is dropped and counted, never
waited for without bound: every 429 and ``authz_fail`` records an event, and
a request must not hang on an outage (issue 17 #9). Each dropped event was
still logged as a JSON line when it was recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from bastion.errors import Unavailable
from bastion.storage.protocols import (
    EventCount,
    EventCountQuery,
    EventQuery,
    EventStore,
    SecurityEvent,
)
from bastion.types import Clock, RequestContext

#: The query records, for callers above this layer (the web pages) that must
#: not import storage themselves.
__all__ = ["EVENT_TYPES", "EventCount", "EventCountQuery", "EventQuery", "EventRecorder"]

#: The event types of SPEC.md (OWASP Logging Vocabulary Cheat Sheet).
EVENT_TYPES = frozenset(
    {
        "user_created",
        "user_deleted",
        "authn_login_success",
        "authn_login_fail",
        "authn_login_lock",
        "authn_login_unlock",
        "authn_token_created",
        "authn_token_reuse",
        "authn_token_revoked",
        "authn_password_change",
        "authz_change",
        "authz_fail",
        "excess_rate_limit_exceeded",
        "proxy_misconfigured",
        # round 2: mail and account recovery
        "mail_failed",
        "authn_password_reset_request",
        "user_email_verified",
        "user_email_change_request",
        "user_updated",
        # Round 2, multi-factor authentication and passkeys (mfa).
        "mfa_enabled",
        "mfa_disabled",
        "authn_mfa_fail",
        "authn_recovery_code_used",
        "passkey_added",
        "passkey_removed",
    }
)
#: Events held in memory while the database catches up; beyond it, ``record``
#: waits (backpressure), at most :data:`FULL_QUEUE_WAIT` seconds.
QUEUE_SIZE = 10_000
#: How long ``record`` waits for room in a full queue before dropping the event.
FULL_QUEUE_WAIT = 0.25
#: Events inserted per statement.
BATCH_SIZE = 500
#: First and longest pause between attempts while the database is unavailable.
RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 5.0
#: ``query`` waits this long for queued events to be written, then reads what
#: is stored: with the database down, ``GET /events`` must answer 503 promptly
#: rather than hang behind a writer that is retrying.
QUERY_FLUSH_TIMEOUT = 2.0
#: ``stop`` lets the writer finish this long before one last direct attempt.
STOP_TIMEOUT = 5.0

logger = structlog.get_logger("bastion.security")
#: What a log line carries besides the type (``event`` is structlog's own key).
_LOGGED_FIELDS = ("outcome", "user_id", "username", "ip", "user_agent", "request_id", "detail")


def _clip(value: str | None, limit: int) -> str | None:
    # PostgreSQL text cannot hold NUL: one "a\x00b" username must not make an
    # event unstorable. U+FFFD keeps the fact that something was there.
    return None if value is None else value[:limit].replace("\x00", "\ufffd")


class EventRecorder:
    """Records security events to the log and, in batches, to the store.

    Args:
        store: Where events are kept.
        clock: Time source.
        queue_size: Events held before ``record`` waits for room.
        batch_size: Events written per ``add_many`` call at most.
        retry_delay: First pause before retrying while the store is unavailable
            (doubling up to :data:`MAX_RETRY_DELAY`).
        query_flush_timeout: How long ``query`` waits for queued events.
        stop_timeout: How long ``stop`` lets the writer finish.
        full_queue_wait: How long ``record`` waits for room in a full queue.

    Raises:
        ValueError: for a queue or batch size below 1.
    """

    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        *,
        queue_size: int = QUEUE_SIZE,
        batch_size: int = BATCH_SIZE,
        retry_delay: float = RETRY_DELAY,
        query_flush_timeout: float = QUERY_FLUSH_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        full_queue_wait: float = FULL_QUEUE_WAIT,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be at least 1")
        self._store = store
        self._clock = clock
        #: Called with 1 for each event not stored: refused by the store, or
        #: dropped when the queue stayed full (a metric).
        self.on_drop: Callable[[int], None] | None = None
        self._queue: asyncio.Queue[SecurityEvent] = asyncio.Queue(queue_size)
        self._batch_size = batch_size
        self._retry_delay = retry_delay
        self._query_flush_timeout = query_flush_timeout
        self._stop_timeout = stop_timeout
        self._full_queue_wait = full_queue_wait
        # The batch being written. Kept here, not in the writer's locals, so
        # that stopping the writer mid-retry does not lose it.
        self._pending: list[SecurityEvent] = []
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def depth(self) -> int:
        """Events waiting to be written (queued or in the batch being written)."""
        return self._queue.qsize() + len(self._pending)

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
        # A broken stdout (a log collector gone: EPIPE) must not turn every
        # request that records an event into a 500; the event is still stored.
        with contextlib.suppress(Exception):
            fields = {name: getattr(event, name) for name in _LOGGED_FIELDS}
            logger.info("security_event", event_type=event.type, **fields)
        self._idle.clear()
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            await self._put_or_drop(event)

    async def _put_or_drop(self, event: SecurityEvent) -> None:
        try:
            await asyncio.wait_for(self._queue.put(event), self._full_queue_wait)
        except TimeoutError:
            with contextlib.suppress(Exception):
                logger.warning("event_dropped", event_type=event.type, request_id=event.request_id)
            if self.on_drop is not None:
                self.on_drop(1)

    def start(self) -> None:
        """Start the background writer."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bastion-event-writer")

    async def flush(self) -> None:
        """Wait until every queued event is written.

        Without a running writer, writes them here (and raises
        :class:`bastion.errors.Unavailable` if the store is down).
        """
        if self._task is None or self._task.done():
            await self._drain_once()
            return
        await self._idle.wait()

    async def stop(self) -> None:
        """Write what is queued, then stop the writer.

        The writer gets :data:`STOP_TIMEOUT` seconds to finish; what it could
        not write by then gets one last direct attempt. Events that still
        cannot be stored are reported in the log (each was logged when
        recorded).
        """
        if self._task is not None:
            if not self._task.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), self._stop_timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self._drain_once()
        except Unavailable:
            logger.error("events_not_stored", count=self.depth)

    async def query(self, query: EventQuery) -> list[SecurityEvent]:
        """Stored events, newest first; queued ones are written first.

        Raises:
            Unavailable: the store cannot be reached.
        """
        if self._task is None or self._task.done():
            await self._drain_once()
        else:
            # Bounded: if the writer is stuck retrying, the store is most
            # likely down, and the read below says so (503) instead of hanging.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self._query_flush_timeout)
        return await self._store.query(query)

    async def counts(self, query: EventCountQuery) -> list[EventCount]:
        """Stored events per type and time bucket (the admin charts).

        Unlike :meth:`query`, this does not wait for queued events: a chart
        a moment behind is fine, and it must not stall behind a busy writer.

        Raises:
            Unavailable: the store cannot be reached.
        """
        return await self._store.count(query)

    def _take_batch(self, room: int) -> list[SecurityEvent]:
        batch: list[SecurityEvent] = []
        while len(batch) < room and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _drain_once(self) -> None:
        while True:
            if not self._pending:
                self._pending = self._take_batch(self._batch_size)
                if not self._pending:
                    break
            await self._write_pending()
        self._idle.set()

    async def _write_pending(self) -> None:
        """Write ``self._pending``, emptying it; on :class:`Unavailable`, keep
        what is not yet written and raise."""
        try:
            await self._store.add_many(self._pending)
        except Unavailable:
            raise
        except Exception:
            logger.exception("event_batch_rejected", count=len(self._pending))
        else:
            self._pending = []
            return
        # The store refused the batch for its content. Retrying it as is would
        # block every later event behind it for good; write the events one by
        # one instead, and drop only those refused (each was logged when
        # recorded).
        while self._pending:
            event = self._pending[0]
            try:
                await self._store.add_many([event])
            except Unavailable:
                raise
            except Exception:
                logger.exception(
                    "event_write_failed", event_type=event.type, request_id=event.request_id
                )
                if self.on_drop is not None:
                    self.on_drop(1)
            del self._pending[0]

    async def _run(self) -> None:
        delay = self._retry_delay
        while True:
            if not self._pending:
                first = await self._queue.get()
                self._pending = [first, *self._take_batch(self._batch_size - 1)]
            try:
                await self._write_pending()
            except Unavailable:
                # Keep the batch and retry: the database coming back must not
                # cost us the events recorded while it was away.
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
                continue
            delay = self._retry_delay
            if self._queue.empty():
                self._idle.set()
