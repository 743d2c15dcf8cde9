"""What the checks share: the client, the routes, the account, the tokens."""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from bastion.audit.client import Exchange, PoliteClient
from bastion.audit.discovery import RegisterRoute, Routes
from bastion.audit.evidence import Redactor, transcript
from bastion.audit.findings import Finding, Severity


@dataclass(frozen=True)
class Options:
    """How far the audit may go.

    Attributes:
        passive: Harmless requests only: no login, no registration.
        intrusive: Also the checks that risk locking an account out.
        timing_samples: Samples per group of the timing comparison.
        refresh_grace: Seconds to wait before replaying a spent refresh
            token, past any reuse grace window of the target.
    """

    passive: bool = False
    intrusive: bool = False
    timing_samples: int = 16
    refresh_grace: float = 12.0


@dataclass
class Account:
    """The account the audit logs in as."""

    login_name: str
    password: str
    registered: bool = False


@dataclass
class Session:
    """Tokens from one successful login."""

    access_token: str
    refresh_token: str | None
    response: Exchange


@dataclass
class LoginAttempt:
    """One login request and what came of it."""

    exchange: Exchange
    session: Session | None

    @property
    def throttled(self) -> bool:
        """Refused for rate or lockout (429, or 423 Locked), not for the password."""
        return self.exchange.status in (429, 423)


def _token_field(body: Any, *names: str) -> str | None:
    if isinstance(body, dict):
        for name in names:
            value = body.get(name)
            if isinstance(value, str) and value:
                return value
    return None


@dataclass
class AuditContext:
    """State shared by the checks of one audit run."""

    client: PoliteClient
    routes: Routes
    options: Options
    redact: Redactor
    #: Orders and resamples timing samples; not a secret, so not a CSPRNG.
    rng: random.Random = field(
        default_factory=lambda: random.Random(secrets.randbits(64))  # noqa: S311
    )
    account: Account | None = None
    session: Session | None = None
    given_token: str | None = None
    findings: list[Finding] = field(default_factory=list)
    probes: list[Exchange] = field(default_factory=list)
    jwt_baseline: bool = False
    known_key: bytes | None = None
    throttled_login: LoginAttempt | None = None
    spent_refresh: tuple[float, str, str] | None = None
    clock: Any = time.monotonic

    @property
    def token(self) -> str | None:
        """An access token of the audit's account, when it has one."""
        return self.session.access_token if self.session else self.given_token

    def report(
        self,
        id: str,
        title: str,
        severity: Severity,
        evidence: str,
        remedy: str,
        asvs: tuple[str, ...],
        cwe: tuple[str, ...],
    ) -> None:
        """Record a finding."""
        self.findings.append(Finding(id, title, severity, evidence, remedy, asvs, cwe))

    def show(self, exchange: Exchange, *headers: str) -> str:
        """``exchange`` as redacted evidence."""
        return transcript(exchange, self.redact, headers=headers)

    async def login(
        self, login_name: str, password: str, headers: dict[str, str] | None = None
    ) -> LoginAttempt:
        """One password login through the discovered token route."""
        route = self.routes.login
        assert route is not None
        fields = {route.username_field: login_name, route.password_field: password}
        if route.form:
            if route.grant_type:
                fields = {"grant_type": "password", **fields}
            exchange = await self.client.request("POST", route.path, data=fields, headers=headers)
        else:
            exchange = await self.client.request(
                "POST", route.path, json_body=fields, headers=headers
            )
        session = None
        body = exchange.json()
        access = _token_field(body, "access_token", "token", "accessToken", "jwt")
        if 200 <= exchange.status < 300 and access:
            refresh = _token_field(body, "refresh_token", "refreshToken")
            session = Session(access, refresh, exchange)
        return LoginAttempt(exchange, session)

    async def fresh_session(self) -> Session | None:
        """A new login of the audit's account (its own session, to spend)."""
        if self.account is None or self.routes.login is None or self.options.passive:
            return None
        attempt = await self.login(self.account.login_name, self.account.password)
        if attempt.session:
            self.redact.add(attempt.session.access_token)
            self.redact.add(attempt.session.refresh_token)
        return attempt.session

    async def call_me(
        self, token: str | None, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Exchange:
        """GET the "who am I" route with ``token`` as a bearer token (or none)."""
        assert self.routes.me is not None
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return await self.client.request("GET", self.routes.me, headers=sent, **kwargs)

    async def refresh(self, refresh_token: str) -> Exchange:
        """Spend ``refresh_token`` at the refresh route."""
        route = self.routes.refresh
        assert route is not None
        if route.grant:
            fields = {"grant_type": "refresh_token", "refresh_token": refresh_token}
            return await self.client.request("POST", route.path, data=fields)
        if route.form:
            return await self.client.request(
                "POST", route.path, data={route.field_name: refresh_token}
            )
        return await self.client.request(
            "POST", route.path, json_body={route.field_name: refresh_token}
        )


def registration_body(route: RegisterRoute, *, username: str, email: str, password: str) -> Any:
    """A plausible registration body from the route's JSON schema."""
    body: dict[str, Any] = {}
    fields = set(route.required) | ({"username", "email", "password"} & set(route.properties))
    if not route.properties:
        fields = {"username", "email", "password"}
    for name in sorted(fields):
        schema = route.properties.get(name, {})
        kind = schema.get("type")
        lowered = name.lower()
        if "password" in lowered:
            body[name] = password
        elif "email" in lowered:
            body[name] = email
        elif "user" in lowered or lowered in ("login", "name"):
            body[name] = username
        elif kind == "integer" or lowered == "age":
            low = schema.get("minimum", 0)
            high = schema.get("maximum", 10**6)
            body[name] = max(low, min(30, high))
        elif kind == "boolean":
            body[name] = False
        else:
            body[name] = username
    return body
