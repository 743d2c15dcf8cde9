"""The five servers under test: how to start each, and how to register and log in on it."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import RequestSpec

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV_NAME = ".bench-peers-venv"
PEERS_VENV = ROOT / PEERS_VENV_NAME
#: The peer's packages, pinned to versions listed in the registry snapshot;
#: FastAPI and uvicorn pinned to Bastion's own versions for a like-for-like server.
PEER_REQUIREMENTS = (
    "fastapi-users[sqlalchemy]==15.0.5",
    "fastapi-users-db-sqlalchemy==7.0.0",
    "aiosqlite==0.22.1",
    "uvicorn==0.54.0",
    # uvicorn[standard]'s server stack, pinned to Bastion's own versions.
    "httptools==0.9.0",
    "uvloop==0.23.0",
    "fastapi==0.163.2",
)
PASSWORD = "correct horse battery staple"
#: "The limiter still runs": limits raised so one load-generating IP is not throttled.
RAISED_LIMIT = "100000000/minute"
RAISED_BLOG_LIMIT = "100000000"
UVICORN_FLAGS = ("--host", "127.0.0.1", "--no-server-header", "--log-level", "warning")
#: What ``uvicorn[standard]`` users run (issue 15): the baselines get it explicitly.
PRODUCTION_STACK = ("--http", "httptools", "--loop", "uvloop")
#: The pure-Python stack Bastion ran on in round 1: the second ceiling.
H11_STACK = ("--http", "h11", "--loop", "asyncio")


def _json_body(**values: object) -> str:
    return json.dumps(values)


def _form_body(**values: str) -> str:
    # Keep {n} and {c} placeholders readable by the load generator.
    text = urllib.parse.urlencode(values)
    return text.replace("%7Bn%7D", "{n}").replace("%7Bc%7D", "{c}")


@dataclass
class Target:
    """A server under test.

    Attributes:
        name: Short key used in results.
        title: What it is, for the report.
        hasher: ``bench.micro hash`` algorithm of its password hashing, if any.
        command: Builds the server command for a port and a work directory.
        env: Extra environment for the server, from the work directory.
        register: Builds a registration request for a username (may hold ``{n}``).
        login: Builds a login request for a username (may hold ``{c}``).
        python: Interpreter for ``bench.micro`` runs about this target.
        notes: Caveats printed with its figures.
        in_work_dir: Run the server with its work directory as the current
            directory (``bastion serve``: no ``.env`` of the checkout can leak
            in); otherwise the repository root (``python -m uvicorn bench...``).
        forwarded_env: Extra environment under which the server believes
            ``X-Forwarded-For`` from 127.0.0.1 (W9's distinct clients); ``None``:
            not measured by W9.
    """

    name: str
    title: str
    hasher: str | None
    command: Callable[[int, Path], list[str]]
    env: Callable[[Path], dict[str, str]] = field(default=lambda _work: {})
    register: Callable[[str], RequestSpec] | None = None
    login: Callable[[str], RequestSpec] | None = None
    python: Path = Path(sys.executable)
    notes: list[str] = field(default_factory=list)
    in_work_dir: bool = False
    forwarded_env: dict[str, str] | None = None


def _uvicorn(
    python: Path, app: str, stack: tuple[str, ...] = PRODUCTION_STACK
) -> Callable[[int, Path], list[str]]:
    def command(port: int, _work: Path) -> list[str]:
        return [str(python), "-m", "uvicorn", app, "--port", str(port), *UVICORN_FLAGS, *stack]

    return command


def _bastion_in_process(port: int, _work: Path) -> list[str]:
    return [sys.executable, "-m", "bench.serve_bastion", str(port)]


def _bastion_serve_command(port: int, _work: Path) -> list[str]:
    """Bastion as shipped: its own CLI."""
    return [*bastion_cli(), "serve", "--host", "127.0.0.1", "--port", str(port)]


#: W9: Bastion believes X-Forwarded-For from the load generator's address.
BASTION_FORWARDED = {"BASTION_TRUSTED_PROXIES": "127.0.0.1/32"}
#: W9: uvicorn's defaults already believe X-Forwarded-For from 127.0.0.1
#: (``--proxy-headers``, ``FORWARDED_ALLOW_IPS``); say so explicitly.
UVICORN_FORWARDED = {"FORWARDED_ALLOW_IPS": "127.0.0.1"}


def _user_json(username: str) -> str:
    return _json_body(username=username, email=f"{username}@example.com", age=30, password=PASSWORD)


def bare() -> Target:
    """The FastAPI ceiling."""
    return Target(
        name="bare",
        title="bare FastAPI, no auth, httptools + uvloop (ceiling)",
        hasher=None,
        command=_uvicorn(Path(sys.executable), "bench.baselines.bare:app"),
    )


def bare_h11() -> Target:
    """The same ceiling on uvicorn's h11 + asyncio stack (round 1's comparison)."""
    return Target(
        name="bare-h11",
        title="bare FastAPI on h11 + asyncio (second ceiling)",
        hasher=None,
        command=_uvicorn(Path(sys.executable), "bench.baselines.bare:app", H11_STACK),
    )


def blogpost() -> Target:
    """The blog post's code."""
    return Target(
        name="blogpost",
        title="blog post (bcrypt 12, HS256, deque limiter)",
        hasher="bcrypt12",
        command=_uvicorn(Path(sys.executable), "bench.baselines.blogpost:app"),
        env=lambda _work: {"BENCH_BLOG_RATE_LIMIT": RAISED_BLOG_LIMIT},
        register=lambda user: RequestSpec(
            "POST", "/register", body=_user_json(user), content_type="application/json"
        ),
        login=lambda user: RequestSpec(
            "POST",
            "/login",
            body=_json_body(username=user, password=PASSWORD),
            content_type="application/json",
        ),
        notes=[f"limiter budget raised to {RAISED_BLOG_LIMIT}/60 s (still runs)"],
        forwarded_env=UVICORN_FORWARDED,
    )


