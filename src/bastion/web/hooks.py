"""What the pages borrow from the HTTP API without importing it (the API
builds a :class:`PageHooks` when it mounts them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request

from bastion.errors import BastionError
from bastion.types import RequestContext


class Registration(Protocol):
    """Validated registration input (the API's schema, handed in by the API)."""

    @property
    def username(self) -> str:
        """As typed, valid."""

    @property
    def email(self) -> str:
        """Normalised address."""

    @property
    def age(self) -> int:
        """Whole years."""

    @property
    def password(self) -> str:
        """As typed (the policy is checked by the service)."""


@dataclass(frozen=True, slots=True)
class PageHooks:
    """What the pages borrow from the HTTP API without importing it.

    Attributes:
        status_of: The one map from Bastion errors to HTTP statuses.
        context_of: Who is asking (client address, user agent, request id).
        parse_registration: The API's registration schema; raises
            ``pydantic.ValidationError``.
        parse_permissions: The API's permission-list schema; the same.
        on_login: Counts a login outcome (``success``, ``failure``,
            ``throttled``) in the metrics.
        limit_headers: ``Retry-After`` and the IETF RateLimit headers of a
            refusal, from a rule and the limiter's decision.
    """

    status_of: Callable[[BastionError], int]
    context_of: Callable[[Request], RequestContext]
    parse_registration: Callable[[dict[str, Any]], Registration]
    parse_permissions: Callable[[list[str]], tuple[str, ...]]
    on_login: Callable[[str], None]
    limit_headers: Callable[[Any, Any], list[tuple[bytes, bytes]]]
