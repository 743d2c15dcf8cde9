"""Mail through real ``bastion serve`` processes and a real SMTP server
(aiosmtpd in its own process): the whole flows end to end, an SMTP outage with
a restart, two instances on one PostgreSQL outbox, and ``bastion mail test``."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.conftest import GOOD_PASSWORD, bearer, fresh_database
from tests.deploy.test_process import BASTION, bastion_serve, service_env
from tests.mailserver import Received, SmtpServer, smtp_server
from tests.servers import PostgresServer, free_port

NEW_PASSWORD = "a new passphrase after the reset"


async def mail_for(smtp: SmtpServer, address: str, count: int = 1, seconds: float = 30) -> Received:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [m for m in smtp.received() if address in m.rcpt_tos]
        if len(found) >= count:
            return found[count - 1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"mail {count} to {address} did not arrive")


def smtp_env(tmp_path: Path, smtp: SmtpServer, **variables: str) -> dict[str, str]:
    # The generated certificate is trusted the way an operator trusts a
    # private CA: through OpenSSL's SSL_CERT_FILE.
    return service_env(
        tmp_path, BASTION_SMTP_URL=smtp.url, SSL_CERT_FILE=str(smtp.cert), **variables
    )


async def test_reset_and_verification_end_to_end_through_serve_and_starttls(
    tmp_path: Path,
) -> None:
    with smtp_server("require") as smtp:
        env = smtp_env(tmp_path, smtp, BASTION_PUBLIC_URL="https://login.example.org")
        async with (
            bastion_serve(tmp_path, env) as service,
            httpx.AsyncClient(base_url=service.base_url, timeout=30) as client,
        ):
            body = {"username": "wendy", "email": "wendy@e2e.example", "age": 30}
            created = await client.post("/users", json={**body, "password": GOOD_PASSWORD})
            assert created.status_code == 201
            verification = await mail_for(smtp, "wendy@e2e.example")
            assert verification.tls
            assert "https://login.example.org/account/verify#token=" in verification.text
            verified = await client.post("/auth/email/verify", json={"token": verification.token})
            assert verified.status_code == 204

            form = {"grant_type": "password", "username": "wendy", "password": GOOD_PASSWORD}
            old = (await client.post("/auth/token", data=form)).json()
            me = await client.get("/users/me", headers=bearer(old["access_token"]))
            assert me.json()["email_verified"] is True

            forgot = await client.post("/auth/password/forgot", json={"email": "wendy@e2e.example"})
            assert forgot.status_code == 202
            reset_mail = await mail_for(smtp, "wendy@e2e.example", 2)
            assert "https://login.example.org/account/reset#token=" in reset_mail.text
            reset = await client.post(
                "/auth/password/reset",
                json={"token": reset_mail.token, "new_password": NEW_PASSWORD},
            )
            assert reset.status_code == 204
            dead = await client.get("/users/me", headers=bearer(old["access_token"]))
            assert dead.status_code == 401
            form["password"] = NEW_PASSWORD
            assert (await client.post("/auth/token", data=form)).status_code == 200
            notice = await mail_for(smtp, "wendy@e2e.example", 3)
            assert notice.message["Subject"] == "Your password was changed"
            unknown = await client.post(
                "/auth/password/forgot", json={"email": "nobody@e2e.example"}
            )
            assert unknown.status_code == 202
            await asyncio.sleep(2)  # several courier polls
            assert [m for m in smtp.received() if "nobody@e2e.example" in m.rcpt_tos] == []
            # Nothing secret reached the log.
            assert reset_mail.token not in service.output()
            assert verification.token not in service.output()


async def test_serve_says_where_the_maildir_is(tmp_path: Path) -> None:
    env = service_env(tmp_path)
    async with (
        bastion_serve(tmp_path, env) as service,
        httpx.AsyncClient(base_url=service.base_url, timeout=30) as client,
    ):
        body = {"username": "xena", "email": "xena@maildir.example", "age": 30}
        assert (
            await client.post("/users", json={**body, "password": GOOD_PASSWORD})
        ).status_code == 201
        maildir = (tmp_path / "data" / "mail").resolve()
        assert f"mail goes to the Maildir {maildir}" in service.output()
        deadline = time.monotonic() + 30
        while not list((maildir / "new").glob("*")):
            assert time.monotonic() < deadline, "no mail in the Maildir"
            await asyncio.sleep(0.1)
        (only,) = list((maildir / "new").iterdir())
        assert "To: xena@maildir.example" in only.read_text()


def attempts_in(database: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(database) as conn:
        return [
            (str(status), int(attempts))
            for status, attempts in conn.execute("SELECT status, attempts FROM outbox")
        ]


async def test_an_smtp_outage_and_a_restart_lose_no_mail(tmp_path: Path) -> None:
    with smtp_server("starttls") as smtp:
        smtp.stop()
        env = smtp_env(tmp_path, smtp, BASTION_EMAIL_VERIFICATION="off")
        database = tmp_path / "data" / "bastion.sqlite3"
        async with (
            bastion_serve(tmp_path, env) as service,
            httpx.AsyncClient(base_url=service.base_url, timeout=30) as client,
        ):
            body = {"username": "yuri", "email": "yuri@outage.example", "age": 30}
            await client.post("/users", json={**body, "password": GOOD_PASSWORD})
            await client.post("/auth/password/forgot", json={"email": "yuri@outage.example"})
            deadline = time.monotonic() + 30
            while attempts_in(database) != [("pending", 1)]:
                assert time.monotonic() < deadline, attempts_in(database)
                await asyncio.sleep(0.1)
        # The instance is gone, the mail is still queued; the relay comes back
        # and a new instance sends it.
        assert attempts_in(database) == [("pending", 1)]
        smtp.start()
        async with bastion_serve(tmp_path, env):
            mail = await mail_for(smtp, "yuri@outage.example", seconds=60)
            assert mail.message["Subject"] == "Reset your password"
            deadline = time.monotonic() + 10
            while attempts_in(database) != [("sent", 1)]:
                assert time.monotonic() < deadline, attempts_in(database)
                await asyncio.sleep(0.1)
        assert len([m for m in smtp.received() if "yuri@outage.example" in m.rcpt_tos]) == 1


async def test_two_instances_on_postgresql_send_each_mail_exactly_once(
    tmp_path: Path, pg: PostgresServer
) -> None:
    url = await fresh_database(pg)
    shared = {
        "BASTION_DATABASE_URL": url,
        # Two hosts, two data directories: the keys are configured instead.
        "BASTION_SECRET_KEY": secrets.token_urlsafe(32),
        "BASTION_MAIL_SECRET": secrets.token_urlsafe(32),
    }
    count = 40
    with smtp_server("starttls") as smtp:
        one, two = tmp_path / "one", tmp_path / "two"
        one.mkdir()
        two.mkdir()
        async with (
            bastion_serve(one, smtp_env(one, smtp, **shared)) as first,
            bastion_serve(two, smtp_env(two, smtp, **shared)) as second,
            httpx.AsyncClient(base_url=first.base_url, timeout=30) as a,
            httpx.AsyncClient(base_url=second.base_url, timeout=30) as b,
        ):
            # Registrations (one verification mail each), alternately on each
            # instance and in parallel, so both couriers race for the rows.
            async def sign_up(n: int) -> None:
                client = a if n % 2 else b
                body = {"username": f"user{n}", "email": f"user{n}@pg.example", "age": 30}
                response = await client.post("/users", json={**body, "password": GOOD_PASSWORD})
                assert response.status_code == 201

            await asyncio.gather(*(sign_up(n) for n in range(count)))
            deadline = time.monotonic() + 60
            while len(smtp.received()) < count:
                assert time.monotonic() < deadline, f"{len(smtp.received())} of {count} mails"
                await asyncio.sleep(0.2)
            await asyncio.sleep(3)  # time for a duplicate, were there one
            received = smtp.received()
            per_address = Counter(address for m in received for address in m.rcpt_tos)
            assert per_address == Counter({f"user{n}@pg.example": 1 for n in range(count)})
            # A token composed by either instance works on the other.
            for n in (0, 1):
                mail = next(m for m in received if f"user{n}@pg.example" in m.rcpt_tos)
                other = b if n % 2 else a
                verified = await other.post("/auth/email/verify", json={"token": mail.token})
                assert verified.status_code == 204


def run_bastion(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASTION, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_mail_test_sends_and_reports(tmp_path: Path) -> None:
    with smtp_server("starttls") as smtp:
        done = run_bastion(tmp_path, smtp_env(tmp_path, smtp), "mail", "test", "ops@test.example")
        assert done.returncode == 0, done.stderr
        assert "sent a test mail to ops@test.example" in done.stdout
        assert f"smtp://127.0.0.1:{smtp.port}" in done.stdout
        (mail,) = smtp.received()
        assert mail.message["Subject"] == "Bastion test mail"


def test_mail_test_reports_a_failure_and_refuses_a_bad_address(tmp_path: Path) -> None:
    env = service_env(tmp_path, BASTION_SMTP_URL=f"smtp://127.0.0.1:{free_port()}")
    failed = run_bastion(tmp_path, env, "mail", "test", "ops@test.example")
    assert failed.returncode == 1
    assert "could not send the test mail" in failed.stderr
    assert "retried" in failed.stderr
    bad = run_bastion(tmp_path, env, "mail", "test", "not-an-address")
    assert bad.returncode == 2
    assert "not an email address" in bad.stderr
