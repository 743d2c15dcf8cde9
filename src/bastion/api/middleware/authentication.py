"""Bearer-token verification, a step of the edge layer.

The result (a principal, or why there is none) goes into the request state;
the ``current_user``/``require`` dependencies only read it. Tokens are read
from the ``Authorization`` header alone: never a query string or a cookie,
where they would leak into logs and be sent cross-site (RFC 6750 §5.3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.types import Scope

from bastion.api.middleware.context import STATE_USER_ID
from bastion.errors import InvalidToken
from bastion.types import Principal

#: Private keys (see ``context.STATE_USER_ID``).
STATE_PRINCIPAL = "_bastion_principal"
STATE_AUTH_ERROR = "_bastion_auth_error"


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if there is one
    (``""`` for an ``Authorization`` header of another scheme or none)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token:
                return token
            return ""
    return None


class BearerAuthentication:
    """Verifies a bearer token when one is sent and records the outcome.

    Args:
        authenticate: Token to principal; raises :class:`InvalidToken`.
    """

    __slots__ = ("authenticate",)

    def __init__(self, authenticate: Callable[[str], Principal]) -> None:
        self.authenticate = authenticate

    def run(self, scope: Scope, state: dict[str, Any]) -> None:
        """Put the principal (or the reason for none) into ``state``."""
        token = bearer_token(scope)
        if token is None:
            return
        try:
            principal = self.authenticate(token) if token else None
        except InvalidToken as exc:
            state[STATE_AUTH_ERROR] = exc
            return
        if principal is None:
            state[STATE_AUTH_ERROR] = InvalidToken()
        else:
            state[STATE_PRINCIPAL] = principal
            state[STATE_USER_ID] = principal.user_id
