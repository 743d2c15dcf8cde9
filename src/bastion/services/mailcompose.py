"""Turning an outbox row into a mail: the courier's side of recovery.

Intents (``reset``, ``verify``) name an address, not an account: the request
that queued them did the same work whatever the address (no enumeration,
fastapi-users #1534). Here, off the request path, the address is resolved,
a token is issued (voiding older ones) and the mail is rendered. A row that
resolves to nobody yields no mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.security.onetime import (
    EMAIL_CHANGE,
    RESET,
    VERIFY,
    TokenDigester,
    new_onetime_token,
)
from bastion.services.events import EventRecorder
from bastion.services.mail import ComposedMail, MailRenderer
from bastion.storage.mailport import OnetimeTokenStore, OutboxRow, Recipient, RecoveryStore
from bastion.storage.protocols import UserStore
from bastion.types import Clock, RequestContext

#: The page of the web UI that takes each purpose's token from the fragment.
PAGES = {RESET: "/account/reset", VERIFY: "/account/verify", EMAIL_CHANGE: "/account/verify"}


def human_duration(seconds: int) -> str:
    """``1800`` -> ``"30 minutes"``, ``86400`` -> ``"24 hours"``."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "1 hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} seconds"


def row_context(row: OutboxRow) -> RequestContext:
    """The context of the request that queued ``row`` (for events)."""
    raw = row.data.get("context") or {}
    return RequestContext(raw.get("ip"), raw.get("user_agent"), raw.get("request_id"))


@dataclass(frozen=True, slots=True)
class Composed:
    """A mail and whether it carries a token (then it is sealed at rest)."""

    mail: ComposedMail
    carries_token: bool


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """Where links point and how long tokens live.

    Attributes:
        public_url: ``BASTION_PUBLIC_URL`` (no trailing slash).
        reset_ttl: Seconds a reset token lives.
        verify_ttl: Seconds a verification or email-change token lives.
    """

    public_url: str
    reset_ttl: int
    verify_ttl: int

    def ttl(self, purpose: str) -> int:
        """The lifetime of a ``purpose`` token."""
        return self.reset_ttl if purpose == RESET else self.verify_ttl


class MailComposer:
    """Resolves rows to recipients and renders them.

    Args:
        users: Accounts by id.
        recovery: Accounts by address.
        tokens: Where one-time tokens are issued.
        digester: Keyed digests of tokens.
        renderer: The templates.
        events: Security events (``authn_password_reset_request``).
        clock: Time source.
        policy: Links and lifetimes.
    """

    def __init__(
        self,
        *,
        users: UserStore,
        recovery: RecoveryStore,
        tokens: OnetimeTokenStore,
        digester: TokenDigester,
        renderer: MailRenderer,
        events: EventRecorder,
        clock: Clock,
        policy: TokenPolicy,
    ) -> None:
        self._users = users
        self._recovery = recovery
        self._tokens = tokens
        self._digester = digester
        self._renderer = renderer
        self._events = events
        self._clock = clock
        self._policy = policy

    async def compose(self, row: OutboxRow) -> Composed | None:
        """The mail ``row`` stands for, or ``None`` when it resolves to no mail.

        Raises:
            Unavailable: the database is down (the row is retried).
        """
        if row.kind == RESET:
            return await self._reset(row)
        if row.kind == VERIFY:
            return await self._verify(row)
        if row.kind == EMAIL_CHANGE:
            return await self._email_change(row)
        if row.kind == "test":
            return Composed(self._renderer.render("test", row.address or "", {}), False)
        return await self._notice(row)

    async def _account(self, row: OutboxRow) -> Recipient | None:
        if row.user_id is not None:
            stored = await self._users.get(row.user_id)
            if stored is None:
                return None
            user = stored.user
            return Recipient(user.id, user.username, user.email, user.email_verified)
        if row.address is None:
            return None
        return await self._recovery.recipient(row.address)

    async def _reset(self, row: OutboxRow) -> Composed | None:
        account = await self._account(row)
        await self._events.record(
            "authn_password_reset_request",
            context=row_context(row),
            user_id=account.user_id if account else None,
            username=account.username if account else None,
            account_found=account is not None,
        )
        if account is None:
            return None
        return await self._token_mail(RESET, account, account.email, "reset")

    async def _verify(self, row: OutboxRow) -> Composed | None:
        account = await self._account(row)
        if account is None or account.email_verified:
            return None
        return await self._token_mail(VERIFY, account, account.email, "verify")

    async def _email_change(self, row: OutboxRow) -> Composed | None:
        account = await self._account(row)
        new_email = row.data.get("new_email")
        if account is None or not isinstance(new_email, str):
            return None
        return await self._token_mail(EMAIL_CHANGE, account, new_email, "email_change")

    async def _token_mail(
        self, purpose: str, account: Recipient, to: str, template: str
    ) -> Composed:
        token = new_onetime_token()
        now = self._clock.now()
        ttl = self._policy.ttl(purpose)
        await self._tokens.issue(
            digest=self._digester.digest(purpose, token),
            purpose=purpose,
            user_id=account.user_id,
            data={"email": to},
            now=now,
            expires_at=now + ttl,
        )
        values = {
            "username": account.username,
            "email": to,
            "token": token,
            "lifetime": human_duration(ttl),
            # In the fragment: it never reaches a server log or a Referer
            # (OWASP Forgot Password Cheat Sheet).
            "link": f"{self._policy.public_url}{PAGES[purpose]}#token={token}",
        }
        return Composed(self._renderer.render(template, to, values), True)

    async def _notice(self, row: OutboxRow) -> Composed | None:
        account = await self._account(row)
        if account is None:
            return None
        values: dict[str, Any] = {k: v for k, v in row.data.items() if k != "context"}
        # A notice may be pinned to an address (the old one, for an email
        # change: it must not follow the account to the new address).
        to = str(values.pop("to", None) or account.email)
        values.update(username=account.username, email=to)
        return Composed(self._renderer.render(row.kind, to, values), False)
