"""Email verification (off / optional / required) and email change over HTTP,
reading the real mail a real SMTP server received."""

from __future__ import annotations

from pathlib import Path

import httpx

from bastion import Settings
from bastion.admin import create_admin_user
from bastion.bootstrap import build
from tests.conftest import GOOD_PASSWORD, bearer, login, make_admin, register
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

__all__ = ["smtp", "start_mail_server"]  # fixtures


async def verify(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/email/verify", json={"token": token})


async def password_grant(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )


async def test_optional_mode_mails_at_registration_and_login_works_before_verifying(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(public_url="http://localhost:8000")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        user = await register(client, "ivy", email="ivy@optional.example")
        assert user["email_verified"] is False
        tokens = await login(client, "ivy")
        mail = (await wait_for_mail(smtp, "ivy@optional.example"))[0]
        assert mail.message["Subject"] == "Confirm your email address"
        assert "24 hours" in mail.text
        assert f"http://localhost:8000/account/verify#token={mail.token}" in mail.text
        assert (await verify(client, mail.token)).status_code == 204
        me = (await client.get("/users/me", headers=bearer(tokens))).json()
        assert me["email_verified"] is True
        again = await verify(client, mail.token)
        assert again.status_code == 400
        assert again.json()["code"] == "invalid_token"
        admin = await make_admin(server)
        admin_token = (await login(client, admin["username"]))["access_token"]
        verified = await events_of(client, admin_token, "user_email_verified")
        assert verified[0]["user_id"] == user["id"]


async def test_required_mode_refuses_a_right_password_until_verified(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(email_verification="required")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "jack", email="jack@required.example")
        # More right-password attempts than the throttle allows failures:
        # none of them counts as a failed login.
        for _ in range(12):
            refused = await password_grant(client, "jack", GOOD_PASSWORD)
            assert refused.status_code == 400
            assert refused.json() == {
                "error": "invalid_grant",
                "error_description": "the email address is not verified",
            }
        wrong = await password_grant(client, "jack", "not the password at all, no")
        assert wrong.status_code == 400
        assert wrong.json()["error_description"] != "the email address is not verified"
        mail = (await wait_for_mail(smtp, "jack@required.example"))[0]
        assert (await verify(client, mail.token)).status_code == 204
        await login(client, "jack")


async def test_off_mode_sends_nothing_at_registration_but_resend_still_works(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(email_verification="off")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "kate", email="kate@off.example")
        await settle(server)
        assert mails_to(smtp, "kate@off.example") == []
        resend = await client.post("/auth/email/verify/resend", json={"email": "KATE@off.example"})
        assert resend.status_code == 202
        mail = (await wait_for_mail(smtp, "kate@off.example"))[0]
        assert (await verify(client, mail.token)).status_code == 204


async def test_resend_for_unknown_or_verified_addresses_sends_nothing_and_answers_alike(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "liam", email="liam@resend.example")
        first = (await wait_for_mail(smtp, "liam@resend.example"))[0]
        assert (await verify(client, first.token)).status_code == 204
        verified = await client.post(
            "/auth/email/verify/resend", json={"email": "liam@resend.example"}
        )
        unknown = await client.post(
            "/auth/email/verify/resend", json={"email": "ghost@resend.example"}
        )
        assert verified.status_code == unknown.status_code == 202
        assert verified.content == unknown.content
        await settle(server)
        assert len(mails_to(smtp, "liam@resend.example")) == 1
        assert mails_to(smtp, "ghost@resend.example") == []


async def test_a_resend_voids_the_registration_token(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "mona", email="mona@void.example")
        first = (await wait_for_mail(smtp, "mona@void.example"))[0]
        await client.post("/auth/email/verify/resend", json={"email": "mona@void.example"})
        second = (await wait_for_mail(smtp, "mona@void.example", 2))[1]
        assert (await verify(client, first.token)).status_code == 400
        assert (await verify(client, second.token)).status_code == 204


async def test_email_change_is_confirmed_from_the_new_address_with_a_notice_to_the_old(
    start_mail_server: MailServerFactory, smtp: SmtpServer
) -> None:
    server = await start_mail_server(email_verification="off")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        user = await register(client, "nina", email="nina@old.example")
        await register(client, "omar", email="omar@taken.example")
        tokens = await login(client, "nina")
        change = "/users/me/email"
        wrong = await client.post(
            change,
            json={"new_email": "nina@new.example", "current_password": "wrong password, sorry"},
            headers=bearer(tokens),
        )
        assert wrong.status_code == 400
        taken = await client.post(
            change,
            json={"new_email": "OMAR@taken.example", "current_password": GOOD_PASSWORD},
            headers=bearer(tokens),
        )
        assert taken.status_code == 409
        unauthenticated = await client.post(
            change, json={"new_email": "nina@new.example", "current_password": GOOD_PASSWORD}
        )
        assert unauthenticated.status_code == 401
        accepted = await client.post(
            change,
            json={"new_email": "nina@new.example", "current_password": GOOD_PASSWORD},
            headers=bearer(tokens),
        )
        assert accepted.status_code == 202
        confirmation = (await wait_for_mail(smtp, "nina@new.example"))[0]
        notice = (await wait_for_mail(smtp, "nina@old.example"))[0]
        assert "nina@new.example" in notice.text
        assert "Token:" not in notice.text
        me = (await client.get("/users/me", headers=bearer(tokens))).json()
        assert me["email"] == "nina@old.example"
        assert (await verify(client, confirmation.token)).status_code == 204
        me = (await client.get("/users/me", headers=bearer(tokens))).json()
        assert me["email"] == "nina@new.example"
        assert me["email_verified"] is True
        # An email change ends no session.
        refreshed = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 200
        admin = await make_admin(server)
        admin_token = (await login(client, admin["username"]))["access_token"]
        updated = await events_of(client, admin_token, "user_updated")
        assert updated[0]["detail"] == {"field": "email"}
        assert updated[0]["user_id"] == user["id"]
        requested = await events_of(client, admin_token, "user_email_change_request")
        assert requested[0]["user_id"] == user["id"]


async def test_email_verified_is_absent_where_email_is(
    start_mail_server: MailServerFactory,
) -> None:
    server = await start_mail_server()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        await register(client, "pete", email="pete@shown.example")
        other = await register(client, "quinn", email="quinn@shown.example")
        tokens = await login(client, "pete")
        body = (await client.get(f"/users/{other['id']}", headers=bearer(tokens))).json()
        assert "email" not in body
        assert "email_verified" not in body


async def test_create_admin_makes_a_verified_address(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    user_id = await create_admin_user(settings, "root", "root@admin.example", 40, GOOD_PASSWORD)
    container = build(settings)
    await container.start()
    try:
        stored = await container.users.get(user_id)
        assert stored is not None
        assert stored.user.email_verified is True
    finally:
        await container.stop()
