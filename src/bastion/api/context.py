"""Small readers of per-request state for the routes."""

from __future__ import annotations

from starlette.requests import Request

from bastion.api.middleware.context import STATE_CLIENT_IP, STATE_REQUEST_ID
from bastion.types import RequestContext

_MAX_USER_AGENT = 512


def request_context(request: Request) -> RequestContext:
    """Who is asking, for security events."""
    state = request.scope.get("state", {})
    user_agent = request.headers.get("user-agent")
    return RequestContext(
        ip=state.get(STATE_CLIENT_IP),
        user_agent=user_agent[:_MAX_USER_AGENT] if user_agent else None,
        request_id=state.get(STATE_REQUEST_ID),
    )
