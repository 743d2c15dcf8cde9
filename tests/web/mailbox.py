"""Reading the mail of a server without SMTP: the embedded Maildir in its
data directory (SPEC: ``BASTION_DATA_DIR/mail/new``)."""

from __future__ import annotations

import asyncio
import email
import re
import time
from email import policy
from pathlib import Path

from tests.conftest import RunningServer

LINK = re.compile(r"/account/(reset|verify)#token=([A-Za-z0-9_-]+)")


def _bodies(server: RunningServer, address: str) -> list[tuple[float, str]]:
    folder = Path(server.bastion.container.settings.data_dir) / "mail" / "new"
    found: list[tuple[float, str]] = []
    for path in folder.glob("*") if folder.is_dir() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if address not in str(message["To"]):
            continue
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        found.append((path.stat().st_mtime_ns, str(text)))
    return sorted(found)


async def link_token(
    server: RunningServer, address: str, page: str, *, count: int = 1, seconds: float = 30.0
) -> str:
    """The token of the ``count``-th mail to ``address`` linking to
    ``/account/<page>`` (``reset`` or ``verify``), waiting for the courier."""
    deadline = time.monotonic() + seconds
    while True:
        tokens = [
            found.group(2)
            for _, text in _bodies(server, address)
            if (found := LINK.search(text)) and found.group(1) == page
        ]
        if len(tokens) >= count:
            return tokens[count - 1]
        assert time.monotonic() < deadline, f"no {page} mail to {address}"
        await asyncio.sleep(0.05)
