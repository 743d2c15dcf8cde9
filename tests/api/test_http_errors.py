"""Client mistakes get clear 4xx answers, never 500; the token endpoint speaks RFC 6749 §5.2.

Also: the security headers are on every kind of answer.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import (
    GOOD_PASSWORD,
    RunningServer,
    ServerFactory,
    bearer,
    login,
    make_admin,
    register,
)

_names = itertools.count()
MAX_BODY = 64 * 1024
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def unique_name() -> str:
    """A username no other test of the module uses."""
    return f"err{next(_names)}"


@pytest.fixture(scope="module")
async def admin_token(shared_server: RunningServer) -> str:
    """An admin's access token on the module's server."""
    admin = await make_admin(shared_server, "errorsadmin")
    async with httpx.AsyncClient(base_url=shared_server.base_url) as http:
        return str((await login(http, admin["username"]))["access_token"])


# -- 415: JSON endpoints take JSON only ----------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonx",
        None,
    ],
)
async def test_registration_with_a_non_json_content_type_is_415(
    shared_client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"username": "x", "email": "x@example.com", "age": 30, "password": "y"}'
    response = await shared_client.post("/users", content=body, headers=headers)
    assert response.status_code == 415


async def test_json_content_type_with_charset_is_accepted(
    shared_client: httpx.AsyncClient,
) -> None:
    name = unique_name()
    body = (
        f'{{"username": "{name}", "email": "{name}@example.com", "age": 30, '
        f'"password": "{GOOD_PASSWORD}"}}'
    )
    response = await shared_client.post(
        "/users", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert response.status_code == 201, response.text


async def test_permissions_update_with_a_non_json_content_type_is_415(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await shared_client.put(
        "/users/1/permissions",
        content=b"permissions=admin",
        headers={**FORM, **bearer(admin_token)},
    )
    assert response.status_code == 415


async def test_password_change_with_a_non_json_content_type_is_415(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await shared_client.post(
        "/users/me/password",
        data={"current_password": GOOD_PASSWORD, "new_password": GOOD_PASSWORD + "!"},
        headers=bearer(admin_token),
    )
    assert response.status_code == 415


# -- 413: bodies over 64 KiB ---------------------------------------------------------


def _json_body(size: int) -> bytes:
    """A JSON registration body of exactly ``size`` bytes (the username is the filler)."""
    head = b'{"email": "big@example.com", "age": 30, "password": "x", "username": "'
    tail = b'"}'
    return head + b"u" * (size - len(head) - len(tail)) + tail


async def test_body_over_64_kib_is_413(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.post("/users", content=_json_body(MAX_BODY + 1), headers=JSON)
    assert response.status_code == 413


async def test_body_of_exactly_64_kib_is_parsed(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.post("/users", content=_json_body(MAX_BODY), headers=JSON)
    assert response.status_code == 422  # read and refused on its merits (the username)


async def _chunks() -> AsyncIterator[bytes]:
    # 68 KiB of JSON whitespace, sent chunked (no Content-Length). Small enough
    # to sit in socket buffers, so the client reads the early answer.
    for _ in range(17):
        yield b" " * 4096


async def test_streamed_json_body_over_64_kib_is_413(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.post("/users", content=_chunks(), headers=JSON)
    assert response.status_code == 413


async def test_streamed_token_request_over_64_kib_is_413(
    shared_client: httpx.AsyncClient,
) -> None:
    response = await shared_client.post("/auth/token", content=_chunks(), headers=FORM)
    assert response.status_code == 413


async def raw_status(base_url: str, request: bytes) -> int:
    """Send ``request`` as is over a new connection; the status of the answer."""
    url = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


@pytest.mark.parametrize("length", [b"abc", b"-1", b"99999999999999999999999", b"2, 2"], ids=repr)
async def test_malformed_content_length_is_a_client_error(
    shared_server: RunningServer, length: bytes
) -> None:
    request = (
        b"POST /users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + length + b"\r\nConnection: close\r\n\r\n{}"
    )
    status = await raw_status(shared_server.base_url, request)
    assert 400 <= status < 500


async def test_token_request_over_64_kib_is_413(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "x", "password": "p" * MAX_BODY},
    )
    assert response.status_code == 413


# -- 422: malformed JSON -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"username": ', id="truncated"),
        pytest.param(b"{username: 'x'}", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"a": 1,}', id="trailing-comma"),
        pytest.param(b"\xff\xfe{}", id="invalid-utf8"),
    ],
)
async def test_malformed_json_is_422(shared_client: httpx.AsyncClient, raw: bytes) -> None:
    response = await shared_client.post("/users", content=raw, headers=JSON)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


async def test_malformed_json_permissions_update_is_422(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await shared_client.put(
        "/users/1/permissions",
        content=b'{"permissions": [',
        headers={**JSON, **bearer(admin_token)},
    )
    assert response.status_code == 422


# -- 405 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/users"),
        ("DELETE", "/users"),
        ("PUT", "/users"),
        ("PATCH", "/users/1"),
        ("POST", "/users/1"),
        ("GET", "/auth/token"),
        ("PUT", "/auth/token"),
        ("POST", "/health"),
        ("GET", "/users/1/permissions"),
    ],
)
async def test_unsupported_method_is_405(
    shared_client: httpx.AsyncClient, admin_token: str, method: str, path: str
) -> None:
    response = await shared_client.request(method, path, headers=bearer(admin_token))
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/json")


# -- no 500 for odd input ------------------------------------------------------------

NASTY_BODIES: list[Any] = [
    pytest.param(b"null", id="null"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'"string"', id="string"),
    pytest.param(b"12345678901234567890123456789", id="huge-number"),
    pytest.param(b'{"username": null, "email": null, "age": null, "password": null}', id="nulls"),
    pytest.param(
        b'{"username": "nul", "email": "a@example.com", "age": 1e400, "password": "x"}',
        id="float-overflow",
    ),
    pytest.param(
        b'{"username": "nan", "email": "a@example.com", "age": NaN, "password": "x"}', id="nan"
    ),
    pytest.param(b'{"age": ' + b"9" * 5000 + b"}", id="5000-digit-int"),
    pytest.param(b'{"username": {"$ne": null}, "email": {"a": {"b": {}}}}', id="nested-objects"),
    pytest.param(b"[" * 20000 + b"]" * 20000, id="deeply-nested"),
    pytest.param(
        b'{"username": "ab\\u0000cd", "email": "nul\\u0000@example.com", "age": 30,'
        b' "password": "pass\\u0000word-long-enough"}',
        id="nul-escapes",
    ),
    pytest.param(b'{"username": "ab\x00cd", "age": 30}', id="raw-nul"),
    pytest.param(
        b'{"username": "\xc3\x28", "email": "\xed\xa0\x80@example.com"}', id="invalid-utf8"
    ),
    pytest.param(b'\xef\xbb\xbf{"username": "bom"}', id="bom"),
    pytest.param(b'{"username": "dup", "username": "dup2", "age": 30}', id="duplicate-keys"),
]


@pytest.mark.parametrize("raw", NASTY_BODIES)
async def test_odd_registration_bodies_are_client_errors(
    shared_client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await shared_client.post("/users", content=raw, headers=JSON)
    assert 400 <= response.status_code < 500, response.text


NASTY_AUTHENTICATED: list[Any] = [
    pytest.param("PUT", "/users/1/permissions", b"null", id="permissions-null"),
    pytest.param("PUT", "/users/1/permissions", b'{"permissions": [null]}', id="permissions-item"),
    pytest.param(
        "PUT", "/users/1/permissions", b'{"permissions": ["a\\u0000b"]}', id="permissions-nul"
    ),
    pytest.param(
        "PUT", "/users/1/permissions", b'{"permissions": ["\xff\xfe"]}', id="permissions-utf8"
    ),
    pytest.param("PUT", "/users/1/permissions", b"[" * 20000 + b"]" * 20000, id="permissions-deep"),
    pytest.param(
        "PUT", f"/users/{2**64}/permissions", b'{"permissions": []}', id="permissions-huge-id"
    ),
    pytest.param("POST", "/users/me/password", b"{}", id="password-empty"),
    pytest.param("POST", "/users/me/password", b'{"current_password": null}', id="password-null"),
    pytest.param(
        "POST",
        "/users/me/password",
        b'{"current_password": {"$gt": ""}, "new_password": [1]}',
        id="password-objects",
    ),
    pytest.param(
        "POST",
        "/users/me/password",
        b'{"current_password": "x\\u0000y", "new_password": "z\\u0000' + b"w" * 20 + b'"}',
        id="password-nul",
    ),
    pytest.param("GET", "/users/%00", b"", id="id-nul"),
    pytest.param("GET", "/users/%FF", b"", id="id-bad-utf8"),
    pytest.param("GET", "/users/1%20OR%201=1", b"", id="id-injection"),
    pytest.param("GET", "/users/me%00", b"", id="me-nul"),
    pytest.param("DELETE", "/users/-0", b"", id="delete-minus-zero"),
]


@pytest.mark.parametrize(("method", "path", "raw"), NASTY_AUTHENTICATED)
async def test_odd_authenticated_requests_are_client_errors(
    shared_client: httpx.AsyncClient, admin_token: str, method: str, path: str, raw: bytes
) -> None:
    response = await shared_client.request(
        method, path, content=raw or None, headers={**JSON, **bearer(admin_token)}
    )
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("\\ud800 lone high surrogate", id="lone-high-surrogate"),
        pytest.param("lone low surrogate \\udfff", id="lone-low-surrogate"),
        pytest.param("nul \\u0000 inside a password", id="nul"),
        pytest.param("\\u202e right-to-left override", id="bidi"),
    ],
)
async def test_odd_passwords_at_registration_are_not_server_errors(
    shared_client: httpx.AsyncClient, password: str
) -> None:
    name = unique_name()
    raw = (
        f'{{"username": "{name}", "email": "{name}@example.com", "age": 30, '
        f'"password": "{password}"}}'
    ).encode()
    response = await shared_client.post("/users", content=raw, headers=JSON)
    assert response.status_code in {201, 422}, response.text


async def test_lone_surrogate_current_password_is_not_a_server_error(
    shared_client: httpx.AsyncClient,
) -> None:
    name = unique_name()
    await register(shared_client, name)
    tokens = await login(shared_client, name)
    raw = b'{"current_password": "\\ud800xxxxxxxxxxxxxxxx", "new_password": "' + (
        GOOD_PASSWORD.encode() + b' 2"}'
    )
    response = await shared_client.post(
        "/users/me/password", content=raw, headers={**JSON, **bearer(tokens)}
    )
    assert 400 <= response.status_code < 500, response.text


# -- the token endpoint (RFC 6749 §5.2) ----------------------------------------------

OAUTH_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
}


def assert_oauth_error(response: httpx.Response, error: str) -> None:
    """A 400 with an RFC 6749 §5.2 body naming ``error``, and no caching (§5.1)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error"] in OAUTH_ERRORS
    assert set(body) <= {"error", "error_description", "error_uri"}
    assert response.headers["cache-control"] == "no-store"


