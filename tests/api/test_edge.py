"""The HTTP edge (issue 17): body framing, client identity, prefixes, request state.

The edge does not touch the database, so these run on SQLite.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI, Request
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion import Bastion, Settings, create_app
from bastion.storage.protocols import EventQuery
from bastion.types import Principal
from tests.conftest import (
    GOOD_PASSWORD,
    RunningServer,
    ServerFactory,
    SettingsFactory,
    bearer,
    login,
    register,
)

MAX_BODY = 64 * 1024
WRONG = "definitely not the password"


@pytest.fixture
def backend() -> str:
    """The edge runs before any storage: SQLite suffices."""
    return "sqlite"


async def raw_answer(base_url: str, request: bytes, body_chunks: int = 0) -> bytes:
    """Send ``request`` as is, then ``body_chunks`` chunks of 4 KiB; the status line."""
    url = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(request)
        for _ in range(body_chunks):
            writer.write(b"1000\r\n" + b" " * 4096 + b"\r\n")
        if body_chunks:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        return await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


async def _start_uvicorn(
    app: ASGIApp, sock: socket.socket, **config: Any
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning", **config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.01)
    return server, task


def registration(name: str) -> dict[str, Any]:
    """A valid registration body."""
    return {"username": name, "email": f"{name}@example.com", "age": 30, "password": GOOD_PASSWORD}


# -- #1: the body limit counts every body ------------------------------------------


@pytest.mark.parametrize(
    "framing",
    [
        b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
        b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
    ],
    ids=["te-then-cl", "cl-then-te"],
)
@pytest.mark.parametrize("path", [b"/users", b"/auth/token"])
async def test_content_length_with_transfer_encoding_is_400(
    server: RunningServer, framing: bytes, path: bytes
) -> None:
    """RFC 9112 §6.3: a doubly framed request is refused, never parsed."""
    request = (
        b"POST " + path + b" HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: application/json\r\n" + framing + b"\r\n"
    )
    status_line = await raw_answer(server.base_url, request, body_chunks=20)
    assert status_line.split()[1] == b"400"


async def _call(app: ASGIApp, scope: dict[str, Any], body: list[bytes]) -> tuple[int, bytes, int]:
    """One request straight into the ASGI app: its status, its body, and how
    many body chunks the app pulled from the server."""
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": True} for chunk in body
    ]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[Message] = []
    pulled = 0

    async def receive() -> Message:
        nonlocal pulled
        if messages:
            pulled += 1
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    base: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "2",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
        "query_string": b"",
    }
    await app({**base, **scope}, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), content, pulled


@pytest.fixture
async def app_in_process(make_settings: SettingsFactory) -> AsyncIterator[FastAPI]:
    """The service app with its lifespan running, to be called without a server."""
    app = create_app(await make_settings())
    async with app.router.lifespan_context(app):
        yield app


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/users", b"application/json"), ("/auth/token", b"application/x-www-form-urlencoded")],
)
async def test_a_body_without_length_or_chunked_headers_is_still_counted(
    app_in_process: FastAPI, path: str, content_type: bytes
) -> None:
    """HTTP/2 in library mode: with neither header, a 4 MiB body is refused
    after at most 64 KiB of it was read."""
    scope = {
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "headers": [(b"host", b"test"), (b"content-type", content_type)],
    }
    status, _, pulled = await _call(app_in_process, scope, [b" " * 4096] * 1024)
    # 413 from the body limit; the token form's field bound may refuse first (400).
    assert status in (400, 413)
    assert pulled <= MAX_BODY // 4096 + 1


async def test_a_chunked_token_form_is_refused_early(server: RunningServer) -> None:
    """The token form's fields are bounded: an oversized one is a 400 (RFC 6749
    ``invalid_request``) or the body limit's 413, never parsed whole."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"grant_type=password&username=x&password="
        for _ in range(17):
            yield b"p" * 4096

    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post(
            "/auth/token",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code in (400, 413)
    if response.status_code == 400:
        assert response.json()["error"] == "invalid_request"


# -- #3: IPv4-mapped peers are IPv4 clients --------------------------------------------


async def test_ipv4_mapped_peers_get_one_budget_each(make_settings: SettingsFactory) -> None:
    """Behind a dual-stack socket two IPv4 clients do not share ``::/64``."""
    app = create_app(await make_settings(register_rate_limit="2/minute"))
    async with app.router.lifespan_context(app):
        statuses = []
        for peer, name in [
            ("::ffff:192.0.2.1", "mapone"),
            ("::ffff:192.0.2.1", "maptwo"),
            ("::ffff:192.0.2.2", "mapthree"),
        ]:
            transport = httpx.ASGITransport(app=app, client=(peer, 4000))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                statuses.append((await client.post("/users", json=registration(name))).status_code)
    assert statuses == [201, 201, 201]


async def test_ipv4_mapped_peer_is_recorded_as_ipv4(make_settings: SettingsFactory) -> None:
    """A dual-stack socket's ``::ffff:127.0.0.1`` peer is 127.0.0.1 in events."""
    if not socket.has_dualstack_ipv6():
        pytest.fail("this machine has no dual-stack IPv6 sockets")
    app = create_app(await make_settings())
    sock = socket.socket(socket.AF_INET6)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::ffff:127.0.0.1", 0))
    port = sock.getsockname()[1]
    server, task = await _start_uvicorn(app, sock)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await register(client, "dualstack")
        auth = app.state.bastion
        assert isinstance(auth, Bastion)
        [event] = await auth.container.events.query(EventQuery(type="user_created"))
    finally:
        server.should_exit = True
        await task
        sock.close()
    assert event.ip == "127.0.0.1"


# -- #7: a root path or a Mount keeps the tight budgets ------------------------------------


async def _serve_with_root_path(
    app: ASGIApp, root_path: str, stack: list[Callable[[], Awaitable[None]]]
) -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server, task = await _start_uvicorn(app, sock, root_path=root_path)

    async def stop() -> None:
        server.should_exit = True
        await task
        sock.close()

    stack.append(stop)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_root_path_keeps_the_login_budget(make_settings: SettingsFactory) -> None:
    app = create_app(await make_settings(login_rate_limit="3/minute"))
    stack: list[Callable[[], Awaitable[None]]] = []
    try:
        base_url = await _serve_with_root_path(app, "/svc", stack)
        async with httpx.AsyncClient(base_url=base_url) as client:
            form = {"grant_type": "password", "username": "nobody", "password": WRONG}
            statuses = [(await client.post("/auth/token", data=form)).status_code for _ in range(4)]
    finally:
        for stop in reversed(stack):
            await stop()
    assert statuses == [400, 400, 400, 429]


async def test_a_mount_keeps_the_registration_budget(make_settings: SettingsFactory) -> None:
    inner = create_app(await make_settings(register_rate_limit="2/minute"))
    outer = Starlette(routes=[Mount("/svc", app=inner)])
    async with inner.router.lifespan_context(inner):
        transport = httpx.ASGITransport(app=outer)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            statuses = [
                (await client.post("/svc/users", json=registration(f"mount{n}"))).status_code
                for n in range(3)
            ]
    assert statuses == [201, 201, 429]


# -- #15: a trusted proxy's unparsable hop is its own client --------------------------------


async def test_unparsable_hops_from_a_trusted_proxy_are_distinct_clients(
    start_server: ServerFactory,
) -> None:
    server = await start_server(rate_limit="2/minute", trusted_proxies="127.0.0.1")
    async with httpx.AsyncClient(base_url=server.base_url) as client:

        async def via_proxy(hop: str) -> int:
            headers = {"X-Forwarded-For": hop}
            return (await client.get("/openapi.json", headers=headers)).status_code

        hidden = [await via_proxy("_hidden") for _ in range(3)]
        other = [await via_proxy("_other") for _ in range(2)]
        proxy_itself = await client.get("/openapi.json")
    assert hidden == [200, 200, 429]
    assert other == [200, 200]
    assert proxy_itself.status_code == 200, "the proxy's own budget is untouched"


# -- Also: request.state belongs to the host app too ---------------------------------------


def _host_app(settings: Settings, inject: dict[str, Any]) -> tuple[FastAPI, Bastion]:
    """A library user's app whose own middleware writes ``request.state``."""
    app = FastAPI()
    auth = Bastion(settings)
    auth.install(app)

    @app.get("/whoami")
    async def whoami(
        request: Request, principal: Principal = Depends(auth.principal)
    ) -> dict[str, object]:
        return {"host_user_id": request.state.user_id, "bastion_user_id": principal.user_id}

    inner = app.build_middleware_stack

    def outermost() -> ASGIApp:
        wrapped = inner()

        async def host_middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                scope.setdefault("state", {}).update(inject)
            await wrapped(scope, receive, send)

        return host_middleware

    app.build_middleware_stack = outermost  # type: ignore[method-assign]
    return app, auth


async def _over_asgi(
    app: FastAPI, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        if headers is None:
            return await client.get(path)
        await register(client, "hostuser")
        tokens = await login(client, "hostuser")
        return await client.get(path, headers=bearer(tokens))


async def test_a_host_principal_in_request_state_grants_nothing(
    make_settings: SettingsFactory,
) -> None:
    admin = Principal(user_id=1, session_id="s", token_id="t", permissions=frozenset({"admin"}))
    app, _ = _host_app(await make_settings(), {"principal": admin, "user_id": 1})
    response = await _over_asgi(app, "/metrics")
    assert response.status_code == 401


async def test_a_non_principal_in_bastion_state_is_401_not_500(
    make_settings: SettingsFactory,
) -> None:
    from bastion.api.middleware.authentication import STATE_PRINCIPAL

    app, _ = _host_app(await make_settings(), {STATE_PRINCIPAL: {"permissions": ["admin"]}})
    response = await _over_asgi(app, "/metrics")
    assert response.status_code == 401


async def test_bastion_leaves_the_host_apps_state_keys_alone(
    make_settings: SettingsFactory,
) -> None:
    app, _ = _host_app(await make_settings(), {"user_id": "host-value"})
    response = await _over_asgi(app, "/whoami", headers={})
    assert response.status_code == 200
    assert response.json()["host_user_id"] == "host-value"


# -- Also: the JWKS document may be cached --------------------------------------------------


async def test_jwks_keeps_its_public_cache_control(start_server: ServerFactory) -> None:
    server = await start_server(jwt_algorithm="EdDSA")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        jwks = await client.get("/.well-known/jwks.json")
        health = await client.get("/health")
    assert jwks.headers["cache-control"] == "public, max-age=300"
    assert jwks.headers["x-content-type-options"] == "nosniff"
    assert health.headers["cache-control"] == "no-store"
