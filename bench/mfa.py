"""MFA figures (issue 12): logins per second with password + TOTP against
password only, and the microseconds the ``amr`` check adds to the hot path.

    .venv/bin/python -m bench.mfa [--rounds 15] [--concurrency 4]

In process, on SQLite in a temporary directory, through the whole ASGI app
(httpx's ASGI transport): each password login verifies one argon2id hash;
a TOTP login adds a second request (the ``mfa`` grant: mfa_token lookup,
AES-GCM decrypt, HMAC-SHA-1 x 3, the conditional UPDATE of the last step and
the mfa_token's removal). The clock is a fake one moved 30 s per round, so
every round has fresh codes (each is accepted once). Prints one JSON object
and a line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

PASSWORD = "correct horse battery staple"
MFA_GRANT = "urn:bastion:params:oauth:grant-type:mfa"


class _Clock:
    def __init__(self) -> None:
        self.current = time.time()

    def now(self) -> float:
        return self.current


async def _logins(rounds: int, concurrency: int) -> dict[str, float]:
    import httpx
    import pyotp

    from bastion import Settings, create_app

    clock = _Clock()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            data_dir=Path(tmp),
            rate_limit="100000000/minute",
            login_rate_limit="100000000/minute",
            register_rate_limit="100000000/minute",
        )
        app = create_app(settings, clock=clock)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                plain = [f"plain{i}" for i in range(concurrency)]
                secure = [f"secure{i}" for i in range(concurrency)]
                secrets: dict[str, str] = {}
                for name in plain + secure:
                    body = {"username": name, "email": f"{name}@example.com", "age": 30}
                    await client.post("/users", json={**body, "password": PASSWORD})
                for name in secure:
                    tokens = (await _password(client, name)).json()
                    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
                    enrol = await client.post(
                        "/users/me/mfa/totp", json={"current_password": PASSWORD}, headers=auth
                    )
                    secrets[name] = enrol.json()["secret"]
                    code = pyotp.TOTP(secrets[name]).at(clock.now())
                    await client.post(
                        "/users/me/mfa/totp/confirm", json={"code": code}, headers=auth
                    )

                async def plain_login(name: str) -> None:
                    assert (await _password(client, name)).status_code == 200

                async def totp_login(name: str) -> None:
                    first = await _password(client, name)
                    assert first.status_code == 403, first.text
                    code = pyotp.TOTP(secrets[name]).at(clock.now())
                    data = {"grant_type": MFA_GRANT, "mfa_token": first.json()["mfa_token"]}
                    second = await client.post("/auth/token", data={**data, "otp": code})
                    assert second.status_code == 200, second.text

                async def batch(login: Any, names: list[str]) -> float:
                    clock.current += 30
                    started = time.perf_counter()
                    await asyncio.gather(*(login(name) for name in names))
                    return time.perf_counter() - started

                await batch(plain_login, plain)  # warm-up
                # Interleaved rounds: a noisy, shared machine slows both alike.
                spent = {"plain": 0.0, "totp": 0.0}
                for _ in range(rounds):
                    spent["plain"] += await batch(plain_login, plain)
                    spent["totp"] += await batch(totp_login, secure)
                password_only = rounds * len(plain) / spent["plain"]
                with_totp = rounds * len(secure) / spent["totp"]
    return {"password_logins_per_s": password_only, "password_totp_logins_per_s": with_totp}


async def _password(client: Any, name: str) -> Any:
    return await client.post(
        "/auth/token", data={"grant_type": "password", "username": name, "password": PASSWORD}
    )


def _amr_check(calls: int) -> dict[str, float]:
    """Per-request cost of authenticate() alone and with the require_mfa check."""
    from bastion.security.amr import is_multi_factor
    from bastion.security.keys import KeyRing, key_from_secret
    from bastion.security.revocation import RevocationList
    from bastion.security.tokens import AccessTokenCodec

    clock = _Clock()
    codec = AccessTokenCodec(
        KeyRing([key_from_secret(b"k" * 32)]), issuer="b", audience="b", ttl=900, clock=clock
    )
    revocations = RevocationList()
    token = codec.issue(
        user_id=1, session_id="s", permissions=(), version=0, amr=("pwd", "otp", "mfa")
    )

    def plain() -> None:
        principal, version = codec.verify(token)
        revocations.is_revoked(principal, version)

    def checked() -> None:
        principal, version = codec.verify(token)
        revocations.is_revoked(principal, version)
        if not is_multi_factor(principal.amr):
            raise AssertionError

    def best(func: Any) -> float:
        return min(timeit.repeat(func, number=calls, repeat=5)) / calls * 1e6

    base, with_check = best(plain), best(checked)
    parse_plain = codec.issue(user_id=1, session_id="s", permissions=(), version=0)

    def first_verify(text: str) -> float:
        # An uncached verification: the claim parsing the amr list adds to.
        codec.ring = codec.ring
        started = time.perf_counter()
        codec.verify(text)
        return (time.perf_counter() - started) * 1e6

    uncached_amr = min(first_verify(token) for _ in range(200))
    uncached_plain = min(first_verify(parse_plain) for _ in range(200))
    return {
        "hot_path_us": base,
        "hot_path_with_amr_check_us": with_check,
        "amr_check_added_us": with_check - base,
        "uncached_verify_us": uncached_plain,
        "uncached_verify_with_amr_us": uncached_amr,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    figures = asyncio.run(_logins(args.rounds, args.concurrency))
    figures.update(_amr_check(args.calls))
    figures["totp_cost_ratio"] = (
        figures["password_logins_per_s"] / figures["password_totp_logins_per_s"]
    )
    print(json.dumps({"bench": "mfa", **{k: round(v, 3) for k, v in figures.items()}}))
    print(f"password only:      {figures['password_logins_per_s']:8.1f} logins/s")
    print(f"password + TOTP:    {figures['password_totp_logins_per_s']:8.1f} logins/s")
    print(f"amr check added:    {figures['amr_check_added_us']:8.3f} us per request")
    base, checked = figures["hot_path_us"], figures["hot_path_with_amr_check_us"]
    print(f"  (hot path {base:.3f} us -> {checked:.3f} us)")


if __name__ == "__main__":
    main()