def _bastion_env(work: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        "BASTION_DATA_DIR": str(work / "data"),
        "BASTION_RATE_LIMIT": RAISED_LIMIT,
        "BASTION_LOGIN_RATE_LIMIT": RAISED_LIMIT,
        "BASTION_REGISTER_RATE_LIMIT": RAISED_LIMIT,
        **extra,
    }


def _bastion_requests() -> dict[str, Any]:
    return {
        "register": lambda user: RequestSpec(
            "POST", "/users", body=_user_json(user), content_type="application/json"
        ),
        "login": lambda user: RequestSpec(
            "POST",
            "/auth/token",
            body=_form_body(grant_type="password", username=user, password=PASSWORD),
            content_type="application/x-www-form-urlencoded",
        ),
    }


_RAISED_NOTE = (
    f"BASTION_RATE_LIMIT, _LOGIN_RATE_LIMIT, _REGISTER_RATE_LIMIT = {RAISED_LIMIT} "
    "(the limiter still runs on every request)"
)


def bastion() -> Target:
    """Bastion with its defaults (SQLite, in-process state), run by ``bastion serve``."""
    return Target(
        name="bastion",
        title="Bastion, defaults (SQLite, in-process limiter), bastion serve",
        hasher="bastion",
        command=_bastion_serve_command,
        env=lambda work: _bastion_env(work, {}),
        notes=[_RAISED_NOTE],
        in_work_dir=True,
        forwarded_env=BASTION_FORWARDED,
        **_bastion_requests(),
    )


def bastion_in_process(*, observability: bool) -> Target:
    """Bastion with defaults through ``bench.serve_bastion`` (W7's two sides).

    W7 compares access log + metrics on and off; both sides run the same way
    (``create_app`` under uvicorn), only the observability differs.
    """
    env = {} if observability else {"BENCH_OBSERVABILITY": "off"}
    return Target(
        name="bastion-in-process" if observability else "bastion-quiet",
        title="Bastion, defaults, access log and metrics " + ("on" if observability else "off"),
        hasher="bastion",
        command=_bastion_in_process,
        env=lambda work: _bastion_env(work, env),
        notes=["bench.serve_bastion" + ("" if observability else " turns them off")],
        **_bastion_requests(),
    )


def bastion_pg(database_url: str, redis_url: str) -> Target:
    """Bastion on PostgreSQL and Redis, run by ``bastion serve``."""
    extra = {"BASTION_DATABASE_URL": database_url, "BASTION_REDIS_URL": redis_url}
    return Target(
        name="bastion-pg",
        title="Bastion on PostgreSQL + Redis, bastion serve",
        hasher="bastion",
        command=_bastion_serve_command,
        env=lambda work: _bastion_env(work, extra),
        notes=[
            "same raised limits as Bastion; throwaway PostgreSQL and Redis on loopback "
            "(tests/servers.py), not pinned: they share both CPUs with server and client"
        ],
        in_work_dir=True,
        forwarded_env=BASTION_FORWARDED,
        **_bastion_requests(),
    )


