"""One audit run: scope, discovery, the account, then every check in order."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bastion.audit.checks import ALL_CHECKS, Check, Inconclusive, Skipped
from bastion.audit.client import BudgetExhausted, PoliteClient, TargetError
from bastion.audit.context import Account, AuditContext, Options, registration_body
from bastion.audit.discovery import RouteOverrides, Routes, apply_overrides, routes_from_openapi
from bastion.audit.evidence import Redactor
from bastion.audit.findings import CheckOutcome, Report
from bastion.audit.scope import ensure_in_scope, parse_target

#: Called before each check with (title, index, total).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class AuditRequest:
    """Everything the operator asked for.

    Attributes:
        url: The API's base URL.
        user: Login of an existing account (with ``password``).
        password: Its password.
        token: An access token to use (``--passive`` relies on it).
        options: Mode and tuning.
        routes: Routes named on the command line.
        max_requests: Request budget.
        rate: Requests per second.
        timeout: Seconds one exchange may take.
        permitted: The operator may audit a public target.
    """

    url: str
    user: str | None = None
    password: str | None = None
    token: str | None = None
    options: Options = field(default_factory=Options)
    routes: RouteOverrides = field(default_factory=RouteOverrides)
    max_requests: int = 250
    rate: float = 5.0
    timeout: float = 10.0
    permitted: bool = False


async def _discover(ctx: AuditContext, overrides: RouteOverrides) -> Routes:
    exchange = await ctx.client.request("GET", "/openapi.json")
    ctx.probes.append(exchange)
    found = Routes()
    if exchange.status == 200:
        doc = exchange.json()
        if doc is None:
            raise TargetError("GET /openapi.json answered 200 with a body that is not JSON")
        found = routes_from_openapi(doc, "")
    routes = apply_overrides(found, overrides)
    if routes.login is None and routes.me is None:
        raise TargetError(
            f"no authentication routes found: GET /openapi.json answered {exchange.status}"
            + ("" if routes.openapi else " (no OpenAPI document)")
            + "; name them with --token-path and --me-path"
        )
    return routes


async def _register(ctx: AuditContext) -> Account | None:
    route = ctx.routes.register
    if route is None:
        return None
    name = "audit" + secrets.token_hex(5)
    email = f"{name}@example.com"
    password = "Ba-" + secrets.token_urlsafe(18)
    body = registration_body(route, username=name, email=email, password=password)
    ctx.redact.add(password)
    exchange = await ctx.client.request("POST", route.path, json_body=body)
    if not 200 <= exchange.status < 300:
        return None
    has_username = any(k != "email" and "user" in k.lower() for k in body)
    return Account(name if has_username else email, password, registered=True)


async def _set_up_account(ctx: AuditContext, request: AuditRequest) -> None:
    if request.token:
        ctx.given_token = request.token
        ctx.redact.add(request.token)
    if ctx.options.passive or ctx.routes.login is None:
        return
    if request.user and request.password:
        ctx.account = Account(request.user, request.password)
    else:
        ctx.account = await _register(ctx)
    if ctx.account is None:
        return
    attempt = await ctx.login(ctx.account.login_name, ctx.account.password)
    if attempt.session is None and not ctx.account.registered:
        raise TargetError(
            f"login with the given credentials failed: {ctx.routes.login.path} answered "
            f"{attempt.exchange.status}"
        )
    ctx.session = attempt.session
    if ctx.session:
        ctx.redact.add(ctx.session.access_token)
        ctx.redact.add(ctx.session.refresh_token)


def _selected(check: Check, options: Options) -> str | None:
    if options.passive and check.active:
        return "sends logins or registrations (not with --passive)"
    if check.intrusive and not options.intrusive:
        return "risks locking an account (only with --intrusive)"
    return None


async def _run_checks(ctx: AuditContext, report: Report, progress: Progress | None) -> None:
    for index, check in enumerate(ALL_CHECKS):
        if progress:
            progress(check.title, index, len(ALL_CHECKS))
        why_not = _selected(check, ctx.options)
        if why_not:
            report.checks.append(CheckOutcome(check.id, "skipped", why_not))
            continue
        try:
            note = await check.run(ctx)
        except Skipped as exc:
            report.checks.append(CheckOutcome(check.id, "skipped", str(exc)))
        except Inconclusive as exc:
            report.checks.append(CheckOutcome(check.id, "inconclusive", str(exc)))
        except BudgetExhausted as exc:
            report.checks.append(CheckOutcome(check.id, "incomplete", str(exc)))
            report.error = f"{exc} during {check.id} ({index} of {len(ALL_CHECKS)} checks done)"
            return
        else:
            report.checks.append(CheckOutcome(check.id, "ran", ctx.redact(note or "")))
    if progress:
        progress("done", len(ALL_CHECKS), len(ALL_CHECKS))


async def run_audit(
    request: AuditRequest,
    *,
    progress: Progress | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Audit ``request.url`` and return the report (``report.error`` set if cut short).

    Raises:
        ScopeError: The target is public and ``request.permitted`` is false;
            raised before any request is sent.
    """
    target = parse_target(request.url)
    ensure_in_scope(target, permitted=request.permitted)
    started = time.monotonic()
    report = Report(target=target.url)
    client = PoliteClient(
        target,
        max_requests=request.max_requests,
        rate=request.rate,
        timeout=request.timeout,
        transport=transport,
    )
    redact = Redactor()
    redact.add(request.password)
    ctx = AuditContext(client=client, routes=Routes(), options=request.options, redact=redact)
    try:
        ctx.routes = await _discover(ctx, request.routes)
        await _set_up_account(ctx, request)
        await _run_checks(ctx, report, progress)
    except TargetError as exc:
        report.error = str(exc)
    except BudgetExhausted as exc:
        report.error = f"{exc} before the checks could start"
    finally:
        await client.aclose()
    report.findings = ctx.findings
    report.requests = client.sent
    report.seconds = round(time.monotonic() - started, 2)
    return report
