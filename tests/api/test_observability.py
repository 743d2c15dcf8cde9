"""Logs, request ids, metrics and the catch-all 500: what operators see, and
that no secret and no attacker-forged record is among it."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bastion import Bastion, create_app
from bastion.logs import configure_logging
from tests.conftest import (
    GOOD_PASSWORD,
    RunningServer,
    ServerFactory,
    SettingsFactory,
    bearer,
    login,
    make_admin,
    register,
)

Json = dict[str, Any]
Capture = pytest.CaptureFixture[str]
HEX32 = re.compile(r"[0-9a-f]{32}")


def fresh_name() -> str:
    """A username no other test of the module uses."""
    return f"o{uuid.uuid4().hex[:12]}"


def json_lines(output: str) -> list[Json]:
    """Every line of ``output`` as a JSON object; fails on any other line.

    ``str.splitlines`` splits on every Unicode line boundary (CR, U+0085,
    U+2028...), the strictest reading a log shipper might make.
    """
    records = []
    for line in output.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        records.append(record)
    return records


async def logged(capsys: Capture, found: Callable[[list[Json]], bool]) -> list[Json]:
    """The records written to stdout so far, once ``found`` holds for them.

    The access-log line is written as the response completes; give the
    server's task a few turns of the loop in case the client saw the
    response first.
    """
    output = ""
    for _ in range(200):
        output += capsys.readouterr().out
        records = json_lines(output)
        if found(records):
            return records
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected records not logged:\n{output}")


def access_records(records: list[Json], request_id: str) -> list[Json]:
    return [r for r in records if r.get("event") == "request" and r["request_id"] == request_id]


# -- secrets never leave -----------------------------------------------------------


async def test_no_password_hash_or_token_in_logs_events_or_table(
    start_server: ServerFactory, capsys: Capture
) -> None:
    server = await start_server()
    first = "Zq8-first-passphrase-alpha-7731"
    second = "Yv3-second-passphrase-beta-4410"
    wrong = ["Wx1-wrong-guess-gamma-9023", "Vu5-wrong-guess-delta-1187"]
    secrets: list[str] = [first, second, *wrong, "$argon2"]
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        user = await register(client, "keeper", password=first)
        for guess in wrong:
            await client.post(
                "/auth/token",
                data={"grant_type": "password", "username": "keeper", "password": guess},
            )
        await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "nobody", "password": wrong[0]},
        )
        tokens = await login(client, "keeper", first)
        refreshed = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 200
        current = refreshed.json()
        wrong_change = await client.post(
            "/users/me/password",
            json={"current_password": wrong[1], "new_password": second},
            headers=bearer(current),
        )
        assert wrong_change.status_code == 400
        changed = await client.post(
            "/users/me/password",
            json={"current_password": first, "new_password": second},
            headers=bearer(current),
        )
        assert changed.status_code == 204
        assert (await client.post("/auth/logout", headers=bearer(current))).status_code == 204

        await make_admin(server)
        admin = await login(client, "root")
        pages: list[str] = []
        params: dict[str, Any] = {"limit": 200}
        while True:
            response = await client.get("/events", params=params, headers=bearer(admin))
            assert response.status_code == 200
            pages.append(response.text)
            if response.json()["next_cursor"] is None:
                break
            params["cursor"] = response.json()["next_cursor"]

    for pair in (tokens, current, admin):
        access, refresh = pair["access_token"], pair["refresh_token"]
        # The whole token, and its signature alone.
        secrets += [access, access.rsplit(".", 1)[1], refresh]
    stored = await server.bastion.container.users.get(user["id"])
    assert stored is not None
    secrets.append(stored.password_hash)
    async with server.bastion.container.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM events"))).all()
    table = "\n".join(repr(tuple(row)) for row in rows)
    logs = capsys.readouterr().out
    assert '"authn_password_change"' in logs
    assert "authn_token_revoked" in table
    assert '"authn_login_fail"' in "".join(pages)
    for name, haystack in (("stdout", logs), ("/events", "".join(pages)), ("table", table)):
        leaked = [secret for secret in secrets if secret in haystack]
        assert leaked == [], f"{name} leaks {leaked}"


# -- log injection --------------------------------------------------------------------


async def test_hostile_username_and_user_agent_cannot_forge_log_records(
    shared_server: RunningServer, capsys: Capture
) -> None:
    username = 'evil\n{"event": "forged", "level": "critical"}\r\u2028\u0085"}'
    user_agent = b'agent" } {"event": "forged", "x": "\x85\\"}'
    async with httpx.AsyncClient(base_url=shared_server.base_url) as client:
        capsys.readouterr()
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": username, "password": "p" * 20},
            headers={b"User-Agent": user_agent},
        )
    assert response.status_code == 400
    request_id = response.headers["x-request-id"]
    records = await logged(capsys, lambda found: bool(access_records(found, request_id)))
    assert all(record.get("event") != "forged" for record in records)
    carrying = [record for record in records if "forged" in json.dumps(record)]
    assert len(carrying) == 1
    [event] = carrying
    assert event["event"] == "security_event"
    assert event["event_type"] == "authn_login_fail"
    assert event["username"] == username
    assert event["user_agent"] == user_agent.decode("latin-1")


# -- request ids --------------------------------------------------------------------------


async def test_a_well_formed_request_id_is_echoed(shared_client: httpx.AsyncClient) -> None:
    sent = "req_2024-01-01.abc-DEF"
    response = await shared_client.get("/health", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] == sent


@pytest.mark.parametrize(
    "sent",
    ["r" * 65, "has space", 'quo"te', "semi;colon", "{}", "\u00e9t\u00e9"],
    ids=["too-long", "space", "quote", "semicolon", "braces", "latin1"],
)
async def test_a_malformed_request_id_is_replaced(
    shared_client: httpx.AsyncClient, sent: str
) -> None:
    response = await shared_client.get("/health", headers={b"X-Request-ID": sent.encode("latin-1")})
    assert response.status_code == 200
    assert HEX32.fullmatch(response.headers["x-request-id"])


async def test_a_missing_request_id_is_generated(shared_client: httpx.AsyncClient) -> None:
    first = await shared_client.get("/health")
    second = await shared_client.get("/health")
    assert HEX32.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_the_request_id_is_on_error_responses_too(
    shared_client: httpx.AsyncClient,
) -> None:
    response = await shared_client.get("/users/me", headers={"X-Request-ID": "err-1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "err-1"


# -- the access log ----------------------------------------------------------------------


async def test_one_access_log_line_per_request_with_the_route_template(
    shared_server: RunningServer, capsys: Capture
) -> None:
    async with httpx.AsyncClient(base_url=shared_server.base_url) as client:
        user, tokens = await _signed_in(client)
        capsys.readouterr()
        response = await client.get(f"/users/{user['id']}", headers=bearer(tokens))
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    records = await logged(capsys, lambda found: bool(access_records(found, request_id)))
    [line] = access_records(records, request_id)
    assert line["method"] == "GET"
    assert line["route"] == "/users/{user_id}"
    assert line["status"] == 200
    assert line["user_id"] == user["id"]
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0
    assert f"/users/{user['id']}" not in json.dumps(line)


async def test_access_log_of_an_anonymous_refusal(
    shared_server: RunningServer, capsys: Capture
) -> None:
    async with httpx.AsyncClient(base_url=shared_server.base_url) as client:
        capsys.readouterr()
        response = await client.delete("/users/12345")
    assert response.status_code == 401
    request_id = response.headers["x-request-id"]
    records = await logged(capsys, lambda found: bool(access_records(found, request_id)))
    [line] = access_records(records, request_id)
    assert (line["method"], line["route"], line["status"], line["user_id"]) == (
        "DELETE",
        "/users/{user_id}",
        401,
        None,
    )


async def test_access_log_of_an_unknown_path_does_not_echo_it(
    shared_server: RunningServer, capsys: Capture
) -> None:
    async with httpx.AsyncClient(base_url=shared_server.base_url) as client:
        capsys.readouterr()
        response = await client.get("/no/such/path/%7B%22event%22%7D")
    assert response.status_code == 404
    request_id = response.headers["x-request-id"]
    records = await logged(capsys, lambda found: bool(access_records(found, request_id)))
    [line] = access_records(records, request_id)
    assert (line["route"], line["status"]) == ("unmatched", 404)


async def test_standard_logging_is_rendered_as_one_json_line(capsys: Capture) -> None:
    configure_logging()
    capsys.readouterr()
    try:
        raise RuntimeError("inner\nproblem")
    except RuntimeError:
        logging.getLogger("bastion.test").exception('two\nlines {"event": "forged"}')
    [record] = json_lines(capsys.readouterr().out)
    assert record["event"] == 'two\nlines {"event": "forged"}'
    assert record["level"] == "error"
    assert record["logger"] == "bastion.test"
    assert "RuntimeError: inner\nproblem" in record["exception"]


# -- metrics ---------------------------------------------------------------------------


def metric(body: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly ``labels``, if present."""
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