def bastion_cli() -> list[str]:
    """The ``bastion`` command of this environment (its console script, or the same
    entry point through this interpreter when the script is missing)."""
    script = Path(sys.executable).parent / "bastion"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from bastion.cli import main; main()"]


def bastion_serve(database_url: str, redis_url: str, workers: int) -> Target:
    """``bastion serve --workers N`` (uvicorn workers) on PostgreSQL and Redis, for W8."""
    extra = {"BASTION_DATABASE_URL": database_url, "BASTION_REDIS_URL": redis_url}

    def command(port: int, _work: Path) -> list[str]:
        return [
            *bastion_cli(),
            *("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        ]

    return Target(
        name=f"bastion-serve-w{workers}",
        title=f"bastion serve --workers {workers} on PostgreSQL + Redis",
        hasher="bastion",
        command=command,
        env=lambda work: _bastion_env(work, extra),
        in_work_dir=True,
        **_bastion_requests(),
    )


def fastapi_users(python: Path) -> Target:
    """fastapi-users, from its own virtual environment."""
    return Target(
        name="fastapi-users",
        title="fastapi-users 15 (SQLite, JWT, bearer)",
        hasher="fastapi-users",
        command=_uvicorn(python, "bench.baselines.fastapi_users_app:app"),
        env=lambda work: {
            "BENCH_FU_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'fastapi-users.db'}"
        },
        register=lambda user: RequestSpec(
            "POST",
            "/auth/register",
            body=_json_body(email=f"{user}@example.com", password=PASSWORD),
            content_type="application/json",
        ),
        login=lambda user: RequestSpec(
            "POST",
            "/auth/jwt/login",
            body=_form_body(username=f"{user}@example.com", password=PASSWORD),
            content_type="application/x-www-form-urlencoded",
        ),
        python=python,
        notes=["no rate limiter; password hashing runs on the event loop (its design)"],
    )


# -- fastapi-users' virtual environment --------------------------------------------------


def _peer_python_ok(python: Path) -> bool:
    if not python.exists():
        return False
    check = subprocess.run(
        [str(python), "-c", "import fastapi_users, fastapi_users_db_sqlalchemy, uvicorn"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return check.returncode == 0


def ensure_peers_venv(*, build: bool, log: Path) -> tuple[Path | None, str]:
    """The peer venv's interpreter, building it when allowed; or ``None`` and why not."""
    python = PEERS_VENV / "bin" / "python"
    if _peer_python_ok(python):
        return python, "ready"
    if not build:
        return None, (
            f"{PEERS_VENV_NAME} is not built and this mode does not build it "
            "(a full run builds it once)"
        )
    base = shutil.which("python3")
    if base is None:
        return None, "no python3 on PATH to create the peers venv"
    print(f"building {PEERS_VENV_NAME} (fastapi-users; log in {log}) ...")
    with open(log, "ab") as out:
        try:
            subprocess.run(
                [base, "-m", "venv", "--clear", str(PEERS_VENV)],
                stdout=out,
                stderr=out,
                timeout=120,
                check=True,
            )
            subprocess.run(
                [
                    str(python),
                    *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
                    *PEER_REQUIREMENTS,
                ],
                stdout=out,
                stderr=out,
                timeout=600,
                check=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            return None, f"could not install fastapi-users into the peers venv: {exc}"
    if not _peer_python_ok(python):
        return None, "fastapi-users installed but does not import"
    return python, "built"


# -- PostgreSQL and Redis ----------------------------------------------------------------


@contextlib.contextmanager
def postgres_and_redis() -> Iterator[tuple[str, str]]:
    """Throwaway PostgreSQL (with a migrated database) and Redis; yields their URLs."""
    import asyncio

    import asyncpg
    from tests.servers import postgres_server, redis_server

    from bastion.storage.database import create_engine
    from bastion.storage.migrate import upgrade

    with postgres_server() as pg, redis_server() as redis:

        async def prepare() -> str:
            conn = await asyncpg.connect(pg.admin_dsn)
            try:
                await conn.execute('CREATE DATABASE "bench"')
            finally:
                await conn.close()
            url = pg.url("bench")
            engine = create_engine(url)
            try:
                await upgrade(engine)
            finally:
                await engine.dispose()
            return url

        yield asyncio.run(prepare()), redis.url
