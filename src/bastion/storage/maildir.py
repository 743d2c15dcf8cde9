"""The embedded mail transport: each message a file in a Maildir.

With no SMTP server configured, a newcomer still gets every mail, readable
with any mail client or ``cat``. The Maildir protocol (tmp/ then a rename
into new/) means a reader never sees half a message; files are 0600 and the
folders 0700, since reset mail carries live tokens.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path


class MaildirTransport:
    """:class:`bastion.storage.mailport.MailTransport` writing to a Maildir.

    Args:
        root: The Maildir (``tmp``, ``new`` and ``cur`` are created in it).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        """Where mail goes, for people."""
        return f"the Maildir {self.root.resolve()}"

    def _prepare(self) -> None:
        for folder in (self.root, self.root / "tmp", self.root / "new", self.root / "cur"):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if folder.stat().st_mode & 0o077:
                folder.chmod(0o700)

    def _write(self, data: bytes) -> Path:
        self._prepare()
        # Unique name per the Maildir convention: time, randomness, host.
        name = f"{time.time_ns()}.{secrets.token_hex(8)}.{socket.gethostname().replace('/', '_')}"
        tmp = self.root / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.root / "new" / name
        os.rename(tmp, final)
        return final

    async def send(self, message: EmailMessage) -> None:
        """Write ``message`` into ``new/`` (in a thread: it fsyncs)."""
        await asyncio.to_thread(self._write, message.as_bytes(policy=SMTP))
