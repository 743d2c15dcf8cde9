"""``GET /events``: the security event log, for admins."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from bastion.api.schemas import EventOut, EventsPage, IsoDateTime
from bastion.errors import ValidationFailed
from bastion.services.events import EVENT_TYPES
from bastion.storage.protocols import EventQuery
from bastion.types import ADMIN

if TYPE_CHECKING:
    from bastion.api.app import Bastion

_MAX_ID = 2**63 - 1
_TIME = "ISO 8601 date-time (`2026-01-31T12:00:00Z`); without an offset it is UTC"


def encode_cursor(event_id: int) -> str:
    """An opaque cursor for the page after ``event_id``."""
    return base64.urlsafe_b64encode(f"e{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Inverse of :func:`encode_cursor`; 422 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        # Event ids are positive 64-bit integers: a forged larger number must
        # be a 422, not a driver overflow (a 500).
        if raw.startswith("e") and raw[1:].isdigit() and 0 < int(raw[1:]) <= _MAX_ID:
            return int(raw[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ValidationFailed(
        "cursor is not one this API returned",
        code="invalid_cursor",
        field="cursor",
        location="query",
    )


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def build_router(auth: Bastion) -> APIRouter:
    """The ``/events`` route."""
    router = auth.api_router(tags=["events"])
    recorder = auth.container.events

    @router.get(
        "/events",
        response_model=EventsPage,
        dependencies=[Depends(auth.require(ADMIN))],
        responses={401: {}, 403: {}},
    )
    async def list_events(
        type: Annotated[str | None, Query(json_schema_extra={"enum": sorted(EVENT_TYPES)})] = None,
        user_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
        since: Annotated[IsoDateTime | None, Query(description=_TIME)] = None,
        until: Annotated[IsoDateTime | None, Query(description=_TIME)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
    ) -> EventsPage:
        """Security events, newest first."""
        if type is not None and type not in EVENT_TYPES:
            raise ValidationFailed(
                f"unknown event type {type!r}", code="invalid_type", field="type", location="query"
            )
        query = EventQuery(
            type=type,
            user_id=user_id,
            since=_epoch(since),
            until=_epoch(until),
            before_id=decode_cursor(cursor) if cursor else None,
            limit=limit + 1,
        )
        found = await recorder.query(query)
        page, more = found[:limit], len(found) > limit
        events = [EventOut.of(event) for event in page]
        next_cursor = encode_cursor(page[-1].id or 0) if more and page else None
        return EventsPage(events=events, next_cursor=next_cursor)

    return router
