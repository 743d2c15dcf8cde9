"""Fixtures' helpers for mail: a real SMTP server (``tests/smtpd.py`` as a
subprocess on a loopback port), a generated TLS certificate, and readers of
the mail it received."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import re
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import _wait_for_port, free_port

REPO = Path(__file__).resolve().parents[1]
TOKEN_LINE = re.compile(r"^Token: ([A-Za-z0-9_-]+)\r?$", re.MULTILINE)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and 127.0.0.1 (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "smtp-cert.pem"
    key_path = directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    """One message the SMTP server accepted."""

    message: EmailMessage
    rcpt_tos: list[str]
    tls: bool

    @property
    def text(self) -> str:
        """The plain-text part."""
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        content = part.get_content()
        assert isinstance(content, str)
        return content

    @property
    def token(self) -> str:
        """The value of the ``Token:`` line."""
        found = TOKEN_LINE.search(self.text)
        assert found is not None, self.text
        return found.group(1)


def read_spool(directory: Path) -> list[Received]:
    """Every message in a spool directory, in arrival order."""
    found = []
    for eml in sorted(directory.glob("*.eml"), key=lambda p: int(p.stem)):
        meta = json.loads(eml.with_suffix(".json").read_text())
        message = message_from_bytes(eml.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append(Received(message, meta["rcpt_tos"], meta["tls"]))
    return found


@dataclass
class SmtpServer:
    """The aiosmtpd process; ``stop()`` and ``start()`` make an outage."""

    port: int
    spool: Path
    cert: Path | None = None
    key: Path | None = None
    mode: str = "plain"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``BASTION_SMTP_URL`` of this server."""
        if self.mode == "implicit":
            return f"smtps://127.0.0.1:{self.port}"
        query = "?starttls=require" if self.mode == "require" else ""
        return f"smtp://127.0.0.1:{self.port}{query}"

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate."""
        return ssl.create_default_context(cafile=str(self.cert) if self.cert else None)

    def start(self) -> None:
        """Start listening (again) on the same port."""
        command = [sys.executable, "-m", "tests.smtpd", "--port", str(self.port)]
        command += ["--spool", str(self.spool)]
        if self.cert and self.key:
            command += ["--cert", str(self.cert), "--key", str(self.key)]
        if self.mode == "require":
            command.append("--require-starttls")
        if self.mode == "implicit":
            command.append("--implicit-tls")
        self.process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for_port(self.port)

    def stop(self) -> None:
        """Stop; connections are refused until ``start()``."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def clear(self) -> None:
        """Forget the messages received so far (between tests)."""
        for path in self.spool.glob("*"):
            path.unlink(missing_ok=True)

    def received(self) -> list[Received]:
        """Every message accepted so far."""
        return read_spool(self.spool)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until ``count`` messages arrived; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.received()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{count} mails expected, {len(self.received())} arrived")


@contextlib.contextmanager
def smtp_server(mode: str = "plain") -> Iterator[SmtpServer]:
    """Run an SMTP server on a free loopback port.

    Args:
        mode: ``plain`` (no TLS), ``starttls`` (offers STARTTLS),
            ``require`` (refuses mail without STARTTLS; the URL demands it
            too), ``implicit`` (TLS from the first byte: ``smtps://``).
    """
    base = Path(tempfile.mkdtemp(prefix="bastion-smtp-"))
    cert = key = None
    if mode != "plain":
        cert, key = make_certificate(base)
    server = SmtpServer(free_port(), base / "spool", cert, key, mode)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        import shutil

        shutil.rmtree(base, ignore_errors=True)
