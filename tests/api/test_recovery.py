"""Password reset over HTTP, reading the real mail a real SMTP server received."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import GOOD_PASSWORD, ManualClock, bearer, login, make_admin, register
from tests.mailfixtures import (
    MailServerFactory,
    events_of,
    mails_to,
    settle,
    smtp,
    start_mail_server,
    wait_for_mail,
)
from tests.mailserver import SmtpServer
from tests.servers import restartable_redis_server

__all__ = ["smtp", "start_mail_server"]  # fixtures

NEW_PASSWORD = "a brand new passphrase, quite long"


async def forgot(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/auth/password/forgot", json={"email": email})


async def reset(client: httpx.AsyncClient, token: str, password: str) -> httpx.Response:
    return await client.post(
        "/auth/password/reset", json={"token": token, "new_password": password}
    )


async def reset_token(
    client: httpx.AsyncClient, smtp: SmtpServer, email: str, count: int = 1
) -> str:
    response = await forgot(client, email)
    assert response.status_code == 202, response.text
    mails = await wait_for_mail(smtp, email, count)
    return mails[count - 1].token


async def test_forgot_mail_reset_revokes_sessions_and_sends_a_notice(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(email_verification="off", public_url="https://id.example")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "alice", email="alice@reset.example")
        old = await login(client, "alice")
        token = await reset_token(client, smtp, "alice@reset.example")
        mail = mails_to(smtp, "alice@reset.example")[0]
        assert mail.tls, "STARTTLS was offered and must have been used"
        assert mail.message["From"] == "Bastion <no-reply@localhost>"
        assert "30 minutes" in mail.text
        assert f"https://id.example/account/reset#token={token}" in mail.text
        assert f"\nToken: {token}" in mail.text.replace("\r\n", "\n")

        response = await reset(client, token, NEW_PASSWORD)
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert "set-cookie" not in response.headers

        # Every session is dead at once: access and refresh tokens.
        assert (await client.get("/users/me", headers=bearer(old))).status_code == 401
        refreshed = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]},
        )
        assert refreshed.status_code == 400
        # The old password is gone, the new one works.
        wrong = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": GOOD_PASSWORD},
        )
        assert wrong.status_code == 400
        await login(client, "alice", NEW_PASSWORD)
        # A notice went to the account's address.
        notice = (await wait_for_mail(smtp, "alice@reset.example", 2))[1]
        assert notice.message["Subject"] == "Your password was changed"
        assert "Token:" not in notice.text
        # The token is single use.
        again = await reset(client, token, "yet another fine passphrase")
        assert again.status_code == 400
        assert again.json() == {
            "detail": "the token is invalid, used or expired",
            "code": "invalid_token",
        }
        admin = await make_admin(server)
        admin_token = (await login(client, admin["username"]))["access_token"]
        changes = await events_of(client, admin_token, "authn_password_change")
        assert changes[0]["detail"]["via"] == "reset"
        assert changes[0]["user_id"] is not None
        requests = await events_of(client, admin_token, "authn_password_reset_request")
        assert requests[0]["detail"]["account_found"] is True
        # Tokens never reach events.
        everything = await client.get("/events?limit=200", headers=bearer(admin_token))
        assert token not in everything.text


async def test_unknown_address_gets_the_same_202_and_no_mail(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(email_verification="off")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "bob", email="bob@known.example")
        known = await forgot(client, "bob@known.example")
        unknown = await forgot(client, "nobody@known.example")
        assert known.status_code == unknown.status_code == 202
        assert known.content == unknown.content

        def shown(response: httpx.Response) -> dict[str, str]:
            varying = {"date", "x-request-id", "content-length"}
            return {k: v for k, v in response.headers.items() if k not in varying}

        assert shown(known) == shown(unknown)
        await settle(server)
        assert mails_to(smtp, "nobody@known.example") == []
        assert len(mails_to(smtp, "bob@known.example")) == 1
        admin = await make_admin(server)
        admin_token = (await login(client, admin["username"]))["access_token"]
        requests = await events_of(client, admin_token, "authn_password_reset_request")
        assert sorted(e["detail"]["account_found"] for e in requests[:2]) == [False, True]


async def test_a_weak_new_password_is_422_and_does_not_spend_the_token(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(email_verification="off")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "carol", email="carol@weak.example")
        token = await reset_token(client, smtp, "carol@weak.example")
        weak = await reset(client, token, "short")
        assert weak.status_code == 422
        assert weak.json()["detail"][0]["type"] == "password_too_short"
        assert "short" not in weak.text.replace("password_too_short", "")
        containing = await reset(client, token, "carol carol carol carol")
        assert containing.status_code == 422
        assert (await reset(client, token, NEW_PASSWORD)).status_code == 204


async def test_two_concurrent_resets_with_one_token_give_exactly_one_204(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(email_verification="off")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "dave", email="dave@race.example")
        token = await reset_token(client, smtp, "dave@race.example")
        passwords = [f"concurrent passphrase number {n}" for n in range(6)]
        answers = await asyncio.gather(*(reset(client, token, pw) for pw in passwords))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [204] + [400] * 5
        winner = passwords[[a.status_code for a in answers].index(204)]
        await login(client, "dave", winner)


async def test_a_newer_reset_token_voids_the_older_one(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(email_verification="off")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "erin", email="erin@void.example")
        first = await reset_token(client, smtp, "erin@void.example", 1)
        second = await reset_token(client, smtp, "erin@void.example", 2)
        assert first != second
        assert (await reset(client, first, NEW_PASSWORD)).status_code == 400
        assert (await reset(client, second, NEW_PASSWORD)).status_code == 204


async def test_a_reset_token_expires_after_its_ttl(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    clock = ManualClock()
    server = await start_mail_server(clock=clock, email_verification="off", reset_token_ttl=60)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "frank", email="frank@ttl.example")
        token = await reset_token(client, smtp, "frank@ttl.example")
        assert "1 minute" in mails_to(smtp, "frank@ttl.example")[0].text
        clock.advance(61)
        assert (await reset(client, token, NEW_PASSWORD)).status_code == 400


async def test_at_most_three_reset_mails_per_address_per_hour(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(email_verification="off")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "gina", email="Gina@Limit.Example")
        for variant in [
            "gina@limit.example",
            "GINA@limit.example",
            "Gina@LIMIT.example",
            "gina@limit.example",
        ]:
            assert (await forgot(client, variant)).status_code == 202
        await settle(server)
        assert len(mails_to(smtp, "Gina@limit.example")) == 3


async def test_the_recovery_rate_limit_is_per_client_and_shared_with_resend(
    start_mail_server: MailServerFactory,
) -> None:
    server = await start_mail_server(recovery_rate_limit="3/minute")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        assert (await forgot(client, "a@rate.example")).status_code == 202
        resend = await client.post("/auth/email/verify/resend", json={"email": "b@rate.example"})
        assert resend.status_code == 202
        assert (await forgot(client, "c@rate.example")).status_code == 202
        refused = await forgot(client, "d@rate.example")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-limit"] == "3"
        also = await client.post("/auth/email/verify/resend", json={"email": "e@rate.example"})
        assert also.status_code == 429


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "not-an-address"}, id="no-at"),
        pytest.param({"email": "a" * 250 + "@x.example"}, id="too-long"),
        pytest.param({"email": 42}, id="not-a-string"),
        pytest.param({}, id="missing"),
        pytest.param({"email": "a@b.example", "extra": 1}, id="unknown-field"),
    ],
)
async def test_forgot_refuses_malformed_addresses_with_422(
    start_mail_server: MailServerFactory, body: dict[str, Any]
) -> None:
    server = await start_mail_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post("/auth/password/forgot", json=body)
        assert response.status_code == 422
        assert isinstance(response.json()["detail"], list)


@pytest.mark.parametrize(
    ("token", "status"),
    [
        pytest.param("x", 400, id="short"),
        pytest.param("A" * 43, 400, id="well-formed-unknown"),
        pytest.param("A" * 42 + "!", 400, id="bad-alphabet"),
        pytest.param("A" * 43 + "\x00", 400, id="nul"),
        pytest.param("A" * 600, 422, id="over-long"),
        pytest.param(None, 422, id="null"),
    ],
)
async def test_reset_refuses_bad_tokens_with_a_clear_json(
    start_mail_server: MailServerFactory, token: str | None, status: int
) -> None:
    server = await start_mail_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post(
            "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert response.status_code == status
        if status == 400:
            assert response.json()["code"] == "invalid_token"


async def test_no_get_consumes_a_token(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(email_verification="off")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "hank", email="hank@get.example")
        token = await reset_token(client, smtp, "hank@get.example")
        for path in ("/auth/password/reset", "/auth/email/verify"):
            got = await client.get(path, params={"token": token})
            assert got.status_code == 405
        assert (await reset(client, token, NEW_PASSWORD)).status_code == 204


async def test_recovery_endpoints_refuse_non_json_with_415(
    start_mail_server: MailServerFactory,
) -> None:
    server = await start_mail_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for path in ("/auth/password/forgot", "/auth/password/reset", "/auth/email/verify"):
            response = await client.post(path, data={"email": "a@b.example"})
            assert response.status_code == 415


async def test_with_redis_down_forgot_fails_closed_with_503_then_recovers(
    start_mail_server: MailServerFactory,
) -> None:
    with restartable_redis_server() as own_redis:
        server = await start_mail_server(redis_url=own_redis.url)
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            assert (await forgot(client, "redis@down.example")).status_code == 202
            own_redis.stop()
            try:
                down = await forgot(client, "redis@down.example")
                assert down.status_code == 503
                assert int(down.headers["retry-after"]) >= 1
            finally:
                own_redis.start()
            assert (await forgot(client, "redis@down.example")).status_code == 202
