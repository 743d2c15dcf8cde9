"""Which targets the audit may touch before any packet is sent to them."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class ScopeError(Exception):
    """The URL is not one the audit may send requests to."""


@dataclass(frozen=True)
class Target:
    """The one origin an audit talks to, and the path prefix of the API on it.

    Attributes:
        origin: ``scheme://host[:port]``; every request goes there and nowhere else.
        base_path: Path prefix of the API (no trailing slash; ``""`` at the root).
    """

    origin: str
    base_path: str

    @property
    def url(self) -> str:
        """The URL as given, normalised."""
        return self.origin + self.base_path

    @property
    def https(self) -> bool:
        """Whether the target is served over TLS (HSTS applies then)."""
        return self.origin.startswith("https://")


def parse_target(url: str) -> Target:
    """Split ``url`` into origin and base path, refusing anything but http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ScopeError(f"{url!r} is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise ScopeError("put no credentials in the URL; use --user/--password or --token")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return Target(f"{parts.scheme}://{shown}{port}", parts.path.rstrip("/"))


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as exc:
        raise ScopeError(f"cannot resolve {host!r}: {exc}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def ensure_in_scope(target: Target, *, permitted: bool) -> None:
    """Refuse a public target unless the operator says they may test it.

    Only name resolution happens here, never a connection to the target: a
    scan of someone else's server is an attack (OWASP WSTG, "Rules of
    Engagement"), so the check comes before the first packet.

    Raises:
        ScopeError: The host resolves to an address outside loopback and
            private ranges and ``permitted`` is false.
    """
    if permitted:
        return
    host = urlsplit(target.origin).hostname or ""
    for address in _addresses(host):
        if not (address.is_loopback or address.is_private):
            raise ScopeError(
                f"{host} resolves to {address}, outside loopback and private ranges; "
                "audit it only with the owner's permission, then pass --i-have-permission"
            )
