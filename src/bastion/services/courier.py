"""The courier: a background task in every instance that sends queued mail.

Each round it claims a few due rows (a lease: no other instance takes them
meanwhile), composes each one, sends it through the transport and marks it
sent. A failure reschedules the row with backoff: the first retry within a
minute, then ever longer, seven tries over almost two hours; after the last
the mail is abandoned and a ``mail_failed`` event says so. Nothing is lost to
a restart or an SMTP outage: the row stays in the database until its outcome
is recorded.

A token mail is composed once and kept sealed (AES-GCM) in its row, so every
retry sends the same token; the body is erased when the row is finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket

from bastion.errors import Unavailable
from bastion.security.sealing import Sealer, SealError
from bastion.services.events import EventRecorder
from bastion.services.mail import ComposedMail, MailRenderer
from bastion.services.mailcompose import MailComposer, row_context
from bastion.storage.mailport import (
    ABANDONED,
    DROPPED,
    SENT,
    MailTransport,
    OutboxRow,
    OutboxStore,
)
from bastion.types import Clock

log = logging.getLogger("bastion.mail")

#: Seconds to wait after the 1st, 2nd, ... failed attempt. Seven attempts over
#: 1 h 51 min: SPEC asks for a first retry within a minute and at least five
#: tries over at least an hour (RFC 5321 §4.5.4.1 suggests days for relays;
#: a reset link that arrives a day late is useless).
RETRY_SCHEDULE = (10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)
#: How long a claim holds a row: far longer than one SMTP send may take.
LEASE_SECONDS = 300.0
#: Rows claimed per round.
BATCH = 10
#: How often an idle courier looks for rows queued by other instances.
POLL_SECONDS = 1.0
#: How long ``stop`` lets the current round finish before cancelling it.
STOP_TIMEOUT = 10.0


def _error_text(exc: BaseException) -> str:
    # The class and the server's reply; never the message, which is not in it.
    return f"{type(exc).__name__}: {exc}"[:200]


class Courier:
    """Sends the outbox.

    Args:
        outbox: The queue.
        composer: Resolves and renders rows.
        renderer: Builds MIME messages.
        transport: Delivers them.
        sealer: Encrypts token mail at rest.
        events: Security events (``mail_failed``).
        clock: Time source.
        schedule: Backoff delays; ``len(schedule) + 1`` attempts in all.
        poll: Seconds between looks when idle.
    """

    def __init__(
        self,
        *,
        outbox: OutboxStore,
        composer: MailComposer,
        renderer: MailRenderer,
        transport: MailTransport,
        sealer: Sealer,
        events: EventRecorder,
        clock: Clock,
        schedule: tuple[float, ...] = RETRY_SCHEDULE,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.transport = transport
        self._outbox = outbox
        self._composer = composer
        self._renderer = renderer
        self._sealer = sealer
        self._events = events
        self._clock = clock
        self._schedule = schedule
        self._poll = poll
        self.worker = f"{socket.gethostname()[:40]}:{secrets.token_hex(6)}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def max_attempts(self) -> int:
        """Attempts before a mail is abandoned."""
        return len(self._schedule) + 1

    def wake(self) -> None:
        """Look for work now (a row was just queued by this instance)."""
        self._wake.set()

    def start(self) -> None:
        """Start the background loop."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="bastion-courier")

    async def stop(self) -> None:
        """Let the current round finish (a mail half sent would be sent again
        after the lease), then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                busy = await self.run_once()
            except Unavailable:
                busy = 0
            except Exception:
                log.exception("courier round failed")
                busy = 0
            if self._stopping:
                return
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
            self._wake.clear()

    async def run_once(self, *, only: int | None = None) -> int:
        """Claim and handle one batch of due rows; returns how many.

        Raises:
            Unavailable: the database is down.
        """
        rows = await self._outbox.claim(
            worker=self.worker,
            now=self._clock.now(),
            lease=LEASE_SECONDS,
            limit=1 if only is not None else BATCH,
            only=only,
        )
        for row in rows:
            await self._handle(row)
        return len(rows)

    async def _handle(self, row: OutboxRow) -> None:
        try:
            mail = await self._mail_of(row)
        except Unavailable:
            return  # the lease runs out and the row is taken again
        except Exception as exc:
            log.exception("mail %s (%s) could not be composed", row.id, row.kind)
            await self._failed(row, exc)
            return
        if mail is None:
            await self._outbox.finish(row.id, self.worker, status=DROPPED, now=self._clock.now())
            return
        try:
            await self.transport.send(self._renderer.message(mail))
        except Exception as exc:
            await self._failed(row, exc)
            return
        await self._outbox.finish(row.id, self.worker, status=SENT, now=self._clock.now())

    async def _mail_of(self, row: OutboxRow) -> ComposedMail | None:
        context = f"outbox:{row.id}".encode()
        if row.payload is not None:
            try:
                data = json.loads(self._sealer.open(row.payload, context=context))
                return ComposedMail.from_dict(data)
            except SealError:
                # Sealed under another key (a data directory not shared by
                # all instances): compose afresh; the new token voids the old.
                log.warning("mail %s was sealed with another key; composing it again", row.id)
        composed = await self._composer.compose(row)
        if composed is None:
            return None
        if composed.carries_token:
            plain = json.dumps(composed.mail.as_dict()).encode()
            await self._outbox.save_payload(
                row.id, self.worker, self._sealer.seal(plain, context=context)
            )
        return composed.mail

    async def _failed(self, row: OutboxRow, exc: BaseException) -> None:
        attempts = row.attempts + 1
        now = self._clock.now()
        error = _error_text(exc)
        if attempts < self.max_attempts:
            delay = self._schedule[attempts - 1]
            log.warning(
                "mail %s (%s) attempt %d failed, retry in %.0fs: %s",
                row.id,
                row.kind,
                attempts,
                delay,
                error,
            )
            await self._outbox.retry_later(
                row.id, self.worker, attempts=attempts, at=now + delay, error=error
            )
            return
        abandoned = await self._outbox.finish(
            row.id, self.worker, status=ABANDONED, now=now, attempts=attempts, error=error
        )
        if abandoned:
            await self._events.record(
                "mail_failed",
                outcome="failure",
                context=row_context(row),
                user_id=row.user_id,
                mail_id=row.id,
                kind=row.kind,
                attempts=attempts,
                error=type(exc).__name__,
            )
