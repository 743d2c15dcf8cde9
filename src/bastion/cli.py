"""The ``bastion`` command."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from bastion.config import Settings

app = typer.Typer(
    help="Bastion: secure-by-default users and authentication.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

_ENV_HELP = """
Configuration comes from BASTION_* environment variables or a .env file:
BASTION_DATA_DIR, BASTION_DATABASE_URL, BASTION_REDIS_URL, BASTION_SECRET_KEY,
BASTION_JWT_ALGORITHM, BASTION_ISSUER, BASTION_AUDIENCE, BASTION_ACCESS_TOKEN_TTL,
BASTION_REFRESH_TOKEN_TTL, BASTION_REFRESH_REUSE_INTERVAL, BASTION_RATE_LIMIT,
BASTION_LOGIN_RATE_LIMIT, BASTION_REGISTER_RATE_LIMIT, BASTION_TRUSTED_PROXIES,
BASTION_PASSWORD_HASHER, BASTION_PASSWORD_MIN_LENGTH, BASTION_DOCS,
BASTION_CORS_ORIGINS, BASTION_X_XSS_PROTECTION, BASTION_METRICS_PUBLIC, BASTION_WEB.
See the README for defaults.
"""


def load_settings() -> Settings:
    """Settings from the environment, or exit with one line per wrong variable."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "BASTION_" + "_".join(str(part) for part in error["loc"]).upper()
            if not error["loc"]:
                name = "configuration"
            typer.echo(f"bastion: invalid {name}: {error['msg']}", err=True)
        raise typer.Exit(2) from None


@app.command(epilog=_ENV_HELP)
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from bastion.errors import BastionError

    settings = load_settings()
    if workers > 1 and not settings.redis_url:
        typer.echo(
            "bastion: --workers > 1 needs BASTION_REDIS_URL: in-process limits and "
            "revocations would not be shared between workers",
            err=True,
        )
        raise typer.Exit(2)
    try:
        from bastion.bootstrap import build

        # Validate the data directory and keys before forking workers.
        build(settings)
    except BastionError as exc:
        typer.echo(f"bastion: {exc.message}", err=True)
        raise typer.Exit(2) from None
    if workers > 1:
        _share_metrics(settings.data_dir / "metrics")
    uvicorn.run(
        "bastion.cli:_service_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        http="bastion.serving:NoDelayH11Protocol",
        # Client addresses are our decision (BASTION_TRUSTED_PROXIES); uvicorn
        # must not rewrite them from X-Forwarded-For on its own.
        proxy_headers=False,
        forwarded_allow_ips="",
        log_level="warning",
    )


def _share_metrics(directory: Path) -> None:
    """Give the workers one fresh directory for their Prometheus values."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _service_app() -> object:
    from bastion.api.app import create_app

    return create_app(load_settings())


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic)."""
    from bastion.storage.database import create_engine
    from bastion.storage.migrate import upgrade

    settings = load_settings()

    async def run() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    typer.echo("bastion: database is at the latest revision")


@app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(help="The admin's username.")],
    email: Annotated[str, typer.Option(help="The admin's email address.")],
    age: Annotated[int, typer.Option(help="The admin's age.")] = 30,
) -> None:
    """Create a user holding the admin permission; the password is read from stdin."""
    from bastion.admin import create_admin_user

    settings = load_settings()
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            typer.echo("bastion: the passwords differ", err=True)
            raise typer.Exit(1)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        user_id = asyncio.run(create_admin_user(settings, username, email, age, password))
    except ValueError as exc:
        typer.echo(f"bastion: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"bastion: created admin {username!r} with id {user_id}")


@keys_app.command("rotate")
def rotate_keys() -> None:
    """Add a new signing key; running instances sign with it within 60 s."""
    import time

    from bastion.storage.keyfile import KeyFile

    settings = load_settings()
    if settings.secret_key is not None and settings.jwt_algorithm == "HS256":
        typer.echo(
            "bastion: BASTION_SECRET_KEY is set, so the signing key is the configured one; "
            "unset it to use rotated keys from the data directory",
            err=True,
        )
        raise typer.Exit(2)
    key = KeyFile(settings.data_dir).rotate(
        settings.jwt_algorithm,
        now=time.time(),
        retire_after=settings.access_token_ttl + 120,
    )
    typer.echo(f"bastion: new signing key {key.kid} ({key.algorithm})")


def main() -> None:
    """Console-script entry point."""
    app()
