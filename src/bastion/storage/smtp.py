"""The SMTP transport (aiosmtplib), configured by ``BASTION_SMTP_URL``.

``smtp://`` upgrades with STARTTLS whenever the server offers it and
``?starttls=require`` refuses to send in clear text (RFC 3207; a relay that
does not offer STARTTLS is then an error, retried later, never a downgrade);
``smtps://`` is implicit TLS (RFC 8314 §3.3, port 465 by default).
Certificates are always verified.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

#: A send that takes longer is counted as failed and retried later; the
#: courier's lease on the row is much longer than this.
SMTP_TIMEOUT_SECONDS = 30.0


class SmtpTransport:
    """:class:`bastion.storage.mailport.MailTransport` over SMTP.

    Args:
        url: ``smtp://[user:pass@]host[:port][?starttls=require]`` or ``smtps://...``.
        tls_context: Trust settings (default: the system's CAs, hostname checked).
        timeout: Seconds per SMTP operation.
    """

    def __init__(
        self,
        url: str,
        *,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = SMTP_TIMEOUT_SECONDS,
    ) -> None:
        parts = urlsplit(url)
        self.implicit_tls = parts.scheme == "smtps"
        self.require_starttls = parse_qs(parts.query).get("starttls") == ["require"]
        self.hostname = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.tls_context = tls_context or ssl.create_default_context()
        self.timeout = timeout

    def describe(self) -> str:
        """Where mail goes, for people (never the password)."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{self.hostname}:{self.port}"

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message``.

        Raises:
            aiosmtplib.SMTPException: refused, unreachable, or no STARTTLS
                while it is required.
        """
        if self.implicit_tls:
            start_tls: bool | None = False
        elif self.require_starttls:
            start_tls = True
        else:
            start_tls = None  # aiosmtplib: upgrade if the server offers it
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.implicit_tls,
            start_tls=start_tls,
            tls_context=self.tls_context,
            timeout=self.timeout,
        )
