"""Wiring of mail and account recovery: keys, transport, outbox, courier and
the services, built by ``bastion.bootstrap.build`` (split out by concern, as
STYLE.md asks once bootstrap passes 400 lines)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.config import Settings
from bastion.errors import ConfigurationError
from bastion.security.onetime import TokenDigester
from bastion.security.sealing import Sealer, derive_key
from bastion.services.courier import Courier
from bastion.services.events import EventRecorder
from bastion.services.mail import MailRenderer, MailService
from bastion.services.mailcompose import MailComposer, TokenPolicy
from bastion.services.passwords import PasswordService
from bastion.services.recovery import EndSessions, RecoveryService
from bastion.storage.maildir import MaildirTransport
from bastion.storage.mailport import MailTransport
from bastion.storage.secretfile import load_or_create_secret
from bastion.storage.smtp import SmtpTransport
from bastion.storage.sql_onetime import SqlOnetimeTokens
from bastion.storage.sql_outbox import SqlOutbox
from bastion.storage.sql_recovery import SqlRecoveryStore
from bastion.storage.sql_users import SqlUserStore
from bastion.types import Clock


@dataclass
class MailParts:
    """Mail and account recovery: the outbox, its courier, the use-cases."""

    transport: MailTransport
    outbox: SqlOutbox
    tokens: SqlOnetimeTokens
    service: MailService
    courier: Courier
    recovery: RecoveryService


#: Name of the generated mail secret in the data directory.
MAIL_SECRET_FILE = "mail.secret"  # noqa: S105 - a file name


def default_transport(settings: Settings) -> MailTransport:
    """SMTP when ``BASTION_SMTP_URL`` is set, else the data directory's Maildir."""
    if settings.smtp_url is not None:
        return SmtpTransport(settings.smtp_url.get_secret_value())
    return MaildirTransport(settings.data_dir / "mail")


def mail_keys(settings: Settings) -> tuple[TokenDigester, Sealer]:
    """The token-digest key and the outbox sealing key, derived from
    ``BASTION_MAIL_SECRET`` or from a secret generated in the data directory."""
    if settings.mail_secret is not None:
        secret = settings.mail_secret.get_secret_value().encode("utf-8")
    else:
        secret = load_or_create_secret(settings.data_dir, MAIL_SECRET_FILE)
    return (
        TokenDigester(derive_key(secret, "bastion one-time token digest v1")),
        Sealer(derive_key(secret, "bastion outbox sealing v1")),
    )


def build_mail(
    settings: Settings,
    engine: AsyncEngine,
    *,
    users: SqlUserStore,
    passwords: PasswordService,
    events: EventRecorder,
    clock: Clock,
    transport: MailTransport | None,
    end_sessions: EndSessions,
) -> MailParts:
    """The outbox, its courier, the mail and recovery services."""
    try:
        digester, sealer = mail_keys(settings)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"BASTION_DATA_DIR: cannot load the mail secret: {exc}") from exc
    outbox = SqlOutbox(engine)
    tokens = SqlOnetimeTokens(engine)
    recovery_store = SqlRecoveryStore(engine)
    renderer = MailRenderer(settings.mail_from)
    composer = MailComposer(
        users=users,
        recovery=recovery_store,
        tokens=tokens,
        digester=digester,
        renderer=renderer,
        events=events,
        clock=clock,
        policy=TokenPolicy(
            settings.public_url, settings.reset_token_ttl, settings.verify_token_ttl
        ),
    )
    transport = transport or default_transport(settings)
    courier = Courier(
        outbox=outbox,
        composer=composer,
        renderer=renderer,
        transport=transport,
        sealer=sealer,
        events=events,
        clock=clock,
    )
    service = MailService(outbox, clock, courier.wake)

    recovery = RecoveryService(
        users=users,
        recovery=recovery_store,
        tokens=tokens,
        digester=digester,
        passwords=passwords,
        mail=service,
        events=events,
        clock=clock,
        end_sessions=end_sessions,
    )
    return MailParts(transport, outbox, tokens, service, courier, recovery)
