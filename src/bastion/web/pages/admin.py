"""``/admin``: the console for holders of ``admin``.

Overview (the last 24 hours as a chart; live sessions), users (search and
paging), one user (permissions, deletion, their events) and the event log
(filters, paging, a chart). Reads and changes go through the same services
as the API, so a change here records the same events as one made there.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bastion.services.events import EVENT_TYPES, EventCountQuery, EventQuery
from bastion.types import User, utc
from bastion.web.charts import Chart, stacked_bars
from bastion.web.pages.account import validation_messages
from bastion.web.pages.sessions import session_rows
from bastion.web.site import FORM_ERROR, PageError, Site, Viewer

#: What the overview charts (SPEC: logins, failures, throttles, rate limits).
OVERVIEW_SERIES = (
    ("authn_login_success", "Sign-ins"),
    ("authn_login_fail", "Failed sign-ins"),
    ("authn_login_lock", "Throttled"),
    ("excess_rate_limit_exceeded", "Rate limited"),
)
HOUR = 3600
DAY = 24 * HOUR
USERS_PER_PAGE = 25
EVENTS_PER_PAGE = 50
#: Buckets of the events chart, whatever the range.
EVENT_BUCKETS = 24
MAX_ID = 2**63 - 1


def parse_id(text: str) -> int | None:
    """A positive 64-bit id, or ``None``."""
    text = text.strip()
    if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID:
        return int(text)
    return None


def parse_time(text: str) -> float | None:
    """A ``datetime-local`` value (or ISO 8601), read as UTC when naive."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def local_input(epoch: float | None) -> str:
    """A UTC time as a ``datetime-local`` input value."""
    return "" if epoch is None else utc(epoch).strftime("%Y-%m-%dT%H:%M")


def bucket_label(epoch: float, width: float) -> str:
    """How a bucket's start is written under the chart."""
    moment = utc(epoch)
    return moment.strftime("%H:%M" if width < DAY else "%m-%d")


#: Notices a redirect may ask the user page to show, by key (never URL text).
USER_NOTICES = {
    "1": "Permissions saved.",
    "sessions": "Every session of this user is signed out.",
    "mfa": "Every second factor of this user is removed; the user was told by mail.",
    "unlock": "The sign-in lock is lifted.",
}