async def _signed_in(client: httpx.AsyncClient) -> tuple[Json, Json]:
    name = fresh_name()
    user = await register(client, name)
    return user, await login(client, name)


async def test_metrics_need_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 401


async def test_metrics_refuse_a_non_admin(client: httpx.AsyncClient) -> None:
    _, tokens = await _signed_in(client)
    response = await client.get("/metrics", headers=bearer(tokens))
    assert response.status_code == 403
    assert "bastion_" not in response.text


async def test_metrics_for_an_admin_are_prometheus_text(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    await make_admin(server)
    response = await client.get("/metrics", headers=bearer(await login(client, "root")))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE bastion_requests_total counter" in response.text


async def test_public_metrics_need_no_token(start_server: ServerFactory) -> None:
    server = await start_server(metrics_public=True)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "bastion_requests_total" in response.text


async def test_requests_are_counted_by_route_template_method_and_status(
    start_server: ServerFactory,
) -> None:
    server = await start_server(metrics_public=True)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for _ in range(3):
            assert (await client.get("/health")).status_code == 200
        for user_id in (7, 8):
            assert (await client.get(f"/users/{user_id}")).status_code == 401
        assert (await client.get("/nowhere")).status_code == 404
        body = (await client.get("/metrics")).text
    total = "bastion_requests_total"
    assert metric(body, total, route="/health", method="GET", status="200") == 3
    assert metric(body, total, route="/users/{user_id}", method="GET", status="401") == 2
    assert metric(body, total, route="unmatched", method="GET", status="404") == 1
    assert "/users/7" not in body


async def test_logins_are_counted_by_outcome(start_server: ServerFactory) -> None:
    server = await start_server(metrics_public=True)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "counted")
        await login(client, "counted")
        for name in ("counted", "nobody"):
            response = await client.post(
                "/auth/token",
                data={"grant_type": "password", "username": name, "password": "wrong password!!"},
            )
            assert response.status_code == 400
        body = (await client.get("/metrics")).text
    assert metric(body, "bastion_logins_total", outcome="success") == 1
    assert metric(body, "bastion_logins_total", outcome="failure") == 2


