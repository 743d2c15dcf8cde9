"""The housekeeping run of an instance: every store that grows, pruned in batches."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.bootstrap_mail import MailParts
from bastion.config import Settings
from bastion.security.tokens import LEEWAY_SECONDS
from bastion.services.housekeeping import Housekeeper, Pruner, PruneStep
from bastion.storage.challenges import SqlChallengeStore
from bastion.storage.protocols_mfa import ChallengeStore
from bastion.storage.sql_browser_sessions import SqlBrowserSessionStore
from bastion.storage.sql_housekeeping import (
    SqlEventPruner,
    SqlRefreshTokenPruner,
    SqlRevocationPruner,
    SqlRunLock,
    SqlSessionPruner,
)
from bastion.types import Clock


def build_housekeeper(
    settings: Settings,
    engine: AsyncEngine,
    clock: Clock,
    *,
    mail: MailParts,
    browser_sessions: SqlBrowserSessionStore,
    challenges: ChallengeStore,
) -> Housekeeper:
    """The housekeeping steps of every store of one instance."""
    steps: list[Pruner] = [
        SqlRefreshTokenPruner(engine),
        SqlSessionPruner(engine, revoked_grace=settings.access_token_ttl + LEEWAY_SECONDS),
        SqlRevocationPruner(engine),
        SqlEventPruner(engine, retention_seconds=settings.event_retention_days * 86_400),
        PruneStep("mail", mail.outbox.prune),
        PruneStep("one-time tokens", mail.tokens.prune),
        PruneStep(
            "browser sessions",
            lambda now, batch: browser_sessions.prune(before=now, limit=batch),
        ),
    ]
    if isinstance(challenges, SqlChallengeStore):
        # Redis forgets its challenges by itself (they carry a TTL).
        sql_challenges = challenges
        steps.append(
            PruneStep(
                "mfa challenges", lambda now, batch: sql_challenges.prune(now=now, limit=batch)
            )
        )
    return Housekeeper(steps, clock, lock=SqlRunLock(engine))
