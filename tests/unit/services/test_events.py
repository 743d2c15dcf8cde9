"""The event recorder's writer: batching, flushing, backpressure, outages.

The store here is an in-memory test double of the ``EventStore`` protocol: this
suite is about the recorder's logic, and the SQL store is exercised over HTTP
on SQLite and PostgreSQL (``tests/api/test_events.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from bastion.errors import Unavailable
from bastion.services.events import EventRecorder
from bastion.storage.protocols import EventCount, EventCountQuery, EventQuery, SecurityEvent
from bastion.types import RequestContext
from tests.conftest import ManualClock

T = TypeVar("T")

#: Upper bound on anything awaited here: a bug that hangs fails the test
#: instead of hanging the run. Not a timing assertion: every wait below ends
#: in milliseconds when the recorder works.
HANG_GUARD = 10.0


class StoreRefused(Exception):
    """What a database says about content it will not store (not an outage)."""


class MemoryEventStore:
    """An ``EventStore`` in a list, with switches to misbehave.

    Args:
        outages: This many ``add_many`` calls fail with ``Unavailable`` first.
        refuse: Events for which the store raises :class:`StoreRefused`.
    """

    def __init__(
        self, *, outages: int = 0, refuse: Callable[[SecurityEvent], bool] | None = None
    ) -> None:
        self.events: list[SecurityEvent] = []
        self.batches: list[int] = []
        self.attempts = 0
        self.outages = outages
        self.refuse = refuse
        self.attempted = asyncio.Event()
        #: Cleared to hold writes until it is set again.
        self.gate = asyncio.Event()
        self.gate.set()

    async def add_many(self, events: Sequence[SecurityEvent]) -> None:
        self.attempts += 1
        self.attempted.set()
        await self.gate.wait()
        if self.outages > 0:
            self.outages -= 1
            raise Unavailable("the database is unavailable")
        if self.refuse is not None and any(self.refuse(event) for event in events):
            raise StoreRefused("invalid byte sequence")
        self.batches.append(len(events))
        self.events.extend(
            SecurityEvent(**{**_fields(event), "id": len(self.events) + n + 1})
            for n, event in enumerate(events)
        )

    async def query(self, query: EventQuery) -> list[SecurityEvent]:
        if self.outages > 0:
            raise Unavailable("the database is unavailable")
        found = [event for event in reversed(self.events) if query.type in (None, event.type)]
        return found[: query.limit]

    async def count(self, query: EventCountQuery) -> list[EventCount]:
        return []


class DownStore(MemoryEventStore):
    """A store whose database never answers."""

    async def add_many(self, events: Sequence[SecurityEvent]) -> None:
        self.attempts += 1
        self.attempted.set()
        raise Unavailable("the database is unavailable")

    async def query(self, query: EventQuery) -> list[SecurityEvent]:
        raise Unavailable("the database is unavailable")


def _fields(event: SecurityEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in SecurityEvent.__slots__}


def usernames(store: MemoryEventStore) -> list[str | None]:
    return [event.username for event in store.events]


async def guarded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, HANG_GUARD)


@asynccontextmanager
async def running(recorder: EventRecorder) -> AsyncIterator[EventRecorder]:
    recorder.start()
    try:
        yield recorder
    finally:
        await guarded(recorder.stop())


def make_recorder(store: MemoryEventStore, **options: Any) -> EventRecorder:
    return EventRecorder(store, ManualClock(1_700_000_000.0), retry_delay=0.001, **options)


async def test_unknown_event_type_is_refused() -> None:
    recorder = make_recorder(MemoryEventStore())
    with pytest.raises(ValueError, match="login_ok"):
        await recorder.record("login_ok", username="alice")
    assert recorder.depth == 0


async def test_queued_events_are_written_in_batches_of_at_most_batch_size() -> None:
    store = MemoryEventStore()
    recorder = make_recorder(store, batch_size=2)
    for n in range(5):
        await recorder.record("user_created", username=f"user{n}")
    async with running(recorder):
        await guarded(recorder.flush())
    assert store.batches == [2, 2, 1]
    assert usernames(store) == [f"user{n}" for n in range(5)]


async def test_flush_returns_only_once_queued_events_are_written() -> None:
    store = MemoryEventStore()
    store.gate.clear()
    recorder = make_recorder(store)
    async with running(recorder):
        for n in range(3):
            await recorder.record("authn_login_success", username=f"user{n}")
        flushing = asyncio.create_task(recorder.flush())
        await guarded(store.attempted.wait())
        await asyncio.sleep(0)
        assert not flushing.done()
        assert store.events == []
        store.gate.set()
        await guarded(flushing)
        assert usernames(store) == ["user0", "user1", "user2"]


async def test_writer_retries_through_an_outage_and_loses_nothing() -> None:
    store = MemoryEventStore(outages=3)
    recorder = make_recorder(store)
    async with running(recorder):
        await recorder.record("authn_login_fail", outcome="failure", username="first")
        await guarded(store.attempted.wait())
        await recorder.record("authn_login_fail", outcome="failure", username="second")
        await recorder.record("authn_login_fail", outcome="failure", username="third")
        await guarded(recorder.flush())
        assert store.attempts > 3
        assert usernames(store) == ["first", "second", "third"]


async def test_record_waits_for_room_when_the_queue_is_full() -> None:
    store = MemoryEventStore()
    recorder = make_recorder(store, queue_size=2)
    await recorder.record("authz_fail", outcome="failure", username="one")
    await recorder.record("authz_fail", outcome="failure", username="two")
    third = asyncio.create_task(recorder.record("authz_fail", outcome="failure", username="three"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not third.done()
    assert recorder.depth == 2
    async with running(recorder):
        await guarded(third)
        await guarded(recorder.flush())
    assert usernames(store) == ["one", "two", "three"]


async def test_an_event_the_store_refuses_does_not_hold_back_the_others() -> None:
    store = MemoryEventStore(refuse=lambda event: event.username == "poison")
    recorder = make_recorder(store)
    async with running(recorder):
        for name in ("before", "poison", "after"):
            await recorder.record("authn_login_fail", outcome="failure", username=name)
        await guarded(recorder.flush())
        await recorder.record("authn_login_fail", outcome="failure", username="later")
        await guarded(recorder.flush())
    assert usernames(store) == ["before", "after", "later"]


async def test_stop_writes_the_batch_the_writer_was_retrying() -> None:
    store = MemoryEventStore(outages=1)
    recorder = make_recorder(store)
    recorder.start()
    await recorder.record("authn_token_revoked", username="alice")
    await recorder.record("authn_token_revoked", username="bob")
    await guarded(store.attempted.wait())
    await guarded(recorder.stop())
    assert usernames(store) == ["alice", "bob"]


async def test_query_reports_an_unavailable_store_instead_of_waiting_for_it() -> None:
    store = DownStore()
    recorder = make_recorder(store, query_flush_timeout=0.01, stop_timeout=0.01)
    async with running(recorder):
        await recorder.record("user_deleted", user_id=7)
        await guarded(store.attempted.wait())
        with pytest.raises(Unavailable):
            await guarded(recorder.query(EventQuery()))


async def test_query_returns_events_recorded_just_before() -> None:
    store = MemoryEventStore()
    store.gate.clear()
    recorder = make_recorder(store)
    async with running(recorder):
        await recorder.record("user_created", user_id=1, username="alice")
        reading = asyncio.create_task(recorder.query(EventQuery(type="user_created")))
        await guarded(store.attempted.wait())
        store.gate.set()
        found = await guarded(reading)
    assert [(event.user_id, event.username) for event in found] == [(1, "alice")]


async def test_nul_characters_are_replaced_so_the_event_can_be_stored() -> None:
    store = MemoryEventStore()
    recorder = make_recorder(store)
    context = RequestContext(ip="127.0.0.1", user_agent="agent\x00x", request_id="r1")
    await recorder.record("authn_login_fail", outcome="failure", username="a\x00b", context=context)
    await guarded(recorder.flush())
    assert store.events[0].username == "a\ufffdb"
    assert store.events[0].user_agent == "agent\ufffdx"


async def test_event_carries_time_context_and_detail() -> None:
    store = MemoryEventStore()
    recorder = make_recorder(store)
    context = RequestContext(ip="203.0.113.9", user_agent="ua/1.0", request_id="abc123")
    await recorder.record(
        "authz_change", context=context, user_id=5, username="alice", actor=1, permissions=["x"]
    )
    await guarded(recorder.flush())
    [event] = store.events
    assert event.at == 1_700_000_000.0
    assert (event.type, event.outcome, event.user_id, event.username) == (
        "authz_change",
        "success",
        5,
        "alice",
    )
    assert (event.ip, event.user_agent, event.request_id) == ("203.0.113.9", "ua/1.0", "abc123")
    assert event.detail == {"actor": 1, "permissions": ["x"]}


async def test_long_attacker_text_is_clipped() -> None:
    store = MemoryEventStore()
    recorder = make_recorder(store)
    context = RequestContext(user_agent="u" * 5000, request_id="r" * 500)
    await recorder.record(
        "authn_login_fail", outcome="failure", username="n" * 500, context=context
    )
    await guarded(recorder.flush())
    [event] = store.events
    assert (
        len(event.username or ""),
        len(event.user_agent or ""),
        len(event.request_id or ""),
    ) == (
        64,
        512,
        64,
    )


class BrokenStdout:
    """A stdout whose reader is gone."""

    def write(self, _text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


async def test_a_broken_log_stream_does_not_stop_recording(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryEventStore()
    recorder = make_recorder(store)
    monkeypatch.setattr("sys.stdout", BrokenStdout())
    await recorder.record("authn_login_success", user_id=3, username="alice")
    monkeypatch.undo()
    await guarded(recorder.flush())
    assert usernames(store) == ["alice"]