async def test_hash_pool_and_event_queue_gauges_are_exported(start_server: ServerFactory) -> None:
    server = await start_server(metrics_public=True)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "gauged")
        body = (await client.get("/metrics")).text
    assert metric(body, "bastion_hash_pool_in_flight") == 0
    in_queue = metric(body, "bastion_event_queue_depth")
    assert in_queue is not None
    assert in_queue >= 0


async def test_hash_waits_and_dropped_events_are_exported(start_server: ServerFactory) -> None:
    server = await start_server(metrics_public=True)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "waited")
        await login(client, "waited")
        body = (await client.get("/metrics")).text
    # The dummy hash at start, the registration and the login each waited once.
    assert metric(body, "bastion_hash_pool_wait_seconds_count") == 3
    assert metric(body, "bastion_events_dropped_total") == 0


async def test_unknown_methods_share_one_label(make_settings: SettingsFactory) -> None:
    # In process: under httptools (bastion serve's stack) the server itself
    # refuses unknown methods with 400 before the app sees them.
    app = create_app(await make_settings(metrics_public=True))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        for n in range(4):
            await client.request(f"BREW{n}", "/health")
        body = (await client.get("/metrics")).text
    methods = {
        sample.labels["method"]
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "bastion_requests_total"
    }
    assert not any(method.startswith("BREW") for method in methods)
    assert (
        metric(body, "bastion_requests_total", route="/health", method="OTHER", status="405") == 4
    )


async def test_metrics_carry_no_token_or_password(start_server: ServerFactory) -> None:
    server = await start_server(metrics_public=True)
    password = "Metrics-secret-passphrase-9981"
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "metered", password=password)
        tokens = await login(client, "metered", password)
        await client.get("/users/me", headers=bearer(tokens))
        body = (await client.get("/metrics")).text
    for secret in (password, tokens["access_token"], tokens["refresh_token"], "metered"):
        assert secret not in body


# -- the catch-all 500 ------------------------------------------------------------------


async def _crashing_app(make_settings: SettingsFactory) -> FastAPI:
    app = FastAPI()
    auth = Bastion(await make_settings())
    auth.install(app)

    @app.get("/crash")
    async def crash() -> dict[str, str]:
        raise RuntimeError("boom secret")

    return app


async def test_an_unexpected_error_is_a_generic_json_500(make_settings: SettingsFactory) -> None:
    app = await _crashing_app(make_settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        response = await client.get("/crash")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert "boom" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "server" not in response.headers


async def test_an_unexpected_error_is_logged_once_with_its_request_id(
    make_settings: SettingsFactory, capsys: Capture
) -> None:
    configure_logging()
    app = await _crashing_app(make_settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        capsys.readouterr()
        response = await client.get("/crash")
    request_id = response.headers["x-request-id"]
    records = json_lines(capsys.readouterr().out)
    [error] = [record for record in records if record.get("event") == "unhandled_error"]
    assert error["request_id"] == request_id
    assert "RuntimeError: boom secret" in error["exception"]
    [line] = access_records(records, request_id)
    assert (line["route"], line["status"]) == ("/crash", 500)


async def test_password_of_a_weak_registration_is_not_logged(
    shared_server: RunningServer, capsys: Capture
) -> None:
    weak = "Sh0rt-secret-1"
    async with httpx.AsyncClient(base_url=shared_server.base_url) as client:
        capsys.readouterr()
        response = await client.post(
            "/users",
            json={"username": fresh_name(), "email": "w@example.com", "age": 30, "password": weak},
        )
    assert response.status_code == 422
    assert weak not in response.text
    records = await logged(
        capsys,
        lambda found: bool(access_records(found, response.headers["x-request-id"])),
    )
    assert weak not in json.dumps(records)
    assert GOOD_PASSWORD not in json.dumps(records)
