"""Two instances on one PostgreSQL and one Redis: a ceremony begun on one is
finished on the other, and a session ended on one dies on the other."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.mfa_helpers import PASSKEY_GRANT, claims, code, mfa_grant, password_step
from tests.authenticator import SoftAuthenticator
from tests.conftest import (
    GOOD_PASSWORD,
    ManualClock,
    ServerFactory,
    SettingsFactory,
    bearer,
    login,
    register,
)
from tests.servers import RedisServer


@pytest.fixture
def backend() -> str:
    """Shared state across instances needs the shared database."""
    return "postgres"


async def test_passkey_and_totp_ceremonies_cross_instances(
    make_settings: SettingsFactory, start_server: ServerFactory, redis: RedisServer
) -> None:
    clock = ManualClock(1_800_000_000.0 + 10)
    # They do not share a data directory: the signing and TOTP keys are configured.
    settings = await make_settings(
        redis_url=redis.url,
        secret_key="s" * 40,
        mfa_encryption_key="QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=",
    )
    first = await start_server(settings, clock=clock)
    second = await start_server(
        settings.model_copy(update={"data_dir": settings.data_dir / "b"}), clock=clock
    )
    assert type(first.bastion.container.mfa.challenges).__name__ == "RedisChallengeStore"
    async with (
        httpx.AsyncClient(base_url=first.base_url) as a,
        httpx.AsyncClient(base_url=second.base_url) as b,
    ):
        await register(a, "alice")
        tokens = await login(a, "alice")
        authenticator = SoftAuthenticator()
        options = (await a.post("/users/me/passkeys/options", headers=bearer(tokens))).json()
        created = await b.post(
            "/users/me/passkeys",
            json={"credential": authenticator.create(options)},
            headers=bearer(tokens),
        )
        assert created.status_code == 201, created.text

        request = (await a.post("/auth/passkey/options")).json()
        signed_in = await b.post(
            "/auth/token",
            data={"grant_type": PASSKEY_GRANT, "webauthn": json.dumps(authenticator.get(request))},
        )
        assert signed_in.status_code == 200, signed_in.text

        enrol = await a.post(
            "/users/me/mfa/totp", json={"current_password": GOOD_PASSWORD}, headers=bearer(tokens)
        )
        secret = enrol.json()["secret"]
        confirmed = await b.post(
            "/users/me/mfa/totp/confirm",
            json={"code": code(secret, clock)},
            headers=bearer(tokens),
        )
        assert confirmed.status_code == 200
        clock.advance(30)
        step = await password_step(a)
        assert step["mfa_methods"] == ["otp", "recovery_code", "webauthn"]
        done = await mfa_grant(b, step["mfa_token"], otp=code(secret, clock))
        assert done.status_code == 200
        assert claims(done.json()["access_token"])["amr"] == ["pwd", "otp", "mfa"]
        # Spent on b: refused on a.
        clock.advance(30)
        assert (await mfa_grant(a, step["mfa_token"], otp=code(secret, clock))).status_code == 400


async def test_a_session_ended_on_one_instance_dies_on_the_other_at_once(
    make_settings: SettingsFactory, start_server: ServerFactory, redis: RedisServer
) -> None:
    settings = await make_settings(redis_url=redis.url)
    first = await start_server(settings)
    second = await start_server(settings)
    async with (
        httpx.AsyncClient(base_url=first.base_url) as a,
        httpx.AsyncClient(base_url=second.base_url) as b,
    ):
        await register(a, "alice")
        victim = await login(a, "alice")
        mine = await login(a, "alice")
        assert (await b.get("/protected", headers=bearer(victim))).status_code == 200
        sessions = (await a.get("/users/me/sessions", headers=bearer(mine))).json()
        target = next(s["id"] for s in sessions if not s["current"])
        assert (
            await a.delete(f"/users/me/sessions/{target}", headers=bearer(mine))
        ).status_code == 204
        assert (await b.get("/protected", headers=bearer(victim))).status_code == 401


async def test_expired_challenges_are_pruned_from_the_database(
    make_settings: SettingsFactory, start_server: ServerFactory
) -> None:
    from bastion.storage.challenges import SqlChallengeStore

    clock = ManualClock()
    server = await start_server(await make_settings(), clock=clock)
    store = server.bastion.container.mfa.challenges
    assert isinstance(store, SqlChallengeStore)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for _ in range(3):
            assert (await client.post("/auth/passkey/options")).status_code == 200
    assert await store.prune(now=clock.now()) == 0
    assert await store.prune(now=clock.now() + 301) == 3
