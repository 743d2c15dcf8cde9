"""A real SMTP server for the tests: aiosmtpd, run as its own process.

``python -m tests.smtpd --port P --spool DIR [--cert C --key K]
[--require-starttls | --implicit-tls]`` listens on 127.0.0.1:P and writes
each message it accepts to ``DIR/<n>.eml``, with a ``DIR/<n>.json`` beside it
(envelope and whether the session was encrypted). It stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import ssl
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Spool:
    """aiosmtpd handler: keep every message as files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.counter = itertools.count(len(list(directory.glob("*.eml"))) + 1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        number = next(self.counter)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            # STARTTLS sets session.ssl; implicit TLS shows on the transport.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
        }
        tmp = self.directory / f".{number}.tmp"
        tmp.write_bytes(envelope.original_content or envelope.content)
        (self.directory / f"{number}.json").write_text(json.dumps(meta))
        os.replace(tmp, self.directory / f"{number}.eml")
        return "250 Message accepted"


def main() -> None:
    """Run until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--require-starttls", action="store_true")
    parser.add_argument("--implicit-tls", action="store_true")
    args = parser.parse_args()
    args.spool.mkdir(parents=True, exist_ok=True)
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    kwargs: dict[str, Any] = {}
    if args.implicit_tls:
        kwargs["ssl_context"] = context
    elif context is not None:
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = args.require_starttls
    controller = Controller(
        Spool(args.spool),
        hostname="127.0.0.1",
        port=args.port,
        server_hostname="localhost",
        **kwargs,
    )
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
