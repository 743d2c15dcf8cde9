"""Each step of the edge layer on its own (the layer is tested over HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.api.middleware.authentication import (
    STATE_AUTH_ERROR,
    STATE_PRINCIPAL,
    BearerAuthentication,
)
from bastion.api.middleware.bodylimit import BodyLimit
from bastion.api.middleware.context import STATE_USER_ID, route_path
from bastion.api.middleware.headers import SecurityHeaders, Surface
from bastion.api.middleware.probes import HealthShortcut
from bastion.errors import InvalidToken
from bastion.security.headers import SecurityHeadersPolicy
from bastion.types import Principal

HEADERS = SecurityHeaders(SecurityHeadersPolicy())


def _scope(method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {"type": "http", "method": method, "path": "/users", "headers": headers or []}


def test_route_path_strips_the_root_path() -> None:
    assert route_path({"path": "/svc/auth/token", "root_path": "/svc"}) == "/auth/token"
    assert route_path({"path": "/auth/token", "root_path": ""}) == "/auth/token"
    assert route_path({"path": "/other", "root_path": "/svc"}) == "/other"


def test_security_headers_replace_software_names_and_add_the_policy() -> None:
    out = dict(HEADERS.apply([(b"server", b"uvicorn")], surface=Surface.API, https=False))
    assert b"server" not in out
    assert out[b"cache-control"] == b"no-store"
    assert out[b"content-security-policy"].startswith(b"default-src 'none'")
    assert b"strict-transport-security" not in out


def test_security_headers_keep_an_apps_own_cache_control() -> None:
    given = [(b"cache-control", b"public, max-age=300")]
    out = HEADERS.apply(given, surface=Surface.API, https=True)
    assert [v for k, v in out if k == b"cache-control"] == [b"public, max-age=300"]
    assert any(k == b"strict-transport-security" for k, _ in out)


def test_docs_paths_get_the_docs_policy() -> None:
    assert HEADERS.is_docs("/docs")
    assert not HEADERS.is_docs("/users")
    out = dict(HEADERS.apply([], surface=Surface.DOCS, https=False))
    assert b"script-src 'self'" in out[b"content-security-policy"]


def test_health_shortcut_matches_get_health_only() -> None:
    health = HealthShortcut("/auth-prefix")
    assert health.matches("GET", "/auth-prefix/health")
    assert not health.matches("POST", "/auth-prefix/health")
    assert not health.matches("GET", "/health")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        ([(b"content-length", b"10")], None),
        ([(b"content-length", b"70000")], 413),
        ([(b"content-length", b"abc")], 413),
        ([(b"transfer-encoding", b"chunked")], None),
        ([(b"transfer-encoding", b"chunked"), (b"content-length", b"0")], 400),
    ],
)
def test_body_framing(headers: list[tuple[bytes, bytes]], expected: int | None) -> None:
    assert BodyLimit(64 * 1024).problem(_scope(headers=headers)) == expected


def test_bodyless_methods_are_not_wrapped_but_others_are() -> None:
    async def receive() -> Any:
        return {}

    async def send(_message: Any) -> None:
        return None

    limit = BodyLimit()
    assert limit.wrap(_scope("GET"), receive, send) == (receive, send)
    assert limit.wrap(_scope("DELETE"), receive, send)[0] is not receive


def _principal(token: str) -> Principal:
    if token != "good":
        raise InvalidToken()
    return Principal(user_id=7, session_id="s", token_id="t")


def test_bearer_authentication_records_the_principal_or_the_error() -> None:
    auth = BearerAuthentication(_principal)
    good: dict[str, Any] = {}
    auth.run(_scope(headers=[(b"authorization", b"Bearer good")]), good)
    assert good[STATE_PRINCIPAL].user_id == 7
    assert good[STATE_USER_ID] == 7
    bad: dict[str, Any] = {}
    auth.run(_scope(headers=[(b"authorization", b"Bearer bad")]), bad)
    assert isinstance(bad[STATE_AUTH_ERROR], InvalidToken)
    other: dict[str, Any] = {}
    auth.run(_scope(headers=[(b"authorization", b"Basic eDp5")]), other)
    assert isinstance(other[STATE_AUTH_ERROR], InvalidToken)
    none: dict[str, Any] = {}
    auth.run(_scope(), none)
    assert none == {}
