"""The ``bastion audit`` command (Typer); the audit itself is imported when it runs."""

from __future__ import annotations

import asyncio
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Format(StrEnum):
    """Report formats."""

    table = "table"
    json = "json"
    sarif = "sarif"


class FailOn(StrEnum):
    """Severities ``--fail-on`` accepts."""

    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"


_ROUTES = "Routes (when discovery from /openapi.json fails)"


def audit_command(
    url: Annotated[str, typer.Argument(help="Base URL of the API to audit.")],
    user: Annotated[str | None, typer.Option(help="Login of an existing account.")] = None,
    password: Annotated[str | None, typer.Option(help="Its password.")] = None,
    token: Annotated[str | None, typer.Option(help="An access token to use.")] = None,
    passive: Annotated[
        bool, typer.Option("--passive", help="Harmless requests only: no login, no sign-up.")
    ] = False,
    intrusive: Annotated[
        bool, typer.Option("--intrusive", help="Also checks that risk locking an account.")
    ] = False,
    fmt: Annotated[Format, typer.Option("--format", help="Report format.")] = Format.table,
    out: Annotated[Path | None, typer.Option(help="Write the report to FILE.")] = None,
    fail_on: Annotated[
        FailOn, typer.Option(help="Exit 1 on findings of this severity or worse.")
    ] = FailOn.high,
    max_requests: Annotated[int, typer.Option(min=1, help="Request budget.")] = 250,
    rate: Annotated[float, typer.Option(min=0.01, help="Requests per second, at most.")] = 5.0,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per request.")] = 10.0,
    i_have_permission: Annotated[
        bool,
        typer.Option("--i-have-permission", help="Allow a target outside private ranges."),
    ] = False,
    token_path: Annotated[str | None, typer.Option(rich_help_panel=_ROUTES)] = None,
    token_json: Annotated[
        bool | None,
        typer.Option("--token-json/--token-form", rich_help_panel=_ROUTES),
    ] = None,
    register_path: Annotated[str | None, typer.Option(rich_help_panel=_ROUTES)] = None,
    refresh_path: Annotated[str | None, typer.Option(rich_help_panel=_ROUTES)] = None,
    logout_path: Annotated[str | None, typer.Option(rich_help_panel=_ROUTES)] = None,
    me_path: Annotated[
        str | None, typer.Option(help="A GET route that needs a token.", rich_help_panel=_ROUTES)
    ] = None,
    timing_samples: Annotated[int, typer.Option(min=8, help="Samples per timing group.")] = 16,
    refresh_grace: Annotated[
        float, typer.Option(min=0, help="Seconds to wait before replaying a refresh token.")
    ] = 12.0,
) -> None:
    """Audit an HTTP API's authentication layer (exit 0 clean, 1 findings, 3 incomplete)."""
    from bastion.audit.runner_cli import Invocation, execute

    if passive and intrusive:
        typer.echo("bastion audit: --passive and --intrusive exclude each other", err=True)
        raise typer.Exit(2)
    if (user is None) != (password is None):
        typer.echo("bastion audit: give --user and --password together", err=True)
        raise typer.Exit(2)
    code = execute(
        Invocation(
            url=url,
            user=user,
            password=password,
            token=token,
            passive=passive,
            intrusive=intrusive,
            fmt=fmt.value,
            out=out,
            fail_on=fail_on.value,
            max_requests=max_requests,
            rate=rate,
            timeout=timeout,
            permitted=i_have_permission,
            routes=(token_path, token_json, register_path, refresh_path, logout_path, me_path),
            timing_samples=timing_samples,
            refresh_grace=refresh_grace,
        ),
        run=asyncio.run,
        stderr=sys.stderr,
    )
    raise typer.Exit(code)
