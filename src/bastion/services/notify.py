"""Notices to users about security changes to their account.

A port: the MFA service calls it, and whatever delivers mail implements it
(the outbox, once wired in bootstrap). The default only logs that a notice
was due, naming the user by id and never carrying a secret.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from bastion.services.mail import MailService
from bastion.types import User

logger = structlog.get_logger("bastion.notify")


class SecurityNotifier(Protocol):
    """Tells a user that something changed on their account."""

    async def mfa_reset(self, user: User) -> None:
        """An administrator removed every second factor of ``user``."""
        ...


class LoggingNotifier:
    """The default: logs the notice (no mail transport configured here)."""

    async def mfa_reset(self, user: User) -> None:
        """Log that ``user`` should be told about an MFA reset."""
        logger.info("notice_due", notice="mfa_reset", user_id=user.id)


class MailNotifier:
    """Notices through the durable outbox: queued now, sent by the courier.

    Args:
        mail: The outbox service.
    """

    def __init__(self, mail: MailService) -> None:
        self._mail = mail

    async def mfa_reset(self, user: User) -> None:
        """Queue the ``mfa_reset`` notice to ``user``'s current address."""
        await self._mail.enqueue("mfa_reset", user.id)