async def test_wrong_password_is_invalid_grant(shared_client: httpx.AsyncClient) -> None:
    name = unique_name()
    await register(shared_client, name)
    response = await shared_client.post(
        "/auth/token",
        data={"grant_type": "password", "username": name, "password": GOOD_PASSWORD + "x"},
    )
    assert_oauth_error(response, "invalid_grant")
    assert GOOD_PASSWORD not in response.text


async def test_unknown_user_is_invalid_grant(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "ghost_user", "password": GOOD_PASSWORD},
    )
    assert_oauth_error(response, "invalid_grant")


async def test_unknown_refresh_token_is_invalid_grant(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": "not-a-token"}
    )
    assert_oauth_error(response, "invalid_grant")


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"username": "a", "password": "b"}, id="no-grant-type"),
        pytest.param({"grant_type": "password", "password": "b"}, id="no-username"),
        pytest.param({"grant_type": "password", "username": "a"}, id="no-password"),
        pytest.param({"grant_type": "refresh_token"}, id="no-refresh-token"),
        pytest.param({}, id="empty"),
        # RFC 6749 §3.1: a parameter without a value counts as omitted.
        pytest.param({"grant_type": "", "username": "a", "password": "b"}, id="blank-grant-type"),
        pytest.param({"grant_type": "password", "username": "a", "password": ""}, id="blank-pw"),
        pytest.param({"grant_type": "refresh_token", "refresh_token": ""}, id="blank-refresh"),
    ],
)
async def test_missing_parameter_is_invalid_request(
    shared_client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    response = await shared_client.post("/auth/token", data=form, headers=FORM)
    assert_oauth_error(response, "invalid_request")


async def test_json_token_request_is_invalid_request(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.post(
        "/auth/token",
        json={"grant_type": "password", "username": "a", "password": GOOD_PASSWORD},
    )
    assert_oauth_error(response, "invalid_request")


@pytest.mark.parametrize("name", ["grant_type", "username", "password"])
async def test_repeated_parameter_is_invalid_request(
    shared_client: httpx.AsyncClient, name: str
) -> None:
    form = {"grant_type": "password", "username": "a", "password": GOOD_PASSWORD}
    pairs = [*form.items(), (name, form[name])]
    response = await shared_client.post("/auth/token", content=urlencode(pairs), headers=FORM)
    assert_oauth_error(response, "invalid_request")


@pytest.mark.parametrize(
    "grant_type", ["client_credentials", "authorization_code", "PASSWORD", "implicit"]
)
async def test_other_grant_type_is_unsupported_grant_type(
    shared_client: httpx.AsyncClient, grant_type: str
) -> None:
    response = await shared_client.post(
        "/auth/token",
        data={"grant_type": grant_type, "username": "a", "password": GOOD_PASSWORD},
    )
    assert_oauth_error(response, "unsupported_grant_type")


NASTY_FORMS: list[Any] = [
    pytest.param(b"grant_type=password&username=a%00b&password=xxxxxxxxxxxxxxx", id="nul-name"),
    pytest.param(b"grant_type=password&username=ab&password=x%00y", id="nul-password"),
    pytest.param(b"grant_type=password&username=%FF%FE&password=xxxxxxxxxxxxxxx", id="bad-utf8"),
    pytest.param(b"grant_type=password&username=%ED%A0%80&password=%ED%A0%80", id="surrogate"),
    pytest.param(b"grant_type=password&username=" + b"a" * 5000 + b"&password=x", id="long-name"),
    pytest.param(b"grant_type=password&username=\xff&password=\xfe", id="raw-bytes"),
    pytest.param(b"grant_type=refresh_token&refresh_token=%00", id="nul-refresh"),
    pytest.param(b"grant_type=refresh_token&refresh_token=" + b"r" * 3000, id="long-refresh"),
    pytest.param(b"&&&===&&", id="separators"),
    pytest.param(b"grant_type", id="bare-name"),
]


@pytest.mark.parametrize("raw", NASTY_FORMS)
async def test_odd_token_requests_are_client_errors(
    shared_client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await shared_client.post("/auth/token", content=raw, headers=FORM)
    assert 400 <= response.status_code < 500, response.text


# -- security headers on every kind of answer ----------------------------------------


async def _answers(client: httpx.AsyncClient, token: str) -> dict[int, httpx.Response]:
    return {
        200: await client.get("/users/me", headers=bearer(token)),
        400: await client.post("/auth/token", data={"grant_type": "nope"}),
        401: await client.get("/users/me"),
        404: await client.get("/no/such/path"),
        405: await client.patch("/users"),
        413: await client.post("/users", content=_json_body(MAX_BODY + 1), headers=JSON),
        415: await client.post("/users", content=b"x", headers={"Content-Type": "text/plain"}),
        422: await client.post("/users", json={}),
    }


@pytest.fixture(scope="module")
async def answers(shared_server: RunningServer, admin_token: str) -> dict[int, httpx.Response]:
    """One response of each status of interest, fetched once per server."""
    async with httpx.AsyncClient(base_url=shared_server.base_url) as http:
        found = await _answers(http, admin_token)
    assert {status: r.status_code for status, r in found.items()} == {s: s for s in found}
    return found


STATUSES = [200, 400, 401, 404, 405, 413, 415, 422]


@pytest.mark.parametrize("status", STATUSES)
async def test_security_headers_are_on_every_answer(
    answers: dict[int, httpx.Response], status: int
) -> None:
    headers = answers[status].headers
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("x-frame-options") == "DENY"
    assert headers.get("x-xss-protection") == "0"
    assert headers.get("referrer-policy") == "no-referrer"
    assert "cross-origin-opener-policy" in headers
    assert "cross-origin-resource-policy" in headers


@pytest.mark.parametrize("status", STATUSES)
async def test_api_answers_carry_the_strict_csp(
    answers: dict[int, httpx.Response], status: int
) -> None:
    csp = answers[status].headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp


@pytest.mark.parametrize("status", STATUSES)
async def test_no_answer_names_the_server_software(
    answers: dict[int, httpx.Response], status: int
) -> None:
    assert "server" not in answers[status].headers
    assert "x-powered-by" not in answers[status].headers


async def test_user_data_is_not_cached(shared_client: httpx.AsyncClient, admin_token: str) -> None:
    response = await shared_client.get("/users/me", headers=bearer(admin_token))
    assert "no-store" in response.headers["cache-control"]


async def test_token_response_is_not_cached(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "errorsadmin", "password": GOOD_PASSWORD},
    )
    assert response.status_code == 200
    assert "no-store" in response.headers["cache-control"]


async def test_blog_post_x_xss_protection_is_available_by_configuration(
    start_server: ServerFactory,
) -> None:
    server = await start_server(x_xss_protection="1; mode=block")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get("/health")
    assert response.headers["x-xss-protection"] == "1; mode=block"
