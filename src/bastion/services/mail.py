"""Mail as a port: what the rest of Bastion calls to send mail.

Nothing here talks to a mail server. :class:`MailService` writes rows to the
outbox (durable, in the caller's transaction where there is one); the
courier (``bastion.services.courier``) sends them later through a
:class:`~bastion.storage.mailport.MailTransport`. :class:`MailRenderer` turns
a template of the package into a message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from bastion.storage.mailport import MailTransport, NewMail, OutboxStore
from bastion.types import Clock, RequestContext

__all__ = ["ComposedMail", "MailRenderer", "MailService", "MailTransport", "NewMail"]

TEMPLATES = Path(__file__).with_name("mail_templates")


def context_data(context: RequestContext | None) -> dict[str, Any]:
    """The request context kept with an intent, for the courier's events."""
    if context is None:
        return {}
    return {
        "context": {
            "ip": context.ip,
            "user_agent": context.user_agent,
            "request_id": context.request_id,
        }
    }


class MailService:
    """Queues mail. The API the rest of Bastion (and MFA's notices) uses.

    Args:
        outbox: The durable queue.
        clock: Time source.
        on_enqueue: Called after a row is committed (wakes this instance's
            courier at once instead of at its next poll).
    """

    def __init__(
        self, outbox: OutboxStore, clock: Clock, on_enqueue: Callable[[], None] | None = None
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self.on_enqueue = on_enqueue

    @staticmethod
    def message(
        kind: str,
        *,
        user_id: int | None = None,
        address: str | None = None,
        context: RequestContext | None = None,
        **data: Any,
    ) -> NewMail:
        """A mail to queue within another store's transaction (see
        ``bastion.storage.sql_outbox.insert_mail``)."""
        return NewMail(kind, user_id, address, {**data, **context_data(context)})

    async def enqueue(
        self, kind: str, to_user_id: int, *, context: RequestContext | None = None, **data: Any
    ) -> int:
        """Queue the notice ``kind`` (a template in ``services/mail_templates``)
        to the current address of user ``to_user_id``; returns the row id.

        The template gets ``username``, ``email`` and ``data``'s keys. For
        example an MFA reset: ``await mail.enqueue("mfa_reset", user_id)``.
        """
        ids = await self._outbox.add(
            [self.message(kind, user_id=to_user_id, context=context, **data)],
            now=self._clock.now(),
        )
        self.notify()
        return ids[0]

    async def enqueue_to(self, kind: str, address: str, **data: Any) -> int:
        """Queue ``kind`` to an address that belongs to no account (a test mail)."""
        ids = await self._outbox.add(
            [self.message(kind, address=address, **data)], now=self._clock.now()
        )
        self.notify()
        return ids[0]

    async def request(
        self,
        mail: NewMail,
        *,
        per_hour: int,
        also: tuple[NewMail, ...] = (),
    ) -> bool:
        """Queue ``mail`` (and ``also``, in the same transaction) unless
        ``per_hour`` mails of its kind went to its address in the last hour."""
        queued = await self._outbox.request(
            mail, now=self._clock.now(), per_hour=per_hour, also=also
        )
        if queued:
            self.notify()
        return queued

    def notify(self) -> None:
        """Tell this instance's courier there is work."""
        if self.on_enqueue is not None:
            self.on_enqueue()


@dataclass(frozen=True, slots=True)
class ComposedMail:
    """A rendered mail, ready for a transport.

    Attributes:
        to: Recipient address.
        subject: Subject line.
        text: The plain-text part.
        html: The HTML part, if the template has one.
    """

    to: str
    subject: str
    text: str
    html: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """For sealing."""
        return {"to": self.to, "subject": self.subject, "text": self.text, "html": self.html}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComposedMail:
        """The inverse of :meth:`as_dict`."""
        return cls(str(data["to"]), str(data["subject"]), str(data["text"]), data.get("html"))


class MailRenderer:
    """Jinja2 templates of the package: ``<kind>.txt`` (required) and
    ``<kind>.html`` (optional).

    A ``.txt`` template renders ``Subject: ...``, a blank line, then the body.
    Autoescaping is on for every template: values such as a username are
    data, and a mail client that shows text as HTML must not run them.

    Args:
        mail_from: The ``From`` header.
        directory: Where templates live (default: the package's).
    """

    def __init__(self, mail_from: str, directory: Path = TEMPLATES) -> None:
        self.mail_from = mail_from
        self._env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=True,
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def has(self, kind: str) -> bool:
        """Whether there is a template for ``kind``."""
        return (TEMPLATES / f"{kind}.txt").is_file()

    def render(self, kind: str, to: str, values: dict[str, Any]) -> ComposedMail:
        """Render ``kind`` for ``to``.

        Raises:
            jinja2.TemplateNotFound: no such template.
            ValueError: the template does not start with a subject line.
        """
        rendered = self._env.get_template(f"{kind}.txt").render(**values)
        head, _, body = rendered.partition("\n\n")
        if not head.startswith("Subject: "):
            raise ValueError(f"mail template {kind}.txt must start with 'Subject: '")
        html = None
        with contextlib.suppress(TemplateNotFound):
            html = self._env.get_template(f"{kind}.html").render(**values)
        return ComposedMail(to, head.removeprefix("Subject: ").strip(), body, html)

    def message(self, mail: ComposedMail) -> EmailMessage:
        """The MIME message of ``mail``: text/plain, with an HTML alternative
        when there is one."""
        message = EmailMessage()
        message["From"] = self.mail_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        domain = parseaddr(self.mail_from)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
        message.set_content(mail.text)
        if mail.html is not None:
            message.add_alternative(mail.html, subtype="html")
        return message