def build_router(site: Site) -> APIRouter:
    """The ``/admin`` pages."""
    router = APIRouter(include_in_schema=False)
    container = site.container
    users = container.user_service
    recorder = container.events

    def add(path: str, handler: Any, method: str = "GET") -> None:
        router.add_api_route(site.url(path), site.page(handler), methods=[method])

    async def chart(
        title: str,
        since: float,
        width: float,
        buckets: int,
        series: tuple[tuple[str, str], ...],
        **filters: Any,
    ) -> Chart:
        query = EventCountQuery(
            since=since,
            width=width,
            buckets=buckets,
            types=tuple(kind for kind, _ in series),
            **filters,
        )
        values = [[0] * buckets for _ in series]
        row_of = {kind: i for i, (kind, _) in enumerate(series)}
        for count in await recorder.counts(query):
            values[row_of[count.type]][count.bucket] += count.count
        labels = [bucket_label(since + i * width, width) for i in range(buckets)]
        return stacked_bars(title, [name for _, name in series], labels, values)

    # -- overview ------------------------------------------------------------------

    async def overview(request: Request) -> Response:
        viewer = await site.admin(request)
        now = container.clock.now()
        # 24 whole hours ending with the current one.
        since = (math.floor(now / HOUR) + 1) * HOUR - DAY
        drawn = await chart(
            "Sign-in activity, last 24 hours (UTC)", since, HOUR, 24, OVERVIEW_SERIES
        )
        api_sessions, browser_sessions = await container.browser_sessions.active_counts()
        return site.render(
            request,
            "admin/overview.html",
            {
                "chart": drawn,
                "api_sessions": api_sessions,
                "browser_sessions": browser_sessions,
                "since": since,
            },
            viewer=viewer,
        )

    # -- users -------------------------------------------------------------------

    async def user_list(request: Request) -> Response:
        viewer = await site.admin(request)
        term = request.query_params.get("q", "")[:100]
        after = request.query_params.get("after", "")[:20] or None
        found = await users.search(term, USERS_PER_PAGE + 1, after=after)
        page, more = found[:USERS_PER_PAGE], len(found) > USERS_PER_PAGE
        return site.render(
            request,
            "admin/users.html",
            {
                "q": term,
                "users": page,
                "next_after": page[-1].username if more and page else None,
                "paged": after is not None,
            },
            viewer=viewer,
        )

    async def target_of(request: Request) -> User:
        user_id = parse_id(request.path_params.get("user_id", ""))
        if user_id is None:
            raise PageError(404, "No such user.")
        return await users.get(user_id)

    async def user_page_of(
        request: Request,
        viewer: Viewer,
        user: User,
        events: list[Any],
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
    ) -> Response:
        return site.render(
            request,
            "admin/user.html",
            {
                "user": user,
                "events": events,
                "errors": errors or {},
                "notice": USER_NOTICES.get(request.query_params.get("done", "")),
                "sessions": await session_rows(site, user.id, None),
                "locked_until": await users.locked_until(user),
                "mfa": await site.container.mfa.mfa.status(user.id),
            },
            viewer=viewer,
            status=status,
        )

    async def user_events(user: User) -> list[Any]:
        return await recorder.query(EventQuery(user_id=user.id, limit=20))

    async def user_detail(request: Request) -> Response:
        viewer = await site.admin(request)
        user = await target_of(request)
        return await user_page_of(request, viewer, user, await user_events(user))

    async def set_permissions(request: Request) -> Response:
        viewer = await site.admin(request)
        form = await site.form(request, viewer)
        user = await target_of(request)
        names = site.field(form, "permissions").replace(",", " ").split()
        try:
            permissions = site.hooks.parse_permissions(names)
        except ValidationError as exc:
            message = next(iter(validation_messages(exc).values()), "invalid permissions")
            return await user_page_of(
                request,
                viewer,
                user,
                await user_events(user),
                status=FORM_ERROR,
                errors={"permissions": message},
            )
        await users.set_permissions(
            user.id, permissions, actor=viewer.principal, context=site.context(request)
        )
        return RedirectResponse(site.url(f"/admin/users/{user.id}?done=1"), status_code=303)

    async def delete_user(request: Request) -> Response:
        viewer = await site.admin(request)
        await site.form(request, viewer)
        user = await target_of(request)
        await users.delete(user.id, actor=viewer.principal, context=site.context(request))
        if user.id == viewer.user.id:
            return RedirectResponse(site.url("/account/login"), status_code=303)
        return RedirectResponse(site.url("/admin/users"), status_code=303)

    # -- events ------------------------------------------------------------------

    async def resolve_user(text: str) -> tuple[int | None, bool]:
        """A user filter by id or exact username; ``(None, False)`` if unknown."""
        text = text.strip()[:64]
        if not text:
            return None, True
        user_id = parse_id(text)
        if user_id is not None:
            return user_id, True
        for user in await users.search(text, 5):
            if user.username.lower() == text.lower():
                return user.id, True
        return None, False

    async def event_log(request: Request) -> Response:
        viewer = await site.admin(request)
        params = request.query_params
        errors: dict[str, str] = {}
        kind = params.get("type", "")
        if kind and kind not in EVENT_TYPES:
            errors["type"] = "Unknown event type."
            kind = ""
        user_text = params.get("user", "")[:64]
        user_id, known = await resolve_user(user_text)
        if not known:
            errors["user"] = "No user by that name or id."
        ip = params.get("ip", "").strip()[:64] or None
        now = container.clock.now()
        until_text, since_text = params.get("until", ""), params.get("since", "")
        until = parse_time(until_text)
        since = parse_time(since_text)
        if until_text and until is None:
            errors["until"] = "Not a date and time."
        if since_text and since is None:
            errors["since"] = "Not a date and time."
        if since is not None and until is not None and since >= until:
            errors["since"] = "The start must come before the end."
            since = None
        before = parse_id(params.get("before", ""))
        filters: dict[str, Any] = {"user_id": user_id, "ip": ip}
        found = []
        if not errors.get("user"):
            found = await recorder.query(
                EventQuery(
                    type=kind or None,
                    since=since,
                    until=until,
                    before_id=before,
                    limit=EVENTS_PER_PAGE + 1,
                    **filters,
                )
            )
        page, more = found[:EVENTS_PER_PAGE], len(found) > EVENTS_PER_PAGE
        chart_until = until if until is not None else now
        chart_since = since if since is not None else chart_until - DAY
        width = max((chart_until - chart_since) / EVENT_BUCKETS, 1.0)
        series = ((kind, kind),) if kind else tuple((name, name) for name in sorted(EVENT_TYPES))
        drawn = await chart(
            "Events over time (UTC)",
            chart_since,
            width,
            EVENT_BUCKETS,
            series,
            **filters,
        )
        # The chart by type is for reading the table below; types with no
        # event in the range add nothing but legend.
        keep = [i for i, total in enumerate(drawn.totals) if total] or [0]
        drawn = stacked_bars(
            drawn.title,
            [drawn.names[i] for i in keep],
            drawn.labels,
            [drawn.values[i] for i in keep],
        )
        query_of_next = None
        if more and page:
            query = {
                "type": kind,
                "user": user_text,
                "ip": ip or "",
                "since": since_text,
                "until": until_text,
                "before": str(page[-1].id),
            }
            query_of_next = {name: value for name, value in query.items() if value}
        return site.render(
            request,
            "admin/events.html",
            {
                "events": page,
                "chart": drawn,
                "types": sorted(EVENT_TYPES),
                "errors": errors,
                "filters": {
                    "type": kind,
                    "user": user_text,
                    "ip": ip or "",
                    "since": local_input(since) if since is not None else "",
                    "until": local_input(until) if until is not None else "",
                },
                "next_query": query_of_next,
            },
            viewer=viewer,
            status=FORM_ERROR if errors else 200,
        )

    add("/admin", overview)
    add("/admin/users", user_list)
    add("/admin/users/{user_id}", user_detail)
    add("/admin/users/{user_id}/permissions", set_permissions, "POST")
    add("/admin/users/{user_id}/delete", delete_user, "POST")
    add("/admin/events", event_log)
    return router
